//! `/api/docs/`: a browsable page of the OpenAPI document (Swagger UI, showing `/api/schema/`),
//! and the files it loads. Every file is built into the binary (Swagger UI's are vendored in
//! `gateway/assets/swagger-ui/`, the page and its initializer are `gateway/assets/docs/`), and
//! the page names no other host, so it works with no network but the gateway's.

use axum::{
    extract::Path,
    response::{IntoResponse, Response},
};
use http::{HeaderValue, Method, header};

use super::Endpoint;
use crate::{
    error::{ApiError, Missing},
    openapi::{Content, Operation, Refusal, Schema},
};

/// A file the page loads: its name under `/api/docs/`, its media type and its bytes.
struct Asset {
    name: &'static str,
    media_type: &'static str,
    bytes: &'static [u8],
}

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

const ASSETS: [Asset; 3] = [
    Asset {
        name: "swagger-ui-bundle.js",
        media_type: JAVASCRIPT,
        bytes: include_bytes!("../../assets/swagger-ui/swagger-ui-bundle.js"),
    },
    Asset {
        name: "swagger-ui.css",
        media_type: CSS,
        bytes: include_bytes!("../../assets/swagger-ui/swagger-ui.css"),
    },
    Asset {
        name: "swagger-initializer.js",
        media_type: JAVASCRIPT,
        bytes: include_bytes!("../../assets/docs/swagger-initializer.js"),
    },
];

const PAGE: &str = include_str!("../../assets/docs/index.html");

/// What the page may load: its own files, the document, and images Swagger UI draws inline. A
/// browser refuses anything else, so the page cannot come to depend on another host unseen.
const POLICY: &str = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
    object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

pub fn endpoints() -> Vec<Endpoint> {
    let names = ASSETS.map(|asset| asset.name);
    vec![
        Endpoint::new(
            Operation::new(
                Method::GET,
                "/api/docs/",
                "This API, browsable (Swagger UI)",
                200,
                Content::Text(&["text/html"]),
            )
            .local(),
            page,
        ),
        Endpoint::new(
            Operation::new(
                Method::GET,
                "/api/docs/{file}/",
                "A file the docs page loads (served with or without the trailing slash)",
                200,
                Content::Text(&["text/javascript", "text/css"]),
            )
            .parameter("file", Schema::one_of_strings(names))
            .also(404, "No such file", Content::Json(Refusal::Detail.schema()))
            .local(),
            asset,
        ),
    ]
}

async fn page() -> Response {
    let mut response = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE).into_response();
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(POLICY),
    );
    response
}

async fn asset(Path(name): Path<String>) -> Result<Response, ApiError> {
    let asset = ASSETS
        .iter()
        .find(|asset| asset.name == name)
        .ok_or(ApiError::NotFound(Missing::Route))?;
    Ok((
        [
            (header::CONTENT_TYPE, asset.media_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        asset.bytes,
    )
        .into_response())
}
