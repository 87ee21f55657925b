//! The connection limits, over raw sockets: a request head must arrive within the header
//! timeout (however slowly it trickles), an idle keep-alive connection is closed, a request has
//! a deadline, connections over the cap are refused, and at a cap (of all connections or of one
//! client address's) the idlest keep-alive connection makes room, never a busy one. The gateway
//! stands in front of the fake; none of this asks anything of the services but to be slow.

use std::{
    net::{Ipv4Addr, SocketAddr},
    time::{Duration, Instant},
};

use reqwest::{StatusCode, header};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
};

use crate::{
    fake_upstream::{FakeStack, spawn_fake, spawn_fake_with},
    helpers::{address, expect_status},
};

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

/// Two client addresses: Linux accepts any 127/8 address as a source.
const CLIENT_A: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
const CLIENT_B: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// A `/healthz` request that keeps the connection open, and its answer's last bytes.
const KEEP_ALIVE_HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";
const HEALTHZ_BODY: &[u8] = br#"{"status":"ok"}"#;
/// A `/healthz` request after which the server closes the connection.
const CLOSING_HEALTHZ: &[u8] =
    b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";

/// A connection to `gateway` from the client address `from`.
async fn connect_from(from: Ipv4Addr, gateway: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((from, 0))).unwrap();
    socket.connect(gateway).await.unwrap()
}

/// Sends `/healthz` on `stream` and reads its `200`, leaving the connection open and idle.
async fn keep_alive_exchange(stream: &mut TcpStream) {
    stream.write_all(KEEP_ALIVE_HEALTHZ).await.unwrap();
    let mut response = Vec::new();
    let mut buf = [0u8; 1024];
    while !response.ends_with(HEALTHZ_BODY) {
        let n = tokio::time::timeout(GUARD, stream.read(&mut buf))
            .await
            .expect("an answer in time")
            .unwrap();
        assert!(
            n > 0,
            "closed early: {}",
            String::from_utf8_lossy(&response)
        );
        response.extend_from_slice(&buf[..n]);
    }
    assert!(response.starts_with(b"HTTP/1.1 200 "));
}

/// A keep-alive connection from `from` that has been answered once and is now idle.
async fn idle_connection(from: Ipv4Addr, gateway: SocketAddr) -> TcpStream {
    let mut stream = connect_from(from, gateway).await;
    keep_alive_exchange(&mut stream).await;
    stream
}

/// The whole answer to `/healthz` from `from` on a new connection (empty if it was refused
/// before the request was read).
async fn healthz_from(from: Ipv4Addr, gateway: SocketAddr) -> String {
    let mut stream = connect_from(from, gateway).await;
    // A refused connection may be closed before the request is written.
    let _ = stream.write_all(CLOSING_HEALTHZ).await;
    String::from_utf8_lossy(&read_until_closed(&mut stream).await).into_owned()
}

/// Whether `stream` was refused: closed with the 503 or with nothing.
fn refused(answer: &[u8]) -> bool {
    answer.is_empty() || answer.starts_with(b"HTTP/1.1 503 ")
}

/// A gateway of its own beside `stack`'s (whose clients hold connections of their own),
/// configured by `configure`; its address.
async fn gateway_beside(
    stack: &mut FakeStack,
    configure: impl FnOnce(&mut gateway::Config),
) -> SocketAddr {
    address(&stack.extra_gateway(configure).await)
}

#[tokio::test]
async fn a_half_sent_head_is_closed_after_the_header_timeout() {
    let timeout = Duration::from_millis(300);
    let stack = spawn_fake_with(|config| config.connections.header_timeout = timeout).await;
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
    let stack = spawn_fake_with(|config| config.connections.header_timeout = timeout).await;
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
    let stack = spawn_fake_with(|config| {
        config.connections.idle_timeout = Duration::from_millis(300);
        // Longer than the guard: only the idle timer can close this connection in time.
        config.connections.header_timeout = Duration::from_secs(60);
    })
    .await;
    let mut stream = TcpStream::connect(address(&stack.base)).await.unwrap();
    // Two requests on one connection: it is kept alive between them.
    keep_alive_exchange(&mut stream).await;
    keep_alive_exchange(&mut stream).await;
    let started = Instant::now();
    assert!(read_until_closed(&mut stream).await.is_empty());
    eprintln!("idle connection closed after {:?}", started.elapsed());
}

/// A gateway beside `stack`'s whose inventory accepts connections (the kernel does) but never
/// speaks, configured by `configure` too: its base URL, and the silent listener, which listens
/// while it is kept.
async fn gateway_before_a_silent_inventory(
    stack: &mut FakeStack,
    configure: impl FnOnce(&mut gateway::Config),
) -> (String, std::net::TcpListener) {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let base = stack
        .extra_gateway(|config| {
            config.inventory_url = url.parse().unwrap();
            configure(config);
        })
        .await;
    (base, silent)
}

#[tokio::test]
async fn a_request_past_the_request_timeout_is_a_504() {
    let mut stack = spawn_fake().await;
    // An upstream deadline far past the client's patience: only the request timeout can
    // answer in time.
    let (base, silent) = gateway_before_a_silent_inventory(&mut stack, |config| {
        config.upstream_timeout = Duration::from_secs(600);
        config.request_timeout = Duration::from_millis(300);
    })
    .await;
    let response = stack
        .client
        .get(format!("{base}/api/inventory/"))
        .header(header::AUTHORIZATION, "Token key-1")
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
    let mut stack = spawn_fake().await;
    let gateway = gateway_beside(&mut stack, |config| {
        config.connections.max_connections = 2;
    })
    .await;
    let first = TcpStream::connect(gateway).await.unwrap();
    let _second = TcpStream::connect(gateway).await.unwrap();
    let mut third = TcpStream::connect(gateway).await.unwrap();
    let answer = read_until_closed(&mut third).await;
    assert!(refused(&answer), "{}", String::from_utf8_lossy(&answer));

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

/// Finding 4: one address's idle keep-alive connections filling every place no longer lock
/// out another address; the connection idle the longest makes room, and only it.
#[tokio::test]
async fn at_the_cap_the_idlest_connection_makes_room_for_a_new_client() {
    let mut stack = spawn_fake().await;
    let gateway = gateway_beside(&mut stack, |config| {
        config.connections.max_connections = 3;
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(idle_connection(CLIENT_A, gateway).await);
    }

    let answer = healthz_from(CLIENT_B, gateway).await;
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    assert!(
        read_until_closed(&mut held[0]).await.is_empty(),
        "the idlest connection was closed"
    );
    for stream in &mut held[1..] {
        keep_alive_exchange(stream).await;
    }
}

/// Finding 4: past its share, a client's new connection takes the place of its own idlest
/// connection, and when none of its connections is idle it is refused, while another address
/// is still served.
#[tokio::test]
async fn one_client_holds_no_more_than_its_share() {
    let mut stack = spawn_fake().await;
    let gateway = gateway_beside(&mut stack, |config| {
        config.connections.max_connections = 4;
        config.connections.max_connections_per_client = 2;
    })
    .await;
    let mut first = idle_connection(CLIENT_A, gateway).await;
    let _second = idle_connection(CLIENT_A, gateway).await;
    let _third = idle_connection(CLIENT_A, gateway).await;
    assert!(
        read_until_closed(&mut first).await.is_empty(),
        "the client's idlest connection made room for its third"
    );

    // Connections that never send a head are never idle: two take the client's share (from
    // its idle ones), and a third is refused even though the gateway has room.
    let _silent = [
        connect_from(CLIENT_A, gateway).await,
        connect_from(CLIENT_A, gateway).await,
    ];
    let mut over_share = connect_from(CLIENT_A, gateway).await;
    let answer = read_until_closed(&mut over_share).await;
    assert!(refused(&answer), "{}", String::from_utf8_lossy(&answer));

    let answer = healthz_from(CLIENT_B, gateway).await;
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
}

/// Finding 4: a connection whose request is being answered, or whose head is arriving, is
/// never the one closed to make room: with only such connections open, a new one is refused.
#[tokio::test]
async fn a_connection_with_a_request_under_way_is_never_closed_for_another() {
    let mut stack = spawn_fake().await;
    // A product read through a silent inventory is in flight until the request timeout's 504.
    let (base, silent) = gateway_before_a_silent_inventory(&mut stack, |config| {
        config.connections.max_connections = 2;
        config.upstream_timeout = Duration::from_secs(600);
        config.request_timeout = Duration::from_secs(3);
    })
    .await;
    let gateway = address(&base);
    // The oldest connection, busy.
    let mut busy = connect_from(CLIENT_A, gateway).await;
    let read = "GET /api/inventory/ HTTP/1.1\r\nHost: localhost\r\nAuthorization: Token key-1\r\n\
                Connection: close\r\n\r\n";
    busy.write_all(read.as_bytes()).await.unwrap();
    let mut idle = idle_connection(CLIENT_A, gateway).await;

    // The idle one makes room, not the busy one.
    let answer = healthz_from(CLIENT_B, gateway).await;
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    assert!(read_until_closed(&mut idle).await.is_empty());

    // A head arriving is not idle either: with it and the busy one open, there is no room.
    let mut arriving = connect_from(CLIENT_A, gateway).await;
    arriving
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    let mut over_cap = connect_from(CLIENT_B, gateway).await;
    let answer = read_until_closed(&mut over_cap).await;
    assert!(refused(&answer), "{}", String::from_utf8_lossy(&answer));

    arriving
        .write_all(b"Connection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut arriving).await;
    assert!(
        answer.starts_with(b"HTTP/1.1 200 "),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    let answer = read_until_closed(&mut busy).await;
    assert!(
        answer.starts_with(b"HTTP/1.1 504 "),
        "the busy connection got its answer: {}",
        String::from_utf8_lossy(&answer)
    );
    drop(silent);
}
