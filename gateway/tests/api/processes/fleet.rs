//! A fleet of replica processes behind one gateway ([`Replicas`]), and the read load a test
//! keeps on it ([`Load`]).

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use proto::auth::v1::{LoginRequest, auth_service_client::AuthServiceClient};
use reqwest::StatusCode;
use serde_json::{Value, json};
use service_kit::testing::TestDatabase;
use sqlx::Connection;

use super::Replica;
use crate::helpers::{PASSWORD, credentials, wait_until_ready};

/// Two (or more) replicas of auth and of inventory on one PostgreSQL database each, and a
/// gateway listing every replica of both. Dropping it kills what still runs.
pub struct Replicas {
    pub auth: Vec<Replica>,
    pub inventory: Vec<Replica>,
    pub gateway: Replica,
    pub client: reqwest::Client,
    /// An admin's token and a product it created.
    pub token: String,
    pub product: i64,
    // Dropped after the replicas (declaration order): a database outlives its servers.
    databases: [TestDatabase; 2],
}

/// Every replica's `http://` URL, comma-separated: the form `AUTH_URL` and `INVENTORY_URL` take.
fn list(replicas: &[Replica]) -> String {
    replicas
        .iter()
        .map(Replica::url)
        .collect::<Vec<_>>()
        .join(",")
}

impl Replicas {
    /// `count` replicas of each service, or `None` without `TEST_POSTGRES_URL`. `env` is given to
    /// every auth and inventory replica (e.g. `SHUTDOWN_GRACE_MS`).
    pub async fn start(count: usize, env: &[(&'static str, &str)]) -> Option<Self> {
        Self::start_with(count, env, &[]).await
    }

    /// As [`Replicas::start`], with `gateway_env` given to the gateway too.
    pub async fn start_with(
        count: usize,
        env: &[(&'static str, &str)],
        gateway_env: &[(&'static str, &str)],
    ) -> Option<Self> {
        let auth_db = TestDatabase::postgres().await?;
        let inventory_db = TestDatabase::postgres().await?;
        // `count` replicas of `role`, with `own` settings besides the shared ones, one by one:
        // the first applies the migrations.
        let replicas = |role, own: &[(&'static str, String)]| -> Vec<Replica> {
            let mut settings = own.to_vec();
            settings.extend(env.iter().map(|(name, value)| (*name, (*value).to_owned())));
            (0..count)
                .map(|_| Replica::start(role, &settings))
                .collect()
        };
        let any_port = || "127.0.0.1:0".to_owned();
        let auth = replicas(
            "auth",
            &[
                ("AUTH_LISTEN", any_port()),
                ("AUTH_DATABASE_URL", auth_db.url().to_owned()),
            ],
        );
        let inventory = replicas(
            "inventory",
            &[
                ("INVENTORY_LISTEN", any_port()),
                ("INVENTORY_DATABASE_URL", inventory_db.url().to_owned()),
                ("AUTH_URL", list(&auth)),
                ("AUTH_HEALTH_INTERVAL_MS", "200".to_owned()),
            ],
        );
        let mut gateway_settings = vec![
            ("GATEWAY_LISTEN", any_port()),
            ("AUTH_URL", list(&auth)),
            ("INVENTORY_URL", list(&inventory)),
            ("THROTTLE_AUTH_RATE", "off".to_owned()),
        ];
        gateway_settings.extend(
            gateway_env
                .iter()
                .map(|(name, value)| (*name, (*value).to_owned())),
        );
        let gateway = Replica::start("gateway", &gateway_settings);

        let auth_config = auth_service::Config::for_tests(auth_db.url());
        auth_service::create_superuser(&auth_config, "admin", None, PASSWORD)
            .await
            .expect("the superuser is created");
        let mut replicas = Self {
            auth,
            inventory,
            gateway,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            token: String::new(),
            product: 0,
            databases: [auth_db, inventory_db],
        };
        wait_until_ready(&replicas.client, &replicas.gateway.url()).await;
        let login = replicas
            .post("/api/login/", None, credentials("admin"))
            .await;
        replicas.token = login["token"].as_str().expect("a token").to_owned();
        let product = json!({"name": "Widget", "price": "9.99", "quantity": 5});
        let token = replicas.token.clone();
        replicas.product = replicas.post("/api/products/", Some(&token), product).await["id"]
            .as_i64()
            .expect("an id");
        Some(replicas)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.gateway.url())
    }

    /// `POST path` with a JSON body (and a token), expecting a 2xx; the answer's body.
    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Value {
        let mut request = self.client.post(self.url(path)).json(&body);
        if let Some(token) = token {
            request = request.header("Authorization", format!("Token {token}"));
        }
        let response = request.send().await.expect("the gateway answers");
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.expect("a JSON body")
    }

    /// A login sent straight to `auth` that takes its time: the user's password is hashed
    /// with argon2id at 64 MiB and 8 passes, so verifying it keeps the call in flight for a
    /// second or more. The task answers with how long the call took and how it ended.
    pub async fn slow_login(
        &self,
        auth: &Replica,
    ) -> tokio::task::JoinHandle<(Duration, Result<(), tonic::Status>)> {
        let mut config = auth_service::Config::for_tests(self.databases[0].url());
        // Long enough to outlast the grace on a fast machine too: t=8 took 421 ms in one CI
        // run, under the test's 500 ms grace; t=20 took 3.1 s in the test on the same host,
        // inside the 10 s drain.
        config.argon2.memory_kib = 65536;
        config.argon2.iterations = 20;
        auth_service::create_superuser(&config, "slowpoke", None, PASSWORD)
            .await
            .expect("the slow user is created");
        let mut client = AuthServiceClient::connect(auth.url())
            .await
            .expect("the client connects");
        tokio::spawn(async move {
            let started = Instant::now();
            let login = LoginRequest {
                username: Some("slowpoke".to_owned()),
                password: Some(PASSWORD.to_owned()),
                ..Default::default()
            };
            let answer = client.login(login).await;
            (started.elapsed(), answer.map(drop))
        })
    }

    /// How many replicas of `service` (`auth` or `inventory`) hold a row in its feed's
    /// replica table: the rows other replicas' writes wait on.
    pub async fn feed_rows(&self, service: &str) -> i64 {
        let (database, table) = match service {
            "auth" => (&self.databases[0], "auth_replicas"),
            _ => (&self.databases[1], "inventory_replicas"),
        };
        let mut connection = sqlx::PgConnection::connect(database.url())
            .await
            .expect("the test connects to its database");
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
            .fetch_one(&mut connection)
            .await
            .expect("the replica table is read")
    }

    /// Adds 1 to the product's stock through the gateway, then reads the product back at once
    /// (from whichever inventory replica the gateway picks): the read must show the write.
    pub async fn adjust_and_read_back(&self) {
        let token = self.token.clone();
        let path = format!("/api/products/{}/", self.product);
        let adjusted = self
            .post(
                &format!("{path}adjust-stock/"),
                Some(&token),
                json!({"delta": 1}),
            )
            .await;
        let read = self
            .client
            .get(self.url(&path))
            .header("Authorization", format!("Token {token}"))
            .send()
            .await
            .expect("the gateway answers");
        assert_eq!(read.status(), StatusCode::OK);
        let read: Value = read.json().await.expect("a JSON body");
        assert_eq!(
            read["quantity"], adjusted["quantity"],
            "the write is read back"
        );
    }

    /// Steady reads through the gateway by `workers` callers: a product (inventory, which asks
    /// auth) and the caller's own user (auth), in turn.
    pub fn load(&self, workers: usize) -> Load {
        let load = Load {
            stop: Arc::new(AtomicBool::new(false)),
            answered: Arc::new(AtomicU64::new(0)),
            failures: Arc::new(Mutex::new(Vec::new())),
            tasks: Vec::new(),
        };
        let paths = [
            format!("/api/products/{}/", self.product),
            "/api/me/".to_owned(),
        ];
        let tasks = (0..workers)
            .map(|worker| {
                let (client, token) = (self.client.clone(), self.token.clone());
                let urls = paths.clone().map(|path| self.url(&path));
                let (stop, answered, failures) = (
                    load.stop.clone(),
                    load.answered.clone(),
                    load.failures.clone(),
                );
                tokio::spawn(async move {
                    let mut round = worker;
                    while !stop.load(Ordering::Relaxed) {
                        let url = &urls[round % urls.len()];
                        round += 1;
                        let sent = client
                            .get(url)
                            .header("Authorization", format!("Token {token}"))
                            .send()
                            .await;
                        match sent {
                            Ok(response) if response.status() == StatusCode::OK => {
                                answered.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok(response) => {
                                let status = response.status();
                                let body = response.text().await.unwrap_or_default();
                                failures
                                    .lock()
                                    .unwrap()
                                    .push(format!("{url}: {status} {body}"));
                            }
                            Err(err) => failures.lock().unwrap().push(format!("{url}: {err}")),
                        }
                    }
                })
            })
            .collect();
        Load { tasks, ..load }
    }
}

/// Reads kept going by [`Replicas::load`].
pub struct Load {
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicU64>,
    failures: Arc<Mutex<Vec<String>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    pub fn answered(&self) -> u64 {
        self.answered.load(Ordering::Relaxed)
    }

    pub fn failures(&self) -> Vec<String> {
        self.failures.lock().unwrap().clone()
    }

    /// Until `done` holds, checked every few milliseconds: the load runs meanwhile. Panics after
    /// a minute, for a condition that never comes.
    pub async fn until(&self, what: &str, mut done: impl FnMut() -> bool) {
        let started = Instant::now();
        while !done() {
            assert!(started.elapsed() < Duration::from_secs(60), "never: {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Until `count` more reads have been answered.
    pub async fn more(&self, count: u64) {
        let target = self.answered() + count;
        self.until(&format!("{count} more answers"), || {
            self.answered() >= target
        })
        .await;
    }

    /// Stops the callers and waits for their last reads.
    pub async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.expect("a caller ran to its end");
        }
    }
}
