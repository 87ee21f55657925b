//! Request counts and latency histograms by method, route and status, rendered in Prometheus
//! text format for `/metrics`. Routes are labelled by their pattern (`/api/products/{id}/`), so
//! the number of series stays bounded whatever paths clients send.

use std::{
    collections::BTreeMap,
    fmt::Write,
    sync::{Arc, Mutex},
    time::Instant,
};

use axum::{
    extract::{MatchedPath, Request, State},
    middleware::Next,
    response::Response,
};
use http::Method;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// The label of requests that matched no route.
const UNMATCHED: &str = "unmatched";

/// The label of every method outside [`method_label`]'s set.
const OTHER_METHOD: &str = "other";

/// The method as a label: HTTP's standard methods by name, anything else as `other`. Clients
/// may send any token as a method, and each distinct label is a series kept until restart.
fn method_label(method: &Method) -> &'static str {
    const STANDARD: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE",
    ];
    STANDARD
        .into_iter()
        .find(|name| *name == method.as_str())
        .unwrap_or(OTHER_METHOD)
}

/// The labels of one series.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Labels {
    method: &'static str,
    route: String,
    status: u16,
}

/// One series: a count, a sum and the (non-cumulative) bucket counts.
#[derive(Debug, Default)]
struct Series {
    count: u64,
    sum_seconds: f64,
    buckets: [u64; BUCKETS.len()],
}

/// Every series seen since start.
#[derive(Debug, Default)]
pub struct Metrics {
    series: Mutex<BTreeMap<Labels, Series>>,
}

impl Metrics {
    fn observe(&self, labels: Labels, seconds: f64) {
        let mut series = self
            .series
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let series = series.entry(labels).or_default();
        series.count += 1;
        series.sum_seconds += seconds;
        if let Some(bucket) = BUCKETS.iter().position(|bound| seconds <= *bound) {
            series.buckets[bucket] += 1;
        }
    }

    /// Everything in Prometheus text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let series = self
            .series
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut out = String::new();
        out.push_str(
            "# HELP http_requests_total HTTP requests answered, by method, route and status.\n",
        );
        out.push_str("# TYPE http_requests_total counter\n");
        for (labels, series) in series.iter() {
            let _ = writeln!(
                out,
                "http_requests_total{{{}}} {}",
                labels.render(),
                series.count
            );
        }
        out.push_str(
            "# HELP http_request_duration_seconds Time to answer, by method, route and status.\n",
        );
        out.push_str("# TYPE http_request_duration_seconds histogram\n");
        for (labels, series) in series.iter() {
            let labels = labels.render();
            let mut cumulative = 0;
            for (bound, count) in BUCKETS.iter().zip(series.buckets) {
                cumulative += count;
                let _ = writeln!(
                    out,
                    "http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                series.count
            );
            let _ = writeln!(
                out,
                "http_request_duration_seconds_sum{{{labels}}} {}",
                series.sum_seconds
            );
            let _ = writeln!(
                out,
                "http_request_duration_seconds_count{{{labels}}} {}",
                series.count
            );
        }
        out
    }
}

impl Labels {
    fn render(&self) -> String {
        // Method and route come from fixed sets (known methods, route patterns), so no escaping
        // is needed beyond what Prometheus requires of quotes and backslashes.
        format!(
            "method=\"{}\",route=\"{}\",status=\"{}\"",
            self.method,
            escape(&self.route),
            self.status
        )
    }
}

fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Middleware: times every request and counts it under its route pattern.
pub async fn record(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str)
        .to_owned();
    let response = next.run(request).await;
    let labels = Labels {
        method,
        route,
        status: response.status().as_u16(),
    };
    metrics.observe(labels, started.elapsed().as_secs_f64());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_only_standard_methods_by_name() {
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        for token in ["X1", "get", "PROPFIND"] {
            let method = Method::from_bytes(token.as_bytes()).unwrap();
            assert_eq!(method_label(&method), OTHER_METHOD, "{token}");
        }
    }

    #[test]
    fn renders_counts_and_cumulative_buckets() {
        let metrics = Metrics::default();
        let labels = Labels {
            method: "GET",
            route: "/api/inventory/".to_owned(),
            status: 200,
        };
        metrics.observe(labels.clone(), 0.002);
        metrics.observe(labels, 0.2);
        let text = metrics.render();
        let series = r#"method="GET",route="/api/inventory/",status="200""#;
        assert!(text.contains(&format!("http_requests_total{{{series}}} 2")));
        assert!(text.contains(&format!(
            "http_request_duration_seconds_bucket{{{series},le=\"0.001\"}} 0"
        )));
        assert!(text.contains(&format!(
            "http_request_duration_seconds_bucket{{{series},le=\"0.0025\"}} 1"
        )));
        assert!(text.contains(&format!(
            "http_request_duration_seconds_bucket{{{series},le=\"+Inf\"}} 2"
        )));
    }
}
