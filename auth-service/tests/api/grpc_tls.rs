//! TLS on the gRPC server: given a certificate (`TLS_CERT_FILE`, `TLS_KEY_FILE`) the server
//! speaks TLS only; grpcurl verifying it against the CA lists it (reflection), asks its health
//! and calls it, while `-plaintext` and a client trusting another CA fail. Given a client CA
//! (`TLS_CLIENT_CA_FILE`) it also requires a certificate that CA signed. The container's probe
//! (`auth-service healthcheck`) passes over TLS, and a setting that names a file that is
//! missing or does not parse, or identities without client certificates to carry them, stops
//! the program with its name.

use std::net::SocketAddr;

use auth_service::{Application, Config};
use service_kit::{
    program::Server,
    testing::{Running, TestDatabase, certificates::TestCa, grpcurl::grpcurl, printed},
    tls::ServerTls,
};

use crate::helpers::run;

/// The service on SQLite, serving with `tls`: its address.
async fn serve_with(tls: ServerTls, db: &TestDatabase) -> (SocketAddr, Running) {
    let mut config = Config::for_tests(db.url());
    config.tls = Some(tls);
    let app = Application::build(config)
        .await
        .expect("the service starts");
    (app.local_addr(), run(app))
}

/// grpcurl's exit status and what it printed; run off the runtime, which serves the server.
async fn call(args: &[&str]) -> Option<(bool, String)> {
    let args: Vec<String> = args.iter().map(|&arg| arg.to_owned()).collect();
    let output = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        grpcurl(&args)
    });
    let output = output.await.expect("grpcurl ran")?;
    Some((output.status.success(), printed(&output)))
}

const HEALTH_CHECK: &str = "grpc.health.v1.Health/Check";
const ASK_AUTH: &str = r#"{"service":"auth.v1.AuthService"}"#;

#[tokio::test]
async fn a_server_given_a_certificate_speaks_tls_only() {
    let ca = TestCa::new();
    let (chain, key) = ca.issue("auth");
    let tls = ServerTls::from_pem(chain, key, None).unwrap();
    let db = TestDatabase::sqlite();
    let (addr, server) = serve_with(tls.clone(), &db).await;
    let (addr, cacert) = (addr.to_string(), ca.path("ca.pem"));
    let cacert = cacert.to_str().unwrap();

    let Some((listed, services)) = call(&["-cacert", cacert, &addr, "list"]).await else {
        return;
    };
    assert!(listed, "{services}");
    assert!(
        services.contains("auth.v1.AuthService") && services.contains("grpc.health.v1.Health"),
        "{services}"
    );
    let (asked, health) = call(&["-cacert", cacert, "-d", ASK_AUTH, &addr, HEALTH_CHECK])
        .await
        .unwrap();
    assert!(asked && health.contains("SERVING"), "{health}");
    let nobody = r#"{"key":"0123456789abcdef0123456789abcdef01234567"}"#;
    let validate = "auth.v1.AuthService/ValidateToken";
    let (_, answer) = call(&["-cacert", cacert, "-d", nobody, &addr, validate])
        .await
        .unwrap();
    assert!(answer.contains("Unauthenticated"), "{answer}");

    let (plaintext, refused) = call(&["-plaintext", &addr, "list"]).await.unwrap();
    assert!(!plaintext, "plaintext was served: {refused}");
    let stranger = TestCa::new();
    let other = stranger.path("ca.pem");
    let (trusted, refused) = call(&["-cacert", other.to_str().unwrap(), &addr, "list"])
        .await
        .unwrap();
    assert!(
        !trusted,
        "a server signed by another CA was trusted: {refused}"
    );
    assert!(refused.contains("certificate"), "{refused}");

    // The container's probe, as its health check runs it.
    let probe = probe_aside(&[
        ("AUTH_LISTEN", &addr),
        ("TLS_CERT_FILE", ca.path("auth.pem").to_str().unwrap()),
        ("TLS_KEY_FILE", ca.path("auth.key").to_str().unwrap()),
    ])
    .await;
    assert!(probe.0, "the probe failed over TLS: {}", probe.1);
    let plain = probe_aside(&[("AUTH_LISTEN", &addr)]).await;
    assert!(!plain.0, "a plaintext probe passed: {}", plain.1);
    server.stop().await;
}

#[tokio::test]
async fn a_server_given_a_client_ca_requires_a_certificate_it_signed() {
    let ca = TestCa::new();
    let (chain, key) = ca.issue("auth");
    let tls = ServerTls::from_pem(chain, key, Some(ca.certificate())).unwrap();
    assert!(tls.requires_client_certificates());
    let db = TestDatabase::sqlite();
    let (addr, server) = serve_with(tls, &db).await;
    let addr = addr.to_string();
    ca.issue("gateway");
    let path = |file: &str| ca.path(file).to_str().unwrap().to_owned();
    let cacert = path("ca.pem");

    let Some((anonymous, refused)) = call(&["-cacert", &cacert, &addr, "list"]).await else {
        return;
    };
    assert!(
        !anonymous,
        "a caller with no certificate was served: {refused}"
    );
    let (cert, key) = (path("gateway.pem"), path("gateway.key"));
    let known = &["-cacert", &cacert, "-cert", &cert, "-key", &key];
    let (served, services) = call(&[known.as_slice(), &[&addr, "list"]].concat())
        .await
        .unwrap();
    assert!(served, "{services}");
    assert!(services.contains("auth.v1.AuthService"), "{services}");

    let stranger = TestCa::new();
    stranger.issue("gateway");
    let (cert, key) = (
        stranger.path("gateway.pem").to_str().unwrap().to_owned(),
        stranger.path("gateway.key").to_str().unwrap().to_owned(),
    );
    let forged = &[
        "-cacert", &cacert, "-cert", &cert, "-key", &key, &addr, "list",
    ];
    let (served, refused) = call(forged).await.unwrap();
    assert!(
        !served,
        "a certificate of another CA was accepted: {refused}"
    );

    // The probe presents the server's own certificate, which its CA signed.
    let probe = probe_aside(&[
        ("AUTH_LISTEN", &addr),
        ("TLS_CERT_FILE", &path("auth.pem")),
        ("TLS_KEY_FILE", &path("auth.key")),
        ("TLS_CLIENT_CA_FILE", &cacert),
    ])
    .await;
    assert!(probe.0, "the probe failed under mutual TLS: {}", probe.1);
    server.stop().await;
}

#[test]
fn a_tls_setting_that_cannot_be_used_stops_the_program_with_its_name() {
    let ca = TestCa::new();
    ca.issue("auth");
    let path = |file: &str| ca.path(file).to_str().unwrap().to_owned();
    let not_pem = ca.path("not.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    let not_pem = not_pem.to_str().unwrap();
    let other = TestCa::new();
    other.issue("auth");
    let other_key = other.path("auth.key").to_str().unwrap().to_owned();
    let cases: [(&[(&str, &str)], &str); 7] = [
        (
            &[
                ("TLS_CERT_FILE", "/nowhere/auth.pem"),
                ("TLS_KEY_FILE", &path("auth.key")),
            ],
            "TLS_CERT_FILE",
        ),
        (&[("TLS_CERT_FILE", &path("auth.pem"))], "TLS_KEY_FILE"),
        (
            &[
                ("TLS_CERT_FILE", not_pem),
                ("TLS_KEY_FILE", &path("auth.key")),
            ],
            "TLS_CERT_FILE",
        ),
        (
            &[
                ("TLS_CERT_FILE", &path("auth.pem")),
                ("TLS_KEY_FILE", &other_key),
            ],
            "TLS_KEY_FILE",
        ),
        (
            &[
                ("TLS_CERT_FILE", &path("auth.pem")),
                ("TLS_KEY_FILE", &path("auth.key")),
                ("TLS_CLIENT_CA_FILE", not_pem),
            ],
            "TLS_CLIENT_CA_FILE",
        ),
        // Identities are known from client certificates only.
        (&[("REVOCATION_HOLDERS", "gateway")], "REVOCATION_HOLDERS"),
        (
            &[
                ("TLS_CERT_FILE", &path("auth.pem")),
                ("TLS_KEY_FILE", &path("auth.key")),
                ("TRUSTED_FRONTENDS", "10.0.0.5, gateway"),
            ],
            "TRUSTED_FRONTENDS",
        ),
    ];
    for (settings, named) in cases {
        let (started, said) = probe(&[&[("AUTH_LISTEN", "127.0.0.1:1")], settings].concat());
        assert!(!started, "{settings:?}");
        assert!(
            said.contains(named),
            "{settings:?} should name {named}: {said}"
        );
    }
}

/// `auth-service healthcheck` with `settings`: whether it passed, and what it printed. (A
/// test that serves runs it off its runtime: [`probe_aside`].)
fn probe(settings: &[(&str, &str)]) -> (bool, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_auth-service"))
        .arg("healthcheck")
        .envs(settings.iter().copied())
        .output()
        .expect("the binary runs");
    (output.status.success(), printed(&output))
}

/// [`probe`] run off the runtime, which serves the server it asks.
async fn probe_aside(settings: &[(&str, &str)]) -> (bool, String) {
    let settings: Vec<(String, String)> = settings
        .iter()
        .map(|&(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let settings: Vec<(&str, &str)> = settings
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        probe(&settings)
    })
    .await
    .expect("the probe ran")
}
