//! A closed-loop load generator: `concurrency` workers each issue one call after another for a
//! fixed time; the figure is completed calls per second.

use std::{
    future::Future,
    time::{Duration, Instant},
};

use tonic::{Request, transport::Channel};

/// Calls per second, and how many calls failed (a failure invalidates the figure).
pub struct Throughput {
    pub calls_per_second: f64,
    pub failures: u64,
}

pub async fn throughput<F, Fut>(concurrency: usize, duration: Duration, call: F) -> Throughput
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = bool> + Send,
{
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let call = call.clone();
            tokio::spawn(async move {
                let (mut done, mut failed) = (0u64, 0u64);
                while started.elapsed() < duration {
                    if call().await {
                        done += 1;
                    } else {
                        failed += 1;
                    }
                }
                (done, failed)
            })
        })
        .collect();
    let (mut done, mut failures) = (0, 0);
    for worker in workers {
        let (d, f) = worker.await.expect("a load worker ends");
        done += d;
        failures += f;
    }
    Throughput {
        calls_per_second: done as f64 / started.elapsed().as_secs_f64(),
        failures,
    }
}

/// Mean, median and 95th percentile of `samples`, in milliseconds.
pub fn summary(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mean = samples.iter().map(|d| ms(*d)).sum::<f64>() / samples.len().max(1) as f64;
    let at = |q: f64| ms(samples[((samples.len() as f64 - 1.0) * q).round() as usize]);
    format!(
        "mean {mean:.1} ms, p50 {:.1} ms, p95 {:.1} ms (n={})",
        at(0.5),
        at(0.95),
        samples.len()
    )
}

/// One HTTP/2 connection to `url`, shared by every worker (as a service's client would).
pub async fn channel(url: &str) -> Channel {
    Channel::from_shared(url.to_owned())
        .expect("a URL")
        .connect()
        .await
        .expect("a connection")
}

/// `message` with `authorization: Token <key>`.
pub fn authorized<T>(key: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    let value = format!("Token {key}").parse().expect("ASCII metadata");
    request.metadata_mut().insert("authorization", value);
    request
}
