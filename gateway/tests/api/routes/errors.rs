//! API.md's error rows for what a service answers: every gRPC status (the fake answers it)
//! becomes DRF's status, `detail` or field errors, and headers; NOT_FOUND names the object by
//! the service that answered it; a refused credential is refused on a public route too. That
//! the services answer these statuses when they should is in their own suites, and in the
//! full-stack tests of `crate::errors`.

use std::time::Duration;

use reqwest::{StatusCode, header};
use serde_json::{Value, json};
use service_kit::{grpc::with_reason, validation::FieldErrors};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use super::refusals::expect_header_refused;
use crate::{
    fake_upstream::{
        CREATE_PRODUCT, GET_CURRENT_USER, GET_PRODUCT, GET_USER, LOGIN, VALIDATE_TOKEN, spawn_fake,
    },
    helpers::{expect_case, expect_detail},
};

const NOT_PROVIDED: &str = "Authentication credentials were not provided.";
const SERVER_ERROR: &str = "A server error occurred.";

/// One status a service answers, and what the client gets: status, body, and the values of
/// `Retry-After` and `WWW-Authenticate` (`None`: absent).
struct Row {
    status: Status,
    http: StatusCode,
    body: Value,
    retry_after: Option<&'static str>,
    www_authenticate: Option<&'static str>,
}

fn row(status: Status, http: StatusCode, body: Value) -> Row {
    Row {
        status,
        http,
        body,
        retry_after: None,
        www_authenticate: None,
    }
}

fn detail(text: &str) -> Value {
    json!({ "detail": text })
}

/// A 401 with auth's `reason`, and its DRF message.
fn refused(reason: &str, message: &str) -> Row {
    let status = with_reason(
        Code::Unauthenticated,
        "refused",
        reason,
        proto::reasons::DOMAIN,
    );
    Row {
        www_authenticate: Some("Token"),
        ..row(status, StatusCode::UNAUTHORIZED, detail(message))
    }
}

fn with_retry(code: Code, wait: Duration) -> Status {
    Status::with_error_details(code, "wait", ErrorDetails::with_retry_info(Some(wait)))
}

/// The table, row by row, as inventory's answers to a product read.
fn rows() -> Vec<Row> {
    let mut violations = FieldErrors::new();
    violations.add(
        "price",
        "Ensure that there are no more than 2 decimal places.",
    );
    violations.add("name", "This field may not be blank.");
    violations.add("price", "Ensure this value is greater than or equal to 0.");
    let failed = |reason: &str, domain: &str| {
        with_reason(Code::FailedPrecondition, "failed", reason, domain)
    };
    let bad_request = StatusCode::BAD_REQUEST;
    vec![
        row(
            violations.into(),
            bad_request,
            json!({
                "price": ["Ensure that there are no more than 2 decimal places.",
                          "Ensure this value is greater than or equal to 0."],
                "name": ["This field may not be blank."],
            }),
        ),
        row(
            Status::invalid_argument("no details"),
            bad_request,
            json!({"non_field_errors": ["Invalid input."]}),
        ),
        refused(proto::reasons::CREDENTIALS_MISSING, NOT_PROVIDED),
        refused(proto::reasons::TOKEN_INVALID, "Invalid token."),
        refused(proto::reasons::TOKEN_EXPIRED, "Token has expired."),
        refused(proto::reasons::USER_INACTIVE, "User inactive or deleted."),
        Row {
            www_authenticate: Some("Token"),
            ..row(
                Status::unauthenticated("no reason"),
                StatusCode::UNAUTHORIZED,
                detail("Invalid token."),
            )
        },
        row(
            Status::permission_denied("no"),
            StatusCode::FORBIDDEN,
            detail("You do not have permission to perform this action."),
        ),
        row(
            Status::not_found("gone"),
            StatusCode::NOT_FOUND,
            detail("No Product matches the given query."),
        ),
        row(
            failed(
                proto::reasons::inventory::INSUFFICIENT_STOCK,
                proto::reasons::inventory::DOMAIN,
            ),
            StatusCode::CONFLICT,
            detail("Insufficient stock."),
        ),
        row(
            failed(proto::idempotency::REUSED, proto::idempotency::DOMAIN),
            StatusCode::UNPROCESSABLE_ENTITY,
            detail(service_kit::idempotency::REUSED_MESSAGE),
        ),
        row(
            Status::failed_precondition("no reason"),
            StatusCode::INTERNAL_SERVER_ERROR,
            detail(SERVER_ERROR),
        ),
        Row {
            retry_after: Some("2"),
            ..row(
                with_retry(Code::ResourceExhausted, Duration::from_millis(1_500)),
                StatusCode::TOO_MANY_REQUESTS,
                detail("Request was throttled. Expected available in 2 seconds."),
            )
        },
        Row {
            retry_after: Some("1"),
            ..row(
                Status::resource_exhausted("locked"),
                StatusCode::TOO_MANY_REQUESTS,
                detail("Request was throttled. Expected available in 1 second."),
            )
        },
        row(
            Status::unavailable("down"),
            StatusCode::SERVICE_UNAVAILABLE,
            detail("Service temporarily unavailable, try again later."),
        ),
        Row {
            retry_after: Some("5"),
            ..row(
                with_retry(Code::Unavailable, Duration::from_secs(5)),
                StatusCode::SERVICE_UNAVAILABLE,
                detail("Service temporarily unavailable, try again later."),
            )
        },
        row(
            Status::deadline_exceeded("late"),
            StatusCode::GATEWAY_TIMEOUT,
            detail("The service did not answer in time."),
        ),
        row(
            Status::cancelled("gave up"),
            StatusCode::GATEWAY_TIMEOUT,
            detail("The service did not answer in time."),
        ),
        row(
            Status::internal("SELECT * FROM products failed at 10.0.0.3"),
            StatusCode::INTERNAL_SERVER_ERROR,
            detail(SERVER_ERROR),
        ),
        row(
            Status::unknown("panic"),
            StatusCode::INTERNAL_SERVER_ERROR,
            detail(SERVER_ERROR),
        ),
        row(
            Status::unimplemented("old replica"),
            StatusCode::INTERNAL_SERVER_ERROR,
            detail(SERVER_ERROR),
        ),
        row(
            Status::already_exists("twice"),
            StatusCode::INTERNAL_SERVER_ERROR,
            detail(SERVER_ERROR),
        ),
    ]
}

#[tokio::test]
async fn every_grpc_status_is_drfs_status_body_and_headers() {
    let stack = spawn_fake().await;
    for row in rows() {
        let case = format!(
            "{:?} {:?}",
            row.status.code(),
            row.status.get_error_details()
        );
        stack.fake.answer(GET_PRODUCT, Err(row.status));
        let response = stack.get("/api/products/7/", Some("key-1")).await;
        let header = |name| {
            let value = response.headers().get(name);
            value.map(|value| value.to_str().unwrap().to_owned())
        };
        let retry_after = header(header::RETRY_AFTER);
        let www_authenticate = header(header::WWW_AUTHENTICATE);
        assert_eq!(retry_after.as_deref(), row.retry_after, "{case}");
        assert_eq!(www_authenticate.as_deref(), row.www_authenticate, "{case}");
        expect_case(&case, response, row.http, row.body).await;
    }
    // Every call asked for product 7, presenting the caller's token.
    let calls = stack.fake.requests(GET_PRODUCT);
    assert!(calls.len() >= rows().len());
    for call in calls {
        assert_eq!(call.message.id, 7);
        assert_eq!(call.header("authorization"), Some("Token key-1"));
    }
}

/// The one status whose words depend on the service: auth's NOT_FOUND is about a user.
#[tokio::test]
async fn not_found_objects_and_routes() {
    let stack = spawn_fake().await;
    stack
        .fake
        .answer(GET_USER, Err(Status::not_found("no such user")));
    expect_detail(
        stack.get("/api/products/999/", Some("key-1")).await,
        StatusCode::NOT_FOUND,
        "No Product matches the given query.",
    )
    .await;
    expect_detail(
        stack.get("/users/999/", Some("key-1")).await,
        StatusCode::NOT_FOUND,
        "No User matches the given query.",
    )
    .await;
    assert_eq!(stack.fake.requests(GET_USER)[0].message.id, 999);
    expect_detail(
        stack.get("/api/products/abc/", Some("key-1")).await,
        StatusCode::NOT_FOUND,
        "Not found.",
    )
    .await;
    expect_detail(
        stack.get("/api/nothing-here/", None).await,
        StatusCode::NOT_FOUND,
        "Not found.",
    )
    .await;
    // The id that is no number never reached inventory.
    assert_eq!(stack.fake.requests(GET_PRODUCT).len(), 1);
}

#[tokio::test]
async fn forbidden_without_permission() {
    let stack = spawn_fake().await;
    stack
        .fake
        .answer(CREATE_PRODUCT, Err(Status::permission_denied("a clerk")));
    let response = stack
        .post(
            "/api/products/",
            Some("clerk-key"),
            json!({"name": "x", "price": "1.00"}),
        )
        .await;
    expect_detail(
        response,
        StatusCode::FORBIDDEN,
        "You do not have permission to perform this action.",
    )
    .await;
    let [call] = &stack.fake.requests(CREATE_PRODUCT)[..] else {
        panic!("one CreateProduct call");
    };
    assert_eq!(call.message.name.as_deref(), Some("x"));
    assert_eq!(call.message.price.as_deref(), Some("1.00"));
    assert_eq!(call.header("authorization"), Some("Token clerk-key"));
}

/// A key auth does not know is DRF's "Invalid token.", whatever the scheme's spelling, and on
/// a public route too: there the gateway asks auth itself, and a bad header is no anonymous
/// login.
#[tokio::test]
async fn unauthorized_unknown_key_also_on_public_routes() {
    let stack = spawn_fake().await;
    let unknown = "0123456789abcdef0123456789abcdef01234567";
    expect_header_refused(
        &stack,
        format!("Token {unknown}").as_bytes(),
        "Invalid token.",
    )
    .await;
    expect_header_refused(
        &stack,
        format!("bearer {unknown}").as_bytes(),
        "Invalid token.",
    )
    .await;
    let login = stack
        .post(
            "/api/login/",
            Some(unknown),
            json!({"username": "alice", "password": "Password123"}),
        )
        .await;
    expect_detail(login, StatusCode::UNAUTHORIZED, "Invalid token.").await;
    // The login was checked, not attempted; the `bearer` key went on as a token.
    let [check] = &stack.fake.requests(VALIDATE_TOKEN)[..] else {
        panic!("one ValidateToken call");
    };
    assert_eq!(check.message.key, unknown);
    let me_calls = stack.fake.requests(GET_CURRENT_USER);
    let presented: Vec<_> = me_calls.iter().map(|c| c.header("authorization")).collect();
    let token = format!("Token {unknown}");
    assert_eq!(presented, [Some(token.as_str()), Some(token.as_str())]);
    assert!(stack.fake.requests(LOGIN).is_empty());
}
