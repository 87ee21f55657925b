//! Replicas as processes of their own, so that a test can kill one with no warning (SIGKILL) or
//! ask it to leave (SIGTERM): this test binary, started again with [`ROLE`] set, runs one
//! service's library server as its `main` does (configuration from the environment, JSON logs
//! on stderr, `service_kit::shutdown::signal`). The parent reads each child's log: its bound
//! address, the calls it served (the access line of every gRPC call), and its balancers' news
//! (`replica in`, `replica out`).
//!
//! In `fleet`, [`Replicas`] starts auth and inventory replicas on one database each and a gateway in front
//! of them; [`Load`] keeps reads going through the gateway and counts what fails. A test of
//! writes sent into a kill takes the same pieces: [`Replicas::post`] (or `client` and `url`)
//! with an `Idempotency-Key`, then [`Replica::kill`].

use service_kit::program::Server;
use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader},
    net::SocketAddr,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::Value;

mod fleet;

pub use fleet::{Load, Replicas};

/// The variable that makes this binary a replica: `auth`, `inventory` or `gateway`.
const ROLE: &str = "REPLICA_ROLE";

/// How long a replica may take to start (migrations included) before the test gives up.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The child's side: serves as the service [`ROLE`] names until a signal, then exits. Not a
/// test of its own: ignored in an ordinary run, so it is never counted as one that passed.
#[test]
#[ignore = "a replica's main, run as a child process by the replica tests"]
fn replica_process() {
    let role = std::env::var(ROLE).expect("REPLICA_ROLE names the service to run");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async move {
        let service = match role.as_str() {
            "auth" => "auth-service",
            "inventory" => "inventory-service",
            _ => "gateway",
        };
        let format = service_kit::telemetry::LogFormat::Json;
        service_kit::telemetry::init_with_traces(format, service).expect("the OTEL_* settings");
        let shutdown = service_kit::shutdown::signal();
        match role.as_str() {
            "auth" => {
                let app =
                    auth_service::Application::build(auth_service::Config::from_env().unwrap())
                        .await
                        .expect("auth starts");
                let metrics = app.metrics_addr().map(|addr| addr.to_string());
                tracing::info!(address = %app.local_addr(), metrics, "replica listening");
                app.run_until_stopped(shutdown).await.expect("auth serves");
            }
            "inventory" => {
                let config = inventory_service::Config::from_env().unwrap();
                let app = inventory_service::Application::build(config)
                    .await
                    .expect("inventory starts");
                let metrics = app.metrics_addr().map(|addr| addr.to_string());
                tracing::info!(address = %app.local_addr(), metrics, "replica listening");
                app.run_until_stopped(shutdown)
                    .await
                    .expect("inventory serves");
            }
            "gateway" => {
                let app = gateway::Application::build(gateway::Config::from_env().unwrap())
                    .await
                    .expect("the gateway starts");
                tracing::info!(address = %app.local_addr(), "replica listening");
                app.run_until_stopped(shutdown)
                    .await
                    .expect("the gateway serves");
            }
            other => panic!("{ROLE}={other}"),
        }
        service_kit::telemetry::shutdown();
    });
    // Past the runtime, so nothing of the test harness runs after the server.
    std::process::exit(0);
}

/// What one child's log said, as it said it.
#[derive(Debug, Default)]
struct Log {
    /// Calls answered OK, by gRPC method.
    served: BTreeMap<String, u64>,
    /// `replica in` / `replica out`: when the parent read it, the message, the service, the
    /// address.
    changes: Vec<(Instant, String, String, SocketAddr)>,
    /// How many failed calls this process's clients sent a second time.
    resent: u64,
    address: Option<SocketAddr>,
    /// Where it serves `/metrics` of its own (`METRICS_LISTEN`), if it does.
    metrics: Option<SocketAddr>,
}

/// One running replica.
pub struct Replica {
    pub role: &'static str,
    pub address: SocketAddr,
    child: Child,
    log: Arc<Mutex<Log>>,
    /// When the process was seen to exit, once it has.
    exited: Arc<Mutex<Option<Instant>>>,
}

impl Replica {
    fn start(role: &'static str, env: &[(&str, String)]) -> Self {
        let mut command = Command::new(std::env::current_exe().expect("this test binary"));
        command
            .args([
                "processes::replica_process",
                "--exact",
                "--ignored",
                "--nocapture",
            ])
            .env(ROLE, role)
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "info,service_kit::upstream=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("the replica starts");
        let log = Arc::new(Mutex::new(Log::default()));
        let stderr = child.stderr.take().expect("a piped stderr");
        let (ready, listening) = std::sync::mpsc::channel();
        let reader_log = log.clone();
        std::thread::spawn(move || {
            let mut ready = Some(ready);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let Ok(entry) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                let mut log = reader_log.lock().unwrap();
                read_entry(&mut log, &entry);
                if let (Some(address), Some(_)) = (log.address, ready.as_ref()) {
                    let _ = ready.take().unwrap().send(address);
                }
            }
        });
        let address = listening
            .recv_timeout(START_TIMEOUT)
            .unwrap_or_else(|_| panic!("the {role} replica did not start"));
        Self {
            role,
            address,
            child,
            log,
            exited: Arc::new(Mutex::new(None)),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Calls this replica answered OK, of every method.
    pub fn served(&self) -> u64 {
        self.log.lock().unwrap().served.values().sum()
    }

    /// Where this replica serves `/metrics` on a port of its own (`METRICS_LISTEN`), if it does.
    pub fn metrics(&self) -> Option<SocketAddr> {
        self.log.lock().unwrap().metrics
    }

    /// How many failed calls this replica's own clients sent again.
    pub fn resent(&self) -> u64 {
        self.log.lock().unwrap().resent
    }

    /// When this replica's balancer last took `address` out, if it did.
    pub fn took_out(&self, address: SocketAddr) -> Option<Instant> {
        self.change(address, "replica out")
    }

    fn change(&self, address: SocketAddr, message: &str) -> Option<Instant> {
        let log = self.log.lock().unwrap();
        log.changes
            .iter()
            .rev()
            .find(|(_, said, _, at)| said == message && *at == address)
            .map(|(when, ..)| *when)
    }

    /// SIGKILL: gone at once, its sockets closed by the kernel.
    pub fn kill(&mut self) -> Instant {
        let killed = Instant::now();
        self.child.kill().expect("the replica is killed");
        self.child.wait().expect("the replica is reaped");
        *self.exited.lock().unwrap() = Some(Instant::now());
        killed
    }

    /// SIGTERM: the replica hands over and exits by itself; a thread notes when.
    pub fn terminate(&mut self) -> Instant {
        let asked = Instant::now();
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "SIGTERM was sent");
        asked
    }

    /// Waits for the replica to exit (after [`Replica::terminate`]); when it did, and whether it
    /// exited cleanly.
    pub fn wait(&mut self) -> (Instant, bool) {
        let status = self.child.wait().expect("the replica exits");
        let when = Instant::now();
        *self.exited.lock().unwrap() = Some(when);
        (when, status.success())
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if self.exited.lock().unwrap().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn read_entry(log: &mut Log, entry: &Value) {
    let message = entry["message"].as_str().unwrap_or_default();
    match message {
        "replica listening" => {
            log.address = entry["address"].as_str().and_then(|a| a.parse().ok());
            log.metrics = entry["metrics"].as_str().and_then(|a| a.parse().ok());
        }
        "call" if entry["grpc_status"] == "0" => {
            let method = entry["spans"]
                .as_array()
                .into_iter()
                .flatten()
                .find_map(|span| span["method"].as_str())
                .unwrap_or("?");
            *log.served.entry(method.to_owned()).or_default() += 1;
        }
        "replica in" | "replica out" => {
            let address = entry["address"].as_str().and_then(|a| a.parse().ok());
            if let Some(address) = address {
                let service = entry["service"].as_str().unwrap_or_default().to_owned();
                log.changes
                    .push((Instant::now(), message.to_owned(), service, address));
            }
        }
        "sending again, to another replica" => log.resent += 1,
        _ => {}
    }
}
