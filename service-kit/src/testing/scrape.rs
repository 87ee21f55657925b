//! Reading what `/metrics` exposes, as a test checks it: [`scrape`] fetches the exposition,
//! [`value`] reads one series from it, and [`promtool_accepts`] has Prometheus' own checker
//! pass it. The recorder is a process's: in a test binary, other tests' calls count too, so
//! tests compare counts as "at least".

use std::{
    io::Write as _,
    net::SocketAddr,
    process::{Command, Stdio},
};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `GET /metrics` at `addr` (a `METRICS_LISTEN` port), over plain HTTP/1.1: the body.
pub async fn scrape(addr: SocketAddr) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    answer.split_once("\r\n\r\n").unwrap().1.to_owned()
}

/// The value of the series `name` whose labels include every one of `labels`
/// (`r#"grpc_code="OK""#`); `name` alone matches a series with no labels too.
pub fn value(exposed: &str, name: &str, labels: &[&str]) -> Option<f64> {
    exposed
        .lines()
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .find(|line| labels.iter().all(|label| line.contains(label)))
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
}

/// `promtool check metrics` passes `exposed`; where promtool is not installed, a notice (under
/// CI, which installs it, a failure: [`super::tool_missing`]).
pub fn promtool_accepts(exposed: &str) {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            super::tool_missing("promtool");
            return;
        }
        Err(err) => panic!("promtool: {err}"),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(exposed.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let printed = super::printed(&output);
    assert!(output.status.success(), "promtool: {printed}");
}
