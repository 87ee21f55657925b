//! Mail over TLS to a real server (aiosmtpd): STARTTLS before the login (the server refuses a
//! login in the clear), and TLS from the first byte (`smtps://`); the server's certificate is
//! checked, against `EMAIL_CA_FILE`'s CA for one a private CA signed.

use std::time::Duration;

use auth_service::Config;
use proto::auth::v1 as pb;
use service_kit::testing::{
    TestDatabase,
    smtp::{SinkTls, SmtpSink},
};
use sqlx::Connection;

use crate::helpers::*;

const WAIT: Duration = Duration::from_secs(30);

/// A reset requested for a user with an email, through a service mailing to `sink` with
/// `trust` as its `EMAIL_CA_FILE`.
async fn reset_mailed(db: &TestDatabase, sink: &SmtpSink, trust: Option<Vec<u8>>) -> TestApp {
    let mut config = Config::for_tests(db.url());
    config.mail.url = sink.url().parse().expect("the sink's URL parses");
    config.mail.ca_pem = trust;
    let app = spawn_app_with(config).await;
    let request = pb::RegisterRequest {
        email: Some("tls@example.com".to_owned()),
        ..registration("tls")
    };
    app.client().register(request).await.expect("registered");
    let reset = pb::RequestPasswordResetRequest {
        email: Some("tls@example.com".to_owned()),
    };
    app.client()
        .request_password_reset(reset)
        .await
        .expect("answered OK");
    app
}

/// What a sink speaking `tls`, with a login and its CA trusted, received of one reset; `None`
/// without aiosmtpd.
async fn mailed_over(tls: SinkTls) -> Option<Vec<String>> {
    let mut sink = SmtpSink::reserve_tls(Some(("mailer", "s3cret")), tls)?;
    sink.start();
    let db = TestDatabase::sqlite();
    let _app = reset_mailed(&db, &sink, Some(sink.ca_pem())).await;
    Some(sink.wait_for(1, WAIT).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_comes_before_the_login_and_the_mail() {
    let Some(messages) = mailed_over(SinkTls::StartTls).await else {
        return;
    };
    assert!(
        messages[0].contains("Password reset on example.com"),
        "{}",
        messages[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtps_speaks_tls_from_the_first_byte() {
    mailed_over(SinkTls::Implicit).await;
}

/// Without the CA that signed it, the server's certificate is refused: nothing is sent, and
/// the outbox keeps the message with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_no_trusted_ca_signed_is_refused() {
    let Some(mut sink) = SmtpSink::reserve_tls(None, SinkTls::StartTls) else {
        return;
    };
    sink.start();
    let db = TestDatabase::sqlite();
    let _app = reset_mailed(&db, &sink, None).await;
    let mut conn = sqlx::AnyConnection::connect(db.url())
        .await
        .expect("connects");
    let failed = "SELECT last_error FROM mail_outbox WHERE last_error IS NOT NULL";
    let mut reason: Option<String> = None;
    for _ in 0..600 {
        reason = sqlx::query_scalar(failed)
            .fetch_optional(&mut conn)
            .await
            .expect("reads the outbox");
        if reason.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let reason = reason.expect("the attempt failed and said why");
    assert!(reason.to_lowercase().contains("certificate"), "{reason}");
    assert!(
        sink.messages().is_empty(),
        "nothing reached an untrusted server"
    );
}
