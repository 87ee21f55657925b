//! Password reset and e-mail verification through real mail: the service sends over SMTP to
//! a real server (`service_kit::testing::smtp`, aiosmtpd), and each test follows the link in
//! the message it received.

use std::time::Duration;

use auth_service::{Config, config::recovery::Verification};
use proto::{auth::v1 as pb, reasons};
use service_kit::testing::{
    TestDatabase,
    smtp::{SmtpSink, link_in},
};
use sqlx::Connection;
use tonic::Code;

use crate::helpers::*;

service_kit::on_both_backends!(
    a_mailed_reset_link_sets_the_password_once_and_revokes_every_credential,
    reset_tokens_expire_die_with_another_password_change_and_cannot_be_forged,
    an_unknown_address_is_answered_alike_and_mailed_nothing,
    mail_waits_out_an_outage_and_a_restart_of_the_service,
    mandatory_verification_refuses_login_until_the_mailed_key_is_used,
    with_verification_off_a_sign_up_sends_nothing_and_logs_in,
    a_changed_email_is_unverified_until_its_own_key_is_used,
);

const RESET_LINK: &str = "http://localhost:8000/password/reset/confirm/";
const VERIFY_LINK: &str = "http://localhost:8000/registration/account-confirm-email/";
const WAIT: Duration = Duration::from_secs(30);

/// The test configuration, mailing to `sink`.
fn mailing(db: &TestDatabase, sink: &SmtpSink) -> Config {
    let mut config = Config::for_tests(db.url());
    config.mail.url = sink.url().parse().expect("the sink's URL parses");
    config
}

async fn sign_up(app: &TestApp, username: &str, email: &str) -> pb::User {
    let request = pb::RegisterRequest {
        email: Some(email.to_owned()),
        ..registration(username)
    };
    app.client()
        .register(request)
        .await
        .expect("registration succeeds")
        .into_inner()
        .user
        .expect("a user")
}

async fn request_reset(app: &TestApp, email: &str) {
    app.client()
        .request_password_reset(pb::RequestPasswordResetRequest {
            email: Some(email.to_owned()),
        })
        .await
        .expect("a reset request is answered OK");
}

/// The `uid` and `token` of the reset link in `message`.
fn uid_and_token(message: &str) -> (String, String) {
    let link = link_in(message, RESET_LINK).expect("the message carries the reset link");
    let rest = link.strip_prefix(RESET_LINK).expect("the prefix");
    let mut parts = rest.trim_end_matches('/').split('/');
    let (uid, token) = (parts.next().expect("a uid"), parts.next().expect("a token"));
    (uid.to_owned(), token.to_owned())
}

async fn confirm(
    app: &TestApp,
    uid: &str,
    token: &str,
    password: &str,
) -> Result<pb::ConfirmPasswordResetResponse, tonic::Status> {
    app.client()
        .confirm_password_reset(pb::ConfirmPasswordResetRequest {
            uid: Some(uid.to_owned()),
            token: Some(token.to_owned()),
            new_password: Some(password.to_owned()),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn verify(
    app: &TestApp,
    key: String,
) -> Result<tonic::Response<pb::VerifyEmailResponse>, tonic::Status> {
    let request = pb::VerifyEmailRequest { key: Some(key) };
    app.client().verify_email(request).await
}

async fn a_mailed_reset_link_sets_the_password_once_and_revokes_every_credential(db: TestDatabase) {
    let Some(sink) = SmtpSink::started(Some(("mailer", "s3cret"))) else {
        return;
    };
    let app = spawn_app_with(mailing(&db, &sink)).await;
    sign_up(&app, "ann", "ann@example.com").await;
    let token = app.token_for("ann").await;
    let session = app
        .session_login("ann")
        .await
        .session
        .expect("a session")
        .key;

    // Typed in another case: the address matches ignoring case, and the mail goes to the
    // address as stored.
    request_reset(&app, "ANN@Example.COM").await;
    let messages = sink.wait_for(1, WAIT).await;
    assert!(
        messages[0].contains("To: ann@example.com"),
        "{}",
        messages[0]
    );
    assert!(
        messages[0].contains("Subject: Password reset on example.com"),
        "{}",
        messages[0]
    );
    let (uid, key) = uid_and_token(&messages[0]);

    confirm(&app, &uid, &key, "Brand-new-pass-9")
        .await
        .expect("the link sets the password");
    for old in [&token, &session] {
        assert!(
            app.validate(old).await.is_err(),
            "an old credential still works"
        );
    }
    assert!(app.login("ann", PASSWORD).await.is_err());
    assert!(app.login("ann", "Brand-new-pass-9").await.is_ok());
    // Once only.
    let again = confirm(&app, &uid, &key, "Another-pass-9").await;
    assert_eq!(field_errors(again), [pair("token", "Invalid value")]);
    // Nothing of the link is kept in the clear: the outbox dropped the body once sent.
    let mut conn = sqlx::AnyConnection::connect(db.url())
        .await
        .expect("connects");
    let bodies: Vec<String> = sqlx::query_scalar("SELECT body FROM mail_outbox")
        .fetch_all(&mut conn)
        .await
        .expect("reads the outbox");
    assert!(bodies.iter().all(|body| !body.contains(&key)), "{bodies:?}");
}

async fn reset_tokens_expire_die_with_another_password_change_and_cannot_be_forged(
    db: TestDatabase,
) {
    let Some(sink) = SmtpSink::started(None) else {
        return;
    };
    let app = spawn_app_with(mailing(&db, &sink)).await;
    sign_up(&app, "bea", "bea@example.com").await;

    request_reset(&app, "bea@example.com").await;
    let (uid, expired) = uid_and_token(&sink.wait_for(1, WAIT).await[0]);
    app.advance(Duration::from_secs(3 * 86_400 + 1));
    let refused = confirm(&app, &uid, &expired, "Brand-new-pass-9").await;
    assert_eq!(field_errors(refused), [pair("token", "Invalid value")]);

    request_reset(&app, "bea@example.com").await;
    let (_, outlived) = uid_and_token(&sink.wait_for(2, WAIT).await[1]);
    let key = app.token_for("bea").await;
    app.client()
        .change_password(authed(
            &key,
            pb::ChangePasswordRequest {
                old_password: Some(PASSWORD.to_owned()),
                new_password: Some("Changed-pass-9".to_owned()),
            },
        ))
        .await
        .expect("the password changes");
    let refused = confirm(&app, &uid, &outlived, "Brand-new-pass-9").await;
    assert_eq!(field_errors(refused), [pair("token", "Invalid value")]);

    let forged = "0123456789abcdef0123456789abcdef01234567";
    let refused = confirm(&app, &uid, forged, "Brand-new-pass-9").await;
    assert_eq!(field_errors(refused), [pair("token", "Invalid value")]);
    for bad_uid in ["OTk5OTk", "not base64!", ""] {
        let refused = confirm(&app, bad_uid, forged, "Brand-new-pass-9").await;
        assert_eq!(
            field_errors(refused),
            [pair("uid", "Invalid value")],
            "{bad_uid}"
        );
    }
    // A good link still has the password judged, after the link.
    request_reset(&app, "bea@example.com").await;
    let (_, fresh) = uid_and_token(&sink.wait_for(3, WAIT).await[2]);
    let weak = confirm(&app, &uid, &fresh, "short").await;
    assert!(
        field_errors(weak)
            .iter()
            .all(|(field, _)| field == "new_password"),
        "a weak password is the new password's error"
    );
    assert!(app.login("bea", "Changed-pass-9").await.is_ok());
}

async fn an_unknown_address_is_answered_alike_and_mailed_nothing(db: TestDatabase) {
    let Some(sink) = SmtpSink::started(None) else {
        return;
    };
    let app = spawn_app_with(mailing(&db, &sink)).await;
    sign_up(&app, "cal", "cal@example.com").await;
    request_reset(&app, "nobody@example.com").await;
    request_reset(&app, "cal@example.com").await;
    // The known address's message arrives; the unknown one's never existed.
    let messages = sink.wait_for(1, WAIT).await;
    assert_eq!(messages.len(), 1);
    assert!(messages[0].contains("To: cal@example.com"));
    let malformed = app
        .client()
        .request_password_reset(pb::RequestPasswordResetRequest {
            email: Some("not-an-address".to_owned()),
        })
        .await;
    assert_eq!(field_errors(malformed).len(), 1);
}

async fn mail_waits_out_an_outage_and_a_restart_of_the_service(db: TestDatabase) {
    let Some(mut sink) = SmtpSink::reserve(None) else {
        return;
    };
    let config = mailing(&db, &sink);
    let app = spawn_app_with(config.clone()).await;
    sign_up(&app, "dee", "dee@example.com").await;
    // The mail server is down: the request is still answered.
    request_reset(&app, "dee@example.com").await;
    let mut conn = sqlx::AnyConnection::connect(db.url())
        .await
        .expect("connects");
    let attempted = "SELECT COUNT(*) FROM mail_outbox WHERE attempts > 0 AND sent_at IS NULL";
    for _ in 0..600 {
        let failed: i64 = sqlx::query_scalar(attempted)
            .fetch_one(&mut conn)
            .await
            .expect("reads the outbox");
        if failed == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.stop().await;
    sink.start();
    assert!(
        sink.messages().is_empty(),
        "nothing was sent while the server was down"
    );

    // A new process on the same database delivers what the old one could not.
    let app = spawn_app_with(config).await;
    let messages = sink.wait_for(1, WAIT).await;
    let (uid, key) = uid_and_token(&messages[0]);
    confirm(&app, &uid, &key, "Brand-new-pass-9")
        .await
        .expect("the delayed link works");
}

async fn mandatory_verification_refuses_login_until_the_mailed_key_is_used(db: TestDatabase) {
    let Some(sink) = SmtpSink::started(None) else {
        return;
    };
    let mut config = mailing(&db, &sink);
    config.recovery.verification = Verification::Mandatory;
    let app = spawn_app_with(config).await;
    sign_up(&app, "eve", "eve@example.com").await;
    let message = &sink.wait_for(1, WAIT).await[0];
    assert!(
        message.contains("Please Confirm Your Email Address"),
        "{message}"
    );
    let link = link_in(message, VERIFY_LINK).expect("the message carries the link");
    let key = link
        .strip_prefix(VERIFY_LINK)
        .expect("prefix")
        .trim_end_matches('/')
        .to_owned();

    assert_rejected(
        app.login("eve", PASSWORD).await,
        Code::FailedPrecondition,
        reasons::EMAIL_NOT_VERIFIED,
    );
    // Refused only after the right password: a wrong one is a wrong one.
    assert_rejected(
        app.login("eve", "Wrong-guess-1").await,
        Code::Unauthenticated,
        reasons::INVALID_CREDENTIALS,
    );
    // A resend mails a second, also good key.
    app.client()
        .resend_email_verification(pb::ResendEmailVerificationRequest {
            email: Some("EVE@example.com".to_owned()),
        })
        .await
        .expect("resend is answered OK");
    sink.wait_for(2, WAIT).await;

    verify(&app, key.clone()).await.expect("the key verifies");
    assert!(app.login("eve", PASSWORD).await.is_ok());
    assert_rejected(
        verify(&app, key).await,
        Code::NotFound,
        reasons::VERIFICATION_KEY_INVALID,
    );
    assert_rejected(
        verify(&app, "0123456789abcdef0123456789abcdef01234567".to_owned()).await,
        Code::NotFound,
        reasons::VERIFICATION_KEY_INVALID,
    );
}

/// The key mailed to the verification URL in `message`.
fn key_in(message: &str) -> String {
    let link = link_in(message, VERIFY_LINK).expect("the message carries the link");
    let key = link.strip_prefix(VERIFY_LINK).expect("prefix");
    key.trim_end_matches('/').to_owned()
}

async fn a_changed_email_is_unverified_until_its_own_key_is_used(db: TestDatabase) {
    let Some(sink) = SmtpSink::started(None) else {
        return;
    };
    let mut config = mailing(&db, &sink);
    config.recovery.verification = Verification::Mandatory;
    let app = spawn_app_with(config).await;
    let user = sign_up(&app, "gil", "gil@example.com").await;
    // Unused, this key was for the old address: it verifies nothing once the email changed.
    let old_key = key_in(&sink.wait_for(1, WAIT).await[0]);
    let admin = app.admin_token().await;
    let change = |email: &str| pb::UpdateUserRequest {
        id: user.id,
        email: Some(email.to_owned()),
        ..Default::default()
    };
    app.client()
        .update_user(authed(&admin, change("gil@new.example.com")))
        .await
        .expect("the admin changes the email");
    let messages = sink.wait_for(2, WAIT).await;
    assert!(
        messages[1].contains("To: gil@new.example.com"),
        "{}",
        messages[1]
    );
    assert_rejected(
        verify(&app, old_key).await,
        Code::NotFound,
        reasons::VERIFICATION_KEY_INVALID,
    );
    assert_rejected(
        app.login("gil", PASSWORD).await,
        Code::FailedPrecondition,
        reasons::EMAIL_NOT_VERIFIED,
    );
    verify(&app, key_in(&messages[1]))
        .await
        .expect("the new key verifies");
    assert!(app.login("gil", PASSWORD).await.is_ok());
    // The same address in another case is no new email: nothing more is sent or unverified.
    app.client()
        .update_user(authed(&admin, change("GIL@new.example.com")))
        .await
        .expect("the admin rewrites the email");
    assert!(app.login("gil", PASSWORD).await.is_ok());
}

async fn with_verification_off_a_sign_up_sends_nothing_and_logs_in(db: TestDatabase) {
    let Some(sink) = SmtpSink::started(None) else {
        return;
    };
    let app = spawn_app_with(mailing(&db, &sink)).await;
    sign_up(&app, "fay", "fay@example.com").await;
    assert!(app.login("fay", PASSWORD).await.is_ok());
    // A reset request as a marker: its message is the first and only one.
    request_reset(&app, "fay@example.com").await;
    let messages = sink.wait_for(1, WAIT).await;
    assert_eq!(messages.len(), 1);
    assert!(messages[0].contains("Password reset"), "{}", messages[0]);
}

/// Replicas on one PostgreSQL database share the outbox: each message is claimed by one of
/// them and sent once, though both senders work on the same rows at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_postgres_send_each_message_once() {
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    let Some(mut sink) = SmtpSink::reserve(None) else {
        return;
    };
    let config = mailing(&db, &sink);
    let (first, second) = (
        spawn_app_with(config.clone()).await,
        spawn_app_with(config).await,
    );
    const USERS: usize = 24;
    for i in 0..USERS {
        sign_up(&first, &format!("u{i}"), &format!("u{i}@example.com")).await;
    }
    // Enqueued while the server is down, so that both senders find all of them due at once
    // when it comes back.
    for i in 0..USERS {
        let replica = if i % 2 == 0 { &first } else { &second };
        request_reset(replica, &format!("u{i}@example.com")).await;
    }
    sink.start();
    let mut conn = sqlx::AnyConnection::connect(db.url())
        .await
        .expect("connects");
    let unsent = "SELECT COUNT(*) FROM mail_outbox WHERE sent_at IS NULL";
    for _ in 0..1200 {
        let left: i64 = sqlx::query_scalar(unsent)
            .fetch_one(&mut conn)
            .await
            .expect("reads the outbox");
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let messages = sink.wait_for(USERS, WAIT).await;
    let mut recipients: Vec<&str> = messages
        .iter()
        .filter_map(|message| message.lines().find(|line| line.starts_with("To: ")))
        .collect();
    recipients.sort_unstable();
    recipients.dedup();
    assert_eq!(
        (messages.len(), recipients.len()),
        (USERS, USERS),
        "every message once"
    );
}
