//! `/api/schema/` describes every body: each request and response schema is typed (no `{}`),
//! each refusal is one of the error components, and what every operation really answers on the
//! fake, called with a body and without, conforms to its document (a status it lists, a body
//! its schema admits). The docs page (`/api/docs/`) is served with its files and names no
//! other host.

use proto::auth::v1::{
    BeginTotpEnrolmentResponse, ChangePasswordResponse, ConfirmTotpEnrolmentResponse,
    DeleteUserResponse, DisableTotpResponse, IssuedCredential, ListUsersResponse, LoginResponse,
    RefreshTokenResponse, RegisterResponse, ResetSecondFactorResponse, RevokeAllTokensResponse,
    RevokeTokenResponse, Role,
};
use proto::inventory::v1::DeleteProductResponse;
use reqwest::{Method, StatusCode, header};
use serde_json::{Map, Value, json};

use super::conformance::{Document, example};
use crate::{
    fake_upstream::{
        ADJUST_STOCK, BEGIN_TOTP_ENROLMENT, CHANGE_PASSWORD, COMPLETE_MFA_LOGIN,
        CONFIRM_TOTP_ENROLMENT, CREATE_PRODUCT, CREATE_USER, DELETE_PRODUCT, DELETE_USER,
        DISABLE_TOTP, FakeStack, GET_USER, LIST_USERS, LOGIN, REFRESH_TOKEN, REGISTER,
        RESET_SECOND_FACTOR, REVOKE_ALL_TOKENS, REVOKE_TOKEN, UPDATE_PRODUCT, UPDATE_USER, product,
        spawn_fake, user,
    },
    helpers::expect_status,
};

const ERRORS: [&str; 3] = [
    "#/components/schemas/Detail",
    "#/components/schemas/FieldErrors",
    "#/components/schemas/InvalidCredentials",
];

async fn document(stack: &FakeStack) -> Document {
    Document(expect_status(stack.get("/api/schema/", None).await, StatusCode::OK).await)
}

#[tokio::test]
async fn every_body_and_answer_is_typed_and_every_refusal_is_an_error_component() {
    let stack = spawn_fake().await;
    let document = document(&stack).await;
    let mut problems = Vec::new();
    for (path, method, operation) in document.operations() {
        let at = format!("{method} {path}");
        if let Some(body) = operation.get("requestBody") {
            for media_type in ["application/json", "application/x-www-form-urlencoded"] {
                let schema = &body["content"][media_type]["schema"];
                document.typed(schema, &format!("{at} body ({media_type})"), &mut problems);
                if schema["properties"].as_object().is_none_or(Map::is_empty) {
                    problems.push(format!("{at}: a body without fields ({media_type})"));
                }
            }
        }
        let responses = operation["responses"].as_object().unwrap();
        if !responses.keys().any(|status| status.starts_with('2')) {
            problems.push(format!("{at}: no success"));
        }
        for (status, response) in responses {
            let at = format!("{at} → {status}");
            let Some(content) = response["content"].as_object() else {
                if status != "204" {
                    problems.push(format!("{at}: no content"));
                }
                continue;
            };
            for (media_type, content) in content {
                document.typed(
                    &content["schema"],
                    &format!("{at} {media_type}"),
                    &mut problems,
                );
            }
            if status.starts_with(['4', '5']) && path != "/readyz/" {
                let schema = &content["application/json"]["schema"];
                let alternatives = schema["oneOf"].as_array().cloned();
                for one in alternatives.unwrap_or_else(|| vec![schema.clone()]) {
                    if !ERRORS.contains(&one["$ref"].as_str().unwrap_or_default()) {
                        problems.push(format!("{at}: {one} is no error component"));
                    }
                }
            }
        }
        let refuses = |status: &str| responses.contains_key(status);
        if operation.get("security").is_some() && !(refuses("401") && refuses("403")) {
            problems.push(format!("{at}: authenticated, without its 401 and 403"));
        }
        if operation.get("requestBody").is_some() && !(refuses("400") && refuses("415")) {
            problems.push(format!("{at}: a body, without its 400 and 415"));
        }
        if path.contains("{id}") && !refuses("404") {
            problems.push(format!("{at}: an id, without its 404"));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    // The shapes are components, each written once.
    let components = document.0["components"]["schemas"].as_object().unwrap();
    for name in [
        "Detail",
        "FieldErrors",
        "InvalidCredentials",
        "Product",
        "User",
    ] {
        assert!(components.contains_key(name), "{name} is a component");
    }
}

/// The fake answering every call with success, and `admin-key` an admin's token.
fn succeeding() -> impl FnOnce(&FakeStack) {
    |stack| {
        let fake = &stack.fake;
        let mut admin = user(1, "admin", Role::Admin);
        admin.is_staff = true;
        admin.is_superuser = true;
        fake.add_user("admin-key", admin.clone());
        fake.set_products(vec![product(1, "Bolt"), product(2, "Nut")]);
        let token = Some(IssuedCredential {
            key: "0123456789abcdef0123456789abcdef01234567".to_owned(),
            ..IssuedCredential::default()
        });
        fake.answer(
            REGISTER,
            Ok(RegisterResponse {
                user: Some(admin.clone()),
                token: token.clone(),
            }),
        );
        fake.answer(
            LOGIN,
            Ok(LoginResponse {
                token: token.clone(),
                session: token.clone(),
                user: Some(admin.clone()),
                ..LoginResponse::default()
            }),
        );
        fake.answer(
            COMPLETE_MFA_LOGIN,
            Ok(LoginResponse {
                token: token.clone(),
                user: Some(admin.clone()),
                route: Some("/api/login/".to_owned()),
                ..LoginResponse::default()
            }),
        );
        fake.answer(
            BEGIN_TOTP_ENROLMENT,
            Ok(BeginTotpEnrolmentResponse {
                secret: "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ".to_owned(),
                otpauth_url:
                    "otpauth://totp/Inventory:admin?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
                        .to_owned(),
            }),
        );
        fake.answer(
            CONFIRM_TOTP_ENROLMENT,
            Ok(ConfirmTotpEnrolmentResponse {
                recovery_codes: vec!["abcde-fghij".to_owned()],
            }),
        );
        fake.answer(DISABLE_TOTP, Ok(DisableTotpResponse {}));
        fake.answer(RESET_SECOND_FACTOR, Ok(ResetSecondFactorResponse {}));
        fake.answer(REFRESH_TOKEN, Ok(RefreshTokenResponse { token }));
        fake.answer(REVOKE_TOKEN, Ok(RevokeTokenResponse {}));
        fake.answer(
            REVOKE_ALL_TOKENS,
            Ok(RevokeAllTokensResponse { revoked: 2 }),
        );
        fake.answer(CHANGE_PASSWORD, Ok(ChangePasswordResponse {}));
        fake.answer(CREATE_USER, Ok(admin.clone()));
        fake.answer(GET_USER, Ok(admin.clone()));
        fake.answer(UPDATE_USER, Ok(admin.clone()));
        fake.answer(DELETE_USER, Ok(DeleteUserResponse {}));
        let users = ListUsersResponse {
            users: vec![admin, user(2, "bob", Role::Clerk)],
            total_count: 2,
        };
        fake.answer(LIST_USERS, Ok(users));
        fake.answer(CREATE_PRODUCT, Ok(product(3, "Washer")));
        fake.answer(UPDATE_PRODUCT, Ok(product(1, "Bolt")));
        fake.answer(ADJUST_STOCK, Ok(product(1, "Bolt")));
        fake.answer(DELETE_PRODUCT, Ok(DeleteProductResponse {}));
    }
}

/// Every operation, called as an admin with a body of its documented fields (as JSON, then as
/// a form; a list paged too) and called anonymously with no body: each answer's status is one
/// the document lists for it, and its body one the document's schema admits.
#[tokio::test]
async fn every_answer_conforms_to_the_document() {
    let stack = spawn_fake().await;
    succeeding()(&stack);
    let document = document(&stack).await;
    let mut problems = Vec::new();
    let mut successes = 0;
    for (path, method, operation) in document.operations() {
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let url = document.example_path(path, operation);
        let fields = operation["requestBody"]["content"]["application/json"]["schema"].clone();
        let body = (!fields.is_null()).then(|| example(&document.resolve(&fields)));
        let mut calls = vec![(url.clone(), true, body.clone(), false)];
        if body.is_some() {
            calls.push((url.clone(), true, body, true));
        }
        if operation["responses"]["200"]["content"]["application/json"]["schema"]["oneOf"]
            .is_array()
        {
            calls.push((format!("{url}?limit=1&offset=1"), true, None, false));
        }
        calls.push((url, false, None, false));
        for (url, admin, body, as_form) in calls {
            let mut request = stack.request(method.clone(), &url);
            if admin {
                request = request.header(header::AUTHORIZATION, "Token admin-key");
            }
            request = match body {
                Some(Value::Object(fields)) if as_form => {
                    let pairs: Vec<(String, String)> = fields
                        .into_iter()
                        .map(|(name, value)| match value {
                            Value::String(text) => (name, text),
                            other => (name, other.to_string()),
                        })
                        .collect();
                    request.form(&pairs)
                }
                Some(body) => request.json(&body),
                None => request,
            };
            let response = request.send().await.unwrap();
            let status = response.status();
            successes += usize::from(admin && status.is_success());
            let content_type = response
                .headers()
                .get(header::CONTENT_TYPE)
                .map(|value| value.to_str().unwrap().to_owned());
            let text = response.text().await.unwrap();
            let at = format!("{method} {url} (admin: {admin}, form: {as_form}) → {status}");
            if let Err(why) = document.admits(operation, status, content_type.as_deref(), &text) {
                problems.push(format!("{at}: {why}"));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    // The admin's calls reached the fake's successes, not only refusals.
    assert!(successes >= 40, "{successes} successes");
}

/// `/api/docs/` is a page loading its files from the gateway alone, which serves them; an
/// unknown file is the usual 404.
#[tokio::test]
async fn the_docs_page_and_its_files_are_served_from_the_binary() {
    let stack = spawn_fake().await;
    let page = stack.get("/api/docs", None).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(
        page.headers()[header::CONTENT_TYPE],
        "text/html; charset=utf-8"
    );
    let policy = page.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(policy.starts_with("default-src 'self';"), "{policy}");
    let html = page.text().await.unwrap();
    assert!(!html.contains("//"), "the page names no other host: {html}");
    for (file, media_type, holds) in [
        ("swagger-ui-bundle.js", "text/javascript", "SwaggerUIBundle"),
        ("swagger-ui.css", "text/css", ".swagger-ui"),
        ("swagger-initializer.js", "text/javascript", "/api/schema/"),
    ] {
        assert!(
            html.contains(&format!("/api/docs/{file}")),
            "{file} is loaded"
        );
        let served = stack.get(&format!("/api/docs/{file}"), None).await;
        assert_eq!(served.status(), StatusCode::OK, "{file}");
        let served_type = served.headers()[header::CONTENT_TYPE].to_str().unwrap();
        assert!(served_type.starts_with(media_type), "{file}: {served_type}");
        assert!(served.text().await.unwrap().contains(holds), "{file}");
    }
    let initializer = stack.get("/api/docs/swagger-initializer.js", None).await;
    assert!(
        initializer
            .text()
            .await
            .unwrap()
            .contains("validatorUrl: null")
    );
    let missing = stack.get("/api/docs/other.js", None).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        missing.json::<Value>().await.unwrap(),
        json!({"detail": "Not found."})
    );
}
