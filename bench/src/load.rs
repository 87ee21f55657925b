//! The load generators and what they record. Closed loop: each worker issues one call after
//! another, as wrk and h2load do. Fixed rate: calls start on a clock whatever the answers do,
//! and each one's latency counts from when it was due, so a stall is not hidden by the calls
//! it delayed. Every latency is kept (a sorted `Vec` is an exact histogram at this size).

use std::{future::Future, pin::Pin, time::Duration};

use tokio::time::Instant;
use tonic::{Request as GrpcRequest, transport::Channel};

/// HTTP/2 connections a gRPC load spreads its workers over (h2load's `-c`, with `-m` workers
/// on each): a few, as a gateway or a replica pool holds.
pub const GRPC_CONNECTIONS: usize = 4;

/// One worker's way of making a call: `true` for a success.
pub trait Call: Send + 'static {
    fn call(&mut self) -> impl Future<Output = bool> + Send;
}

/// A call made by a closure returning a fresh future (a gRPC client call, cloned per call).
/// Boxed, so that calls of different services take turns in one [`in_turns`].
pub struct Rpc(Box<dyn FnMut() -> Pin<Box<dyn Future<Output = bool> + Send>> + Send>);

impl Rpc {
    pub fn new<F, Fut>(mut call: F) -> Self
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = bool> + Send + 'static,
    {
        Self(Box::new(move || Box::pin(call())))
    }
}

impl Call for Rpc {
    fn call(&mut self) -> impl Future<Output = bool> + Send {
        (self.0)()
    }
}

/// Successful calls' latencies and failed calls over a measured window.
#[derive(Debug, Default)]
pub struct Record {
    latencies: Vec<Duration>,
    errors: u64,
    window: Duration,
}

impl Record {
    pub fn add(&mut self, latency: Duration, ok: bool) {
        if ok {
            self.latencies.push(latency);
        } else {
            self.errors += 1;
        }
    }

    /// Another record of the same target, measured in a window after this one.
    pub fn extend(&mut self, later: Record) {
        self.latencies.extend(later.latencies);
        self.errors += later.errors;
        self.window += later.window;
    }

    /// The window the latencies were recorded in, for parts recorded side by side.
    pub fn set_window(&mut self, window: Duration) {
        self.window = window;
    }

    pub fn summary(mut self) -> Summary {
        self.latencies.sort_unstable();
        let at = |q: f64| {
            // Nearest rank: the smallest sample with at least q of all samples at or below it.
            let rank = (q * self.latencies.len() as f64).ceil() as usize;
            self.latencies
                .get(rank.saturating_sub(1))
                .copied()
                .unwrap_or_default()
        };
        Summary {
            per_second: self.latencies.len() as f64 / self.window.as_secs_f64().max(1e-9),
            p50: at(0.50),
            p99: at(0.99),
            errors: self.errors,
            by: OWN,
        }
    }
}

/// What a table row shows of a [`Record`].
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    /// Successful calls per second.
    pub per_second: f64,
    pub p50: Duration,
    pub p99: Duration,
    pub errors: u64,
    /// What generated the load: [`OWN`], `wrk` or `h2load`.
    pub by: &'static str,
}

/// The bench's own generator, as a [`Summary`] names it.
pub const OWN: &str = "bench";

impl Summary {
    /// Turns of one target: the mean rate, the median p50 and p99, every error.
    pub fn combine(turns: &[Summary]) -> Summary {
        let median = |of: fn(&Summary) -> Duration| {
            let mut values: Vec<Duration> = turns.iter().map(of).collect();
            values.sort_unstable();
            values.get(values.len() / 2).copied().unwrap_or_default()
        };
        Summary {
            per_second: turns.iter().map(|turn| turn.per_second).sum::<f64>()
                / turns.len().max(1) as f64,
            p50: median(|turn| turn.p50),
            p99: median(|turn| turn.p99),
            errors: turns.iter().map(|turn| turn.errors).sum(),
            by: turns.first().map_or(OWN, |turn| turn.by),
        }
    }
}

/// Runs every caller in a closed loop for `warmup`, then records for `measure`. The callers
/// come back, connections open, for the next round.
pub async fn closed<C: Call>(
    callers: Vec<C>,
    warmup: Duration,
    measure: Duration,
) -> (Vec<C>, Record) {
    let from = Instant::now() + warmup;
    let until = from + measure;
    let workers: Vec<_> = callers
        .into_iter()
        .map(|mut caller| {
            tokio::spawn(async move {
                let mut record = Record::default();
                loop {
                    let started = Instant::now();
                    if started >= until {
                        break;
                    }
                    let ok = caller.call().await;
                    if started >= from {
                        record.add(started.elapsed(), ok);
                    }
                }
                (caller, record)
            })
        })
        .collect();
    let mut callers = Vec::with_capacity(workers.len());
    let mut record = Record::default();
    for worker in workers {
        let (caller, part) = worker.await.expect("a load worker ends");
        callers.push(caller);
        record.extend(part);
    }
    record.window = measure;
    (callers, record)
}

/// Starts `per_second` calls a second for `warmup` and then `measure`, recording those due
/// after the warm-up, each from the moment it was due.
pub async fn fixed_rate<F, Fut>(
    per_second: u32,
    warmup: Duration,
    measure: Duration,
    mut call: F,
) -> Record
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool> + Send + 'static,
{
    let start = Instant::now();
    let (from, until) = (start + warmup, start + warmup + measure);
    // A late tick fires at once and the next ones catch up (tokio's default, Burst): the rate
    // holds on average even when the generator itself is starved of CPU for a moment.
    let mut ticks = tokio::time::interval_at(start, Duration::from_secs(1) / per_second);
    let mut calls = Vec::new();
    loop {
        let due = ticks.tick().await;
        if due >= until {
            break;
        }
        let call = call();
        calls.push(tokio::spawn(async move {
            let ok = call.await;
            (due, due.elapsed(), ok)
        }));
    }
    let mut record = Record {
        window: measure,
        ..Record::default()
    };
    for call in calls {
        let (due, latency, ok) = call.await.expect("a call task ends");
        if due >= from {
            record.add(latency, ok);
        }
    }
    record
}

/// `count` HTTP/2 connections to `url`.
pub async fn channels(url: &str, count: usize) -> Vec<Channel> {
    let mut channels = Vec::with_capacity(count);
    for _ in 0..count {
        let channel = Channel::from_shared(url.to_owned())
            .expect("a URL")
            .connect()
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"));
        channels.push(channel);
    }
    channels
}

/// `message` with `authorization: Token <key>`.
pub fn authorized<T>(key: &str, message: T) -> GrpcRequest<T> {
    let mut request = GrpcRequest::new(message);
    let value = format!("Token {key}").parse().expect("ASCII metadata");
    request.metadata_mut().insert("authorization", value);
    request
}

/// A target's first, unrecorded, stretch of load: connections open, pools fill, caches warm.
pub const WARMUP: Duration = Duration::from_secs(1);
/// Before each later turn: the connections are open, the queues just refill.
const WARM_AGAIN: Duration = Duration::from_millis(250);
/// One recorded stretch. Targets compared with each other take turns, [`ROUNDS`] times, so
/// that load from elsewhere on a shared machine falls on all of them alike.
pub const ROUND: Duration = Duration::from_secs(2);
pub const ROUNDS: usize = 3;

/// The unrecorded stretch before a target's turn in `round` (from 0).
pub fn warmup(round: usize) -> Duration {
    if round == 0 { WARMUP } else { WARM_AGAIN }
}

/// Measures `targets` in turns of [`ROUND`], [`ROUNDS`] times; their summaries, in order.
pub async fn in_turns<C: Call, const N: usize>(mut targets: [Vec<C>; N]) -> [Summary; N] {
    let mut records: [Record; N] = std::array::from_fn(|_| Record::default());
    for round in 0..ROUNDS {
        for (callers, record) in targets.iter_mut().zip(&mut records) {
            let (back, measured) = closed(std::mem::take(callers), warmup(round), ROUND).await;
            *callers = back;
            record.extend(measured);
        }
    }
    records.map(Record::summary)
}

/// A small, fast, seedable generator (xorshift64*): which key a call presents, which class a
/// mixed call is.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// A number in `1..=n`.
    pub fn one_to(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n + 1
    }
}
