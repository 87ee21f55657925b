//! `spawn_app` and the small vocabulary the tests share.

use service_kit::program::Server;
use std::{future::Future, sync::Arc, time::Duration};

use auth_service::{Application, Config, clock::ManualClock, create_superuser};
use proto::auth::v1::{self as pb, auth_service_client::AuthServiceClient};
use service_kit::{
    testing::{Running, TestDatabase, race::race},
    validation::FieldErrors,
};
use tonic::{Code, Request, Status, transport::Channel};
use tonic_types::StatusExt;

pub const PASSWORD: &str = "Password123";

pub struct TestApp {
    pub config: Config,
    pub client: AuthServiceClient<Channel>,
    pub clock: ManualClock,
    pub addr: std::net::SocketAddr,
    server: Running,
}

/// Starts the service on `db` with the test configuration.
pub async fn spawn_app(db: &TestDatabase) -> TestApp {
    spawn_app_with(Config::for_tests(db.url())).await
}

pub async fn spawn_app_with(config: Config) -> TestApp {
    service_kit::testing::init_logs();
    let clock = ManualClock::new();
    let app = Application::build_with_clock(config.clone(), Arc::new(clock.clone()))
        .await
        .expect("the service starts");
    let addr = app.local_addr();
    let server = run(app);
    let client = AuthServiceClient::connect(format!("http://{addr}"))
        .await
        .expect("the client connects");
    TestApp {
        config,
        client,
        clock,
        addr,
        server,
    }
}

/// Runs `app` in this test's runtime until the returned server is stopped or dropped.
pub fn run(app: Application) -> Running {
    Running::spawn(|shutdown| async move {
        app.run_until_stopped(shutdown)
            .await
            .expect("the server runs");
    })
}

impl TestApp {
    pub fn client(&self) -> AuthServiceClient<Channel> {
        self.client.clone()
    }

    /// A client on a connection of its own. Clones of [`TestApp::client`] put every call
    /// through one HTTP/2 connection: one socket and one connection task on each side, which
    /// line the calls up; clients on connections of their own reach the server independently,
    /// as separate clients would.
    pub async fn own_connection(&self) -> AuthServiceClient<Channel> {
        AuthServiceClient::connect(format!("http://{}", self.addr))
            .await
            .expect("the client connects")
    }

    /// Runs `contenders` calls of `contender(client, i)` at once: each on a connection of its
    /// own, all connected first and then released together, so they race in the server instead
    /// of queueing on one connection. The results come in the order of `i`. Fails the test
    /// when no two calls were in flight at one time: that race proved nothing.
    pub async fn race<Call, Fut, T>(&self, contenders: usize, contender: Call) -> Vec<T>
    where
        Call: Fn(AuthServiceClient<Channel>, usize) -> Fut,
        Fut: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let mut calls = Vec::with_capacity(contenders);
        for i in 0..contenders {
            calls.push(contender(self.own_connection().await, i));
        }
        let raced = race(calls).await;
        assert!(
            raced.overlapped(),
            "the {contenders} calls never overlapped"
        );
        raced.results
    }

    /// Stops the server and waits until in-flight calls are done.
    pub async fn stop(self) {
        self.server.stop().await;
    }

    pub async fn register(&self, username: &str) -> pb::User {
        self.client()
            .register(registration(username))
            .await
            .expect("registration succeeds")
            .into_inner()
            .user
            .expect("a user")
    }

    pub async fn login(&self, username: &str, password: &str) -> Result<pb::LoginResponse, Status> {
        self.client()
            .login(login_request(username, password))
            .await
            .map(tonic::Response::into_inner)
    }

    /// Logs `username` in with [`PASSWORD`] and `open_session`: a token and a session.
    pub async fn session_login(&self, username: &str) -> pb::LoginResponse {
        let request = pb::LoginRequest {
            open_session: true,
            ..login_request(username, PASSWORD)
        };
        self.client()
            .login(request)
            .await
            .expect("login succeeds")
            .into_inner()
    }

    /// Registers `username` with [`PASSWORD`] and returns a fresh token key.
    pub async fn user_with_token(&self, username: &str) -> (pb::User, String) {
        let user = self.register(username).await;
        (user, self.token_for(username).await)
    }

    pub async fn token_for(&self, username: &str) -> String {
        self.token_for_password(username, PASSWORD).await
    }

    pub async fn token_for_password(&self, username: &str, password: &str) -> String {
        self.login(username, password)
            .await
            .expect("login succeeds")
            .token
            .expect("a token")
            .key
    }

    /// A staff user (not a superuser) created by `admin_token`, and a token of it.
    pub async fn staff_token(&self, admin_token: &str, username: &str) -> String {
        let request = pb::CreateUserRequest {
            username: Some(username.to_owned()),
            password: Some(PASSWORD.to_owned()),
            is_staff: Some(true),
            ..Default::default()
        };
        self.client()
            .create_user(authed(admin_token, request))
            .await
            .expect("the admin creates a staff user");
        self.token_for(username).await
    }

    /// A superuser (created as `createsuperuser` does) and a token of it.
    pub async fn admin_token(&self) -> String {
        create_superuser(&self.config, "admin", Some("admin@example.com"), PASSWORD)
            .await
            .expect("the superuser is created");
        self.token_for("admin").await
    }

    pub async fn validate(&self, key: &str) -> Result<pb::ValidateTokenResponse, Status> {
        self.client()
            .validate_token(pb::ValidateTokenRequest {
                key: key.to_owned(),
                kind: pb::CredentialKind::Token.into(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    /// Refreshes `key`: the key that replaces it.
    pub async fn refresh(&self, key: &str) -> Result<String, Status> {
        let response = self
            .client()
            .refresh_token(authed(key, pb::RefreshTokenRequest {}))
            .await?;
        Ok(response.into_inner().token.expect("a new token").key)
    }

    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }
}

pub fn registration(username: &str) -> pb::RegisterRequest {
    pb::RegisterRequest {
        username: Some(username.to_owned()),
        password: Some(PASSWORD.to_owned()),
        ..Default::default()
    }
}

pub fn login_request(username: &str, password: &str) -> pb::LoginRequest {
    pb::LoginRequest {
        username: Some(username.to_owned()),
        password: Some(password.to_owned()),
        ..Default::default()
    }
}

/// `message` from client address `address`, as the gateway names it (`x-client-address`).
pub fn from_address<T>(address: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        proto::credentials::CLIENT_ADDRESS_KEY,
        address.parse().unwrap(),
    );
    request
}

/// `message` carrying `authorization: Token <key>`.
pub fn authed<T>(key: &str, message: T) -> Request<T> {
    with_authorization(&format!("Token {key}"), message)
}

pub fn with_authorization<T>(value: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", value.parse().expect("ASCII metadata"));
    request
}

/// The `google.rpc.ErrorInfo` reason of a failed call.
pub fn reason(status: &Status) -> String {
    status
        .get_error_details()
        .error_info()
        .map(|info| info.reason.clone())
        .unwrap_or_default()
}

/// Asserts the code and reason of a failed call.
#[track_caller]
pub fn assert_rejected<T: std::fmt::Debug>(
    result: Result<T, Status>,
    code: Code,
    expected_reason: &str,
) {
    let status = result.expect_err("the call fails");
    assert_eq!(status.code(), code, "{status:?}");
    assert_eq!(reason(&status), expected_reason, "{status:?}");
}

/// The field violations of an INVALID_ARGUMENT answer, as (field, message) pairs.
#[track_caller]
pub fn field_errors<T: std::fmt::Debug>(result: Result<T, Status>) -> Vec<(String, String)> {
    let status = result.expect_err("the call fails");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    FieldErrors::from_status(&status)
        .expect("field violations")
        .iter()
        .map(|(f, m)| (f.to_owned(), m.to_owned()))
        .collect()
}

pub fn pair(field: &str, message: &str) -> (String, String) {
    (field.to_owned(), message.to_owned())
}
