//! A real Prometheus (Debian's `prometheus`, with a configuration and a data folder of the
//! test's own) scrapes the three services, each a process, while reads go through the gateway:
//! its HTTP API shows every target `up`, a non-zero rate of each service's request counter, and
//! no label value made of what a client sent. PostgreSQL only (the processes' fleet); without
//! `prometheus` installed, a notice (under CI, which installs it, a failure).

use std::{
    net::SocketAddr,
    process::{Child, Command, Stdio},
    time::Duration,
};

use reqwest::Method;
use serde_json::Value;

use crate::processes::Replicas;

/// The scrape interval: short, so that a rate has samples within seconds.
const INTERVAL: &str = "1s";

/// A Prometheus server of the test's own, killed when dropped.
struct Prometheus {
    child: Child,
    url: String,
    _data: tempfile::TempDir,
}

impl Prometheus {
    /// Scraping each `(job, address)` at `/metrics`; `None` when prometheus is not installed.
    fn start(targets: &[(&str, SocketAddr)]) -> Option<Self> {
        let data = tempfile::tempdir().unwrap();
        let jobs: String = targets
            .iter()
            .map(|(job, address)| {
                format!(
                    "  - job_name: {job}\n    static_configs:\n      - targets: ['{address}']\n"
                )
            })
            .collect();
        let config = format!(
            "global:\n  scrape_interval: {INTERVAL}\n  evaluation_interval: {INTERVAL}\nscrape_configs:\n{jobs}"
        );
        let config_file = data.path().join("prometheus.yml");
        std::fs::write(&config_file, config).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let spawned = Command::new("prometheus")
            .arg(format!("--config.file={}", config_file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                data.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        match spawned {
            Ok(child) => Some(Self {
                child,
                url: format!("http://127.0.0.1:{port}"),
                _data: data,
            }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                service_kit::testing::tool_missing("prometheus");
                None
            }
            Err(err) => panic!("prometheus: {err}"),
        }
    }

    /// The instant vector `query` gives now: each result's labels and value.
    async fn query(&self, client: &reqwest::Client, query: &str) -> Vec<(Value, f64)> {
        let answer = client
            .get(format!("{}/api/v1/query", self.url))
            .query(&[("query", query)])
            .send()
            .await;
        let Ok(answer) = answer else {
            return Vec::new(); // Not up yet.
        };
        let body: Value = answer.json().await.unwrap_or_default();
        body["data"]["result"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|result| {
                let value = result["value"][1].as_str().and_then(|v| v.parse().ok());
                (result["metric"].clone(), value.unwrap_or(f64::NAN))
            })
            .collect()
    }

    /// Polls `query` (up to 60 s) until each of `jobs` has a result above zero.
    async fn until_positive(&self, client: &reqwest::Client, query: &str, jobs: &[&str]) {
        let mut last = Vec::new();
        for _ in 0..120 {
            last = self.query(client, query).await;
            let positive = |job: &&str| {
                last.iter()
                    .any(|(labels, value)| labels["job"] == **job && *value > 0.0)
            };
            if jobs.iter().all(positive) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        panic!("{query}: not positive for each of {jobs:?}; last: {last:?}");
    }

    /// Every value Prometheus holds of the label `name`.
    async fn label_values(&self, client: &reqwest::Client, name: &str) -> Vec<String> {
        let answer = client
            .get(format!("{}/api/v1/label/{name}/values", self.url))
            .send()
            .await
            .unwrap();
        let body: Value = answer.json().await.unwrap();
        body["data"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|value| value.as_str().map(str::to_owned))
            .collect()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn prometheus_scrapes_all_three_services_under_load() {
    let env = [("METRICS_LISTEN", "127.0.0.1:0")];
    let Some(replicas) = Replicas::start(1, &env).await else {
        return;
    };
    let metrics = |replica: &crate::processes::Replica| replica.metrics().expect("METRICS_LISTEN");
    let targets = [
        ("gateway", replicas.gateway.address),
        ("auth", metrics(&replicas.auth[0])),
        ("inventory", metrics(&replicas.inventory[0])),
    ];
    let Some(prometheus) = Prometheus::start(&targets) else {
        return;
    };
    // Made-up methods and paths, as any client may send: none may become a label value.
    for (method, path) in [("BREW", "/api/products/"), ("GET", "/made/up/path-x7/")] {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let _ = replicas
            .client
            .request(method, replicas.url(path))
            .send()
            .await;
    }
    let load = replicas.load(4);
    let client = reqwest::Client::new();
    let jobs = ["gateway", "auth", "inventory"];
    prometheus.until_positive(&client, "up", &jobs).await;
    prometheus
        .until_positive(
            &client,
            "sum by (job) (rate(http_requests_total[5s]))",
            &["gateway"],
        )
        .await;
    prometheus
        .until_positive(
            &client,
            "sum by (job) (rate(grpc_server_handled_total[5s]))",
            &["auth", "inventory"],
        )
        .await;
    // The gateway's calls as its client sees them, and inventory's to auth.
    prometheus
        .until_positive(
            &client,
            "sum by (job) (rate(grpc_client_handled_total[5s]))",
            &["gateway", "inventory"],
        )
        .await;
    for label in ["method", "route", "grpc_method", "grpc_service"] {
        let values = prometheus.label_values(&client, label).await;
        for made_up in ["BREW", "made", "path-x7"] {
            let leaked = values.iter().find(|value| value.contains(made_up));
            assert!(leaked.is_none(), "{label}: {leaked:?} in {values:?}");
        }
    }
    assert!(load.failures().is_empty(), "{:?}", load.failures());
}
