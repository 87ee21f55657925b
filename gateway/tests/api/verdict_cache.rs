//! Verdict caches with exact revocation: for each withdrawing write, 100 rounds of warming every
//! cache on the path with a credential (inventory over gRPC, and the gateway), the write, and at
//! once the credential again on both paths: refused every time (for a demotion: the next write
//! is PERMISSION_DENIED / 403). On PostgreSQL the writes go to a second auth replica, while
//! both caches watch the first: every revocation crosses replicas.

use std::time::Duration;

use proto::{
    auth::v1::{
        ChangePasswordRequest, CreateUserRequest, CredentialKind, DeleteUserRequest, LoginRequest,
        RefreshTokenRequest, RevokeAllTokensRequest, RevokeTokenRequest, Role, UpdateUserRequest,
        ValidateTokenRequest, auth_service_client::AuthServiceClient,
    },
    inventory::v1::{
        AdjustStockRequest, ListProductsRequest, inventory_service_client::InventoryServiceClient,
    },
};
use reqwest::{Method, StatusCode, header};
use serde_json::json;
use tonic::{Code, Request, transport::Channel};

use crate::{
    helpers::{PASSWORD, Stack, expect_status, spawn_stack},
    sessions::{both_cookies, session_cookies, with_cookies},
};

const ROUNDS: usize = 100;
const OTHER_PASSWORD: &str = "Password456";

/// The stack, gRPC clients of both services, an admin, and a product to adjust.
struct Paths {
    stack: Stack,
    auth: AuthServiceClient<Channel>,
    inventory: InventoryServiceClient<Channel>,
    admin: String,
    product: i64,
}

fn with_authorization<T>(message: T, kind: CredentialKind, key: &str) -> Request<T> {
    let mut request = Request::new(message);
    let value = proto::credentials::format(kind, key);
    request
        .metadata_mut()
        .insert("authorization", value.parse().unwrap());
    request
}

fn with_token<T>(message: T, token: &str) -> Request<T> {
    with_authorization(message, CredentialKind::Token, token)
}

impl Paths {
    async fn new() -> Self {
        let mut stack = spawn_stack().await;
        let writes_to = if stack.database_urls()[0].starts_with("postgres") {
            stack.extra_auth().await
        } else {
            stack.auth_url.clone()
        };
        let channel =
            |url: &http::Uri| tonic::transport::Endpoint::from(url.clone()).connect_lazy();
        let auth = AuthServiceClient::new(channel(&writes_to));
        let inventory = InventoryServiceClient::new(channel(&stack.inventory_url));
        let admin = stack.admin().await;
        let product = stack.product(&admin, "Widget", 1_000_000).await;
        Self {
            stack,
            auth,
            inventory,
            admin,
            product,
        }
    }

    /// A user made by the admin; its id.
    async fn user(&self, username: &str) -> i64 {
        let request = CreateUserRequest {
            username: Some(username.to_owned()),
            password: Some(PASSWORD.to_owned()),
            ..Default::default()
        };
        self.auth
            .clone()
            .create_user(with_token(request, &self.admin))
            .await
            .expect("the admin creates users")
            .into_inner()
            .id
    }

    async fn log_in(&self, username: &str, password: &str) -> String {
        let request = LoginRequest {
            username: Some(username.to_owned()),
            password: Some(password.to_owned()),
            ..Default::default()
        };
        let response = self.auth.clone().login(request).await.expect("login");
        response.into_inner().token.expect("a token").key
    }

    async fn update(&self, request: UpdateUserRequest) {
        self.auth
            .clone()
            .update_user(with_token(request, &self.admin))
            .await
            .expect("the admin updates users");
    }

    /// Logs `token` out.
    async fn logout(&self, token: &str) {
        self.auth
            .clone()
            .revoke_token(with_token(RevokeTokenRequest {}, token))
            .await
            .expect("logout");
    }

    /// Logs out every token of the user of `token`.
    async fn logout_everywhere(&self, token: &str) {
        self.auth
            .clone()
            .revoke_all_tokens(with_token(RevokeAllTokensRequest {}, token))
            .await
            .expect("logout everywhere");
    }

    /// Changes the password of the user of `token` from `old` to `new`.
    async fn change_password(&self, token: &str, old: &str, new: &str) {
        let change = ChangePasswordRequest {
            old_password: Some(old.to_owned()),
            new_password: Some(new.to_owned()),
        };
        self.auth
            .clone()
            .change_password(with_token(change, token))
            .await
            .expect("password change");
    }

    /// The admin deletes user `id`.
    async fn delete(&self, id: i64) {
        self.auth
            .clone()
            .delete_user(with_token(DeleteUserRequest { id }, &self.admin))
            .await
            .expect("the admin deletes users");
    }

    /// Refreshes `token`: the token that replaces it.
    async fn refresh(&self, token: &str) -> String {
        self.auth
            .clone()
            .refresh_token(with_token(RefreshTokenRequest {}, token))
            .await
            .expect("refresh")
            .into_inner()
            .token
            .expect("a new token")
            .key
    }

    /// Waits (bounded) until both caches hold a lease, so that a warm-up really warms them.
    async fn until_trusted(&self) {
        for _ in 0..500 {
            if self.stack.inventory_verdicts.is_trusted()
                && self.stack.gateway_verdicts.is_trusted()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the verdict caches never got a lease");
    }

    /// A read with `credential` on both paths: accepted, and the inventory's cache now holds it.
    async fn warm(&self, kind: CredentialKind, key: &str) {
        self.until_trusted().await;
        self.grpc_read(kind, key)
            .await
            .expect("inventory accepts the credential");
        let response = self.http_read(kind, key).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            self.stack.inventory_verdicts.lookup(kind, key).is_some(),
            "the inventory's cache is warm"
        );
        if kind == CredentialKind::Session {
            assert!(
                self.stack.gateway_verdicts.lookup(kind, key).is_some(),
                "the gateway's cache is warm"
            );
        }
    }

    /// A read with `key` over gRPC, straight to the inventory.
    async fn grpc_read(&self, kind: CredentialKind, key: &str) -> Result<(), tonic::Status> {
        let request = with_authorization(ListProductsRequest::default(), kind, key);
        self.inventory.clone().list_products(request).await?;
        Ok(())
    }

    async fn http_read(&self, kind: CredentialKind, key: &str) -> reqwest::Response {
        let request = self.stack.request(Method::GET, "/api/inventory/");
        let request = match kind {
            CredentialKind::Session => request.header(header::COOKIE, format!("sessionid={key}")),
            _ => request.header(header::AUTHORIZATION, format!("Token {key}")),
        };
        request.send().await.expect("the gateway answers")
    }

    /// The credential, presented at once on both paths, is refused on both.
    async fn refused(&self, kind: CredentialKind, key: &str, round: usize) {
        let status = self
            .grpc_read(kind, key)
            .await
            .expect_err("inventory refuses a withdrawn credential");
        assert_eq!(
            status.code(),
            Code::Unauthenticated,
            "round {round}: {status:?}"
        );
        let response = self.http_read(kind, key).await;
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "round {round}: the gateway refuses a withdrawn credential"
        );
    }

    /// A stock adjustment with `token` over gRPC and through the gateway; the two results.
    async fn write(&self, token: &str) -> (Code, StatusCode) {
        let request = AdjustStockRequest {
            id: self.product,
            delta: 1,
        };
        let grpc = match self
            .inventory
            .clone()
            .adjust_stock(with_token(request, token))
            .await
        {
            Ok(_) => Code::Ok,
            Err(status) => status.code(),
        };
        let path = format!("/api/products/{}/adjust-stock/", self.product);
        let http = self
            .stack
            .send(Method::POST, &path, token, json!({"delta": 1}))
            .await
            .status();
        (grpc, http)
    }
}

/// For one withdrawing write, `ROUNDS` times: alice logs in, her token is warmed on both paths,
/// `withdraw` (given her id and the token) withdraws it, and both paths refuse it at once.
async fn token_withdrawal_is_refused_at_once(withdraw: impl AsyncFn(&Paths, i64, &str)) {
    let paths = Paths::new().await;
    let id = paths.user("alice").await;
    for round in 0..ROUNDS {
        let token = paths.log_in("alice", PASSWORD).await;
        paths.warm(CredentialKind::Token, &token).await;
        withdraw(&paths, id, &token).await;
        paths.refused(CredentialKind::Token, &token, round).await;
    }
}

#[tokio::test]
async fn logout_is_refused_at_once_everywhere() {
    token_withdrawal_is_refused_at_once(async |paths, _, token| paths.logout(token).await).await;
}

#[tokio::test]
async fn logout_everywhere_is_refused_at_once_everywhere() {
    let paths = Paths::new().await;
    paths.user("alice").await;
    for round in 0..ROUNDS {
        let token = paths.log_in("alice", PASSWORD).await;
        let other = paths.log_in("alice", PASSWORD).await;
        paths.warm(CredentialKind::Token, &other).await;
        paths.logout_everywhere(&token).await;
        paths.refused(CredentialKind::Token, &other, round).await;
    }
}

#[tokio::test]
async fn a_refreshed_away_token_is_refused_at_once_everywhere() {
    let paths = Paths::new().await;
    paths.user("alice").await;
    let mut token = paths.log_in("alice", PASSWORD).await;
    for round in 0..ROUNDS {
        paths.warm(CredentialKind::Token, &token).await;
        let fresh = paths.refresh(&token).await;
        paths.refused(CredentialKind::Token, &token, round).await;
        token = fresh;
    }
}

#[tokio::test]
async fn a_password_change_is_refused_at_once_everywhere() {
    let paths = Paths::new().await;
    paths.user("alice").await;
    let passwords = [PASSWORD, OTHER_PASSWORD];
    for round in 0..ROUNDS {
        let (old, new) = (passwords[round % 2], passwords[(round + 1) % 2]);
        let token = paths.log_in("alice", old).await;
        let other = paths.log_in("alice", old).await;
        paths.warm(CredentialKind::Token, &other).await;
        paths.change_password(&token, old, new).await;
        paths.refused(CredentialKind::Token, &other, round).await;
    }
}

#[tokio::test]
async fn a_password_set_by_an_admin_is_refused_at_once_everywhere() {
    token_withdrawal_is_refused_at_once(async |paths, id, _| {
        let update = UpdateUserRequest {
            id,
            password: Some(PASSWORD.to_owned()),
            ..Default::default()
        };
        paths.update(update).await;
    })
    .await;
}

#[tokio::test]
async fn a_deactivation_is_refused_at_once_everywhere() {
    let paths = Paths::new().await;
    let id = paths.user("alice").await;
    let active = |is_active| UpdateUserRequest {
        id,
        is_active: Some(is_active),
        ..Default::default()
    };
    for round in 0..ROUNDS {
        let token = paths.log_in("alice", PASSWORD).await;
        paths.warm(CredentialKind::Token, &token).await;
        paths.update(active(false)).await;
        paths.refused(CredentialKind::Token, &token, round).await;
        paths.update(active(true)).await;
    }
}

#[tokio::test]
async fn a_deletion_is_refused_at_once_everywhere() {
    let paths = Paths::new().await;
    for round in 0..ROUNDS {
        let username = format!("user{round}");
        let id = paths.user(&username).await;
        let token = paths.log_in(&username, PASSWORD).await;
        paths.warm(CredentialKind::Token, &token).await;
        paths.delete(id).await;
        paths.refused(CredentialKind::Token, &token, round).await;
    }
}

/// Promotes with `grant`, checks a write passes on both paths, demotes with `revoke`, and checks
/// the very next write is refused on both.
async fn demotion_is_refused_at_once(grant: UpdateUserRequest, revoke: UpdateUserRequest) {
    let paths = Paths::new().await;
    let id = paths.user("alice").await;
    let token = paths.log_in("alice", PASSWORD).await;
    for round in 0..ROUNDS {
        paths
            .update(UpdateUserRequest {
                id,
                ..grant.clone()
            })
            .await;
        paths.until_trusted().await;
        assert_eq!(paths.write(&token).await, (Code::Ok, StatusCode::OK));
        assert!(
            paths
                .stack
                .inventory_verdicts
                .lookup(CredentialKind::Token, &token)
                .is_some()
        );
        paths
            .update(UpdateUserRequest {
                id,
                ..revoke.clone()
            })
            .await;
        assert_eq!(
            paths.write(&token).await,
            (Code::PermissionDenied, StatusCode::FORBIDDEN),
            "round {round}"
        );
    }
}

#[tokio::test]
async fn a_role_demotion_is_refused_at_once_everywhere() {
    let role = |role: Role| UpdateUserRequest {
        role: role.into(),
        ..Default::default()
    };
    demotion_is_refused_at_once(role(Role::Manager), role(Role::Clerk)).await;
}

#[tokio::test]
async fn a_staff_demotion_is_refused_at_once_everywhere() {
    let staff = |is_staff| UpdateUserRequest {
        is_staff: Some(is_staff),
        ..Default::default()
    };
    demotion_is_refused_at_once(staff(true), staff(false)).await;
}

#[tokio::test]
async fn a_session_logout_is_refused_at_once_everywhere() {
    let paths = Paths::new().await;
    let stack = &paths.stack;
    paths.user("alice").await;
    for round in 0..ROUNDS {
        let (session, csrf) = session_cookies(stack, "alice").await;
        paths.warm(CredentialKind::Session, &session).await;
        let cookies = both_cookies(&session, &csrf);
        let logout = with_cookies(stack, Method::POST, "/logout/", &cookies, Some(&csrf)).await;
        expect_status(logout, StatusCode::OK).await;
        paths
            .refused(CredentialKind::Session, &session, round)
            .await;
    }
}

#[tokio::test]
async fn a_reused_refresh_revokes_its_chain_at_once_everywhere() {
    let paths = Paths::new().await;
    paths.user("alice").await;
    for round in 0..ROUNDS {
        let old = paths.log_in("alice", PASSWORD).await;
        let fresh = paths.refresh(&old).await;
        paths.warm(CredentialKind::Token, &fresh).await;
        // Past the grace for a client's own concurrent requests, the old key is a stolen copy.
        paths.stack.clock.advance(Duration::from_secs(3));
        let reuse = ValidateTokenRequest {
            key: old,
            kind: CredentialKind::Token.into(),
        };
        let status = paths.auth.clone().validate_token(reuse).await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated);
        paths.refused(CredentialKind::Token, &fresh, round).await;
    }
}
