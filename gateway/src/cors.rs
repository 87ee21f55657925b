//! CORS for browser pages served from other origins (`CORS_ALLOWED_ORIGINS`, as
//! django-cors-headers' setting of that name, in `CSRF_TRUSTED_ORIGINS`' format so that
//! `https://*.example.com` covers its subdomains). With none listed, the layer is not added and
//! no response carries a CORS header.
//!
//! tower-http's [`CorsLayer`] does the work: it answers every `OPTIONS` request itself (200, no
//! body: a preflight never reaches a route, the throttle or the 405), and names the listed
//! origin, the methods, the request headers the clients send and the response headers they read.
//! [`confine`] then takes every `Access-Control-*` header off a response that names no allowed
//! origin, so a page of an unlisted origin learns nothing, as django-cors-headers does.

use std::{sync::Arc, time::Duration};

use axum::{Router, extract::Request, middleware::Next, response::Response};
use http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowCredentials, AllowOrigin, CorsLayer};

use crate::origins::TrustedOrigins;

/// The headers a browser may send: the credential, the body's type, the idempotency key, the
/// CSRF token and the request id.
const REQUEST_HEADERS: [HeaderName; 5] = [
    header::AUTHORIZATION,
    header::CONTENT_TYPE,
    HeaderName::from_static(proto::idempotency::METADATA_KEY),
    HeaderName::from_static(crate::session::CSRF_HEADER),
    HeaderName::from_static(service_kit::request_id::HEADER),
];

/// The headers a page may read besides the CORS-safelisted ones.
const EXPOSED_HEADERS: [HeaderName; 3] = [
    header::RETRY_AFTER,
    HeaderName::from_static(proto::idempotency::REPLAYED_KEY),
    HeaderName::from_static(service_kit::request_id::HEADER),
];

/// How long a browser may keep a preflight's answer (django-cors-headers' default).
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(86_400);

/// The headers [`confine`] removes from an answer to an unlisted origin.
const ALLOWING_HEADERS: [HeaderName; 6] = [
    header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
    header::ACCESS_CONTROL_ALLOW_HEADERS,
    header::ACCESS_CONTROL_ALLOW_METHODS,
    header::ACCESS_CONTROL_EXPOSE_HEADERS,
    header::ACCESS_CONTROL_MAX_AGE,
    HeaderName::from_static("access-control-allow-private-network"),
];

/// `router` answering the `allowed` origins' preflights and marking its answers to them; as it
/// was when none are allowed.
pub fn wrap(router: Router, allowed: TrustedOrigins) -> Router {
    if allowed.is_empty() {
        return router;
    }
    let allowed = Arc::new(allowed);
    let listed = move |origin: &HeaderValue| origin.to_str().is_ok_and(|o| allowed.contains(o));
    let for_credentials = listed.clone();
    let layer = CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin, _| listed(origin)))
        .allow_credentials(AllowCredentials::predicate(move |origin, _| {
            for_credentials(origin)
        }))
        .allow_methods([
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers(REQUEST_HEADERS)
        .expose_headers(EXPOSED_HEADERS)
        .max_age(PREFLIGHT_MAX_AGE);
    router
        .layer(layer)
        .layer(axum::middleware::from_fn(confine))
}

/// Middleware outside the [`CorsLayer`]: an answer that allows no origin allows nothing else.
async fn confine(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if !headers.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN) {
        for name in ALLOWING_HEADERS {
            headers.remove(name);
        }
    }
    response
}
