//! `spawn_stack()`: auth, inventory and the gateway in this test's runtime, each service on a
//! database of its own (SQLite, or PostgreSQL with `TEST_BACKEND=postgres`), stopped when the
//! [`Stack`] is dropped. [`spawn_gateway`] starts a gateway in front of any upstream (the real
//! services here, `fake_upstream`'s fake there), and [`Http`] is a client of one, which both
//! kinds of stack dereference to; the client-side conveniences (`expect`, `raw_exchange`...).

use service_kit::program::Server;
use std::{ops::Deref, sync::Arc, time::Duration};

pub use crate::hops::Hops;
use auth_service::clock::ManualClock;
use inventory_service::cache::Products;
use reqwest::{Method, RequestBuilder, Response, StatusCode, header};
use serde_json::{Value, json};
use service_kit::{
    testing::{Running, TestDatabase},
    verdicts::VerdictCache,
};

/// The password every test user gets (it meets the rules: 8+ characters, a letter, a digit).
pub const PASSWORD: &str = "Password123";

/// The login body of `username` with [`PASSWORD`], the password of every user the helpers make.
pub fn credentials(username: &str) -> Value {
    json!({ "username": username, "password": PASSWORD })
}

/// A client of one gateway.
pub struct Http {
    /// `http://127.0.0.1:PORT` of the gateway.
    pub base: String,
    pub client: reqwest::Client,
}

/// The three servers of one test. Its [`Http`] talks to the gateway.
pub struct Stack {
    http: Http,
    /// The auth service's time: move it to expire tokens without sleeping.
    pub clock: ManualClock,
    pub auth_config: auth_service::Config,
    /// Where the auth service listens, for extra gateways.
    pub auth_url: http::Uri,
    /// Where the inventory service listens, for extra gateways.
    pub inventory_url: http::Uri,
    /// The inventory's and the gateway's caches of auth's verdicts.
    pub inventory_verdicts: VerdictCache,
    pub gateway_verdicts: VerdictCache,
    /// The products the inventory answers reads from, and its settings (for more replicas).
    pub inventory_products: Products,
    inventory_config: inventory_service::Config,
    /// Dropping these stops the servers.
    servers: Vec<Running>,
    _databases: [TestDatabase; 2],
    /// Those of the services started by [`Stack::extra_inventory`].
    extra_databases: Vec<TestDatabase>,
}

/// The stack with the gateway's default test configuration (throttling off).
pub async fn spawn_stack() -> Stack {
    spawn_stack_with(|_| {}).await
}

/// The stack, with the gateway's configuration adjusted by `configure`.
pub async fn spawn_stack_with(configure: impl FnOnce(&mut gateway::Config)) -> Stack {
    spawn_stack_on(databases().await, Hops::Plaintext, configure).await
}

/// The stack with the auth service's configuration adjusted by `configure_auth`.
pub async fn spawn_stack_with_auth(
    configure_auth: impl FnOnce(&mut auth_service::Config),
) -> Stack {
    spawn_stack_configured(databases().await, Hops::Plaintext, configure_auth, |_| {}).await
}

/// An auth and an inventory database, on the backend `TEST_BACKEND` chooses.
async fn databases() -> [TestDatabase; 2] {
    let auth = TestDatabase::of_chosen_backend().await;
    [auth, TestDatabase::of_chosen_backend().await]
}

/// The stack on the given auth and inventory databases (SQLite or PostgreSQL), its services
/// reaching each other over `hops`, with the gateway's configuration adjusted by `configure`.
pub async fn spawn_stack_on(
    databases: [TestDatabase; 2],
    hops: Hops<'_>,
    configure: impl FnOnce(&mut gateway::Config),
) -> Stack {
    spawn_stack_configured(databases, hops, |_| {}, configure).await
}

/// [`spawn_stack_on`], the auth service's configuration adjusted by `configure_auth` too.
async fn spawn_stack_configured(
    [auth_db, inventory_db]: [TestDatabase; 2],
    hops: Hops<'_>,
    configure_auth: impl FnOnce(&mut auth_service::Config),
    configure: impl FnOnce(&mut gateway::Config),
) -> Stack {
    service_kit::testing::init_logs();
    // As the `stack` binary does: the gateway's `/metrics` shows the caches and pools of the
    // services beside it in the process only if they were built into an installed recorder.
    service_kit::metrics::install();
    let mut servers = Vec::new();
    let mut auth_config = auth_service::Config::for_tests(auth_db.url());
    auth_config.tls = hops.server("auth");
    if let Hops::MutualTls(_) = hops {
        auth_config.revocation_holders = "gateway, inventory".parse().expect("identities");
        auth_config.trusted_frontends = "gateway".parse().expect("an identity");
    }
    configure_auth(&mut auth_config);
    let clock = ManualClock::new();
    let auth =
        auth_service::Application::build_with_clock(auth_config.clone(), Arc::new(clock.clone()))
            .await
            .expect("auth starts");
    let auth_url = hops.url(auth.local_addr());
    servers.push(Running::spawn(|shutdown| async move {
        auth.run_until_stopped(shutdown).await.expect("auth runs");
    }));

    let mut inventory_config =
        inventory_service::Config::for_tests(inventory_db.url(), auth_url.clone());
    inventory_config.tls = hops.server("inventory");
    inventory_config.auth_tls = hops.client("inventory");
    let inventory = inventory_service::Application::build(inventory_config.clone())
        .await
        .expect("inventory starts");
    let inventory_url = hops.url(inventory.local_addr());
    let inventory_verdicts = inventory.verdicts();
    let inventory_products = inventory.products();
    servers.push(Running::spawn(|shutdown| async move {
        inventory
            .run_until_stopped(shutdown)
            .await
            .expect("inventory runs");
    }));

    let upstream_tls = hops.client("gateway");
    let configure = |config: &mut gateway::Config| {
        config.upstream_tls = upstream_tls;
        configure(config);
    };
    let (base, gateway, gateway_verdicts) =
        spawn_gateway(&auth_url, &inventory_url, configure).await;
    servers.push(gateway);

    Stack {
        http: Http::ready(base).await,
        auth_url,
        inventory_url,
        inventory_verdicts,
        gateway_verdicts,
        inventory_products,
        inventory_config,
        clock,
        auth_config,
        servers,
        _databases: [auth_db, inventory_db],
        extra_databases: Vec::new(),
    }
}

/// A gateway in front of the services at `auth_url` and `inventory_url` (real or fake), with
/// the test configuration adjusted by `configure`: its base URL, the server (stopped when
/// dropped), and its verdict cache.
pub async fn spawn_gateway(
    auth_url: &http::Uri,
    inventory_url: &http::Uri,
    configure: impl FnOnce(&mut gateway::Config),
) -> (String, Running, VerdictCache) {
    let mut config = gateway::Config::for_tests(auth_url.clone(), inventory_url.clone());
    configure(&mut config);
    let app = gateway::Application::build(config)
        .await
        .expect("gateway starts");
    let base = format!("http://{}", app.local_addr());
    let verdicts = app.verdicts();
    let running = Running::spawn(|shutdown| async move {
        app.run_until_stopped(shutdown)
            .await
            .expect("the gateway runs");
    });
    (base, running, verdicts)
}

impl Deref for Stack {
    type Target = Http;

    fn deref(&self) -> &Http {
        &self.http
    }
}

impl Stack {
    /// Another gateway in front of this stack's auth service and the inventory at
    /// `inventory_url`, its configuration adjusted by `configure`; its base URL. It stops with
    /// the stack.
    pub async fn extra_gateway(
        &mut self,
        inventory_url: &str,
        configure: impl FnOnce(&mut gateway::Config),
    ) -> String {
        let inventory_url = inventory_url.parse().unwrap();
        let (base, gateway, _verdicts) =
            spawn_gateway(&self.auth_url, &inventory_url, configure).await;
        self.servers.push(gateway);
        base
    }

    /// Another auth replica on this stack's auth database, on the same clock; its URL. It
    /// stops with the stack. On PostgreSQL only: SQLite has one writing process.
    pub async fn extra_auth(&mut self) -> http::Uri {
        let auth = auth_service::Application::build_with_clock(
            self.auth_config.clone(),
            Arc::new(self.clock.clone()),
        )
        .await
        .expect("auth starts");
        let url = format!("http://{}", auth.local_addr()).parse().unwrap();
        self.servers.push(Running::spawn(|shutdown| async move {
            auth.run_until_stopped(shutdown).await.expect("auth runs");
        }));
        url
    }

    /// Another replica of this stack's inventory service, on its database; its URL. It stops
    /// with the stack. On PostgreSQL only: a caching server holds a SQLite file alone.
    pub async fn extra_inventory_replica(&mut self) -> String {
        self.start_inventory(self.inventory_config.clone()).await
    }

    /// Another inventory service, on a database of its own, checking callers with the auth
    /// service at `auth_url`; its URL. It stops with the stack.
    pub async fn extra_inventory(&mut self, auth_url: &str) -> String {
        let db = TestDatabase::sqlite();
        let config = inventory_service::Config::for_tests(db.url(), auth_url.parse().unwrap());
        self.extra_databases.push(db);
        self.start_inventory(config).await
    }

    /// An inventory service with `config`, stopped with the stack; its URL.
    async fn start_inventory(&mut self, config: inventory_service::Config) -> String {
        let inventory = inventory_service::Application::build(config)
            .await
            .expect("inventory starts");
        let url = format!("http://{}", inventory.local_addr());
        self.servers.push(Running::spawn(|shutdown| async move {
            inventory
                .run_until_stopped(shutdown)
                .await
                .expect("inventory runs");
        }));
        url
    }

    /// The URLs of the auth and the inventory databases, for tests that reach behind the
    /// services.
    pub fn database_urls(&self) -> [&str; 2] {
        self._databases.each_ref().map(TestDatabase::url)
    }

    /// Signs `username` up as a CLERK (seed 004's route) and returns a token.
    pub async fn clerk(&self, username: &str) -> String {
        let body = json!({
            "username": username,
            "email": format!("{username}@example.com"),
            "password": PASSWORD,
        });
        let response = self.post("/api/signup/", None, body).await;
        let body = expect_status(response, StatusCode::CREATED).await;
        body["token"].as_str().expect("a token").to_owned()
    }

    /// Creates the superuser `admin` (as `auth-service createsuperuser` does) and logs it in.
    pub async fn admin(&self) -> String {
        auth_service::create_superuser(
            &self.auth_config,
            "admin",
            Some("admin@example.com"),
            PASSWORD,
        )
        .await
        .expect("the superuser is created");
        self.log_in("admin").await
    }

    /// A token for `username` from seed 000's login.
    pub async fn log_in(&self, username: &str) -> String {
        let response = self.post("/api/login/", None, credentials(username)).await;
        let body = expect_status(response, StatusCode::OK).await;
        body["token"].as_str().expect("a token").to_owned()
    }

    /// A user with role MANAGER (a product writer), created by `admin_token`; its token.
    pub async fn manager(&self, admin_token: &str, username: &str) -> String {
        let body = json!({ "username": username, "password": PASSWORD, "role": "MANAGER" });
        let response = self.post("/users/", Some(admin_token), body).await;
        expect_status(response, StatusCode::CREATED).await;
        self.log_in(username).await
    }

    /// A product created by the writer `token`; its id.
    pub async fn product(&self, token: &str, name: &str, quantity: i64) -> i64 {
        let body = json!({ "name": name, "price": "9.99", "quantity": quantity });
        let response = self.post("/api/products/", Some(token), body).await;
        let body = expect_status(response, StatusCode::CREATED).await;
        body["id"].as_i64().expect("an id")
    }
}

impl Http {
    /// A client of the gateway at `base`, once its `/readyz` says both services answer.
    pub async fn ready(base: String) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        wait_until_ready(&client, &base).await;
        Self { base, client }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request to `path` on the gateway.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path))
    }

    /// `POST path` with a JSON body, optionally with `Authorization: Token <token>`.
    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Response {
        with_token(self.request(Method::POST, path), token)
            .json(&body)
            .send()
            .await
            .expect("the gateway answers")
    }

    /// `GET path`, optionally with a token.
    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        self.get_at(&self.base, path, token).await
    }

    /// `GET path` on the gateway at `base` (another gateway's), optionally with
    /// a token.
    pub async fn get_at(&self, base: &str, path: &str, token: Option<&str>) -> Response {
        with_token(self.client.get(format!("{base}{path}")), token)
            .send()
            .await
            .expect("the gateway answers")
    }

    /// `method path` with a token and a JSON body.
    pub async fn send(&self, method: Method, path: &str, token: &str, body: Value) -> Response {
        with_token(self.request(method, path), Some(token))
            .json(&body)
            .send()
            .await
            .expect("the gateway answers")
    }
}

/// Waits (briefly, polling) until `/readyz` of the gateway at `base` says both services answer.
pub async fn wait_until_ready(client: &reqwest::Client, base: &str) {
    for _ in 0..600 {
        let response = client.get(format!("{base}/readyz")).send().await;
        if response.is_ok_and(|response| response.status() == StatusCode::OK) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the stack did not become ready");
}

fn with_token(builder: RequestBuilder, token: Option<&str>) -> RequestBuilder {
    match token {
        Some(token) => builder.header(header::AUTHORIZATION, format!("Token {token}")),
        None => builder,
    }
}

/// The body, after checking the status (the body is shown when it is not the expected one).
pub async fn expect_status(response: Response, status: StatusCode) -> Value {
    let actual = response.status();
    let text = response.text().await.expect("a body");
    assert_eq!(actual, status, "unexpected status; body: {text}");
    json_or_text(text)
}

/// Checks the status and the whole body.
pub async fn expect(response: Response, status: StatusCode, body: Value) {
    assert_eq!(expect_status(response, status).await, body);
}

/// [`expect`] for one case of a table: a failure names `case`.
pub async fn expect_case(case: &str, response: Response, status: StatusCode, body: Value) {
    let actual = response.status();
    let text = response.text().await.expect("a body");
    assert_eq!(actual, status, "{case}: unexpected status; body: {text}");
    assert_eq!(json_or_text(text), body, "{case}");
}

/// A body as JSON, or as a JSON string when it is not JSON (`null` when empty).
fn json_or_text(text: String) -> Value {
    if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    }
}

/// Checks a `{"detail": ...}` error.
pub async fn expect_detail(response: Response, status: StatusCode, detail: &str) {
    expect(response, status, json!({ "detail": detail })).await;
}

/// Whether `key` looks like a token: 40 lowercase hex characters.
pub fn is_token(key: &Value) -> bool {
    key.as_str().is_some_and(|key| {
        key.len() == 40
            && key
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// The gateway's address (`127.0.0.1:PORT`) from its base URL.
pub fn address(base: &str) -> std::net::SocketAddr {
    base.trim_start_matches("http://")
        .parse()
        .expect("a socket address")
}

/// Sends `request` as raw bytes on a new connection to the gateway at `base` and reads until
/// the server closes it (at most 10 seconds): for what an HTTP client library will not send.
pub async fn raw_exchange(base: &str, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address(base))
        .await
        .expect("the gateway accepts");
    stream.write_all(request).await.expect("sent");
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response))
        .await
        .expect("the gateway closes the connection")
        .expect("the response is read");
    String::from_utf8_lossy(&response).into_owned()
}
