//! Password reset and e-mail verification over HTTP, as a dj-rest-auth client drives them:
//! real mail to a real SMTP server (aiosmtpd), the link in the received message followed to
//! completion, and the old credentials refused at once by both verdict caches.

use std::time::{Duration, Instant};

use auth_service::config::recovery::Verification;
use reqwest::StatusCode;
use serde_json::json;
use service_kit::testing::smtp::{SmtpSink, link_in};

use crate::helpers::*;

const RESET_LINK: &str = "http://localhost:8000/password/reset/confirm/";
const VERIFY_LINK: &str = "http://localhost:8000/registration/account-confirm-email/";
const WAIT: Duration = Duration::from_secs(30);

/// A stack whose auth service mails to `sink`, with `verification`.
async fn mailing_stack(sink: &SmtpSink, verification: Verification) -> Stack {
    spawn_stack_with_auth(|config| {
        config.mail.url = sink.url().parse().expect("the sink's URL parses");
        config.recovery.verification = verification;
    })
    .await
}

/// The part of `link` after `prefix`, split at its slashes.
fn parts_of(link: &str, prefix: &str) -> Vec<String> {
    let rest = link.strip_prefix(prefix).expect("the link's prefix");
    rest.trim_end_matches('/')
        .split('/')
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_link_from_real_mail_sets_the_password_and_old_tokens_die_at_once() {
    let Some(sink) = SmtpSink::started(None) else {
        return;
    };
    let stack = mailing_stack(&sink, Verification::None).await;
    let old = stack.clerk("gus").await;
    // Warm both verdict caches with the old token.
    for _ in 0..2 {
        expect_status(stack.get("/api/me/", Some(&old)).await, StatusCode::OK).await;
        expect_status(
            stack.get("/api/products/", Some(&old)).await,
            StatusCode::OK,
        )
        .await;
    }

    let body = json!({ "email": "gus@example.com" });
    let answer = json!({ "detail": "Password reset e-mail has been sent." });
    expect(
        stack.post("/api/password/reset/", None, body).await,
        StatusCode::OK,
        answer,
    )
    .await;
    let message = &sink.wait_for(1, WAIT).await[0];
    let link = link_in(message, RESET_LINK).expect("the message carries the link");
    let [uid, token] = <[String; 2]>::try_from(parts_of(&link, RESET_LINK)).expect("uid/token");

    let confirm = |first: &str, second: &str| json!({ "uid": uid, "token": token, "new_password1": first, "new_password2": second });
    expect(
        stack
            .post(
                "/api/password/reset/confirm/",
                None,
                confirm("Brand-new-9", "Other-new-9"),
            )
            .await,
        StatusCode::BAD_REQUEST,
        json!({ "new_password2": ["The two password fields didn’t match."] }),
    )
    .await;
    expect(
        stack
            .post(
                "/api/password/reset/confirm/",
                None,
                confirm("Brand-new-9", "Brand-new-9"),
            )
            .await,
        StatusCode::OK,
        json!({ "detail": "Password has been reset with the new password." }),
    )
    .await;
    // The moment the confirm returned, both caches refuse the old token.
    let invalid = json!({ "detail": "Invalid token." });
    expect(
        stack.get("/api/me/", Some(&old)).await,
        StatusCode::UNAUTHORIZED,
        invalid.clone(),
    )
    .await;
    expect(
        stack.get("/api/products/", Some(&old)).await,
        StatusCode::UNAUTHORIZED,
        invalid,
    )
    .await;
    let login = json!({ "username": "gus", "password": "Brand-new-9" });
    expect_status(stack.post("/api/login/", None, login).await, StatusCode::OK).await;
    // Used once.
    expect(
        stack
            .post(
                "/api/password/reset/confirm/",
                None,
                confirm("Again-new-9", "Again-new-9"),
            )
            .await,
        StatusCode::BAD_REQUEST,
        json!({ "token": ["Invalid value"] }),
    )
    .await;
    let blank = json!({ "uid": "", "token": "x", "new_password1": "a" });
    expect(
        stack
            .post("/api/password/reset/confirm/", None, blank)
            .await,
        StatusCode::BAD_REQUEST,
        json!({
            "uid": ["This field may not be blank."],
            "new_password2": ["This field is required."],
        }),
    )
    .await;
}

/// "An unknown address gets the same answer in the same time": the medians of alternating
/// requests for a known and an unknown address are within a factor of 1.5 (a security
/// property; load only brings them closer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_address_gets_the_same_answer_in_the_same_time() {
    let Some(sink) = SmtpSink::started(None) else {
        return;
    };
    let stack = mailing_stack(&sink, Verification::None).await;
    stack.clerk("hal").await;
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for _ in 0..9 {
        for (email, times) in [
            ("hal@example.com", &mut known),
            ("nobody@example.com", &mut unknown),
        ] {
            let started = Instant::now();
            let response = stack
                .post("/api/password/reset/", None, json!({ "email": email }))
                .await;
            times.push(started.elapsed().as_secs_f64());
            let answer = json!({ "detail": "Password reset e-mail has been sent." });
            expect(response, StatusCode::OK, answer).await;
        }
    }
    let median = |times: &mut Vec<f64>| {
        times.sort_by(f64::total_cmp);
        times[times.len() / 2]
    };
    let (known, unknown) = (median(&mut known), median(&mut unknown));
    println!("median answer: known address {known:.4} s, unknown {unknown:.4} s");
    assert!(
        known.max(unknown) / known.min(unknown) <= 1.5,
        "median answer for a known address {known:.4} s, for an unknown one {unknown:.4} s"
    );
    assert_eq!(
        sink.wait_for(9, WAIT).await.len(),
        9,
        "only the known address is mailed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mandatory_verification_over_http_as_dj_rest_auth_answers() {
    let Some(sink) = SmtpSink::started(None) else {
        return;
    };
    let stack = mailing_stack(&sink, Verification::Mandatory).await;
    let sign_up = json!({
        "first_name": "Ida", "last_name": "Lee", "email": "ida@example.com",
        "password1": PASSWORD, "password2": PASSWORD,
    });
    expect_status(
        stack.post("/api/users/registration/", None, sign_up).await,
        StatusCode::CREATED,
    )
    .await;
    let message = &sink.wait_for(1, WAIT).await[0];
    let link = link_in(message, VERIFY_LINK).expect("the message carries the link");
    let key = parts_of(&link, VERIFY_LINK).remove(0);

    let login = json!({ "email": "ida@example.com", "password": PASSWORD });
    expect(
        stack.post("/api/users/login/", None, login.clone()).await,
        StatusCode::BAD_REQUEST,
        json!({ "non_field_errors": ["E-mail is not verified."] }),
    )
    .await;
    let resend = json!({ "email": "ida@example.com" });
    expect(
        stack
            .post("/api/registration/resend-email/", None, resend)
            .await,
        StatusCode::OK,
        json!({ "detail": "ok" }),
    )
    .await;
    sink.wait_for(2, WAIT).await;
    let verify = json!({ "key": key });
    expect(
        stack
            .post("/api/registration/verify-email/", None, verify.clone())
            .await,
        StatusCode::OK,
        json!({ "detail": "ok" }),
    )
    .await;
    expect_status(
        stack.post("/api/users/login/", None, login).await,
        StatusCode::OK,
    )
    .await;
    expect(
        stack
            .post("/api/registration/verify-email/", None, verify)
            .await,
        StatusCode::NOT_FOUND,
        json!({ "detail": "Not found." }),
    )
    .await;
}
