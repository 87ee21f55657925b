//! The connection limits, over raw sockets: a request head must arrive within the header
//! timeout (however slowly it trickles), an idle keep-alive connection is closed, a request has
//! a deadline, and connections over the cap are refused.

use std::time::{Duration, Instant};

use reqwest::{StatusCode, header};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::helpers::{address, expect_status, spawn_stack, spawn_stack_with};

/// How long a test waits for the server to close a connection before calling it a hang.
const GUARD: Duration = Duration::from_secs(10);

/// Reads until the server closes `stream` (EOF or reset), within [`GUARD`]; what was read.
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let mut buf = [0u8; 1024];
    tokio::time::timeout(GUARD, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("the server closes the connection");
    received
}

#[tokio::test]
async fn a_half_sent_head_is_closed_after_the_header_timeout() {
    let timeout = Duration::from_millis(300);
    let stack = spawn_stack_with(|config| config.connections.header_timeout = timeout).await;
    let mut stream = TcpStream::connect(address(&stack.base)).await.unwrap();
    let started = Instant::now();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    let received = read_until_closed(&mut stream).await;
    let elapsed = started.elapsed();
    eprintln!("half-sent head closed after {elapsed:?}");
    assert!(
        received.is_empty(),
        "{}",
        String::from_utf8_lossy(&received)
    );
    assert!(elapsed >= timeout, "closed before its time: {elapsed:?}");
}

/// A client that keeps sending, one byte at a time, never gets more than the header timeout.
#[tokio::test]
async fn a_trickled_head_is_closed_after_the_header_timeout() {
    let timeout = Duration::from_millis(300);
    let stack = spawn_stack_with(|config| config.connections.header_timeout = timeout).await;
    let stream = TcpStream::connect(address(&stack.base)).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let started = Instant::now();
    let trickle = tokio::spawn(async move {
        for byte in
            b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Padding: aaaaaaaaaaaaaaaaaaaa\r\n\r\n"
        {
            if writer.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let mut received = Vec::new();
    tokio::time::timeout(GUARD, async {
        let mut buf = [0u8; 1024];
        while let Ok(n @ 1..) = reader.read(&mut buf).await {
            received.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("the server closes the connection");
    eprintln!("trickled head closed after {:?}", started.elapsed());
    assert!(
        received.is_empty(),
        "{}",
        String::from_utf8_lossy(&received)
    );
    trickle.abort();
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let stack = spawn_stack_with(|config| {
        config.connections.idle_timeout = Duration::from_millis(300);
        // Longer than the guard: only the idle timer can close this connection in time.
        config.connections.header_timeout = Duration::from_secs(60);
    })
    .await;
    let mut stream = TcpStream::connect(address(&stack.base)).await.unwrap();
    let request = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";
    for _ in 0..2 {
        // Two requests on one connection: it is kept alive between them.
        stream.write_all(request).await.unwrap();
        let mut response = Vec::new();
        let mut buf = [0u8; 1024];
        while !response.ends_with(br#"{"status":"ok"}"#) {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(
                n > 0,
                "closed early: {}",
                String::from_utf8_lossy(&response)
            );
            response.extend_from_slice(&buf[..n]);
        }
    }
    let started = Instant::now();
    assert!(read_until_closed(&mut stream).await.is_empty());
    eprintln!("idle connection closed after {:?}", started.elapsed());
}

#[tokio::test]
async fn a_request_past_the_request_timeout_is_a_504() {
    let mut stack = spawn_stack().await;
    let token = stack.clerk("alice").await;
    // A listener that accepts connections (the kernel does) but never speaks, and an upstream
    // deadline far past the client's patience: only the request timeout can answer in time.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("http://{}", silent.local_addr().unwrap());
    let base = stack
        .extra_gateway(&silent_url, |config| {
            config.upstream_timeout = Duration::from_secs(600);
            config.request_timeout = Duration::from_millis(300);
        })
        .await;
    let response = stack
        .client
        .get(format!("{base}/api/inventory/"))
        .header(header::AUTHORIZATION, format!("Token {token}"))
        .timeout(GUARD)
        .send()
        .await
        .expect("an answer before the client gives up");
    let body = expect_status(response, StatusCode::GATEWAY_TIMEOUT).await;
    assert_eq!(
        body,
        serde_json::json!({"detail": "The service did not answer in time."})
    );
    drop(silent);
}

#[tokio::test]
async fn connections_over_the_cap_are_refused_until_one_closes() {
    let mut stack = spawn_stack().await;
    let inventory_url = stack.inventory_url.to_string();
    let base = stack
        .extra_gateway(&inventory_url, |config| {
            config.connections.max_connections = 2;
        })
        .await;
    let gateway = address(&base);
    let first = TcpStream::connect(gateway).await.unwrap();
    let _second = TcpStream::connect(gateway).await.unwrap();
    let mut third = TcpStream::connect(gateway).await.unwrap();
    let refused = read_until_closed(&mut third).await;
    let refused = String::from_utf8_lossy(&refused);
    assert!(
        refused.is_empty() || refused.starts_with("HTTP/1.1 503 "),
        "{refused}"
    );

    // Once one closes, its place is free again (as soon as the gateway has seen the close).
    drop(first);
    for _ in 0..100 {
        let mut next = TcpStream::connect(gateway).await.unwrap();
        // Refused connections may be closed before the request is written.
        let _ = next
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await;
        let answer = read_until_closed(&mut next).await;
        if answer.starts_with(b"HTTP/1.1 200 ") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("a place never became free");
}
