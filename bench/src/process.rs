//! The services under test as child processes: the release binaries, started with an
//! environment of our choosing on port 0; the bound address is read from each one's own
//! start-up log line, and its memory from `/proc`.

use std::{
    fs::File,
    io::{BufRead, BufReader, Write},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

/// How long a service may take from exec to listening (PostgreSQL migrations included).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// One of the three binaries, and how it says where it listens.
#[derive(Debug, Clone, Copy)]
pub struct Program {
    pub binary: &'static str,
    listen_var: &'static str,
    /// The `message` of the JSON log line that carries the bound address, and its field.
    ready_message: &'static str,
    address_field: &'static str,
    /// `RUST_LOG` for the run: warnings, plus the one start-up line. The per-call `info` lines
    /// stay off, so the figures are the service's, not those of writing a line per request.
    pub log_filter: &'static str,
}

pub const AUTH: Program = Program {
    binary: "auth-service",
    listen_var: "AUTH_LISTEN",
    ready_message: "auth service listening",
    address_field: "addr",
    log_filter: "warn,auth_service::server=info",
};

pub const INVENTORY: Program = Program {
    binary: "inventory-service",
    listen_var: "INVENTORY_LISTEN",
    ready_message: "inventory service ready",
    address_field: "local_addr",
    log_filter: "warn,inventory_service::server=info",
};

pub const GATEWAY: Program = Program {
    binary: "gateway",
    listen_var: "GATEWAY_LISTEN",
    ready_message: "gateway listening",
    address_field: "address",
    log_filter: "warn,gateway::server=info",
};

/// Where the release binaries are: next to this one, in the same target directory.
#[derive(Debug, Clone)]
pub struct Binaries {
    dir: PathBuf,
}

impl Binaries {
    /// Under `cargo run`, first brings the service binaries up to date with the same cargo and
    /// profile (`cargo run -p bench` builds only the bench), so one command measures the code
    /// as it is.
    pub fn build_and_locate() -> Result<Self, String> {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
        let dir = exe
            .parent()
            .ok_or("this binary has no directory")?
            .to_path_buf();
        // Judged by how this binary was compiled, not by where it lies: a copy of a release
        // build (as in an A/B of two builds) measures as well as the original.
        let release = !cfg!(debug_assertions);
        if !release {
            eprintln!("warning: not a release build; the figures mean little (use --release)");
        }
        if let Some(cargo) = std::env::var_os("CARGO") {
            let mut build = Command::new(cargo);
            build.args(["build", "--quiet", "--bins"]);
            for binary in [AUTH.binary, INVENTORY.binary, GATEWAY.binary] {
                build.args(["-p", binary]);
            }
            if release {
                build.arg("--release");
            }
            let status = build
                .status()
                .map_err(|e| format!("cannot run cargo build: {e}"))?;
            if !status.success() {
                return Err(format!("building the services failed ({status})"));
            }
        }
        let binaries = Self { dir };
        for program in [AUTH, INVENTORY, GATEWAY] {
            let path = binaries.path(program.binary);
            if !path.exists() {
                return Err(format!(
                    "{} is missing: cargo build --release -p {}",
                    path.display(),
                    program.binary
                ));
            }
        }
        Ok(binaries)
    }

    pub fn path(&self, binary: &str) -> PathBuf {
        self.dir.join(binary)
    }

    /// Runs `program` with a subcommand to completion (e.g. `createsuperuser`).
    pub fn run(
        &self,
        program: Program,
        args: &[&str],
        env: &[(&'static str, String)],
    ) -> Result<(), String> {
        let output = Command::new(self.path(program.binary))
            .args(args)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", program.binary))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{} {} failed ({}): {}",
                program.binary,
                args.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ))
        }
    }
}

/// A running service process; killed when dropped.
#[derive(Debug)]
pub struct Service {
    pub name: &'static str,
    child: Child,
    addr: SocketAddr,
    env: Vec<(&'static str, String)>,
    /// `VmRSS` right after the service said it listens.
    pub idle: Memory,
}

impl Service {
    /// Starts `program` with exactly `env` (nothing inherited, so a shell's settings cannot
    /// change the figures) and waits until it listens. Its log goes to `log_dir`.
    pub fn start(
        binaries: &Binaries,
        program: Program,
        name: &'static str,
        env: Vec<(&'static str, String)>,
        log_dir: &Path,
    ) -> Result<Self, String> {
        let log_path = log_dir.join(format!("{name}.log"));
        let log = File::create(&log_path).map_err(|e| format!("cannot write a log: {e}"))?;
        let mut child = Command::new(binaries.path(program.binary))
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env(program.listen_var, "127.0.0.1:0")
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", program.log_filter)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", program.binary))?;
        let stderr = child.stderr.take().ok_or("no stderr pipe")?;
        let (found, address) = mpsc::channel();
        // The pipe must be drained for as long as the service runs, or it blocks on a full one.
        std::thread::spawn(move || copy_log(stderr, log, program, found));
        let addr = match address.recv_timeout(START_TIMEOUT) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                return Err(format!(
                    "{name} did not start listening; its log ({}):\n{log}",
                    log_path.display()
                ));
            }
        };
        let mut service = Self {
            name,
            child,
            addr,
            env,
            idle: Memory::default(),
        };
        service.idle = service.memory();
        Ok(service)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A variable of the environment the service was started with.
    pub fn env(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Resident memory now and at its peak since start (or since [`Service::reset_peak`]).
    pub fn memory(&self) -> Memory {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or(0)
        };
        Memory {
            rss_kib: field("VmRSS:"),
            peak_kib: field("VmHWM:"),
        }
    }

    /// Sets the peak back to the current RSS (Linux's `clear_refs` 5), so that each scenario's
    /// peak is its own.
    pub fn reset_peak(&self) {
        let _ = std::fs::write(format!("/proc/{}/clear_refs", self.child.id()), "5");
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Copies the service's log lines to its file, and sends the bound address once it is logged.
fn copy_log(
    stderr: impl std::io::Read,
    mut log: File,
    program: Program,
    found: mpsc::Sender<SocketAddr>,
) {
    let mut found = Some(found);
    for line in BufReader::new(stderr).lines() {
        let Ok(line) = line else { break };
        let _ = writeln!(log, "{line}");
        if found.is_some()
            && let Some(addr) = listening_address(&line, program)
            && let Some(found) = found.take()
        {
            let _ = found.send(addr);
        }
    }
}

fn listening_address(line: &str, program: Program) -> Option<SocketAddr> {
    let event: serde_json::Value = serde_json::from_str(line).ok()?;
    if event.get("message")?.as_str()? != program.ready_message {
        return None;
    }
    event.get(program.address_field)?.as_str()?.parse().ok()
}

/// Resident set sizes from `/proc/PID/status`, in KiB.
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    pub rss_kib: u64,
    pub peak_kib: u64,
}

/// KiB as MiB with one decimal.
pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}
