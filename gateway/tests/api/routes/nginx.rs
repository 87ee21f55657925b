//! The gateway behind a real reverse proxy: Debian's nginx, started by the test with its own
//! configuration, passing `X-Forwarded-For` (`$proxy_add_x_forwarded_for`) and
//! `X-Forwarded-Proto` from its own address, which alone `TRUSTED_PROXIES` names. Clients
//! reach nginx from loopback addresses of their own (`127.0.0.1`, `127.0.0.2`): the login
//! throttle counts each apart, and a client that forges `X-Forwarded-For` straight to the
//! gateway changes nothing.

use std::{
    net::{IpAddr, TcpListener},
    path::PathBuf,
    process::{Child, Command},
    time::Duration,
};

use reqwest::StatusCode;

use super::proxies::last_client;
use crate::{
    fake_upstream::{LOGIN, spawn_fake_with, wrong_password},
    helpers::credentials,
};

/// The address nginx connects to the gateway from: the one trusted proxy.
const PROXY: &str = "127.0.0.9";

/// The address nginx listens on: one no other test binds, so the free port found on it stays
/// free until nginx takes it.
const LISTEN: &str = "127.0.0.10";

/// nginx in front of the gateway at `upstream`, stopped when dropped.
struct Nginx {
    child: Child,
    port: u16,
    _folder: tempfile::TempDir,
}

impl Nginx {
    /// `None` (with a notice) where nginx is not installed, except under CI, where it panics.
    fn start(upstream: &str) -> Option<Self> {
        let binary = PathBuf::from("/usr/sbin/nginx");
        if !binary.exists() {
            service_kit::testing::tool_missing("nginx");
            return None;
        }
        let folder = tempfile::tempdir().expect("a temporary folder");
        let dir = folder.path().display().to_string();
        let port = TcpListener::bind((LISTEN, 0))
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let upstream = upstream.trim_start_matches("http://");
        // One process, in the foreground, everything in the test's folder.
        let config = format!(
            "daemon off;\nmaster_process off;\nerror_log {dir}/error.log;\npid {dir}/nginx.pid;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {dir}/body;\n\
               proxy_temp_path {dir}/proxy;\n  fastcgi_temp_path {dir}/fastcgi;\n\
               uwsgi_temp_path {dir}/uwsgi;\n  scgi_temp_path {dir}/scgi;\n\
               server {{\n    listen {LISTEN}:{port};\n    location / {{\n\
                 proxy_pass http://{upstream};\n      proxy_bind {PROXY};\n\
                 proxy_set_header Host $host;\n\
                 proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n\
                 proxy_set_header X-Forwarded-Proto $scheme;\n    }}\n  }}\n}}\n"
        );
        let path = folder.path().join("nginx.conf");
        std::fs::write(&path, config).expect("nginx.conf");
        let child = Command::new(binary)
            .arg("-c")
            .arg(&path)
            .arg("-p")
            .arg(folder.path())
            .spawn()
            .expect("nginx starts");
        let mut nginx = Self {
            child,
            port,
            _folder: folder,
        };
        for _ in 0..100 {
            let exited = nginx.child.try_wait().ok().flatten();
            assert!(exited.is_none(), "nginx exited: {}", nginx.errors());
            if std::net::TcpStream::connect((LISTEN, port)).is_ok() {
                return Some(nginx);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("nginx did not listen: {}", nginx.errors());
    }

    fn errors(&self) -> String {
        std::fs::read_to_string(self._folder.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A login sent to `base` from the local address `from`, with `headers`: its status.
async fn log_in(base: &str, from: &str, forwarded_for: Option<&str>) -> StatusCode {
    let from: IpAddr = from.parse().unwrap();
    let client = reqwest::Client::builder()
        .local_address(from)
        .build()
        .unwrap();
    let mut request = client.post(format!("{base}/api/login/"));
    if let Some(forwarded) = forwarded_for {
        request = request.header("x-forwarded-for", forwarded);
    }
    let response = request.json(&credentials("alice")).send().await;
    response.expect("an answer").status()
}

#[tokio::test]
async fn clients_behind_nginx_are_throttled_apart_and_forgery_changes_nothing() {
    let stack = spawn_fake_with(|config| {
        config.trusted_proxies = PROXY.parse().unwrap();
        config.auth_rate = Some("20/minute".parse().unwrap());
        // The host clients name to nginx, which passes it on.
        config.allowed_hosts = format!("127.0.0.1,{LISTEN}").parse().unwrap();
    })
    .await;
    stack.fake.answer(LOGIN, Err(wrong_password()));
    let Some(nginx) = Nginx::start(&stack.base) else {
        return;
    };
    let proxy = format!("http://{LISTEN}:{}", nginx.port);

    for attempt in 1..=20 {
        let status = log_in(&proxy, "127.0.0.1", None).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "attempt {attempt}: {}",
            nginx.errors()
        );
    }
    assert_eq!(last_client(&stack), "127.0.0.1");
    let status = log_in(&proxy, "127.0.0.1", None).await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "the 21st from one client"
    );
    // Another client through the same proxy has a bucket of its own.
    let status = log_in(&proxy, "127.0.0.2", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "another client");
    assert_eq!(last_client(&stack), "127.0.0.2");
    // The throttled client naming another address, through nginx (which appends the real
    // one) or straight to the gateway (which trusts only nginx), is still itself.
    let forged = Some("203.0.113.77");
    let status = log_in(&proxy, "127.0.0.1", forged).await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "forged through nginx"
    );
    let status = log_in(&stack.base, "127.0.0.1", forged).await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "forged straight to the gateway"
    );
}
