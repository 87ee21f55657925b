//! `spawn_app()`: both services running in-process, plus typed clients and tokens for each
//! kind of caller.

use service_kit::program::Server;
use std::{net::SocketAddr, time::Duration};

use http::Uri;

use inventory_service::cache::Products;
use proto::{
    auth::v1::{
        CreateUserRequest, LoginRequest, RegisterRequest, Role, UpdateUserRequest,
        auth_service_client::AuthServiceClient,
    },
    inventory::v1::inventory_service_client::InventoryServiceClient,
    inventory::v1::{CreateProductRequest, Product},
};
use service_kit::{
    testing::{Running, TestDatabase, fault_proxy::FaultProxy},
    verdicts::VerdictCache,
};
use tonic::{
    Code, Request, Status,
    transport::{Channel, Endpoint},
};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tonic_types::StatusExt;

pub const PASSWORD: &str = "correct-horse-9";
const SUPERUSER: &str = "root";

/// An inventory service running on its own, and a channel to it.
pub struct RunningInventory {
    pub channel: Channel,
    pub addr: SocketAddr,
    /// Its cache of auth's verdicts.
    pub verdicts: VerdictCache,
    /// The products its reads are answered from, and their cache.
    pub products: Products,
    running: Running,
}

impl RunningInventory {
    pub fn client(&self) -> InventoryServiceClient<Channel> {
        InventoryServiceClient::new(self.channel.clone())
    }

    /// Stops it (it leaves the product feed) and waits until it has.
    pub async fn stop(self) {
        self.running.stop().await;
    }
}

pub async fn start_inventory(config: inventory_service::Config) -> RunningInventory {
    let app = inventory_service::Application::build(config)
        .await
        .expect("inventory starts");
    let addr = app.local_addr();
    let channel = channel_to(addr);
    let verdicts = app.verdicts();
    let products = app.products();
    let running = Running::spawn(|shutdown| async move {
        app.run_until_stopped(shutdown)
            .await
            .expect("inventory runs");
    });
    RunningInventory {
        channel,
        addr,
        verdicts,
        products,
        running,
    }
}

/// `http://addr` as the inventory's `AUTH_URL`.
pub fn url_of(addr: SocketAddr) -> Uri {
    format!("http://{addr}").parse().expect("a valid URL")
}

pub struct TestApp {
    pub auth_addr: SocketAddr,
    inventory: RunningInventory,
    auth_channel: Channel,
    auth: Option<Running>,
    /// A superuser's token (role ADMIN, is_staff).
    pub admin_token: String,
    /// The inventory service's settings (its database, for the import tests).
    pub config: inventory_service::Config,
    /// Between the inventory and auth, with [`spawn_app_through_proxy`].
    pub proxy: Option<FaultProxy>,
    // Dropped last: the servers above use them.
    auth_db: TestDatabase,
    _inventory_db: TestDatabase,
}

/// A database of its own for auth, on the same backend as the inventory's.
async fn database_like(db: &TestDatabase) -> TestDatabase {
    if db.url().starts_with("postgres") {
        TestDatabase::postgres()
            .await
            .expect("TEST_POSTGRES_URL is set")
    } else {
        TestDatabase::sqlite()
    }
}

async fn start_auth(config: auth_service::Config) -> (SocketAddr, Running) {
    let app = auth_service::Application::build(config)
        .await
        .expect("auth starts");
    let addr = app.local_addr();
    let running = Running::spawn(|shutdown| async move {
        app.run_until_stopped(shutdown).await.expect("auth runs");
    });
    (addr, running)
}

fn channel_to(addr: SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{addr}"))
        .expect("a valid URL")
        .connect_lazy()
}

/// Starts auth (with a superuser) and the inventory service, which `db` backs.
pub async fn spawn_app(db: TestDatabase) -> TestApp {
    spawn_app_with(db, |_| {}).await
}

/// [`spawn_app`], with the inventory's configuration adjusted by `configure`.
pub async fn spawn_app_with(
    db: TestDatabase,
    configure: impl FnOnce(&mut inventory_service::Config),
) -> TestApp {
    spawn(db, configure, false).await
}

/// [`spawn_app`], with the inventory calling auth through a [`FaultProxy`]
/// ([`TestApp::proxy`]); the test's own auth client goes straight to auth.
pub async fn spawn_app_through_proxy(db: TestDatabase) -> TestApp {
    spawn(db, |_| {}, true).await
}

async fn spawn(
    db: TestDatabase,
    configure: impl FnOnce(&mut inventory_service::Config),
    through_proxy: bool,
) -> TestApp {
    service_kit::testing::init_logs();
    let auth_db = database_like(&db).await;
    let auth_config = auth_service::Config::for_tests(auth_db.url());
    auth_service::create_superuser(&auth_config, SUPERUSER, None, PASSWORD)
        .await
        .expect("a superuser");
    let (auth_addr, auth) = start_auth(auth_config).await;

    let proxy = if through_proxy {
        Some(FaultProxy::start(auth_addr).await)
    } else {
        None
    };
    let auth_url = proxy
        .as_ref()
        .map_or_else(|| url_of(auth_addr), FaultProxy::url);
    let mut config = inventory_service::Config::for_tests(db.url(), auth_url);
    configure(&mut config);
    let inventory = start_inventory(config.clone()).await;

    let auth_channel = channel_to(auth_addr);
    let admin_token = login(&auth_channel, SUPERUSER).await;
    TestApp {
        auth_addr,
        inventory,
        auth_channel,
        auth: Some(auth),
        admin_token,
        config,
        proxy,
        auth_db,
        _inventory_db: db,
    }
}

async fn login(auth_channel: &Channel, username: &str) -> String {
    AuthServiceClient::new(auth_channel.clone())
        .login(LoginRequest {
            username: Some(username.to_owned()),
            password: Some(PASSWORD.to_owned()),
            ..Default::default()
        })
        .await
        .expect("login succeeds")
        .into_inner()
        .token
        .expect("a token")
        .key
}

/// `message` with `authorization: Token <token>`.
pub fn with_token<T>(message: T, token: &str) -> Request<T> {
    with_authorization(message, &format!("Token {token}"))
}

/// `message` with `authorization` set to `value` verbatim.
pub fn with_authorization<T>(message: T, value: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", value.parse().expect("ASCII metadata"));
    request
}

/// A product any test can use: "Widget" at 19.99, `quantity` in stock.
pub fn widget(quantity: i64) -> CreateProductRequest {
    CreateProductRequest {
        name: Some("Widget".to_owned()),
        description: Some("A useful widget".to_owned()),
        price: Some("19.99".to_owned()),
        quantity: Some(quantity),
    }
}

impl TestApp {
    pub fn inventory(&self) -> InventoryServiceClient<Channel> {
        self.inventory.client()
    }

    /// The inventory's cache of auth's verdicts.
    pub fn verdicts(&self) -> &VerdictCache {
        &self.inventory.verdicts
    }

    /// The inventory service itself.
    pub fn running_inventory(&self) -> &RunningInventory {
        &self.inventory
    }

    /// The products the inventory's reads are answered from.
    pub fn products(&self) -> &Products {
        &self.inventory.products
    }

    /// An auth client on the shared channel.
    pub fn auth(&self) -> AuthServiceClient<Channel> {
        AuthServiceClient::new(self.auth_channel.clone())
    }

    /// Waits (bounded) until the inventory's cache holds a lease from auth.
    pub async fn until_cache_trusted(&self) {
        for _ in 0..1000 {
            if self.verdicts().is_trusted() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the inventory's verdict cache never got a lease");
    }

    /// Waits (bounded) until the inventory's cache has lost its lease.
    pub async fn until_cache_untrusted(&self) {
        for _ in 0..1000 {
            if !self.verdicts().is_trusted() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the inventory's verdict cache kept its lease without auth");
    }

    /// An inventory client on a connection of its own. Clones of [`TestApp::inventory`] put
    /// every call through one HTTP/2 connection: one socket and one connection task on each
    /// side, which line the calls up; clients on connections of their own reach the server
    /// independently, as separate clients would.
    pub async fn own_inventory_connection(&self) -> InventoryServiceClient<Channel> {
        let channel = Endpoint::from_shared(format!("http://{}", self.inventory.addr))
            .expect("a valid URL")
            .connect()
            .await
            .expect("the client connects");
        InventoryServiceClient::new(channel)
    }

    /// A new user's token; `role` and `is_staff` as given.
    pub async fn user_token(&self, username: &str, role: Role, is_staff: bool) -> String {
        self.create_user(username, role, is_staff).await;
        self.login_as(username).await
    }

    /// Auth's database.
    pub fn auth_database(&self) -> &TestDatabase {
        &self.auth_db
    }

    /// Where the inventory service listens.
    pub fn inventory_addr(&self) -> SocketAddr {
        self.inventory.addr
    }

    /// A token of a new superuser `fuzz-admin-{n}`, made as `createsuperuser` does: without
    /// the API, so it works whatever the API has done to the other users.
    pub async fn new_superuser_token(&self, n: u32) -> String {
        let username = format!("fuzz-admin-{n}");
        let config = auth_service::Config::for_tests(self.auth_db.url());
        auth_service::create_superuser(&config, &username, None, PASSWORD)
            .await
            .expect("a superuser");
        self.login_as(&username).await
    }

    /// A token of a new CLERK `fuzz-clerk-{n}`, signed up through the public Register.
    pub async fn new_clerk_token(&self, n: u32) -> String {
        let username = format!("fuzz-clerk-{n}");
        AuthServiceClient::new(self.auth_channel.clone())
            .register(RegisterRequest {
                username: Some(username.clone()),
                password: Some(PASSWORD.to_owned()),
                ..Default::default()
            })
            .await
            .expect("a clerk signs up");
        self.login_as(&username).await
    }

    /// A fresh token of an existing user.
    pub async fn login_as(&self, username: &str) -> String {
        login(&self.auth_channel, username).await
    }

    /// Creates a user through auth's admin API; returns its id.
    pub async fn create_user(&self, username: &str, role: Role, is_staff: bool) -> i64 {
        let request = CreateUserRequest {
            username: Some(username.to_owned()),
            password: Some(PASSWORD.to_owned()),
            role: role.into(),
            is_staff: Some(is_staff),
            ..Default::default()
        };
        AuthServiceClient::new(self.auth_channel.clone())
            .create_user(with_token(request, &self.admin_token))
            .await
            .expect("the admin creates users")
            .into_inner()
            .id
    }

    pub async fn deactivate_user(&self, id: i64) {
        let request = UpdateUserRequest {
            id,
            is_active: Some(false),
            ..Default::default()
        };
        AuthServiceClient::new(self.auth_channel.clone())
            .update_user(with_token(request, &self.admin_token))
            .await
            .expect("the admin deactivates users");
    }

    /// Creates `product` as the admin.
    pub async fn create_product(&self, product: CreateProductRequest) -> Product {
        self.inventory()
            .create_product(with_token(product, &self.admin_token))
            .await
            .expect("the admin creates products")
            .into_inner()
    }

    /// Stops auth and waits until its port is closed.
    pub async fn stop_auth(&mut self) {
        self.auth.take().expect("auth is running").stop().await;
    }

    /// Starts auth again on the same address and database.
    pub async fn restart_auth(&mut self) {
        let mut config = auth_service::Config::for_tests(self.auth_db.url());
        config.listen = self.auth_addr;
        let (addr, auth) = start_auth(config).await;
        assert_eq!(addr, self.auth_addr);
        self.auth = Some(auth);
    }

    pub async fn wait_for_inventory_health(&self, expected: ServingStatus) {
        wait_for_health(&self.inventory.channel, expected).await;
    }
}

/// Waits (bounded) until the inventory's health reports `expected`; the health Watch stream
/// says when it changes, so there is nothing to poll.
pub async fn wait_for_health(inventory: &Channel, expected: ServingStatus) {
    let mut updates = HealthClient::new(inventory.clone())
        .watch(HealthCheckRequest {
            service: inventory_service::server::SERVICE_NAME.to_owned(),
        })
        .await
        .expect("health needs no credentials")
        .into_inner();
    let reached = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(update) = updates.message().await.expect("a health update") {
            if update.status() == expected {
                return;
            }
        }
        panic!("the health stream ended");
    })
    .await;
    assert!(
        reached.is_ok(),
        "inventory health never became {expected:?}"
    );
}

/// Asserts `status` has `code` and an ErrorInfo with `reason`.
#[track_caller]
pub fn assert_reason(status: &Status, code: Code, reason: &str) {
    assert_eq!(status.code(), code, "{status:?}");
    let details = status.get_error_details();
    let info = details
        .error_info()
        .unwrap_or_else(|| panic!("no ErrorInfo in {status:?}"));
    assert_eq!(info.reason, reason, "{status:?}");
}

/// The field violations of an INVALID_ARGUMENT status, as (field, message) pairs.
#[track_caller]
pub fn field_errors(status: &Status) -> Vec<(String, String)> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    service_kit::validation::FieldErrors::from_status(status)
        .expect("BadRequest details")
        .iter()
        .map(|(field, message)| (field.to_owned(), message.to_owned()))
        .collect()
}
