//! The auth service: what a login costs with the production argon2 parameters, and how many
//! ValidateToken calls per second it answers (the check every inventory call makes).

use std::time::{Duration, Instant};

use auth_service::{Application, Config};
use proto::auth::v1::{self as pb, auth_service_client::AuthServiceClient};
use service_kit::testing::TestDatabase;

use crate::load;

const LOGINS: usize = 20;
const VALIDATE_CONCURRENCY: usize = 32;
const VALIDATE_FOR: Duration = Duration::from_secs(5);
const PASSWORD: &str = "Password123";

pub async fn run() {
    run_on("SQLite", TestDatabase::sqlite()).await;
    if let Some(db) = TestDatabase::postgres().await {
        run_on("PostgreSQL", db).await;
    }
}

async fn run_on(backend: &str, db: TestDatabase) {
    // The production argon2 parameters (OWASP: 19 MiB, 2 passes, 1 lane), not the test ones.
    let defaults = Config::from_env().expect("default settings");
    let config = Config {
        argon2: defaults.argon2,
        ..Config::for_tests(db.url())
    };
    let app = Application::build(config)
        .await
        .expect("the auth service starts");
    let addr = app.local_addr();
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    let channel = load::channel(&format!("http://{addr}")).await;
    let mut client = AuthServiceClient::new(channel.clone());
    client
        .register(pb::RegisterRequest {
            username: Some("bench".into()),
            password: Some(PASSWORD.into()),
            ..Default::default()
        })
        .await
        .expect("registration");

    let mut latencies = Vec::with_capacity(LOGINS);
    let mut key = String::new();
    for _ in 0..LOGINS {
        let started = Instant::now();
        let response = client
            .login(pb::LoginRequest {
                username: Some("bench".into()),
                password: Some(PASSWORD.into()),
                ..Default::default()
            })
            .await
            .expect("login");
        latencies.push(started.elapsed());
        key = response.into_inner().token.expect("a token").key;
    }
    println!(
        "auth/{backend}: login (argon2id 19 MiB, t=2, p=1): {}",
        load::summary(latencies)
    );

    let validated = load::throughput(VALIDATE_CONCURRENCY, VALIDATE_FOR, move || {
        let mut client = AuthServiceClient::new(channel.clone());
        let request = pb::ValidateTokenRequest {
            key: key.clone(),
            kind: pb::CredentialKind::Token.into(),
        };
        async move { client.validate_token(request).await.is_ok() }
    })
    .await;
    println!(
        "auth/{backend}: ValidateToken: {:.0} calls/s ({VALIDATE_CONCURRENCY} concurrent, one HTTP/2 connection, {} failures)",
        validated.calls_per_second, validated.failures
    );
}
