//! The audit trail of the account flows: password reset and e-mail verification (through a
//! real SMTP server) and the second factor. Each event is recorded with its change, says who
//! and on whom, and holds none of the secrets the flows handled.

use auth_service::{Config, config::recovery::Verification};
use proto::auth::v1 as pb;
use service_kit::testing::{
    TestDatabase,
    smtp::{SmtpSink, link_in},
};
use std::time::Duration;

use crate::{
    audit::{detail, trail},
    helpers::*,
    second_factor::{code, disable, enrolled},
};

service_kit::on_both_backends!(resets_verifications_and_second_factors_are_in_the_trail);

const WAIT: Duration = Duration::from_secs(30);

/// The path segments of the link in `message` after `prefix`.
fn segments(message: &str, prefix: &str) -> Vec<String> {
    let link = link_in(message, prefix).expect("the message carries its link");
    let rest = link
        .strip_prefix(prefix)
        .expect("the prefix")
        .trim_end_matches('/');
    rest.split('/').map(str::to_owned).collect()
}

/// The events of type `kind`, oldest first.
fn of_kind<'a>(events: &'a [pb::AuditEvent], kind: &str) -> Vec<&'a pb::AuditEvent> {
    events
        .iter()
        .rev()
        .filter(|event| event.r#type == kind)
        .collect()
}

async fn resets_verifications_and_second_factors_are_in_the_trail(db: TestDatabase) {
    let Some(sink) = SmtpSink::started(None) else {
        return;
    };
    let mut config = Config::for_tests(db.url());
    config.mail.url = sink.url().parse().expect("the sink's URL parses");
    config.recovery.verification = Verification::Optional;
    let app = spawn_app_with(config).await;
    let mut client = app.client();
    let register = pb::RegisterRequest {
        email: Some("ivy@example.com".to_owned()),
        ..registration("ivy")
    };
    let ivy = client
        .register(register)
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap();
    let key = segments(
        &sink.wait_for(1, WAIT).await[0],
        "http://localhost:8000/registration/account-confirm-email/",
    )
    .remove(0);
    client
        .verify_email(pb::VerifyEmailRequest {
            key: Some(key.clone()),
        })
        .await
        .expect("the key verifies");
    for email in ["ivy@example.com", "nobody@example.com"] {
        let request = pb::RequestPasswordResetRequest {
            email: Some(email.to_owned()),
        };
        client
            .request_password_reset(request)
            .await
            .expect("answered OK");
    }
    let link = segments(
        &sink.wait_for(2, WAIT).await[1],
        "http://localhost:8000/password/reset/confirm/",
    );
    let confirm = pb::ConfirmPasswordResetRequest {
        uid: Some(link[0].clone()),
        token: Some(link[1].clone()),
        new_password: Some("Brand-new-pass-9".to_owned()),
    };
    client
        .confirm_password_reset(confirm)
        .await
        .expect("the reset works");

    let jon = enrolled(&app, "jon").await;
    let by_code = pb::DisableTotpRequest {
        code: Some(code(&app, &jon.secret)),
        password: None,
    };
    disable(&app, &jon.token, by_code)
        .await
        .expect("disabled by a code");
    let kay = enrolled(&app, "kay").await;
    let wrong = pb::DisableTotpRequest {
        code: Some("000000".to_owned()),
        password: None,
    };
    assert!(
        disable(&app, &kay.token, wrong).await.is_err(),
        "a wrong code"
    );
    let admin = app.admin_token().await;
    client
        .reset_second_factor(authed(
            &admin,
            pb::ResetSecondFactorRequest { id: kay.user.id },
        ))
        .await
        .expect("the admin resets kay's factor");

    let events = trail(&mut client, &admin).await;
    let requested = of_kind(&events, "password.reset_requested");
    let mailed: Vec<(Option<i64>, bool)> = requested
        .iter()
        .map(|event| (event.target_id, detail(event)["mailed"] == true))
        .collect();
    assert_eq!(
        mailed,
        [(Some(ivy.id), true), (None, false)],
        "{requested:#?}"
    );
    let who = |kind: &str| -> Vec<(Option<i64>, Option<i64>, String)> {
        of_kind(&events, kind)
            .iter()
            .map(|event| (event.actor_id, event.target_id, event.outcome.clone()))
            .collect()
    };
    let ok = |actor: i64, target: i64| (Some(actor), Some(target), "success".to_owned());
    assert_eq!(who("password.reset"), [ok(ivy.id, ivy.id)]);
    assert_eq!(who("email.verified"), [ok(ivy.id, ivy.id)]);
    assert_eq!(
        who("mfa.enrolled"),
        [ok(jon.user.id, jon.user.id), ok(kay.user.id, kay.user.id)]
    );
    assert_eq!(who("mfa.used"), [ok(jon.user.id, jon.user.id)]);
    assert_eq!(who("mfa.disabled"), [ok(jon.user.id, jon.user.id)]);
    let reset = of_kind(&events, "mfa.reset");
    assert_eq!(reset.len(), 1, "{reset:#?}");
    assert_eq!(reset[0].target_id, Some(kay.user.id));
    assert!(reset[0].actor_id.is_some_and(|admin| admin != kay.user.id));
    let failed = of_kind(&events, "mfa.failed");
    assert!(
        failed
            .iter()
            .any(|event| event.target_id == Some(kay.user.id) && event.outcome == "failure"),
        "{failed:#?}"
    );
    // No secret of any flow in the trail.
    let whole = format!("{events:?}");
    let secrets = [
        key.as_str(),
        link[1].as_str(),
        "Brand-new-pass-9",
        jon.secret.as_str(),
    ];
    let codes = jon
        .recovery_codes
        .iter()
        .chain(&kay.recovery_codes)
        .map(String::as_str);
    for secret in secrets.into_iter().chain(codes) {
        assert!(!whole.contains(secret), "{secret} is in the trail");
    }
}
