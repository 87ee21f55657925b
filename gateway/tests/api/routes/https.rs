//! HTTPS on the gateway (`TLS_CERT_FILE`, `TLS_KEY_FILE`): curl verifying it against the CA is
//! answered over HTTP/1.1 and over HTTP/2 (agreed by ALPN), on the probes and on the API, where
//! `ALLOWED_HOSTS` holds for HTTP/2's `:authority` as for `Host`; plain
//! HTTP to the same port is not served; and the container's probe (`gateway healthcheck`)
//! passes over HTTPS.

use std::net::SocketAddr;

use service_kit::{
    program::Server,
    testing::{Running, certificates::TestCa, printed},
    tls::ServerTls,
};

use crate::fake_upstream::{FakeStack, spawn_fake};

/// A gateway serving HTTPS with a certificate from `ca`, in front of `stack`'s fake.
async fn https_gateway(stack: &FakeStack, ca: &TestCa) -> (SocketAddr, Running) {
    let (chain, key) = ca.issue("gateway");
    let mut config = gateway::Config::for_tests(stack.url.clone(), stack.url.clone());
    config.tls = Some(ServerTls::from_pem(chain, key, None).expect("a certificate"));
    let app = gateway::Application::build(config)
        .await
        .expect("the gateway starts");
    let addr = app.local_addr();
    let running = Running::spawn(|shutdown| async move {
        app.run_until_stopped(shutdown)
            .await
            .expect("the gateway runs");
    });
    (addr, running)
}

/// `program` with `args` (and `settings` in its environment), off the runtime that serves the
/// gateway: whether it succeeded, and what it printed.
async fn run(program: &str, args: Vec<String>, settings: Vec<(String, String)>) -> (bool, String) {
    let program = program.to_owned();
    tokio::task::spawn_blocking(move || {
        let output = std::process::Command::new(&program)
            .args(&args)
            .envs(settings)
            .output()
            .unwrap_or_else(|err| panic!("{program}: {err}"));
        (output.status.success(), printed(&output))
    })
    .await
    .expect("the program ran")
}

/// curl's `HTTP version, status` for `url`, verifying the gateway against `ca`.
async fn curl(ca: &TestCa, protocol: &str, url: &str) -> (bool, String) {
    let cacert = ca.path("ca.pem");
    let args = [
        "-sS",
        "--max-time",
        "10",
        "--cacert",
        cacert.to_str().unwrap(),
        protocol,
        "-o",
        "/dev/null",
        "-w",
        "%{http_version} %{http_code}",
        url,
    ];
    run("curl", args.map(str::to_owned).to_vec(), Vec::new()).await
}

#[tokio::test]
async fn curl_is_answered_over_http1_and_http2_and_plain_http_is_not() {
    let stack = spawn_fake().await;
    let ca = TestCa::new();
    let (addr, _gateway) = https_gateway(&stack, &ca).await;
    let base = format!("https://localhost:{}", addr.port());
    for (protocol, version) in [("--http1.1", "1.1"), ("--http2", "2")] {
        for path in ["/healthz/", "/api/schema/"] {
            let (done, answer) = curl(&ca, protocol, &format!("{base}{path}")).await;
            assert!(done, "{protocol} {path}: {answer}");
            assert_eq!(answer, format!("{version} 200"), "{protocol} {path}");
        }
    }
    // HTTP/2 names the host in `:authority`: ALLOWED_HOSTS holds there too (-k: the
    // certificate is not for that name).
    let port = addr.port();
    let args = [
        "-sS".to_owned(),
        "-k".to_owned(),
        "--http2".to_owned(),
        "--resolve".to_owned(),
        format!("evil.example:{port}:127.0.0.1"),
        "-o".to_owned(),
        "/dev/null".to_owned(),
        "-w".to_owned(),
        "%{http_version} %{http_code}".to_owned(),
        format!("https://evil.example:{port}/api/schema/"),
    ];
    let (_, answer) = run("curl", args.to_vec(), Vec::new()).await;
    assert_eq!(answer, "2 400", "a host not allowed, over HTTP/2");

    let plain = format!("http://localhost:{}/healthz/", addr.port());
    let (served, answer) = curl(&ca, "--http1.1", &plain).await;
    assert!(
        !served,
        "plain HTTP was served over the HTTPS port: {answer}"
    );

    // The container's probe, as its health check runs it.
    let settings = [
        ("GATEWAY_LISTEN", addr.to_string()),
        (
            "TLS_CERT_FILE",
            ca.path("gateway.pem").display().to_string(),
        ),
        ("TLS_KEY_FILE", ca.path("gateway.key").display().to_string()),
    ];
    let settings = settings
        .map(|(name, value)| (name.to_owned(), value))
        .to_vec();
    let probe = env!("CARGO_BIN_EXE_gateway");
    let (healthy, said) = run(probe, vec!["healthcheck".to_owned()], settings.clone()).await;
    assert!(healthy, "the probe failed over HTTPS: {said}");
    let plaintext = settings[..1].to_vec();
    let (healthy, said) = run(probe, vec!["healthcheck".to_owned()], plaintext).await;
    assert!(!healthy, "a plaintext probe passed: {said}");
}

/// Every TLS setting the gateway reads is checked at start, the message naming it.
#[test]
fn a_tls_setting_that_cannot_be_used_stops_the_gateway_with_its_name() {
    let ca = TestCa::new();
    ca.issue("gateway");
    let path = |file: &str| ca.path(file).display().to_string();
    let not_pem = ca.path("not.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    let not_pem = not_pem.display().to_string();
    let cases: [(&[(&str, &str)], &str); 5] = [
        (&[("TLS_CA_FILE", &not_pem)], "TLS_CA_FILE"),
        (&[("TLS_CA_FILE", "/nowhere/ca.pem")], "TLS_CA_FILE"),
        (
            &[("TLS_CLIENT_CERT_FILE", &path("gateway.pem"))],
            "TLS_CLIENT_KEY_FILE",
        ),
        (&[("AUTH_URL", "https://auth:50051")], "AUTH_URL"),
        (
            &[
                ("TLS_CERT_FILE", &path("gateway.pem")),
                ("TLS_KEY_FILE", &not_pem),
            ],
            "TLS_KEY_FILE",
        ),
    ];
    for (settings, named) in cases {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_gateway"))
            .arg("healthcheck")
            .env("GATEWAY_LISTEN", "127.0.0.1:1")
            .envs(settings.iter().copied())
            .output()
            .expect("the binary runs");
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{settings:?}");
        assert!(
            said.contains(named),
            "{settings:?} should name {named}: {said}"
        );
    }
}
