//! Every route of API.md, one module per group. Each module lists its [`Endpoint`]s: the
//! operation's documentation and its handler, declared together once, so the router and the
//! OpenAPI document are built from the same list. Where the documents differ for the same kind
//! of route (login, registration, logout), a module declares the differences in a table of
//! consts and shares one handler; products and users, both DRF `ModelViewSet`s, share their
//! operations and their read and delete handlers ([`objects`]). Paths carry their trailing
//! slash; the server adds a missing one before routing. The JSON the routes answer with is
//! in [`crate::shapes`]; `/api/docs/`, the page that shows the document, is [`docs`].

mod account;
mod audit;
mod docs;
mod login;
mod logout;
mod mfa;
mod objects;
mod ops;
mod pages;
mod products;
mod recovery;
mod registration;
mod users;

use std::sync::Arc;

use axum::{
    Router,
    extract::FromRef,
    handler::Handler,
    middleware,
    response::{IntoResponse, Response},
    routing::{MethodFilter, MethodRouter, on},
};
use http::{HeaderValue, Method};
use serde_json::Value;

use crate::{
    clients::Upstreams,
    error::{ApiError, Missing},
    openapi::{self, Operation},
    origins::TrustedOrigins,
    shapes::ReplyMemo,
    throttle::{self, Throttle},
};

/// What every handler may use.
#[derive(Debug, Clone)]
pub struct AppState {
    pub upstreams: Upstreams,
    /// The product lists' JSON, by the replies it was written from.
    pub replies: Arc<ReplyMemo>,
    /// The OpenAPI document, generated once from the endpoints.
    pub schema: Arc<Value>,
    /// Who may open a session besides the gateway's own origin (`CSRF_TRUSTED_ORIGINS`).
    pub origins: Arc<TrustedOrigins>,
}

impl FromRef<AppState> for Arc<TrustedOrigins> {
    fn from_ref(state: &AppState) -> Self {
        state.origins.clone()
    }
}

impl FromRef<AppState> for Upstreams {
    fn from_ref(state: &AppState) -> Self {
        state.upstreams.clone()
    }
}

impl FromRef<AppState> for Arc<ReplyMemo> {
    fn from_ref(state: &AppState) -> Self {
        state.replies.clone()
    }
}

/// One operation: how it is documented, and the handler that serves it.
pub struct Endpoint {
    operation: Operation,
    handler: MethodRouter<AppState>,
}

impl Endpoint {
    /// `handler` serving `operation`'s method and path.
    pub fn new<H, T>(operation: Operation, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(operation.method.clone())
            .expect("documented operations use standard methods");
        Self {
            operation,
            handler: on(filter, handler),
        }
    }
}

/// The whole API. Login (its second step too), registration, password change and the second
/// factor's routes (which check a password or a code too), and password reset and e-mail
/// verification (which mail or check a secret) sit behind `throttle`.
pub fn router(
    upstreams: Upstreams,
    throttle: Arc<Throttle>,
    origins: Arc<TrustedOrigins>,
) -> Router {
    let mut operations = Vec::new();
    let throttled = mount(
        [
            registration::endpoints(),
            login::endpoints(),
            account::password_endpoints(),
            recovery::endpoints(),
            mfa::endpoints(),
        ],
        &mut operations,
    );
    // The document says which operations the throttle guards (429), from the same list.
    for operation in &mut operations {
        operation.throttled = true;
    }
    let throttled =
        throttled.route_layer(middleware::from_fn_with_state(throttle, throttle::limit));
    let unthrottled = mount(
        [
            logout::endpoints(),
            account::endpoints(),
            users::endpoints(),
            mfa::admin_endpoints(),
            audit::endpoints(),
            products::endpoints(),
            ops::endpoints(),
            docs::endpoints(),
        ],
        &mut operations,
    );
    let state = AppState {
        upstreams,
        replies: Arc::default(),
        schema: Arc::new(openapi::document(&operations)),
        origins,
    };
    throttled
        .merge(unthrottled)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// A router serving the `groups` of endpoints, whose operations are added to `operations`.
fn mount<const N: usize>(
    groups: [Vec<Endpoint>; N],
    operations: &mut Vec<Operation>,
) -> Router<AppState> {
    groups
        .into_iter()
        .flatten()
        .fold(Router::new(), |router, endpoint| {
            let router = router.route(endpoint.operation.path, endpoint.handler);
            operations.push(endpoint.operation);
            router
        })
}

/// A write's answer as a route shows it, marked `Idempotent-Replayed: true` when the service
/// answered with the answer stored under its `Idempotency-Key` (a repeat), as Stripe marks one.
struct Written<T> {
    replayed: bool,
    body: T,
}

impl<T> Written<T> {
    /// The service's answer to a write, its message shown as `show` renders it.
    fn of<M>(response: tonic::Response<M>, show: impl FnOnce(M) -> T) -> Self {
        let replayed = response
            .metadata()
            .get(proto::idempotency::REPLAYED_KEY)
            .is_some_and(|value| value == "true");
        Self {
            replayed,
            body: show(response.into_inner()),
        }
    }
}

impl<T: IntoResponse> IntoResponse for Written<T> {
    fn into_response(self) -> Response {
        let mut response = self.body.into_response();
        if self.replayed {
            response.headers_mut().insert(
                proto::idempotency::REPLAYED_KEY,
                HeaderValue::from_static("true"),
            );
        }
        response
    }
}

async fn not_found() -> ApiError {
    ApiError::NotFound(Missing::Route)
}

/// axum adds the `Allow` header to this response.
async fn method_not_allowed(method: Method) -> ApiError {
    ApiError::MethodNotAllowed(method)
}
