//! A PostgreSQL server of a test's own that takes TLS connections only: initialised in a
//! temporary folder (`initdb`, `pg_ctl`, as the PostgreSQL user when the test runs as root),
//! with a certificate for `localhost` and `127.0.0.1` signed by a throwaway CA (`openssl`), and
//! a `pg_hba.conf` with `hostssl` lines only, so a plaintext connection is refused. Stopped
//! when dropped.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::Command,
};

use tempfile::TempDir;

use super::certificates::{self, run};

/// The PostgreSQL user that owns the server's files when the test runs as root (`initdb`
/// refuses root).
const SERVER_USER: &str = "postgres";

pub struct TlsPostgres {
    folder: TempDir,
    bin: PathBuf,
    port: u16,
}

impl TlsPostgres {
    /// Starts the server; `None` (with a notice) where PostgreSQL's server programs are not
    /// installed, except under CI, where it panics.
    ///
    /// # Panics
    ///
    /// When a step of the set-up fails, with what it printed.
    pub fn start() -> Option<Self> {
        let Some(bin) = server_programs() else {
            super::tool_missing("PostgreSQL's initdb");
            return None;
        };
        let folder = tempfile::tempdir().expect("a temporary folder");
        let dir = folder.path();
        make_certificates(dir, "ca", "server");
        let port = free_port();
        if running_as_root() {
            run(Command::new("chown").args(["-R", SERVER_USER]).arg(dir));
        }
        let data = dir.join("data");
        run(as_server_user(&bin.join("initdb"))
            .args(["--auth=trust", "--username=postgres", "--no-sync", "-D"])
            .arg(&data));
        std::fs::write(
            data.join("pg_hba.conf"),
            "hostssl all all 127.0.0.1/32 trust\nhostssl all all ::1/128 trust\n",
        )
        .expect("pg_hba.conf");
        let options = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={dir} -c ssl=on \
             -c ssl_cert_file={dir}/server.pem -c ssl_key_file={dir}/server.key -c fsync=off",
            dir = dir.display()
        );
        run(as_server_user(&bin.join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .args(["-w", "-l"])
            .arg(dir.join("server.log"))
            .args(["-o", &options, "start"]));
        Some(Self { folder, bin, port })
    }

    /// The URL of the server's `postgres` database with `sslmode` (and the CA to verify it
    /// against, for the modes that verify), as a service is configured.
    pub fn url(&self, sslmode: &str) -> String {
        self.url_trusting(sslmode, &self.ca())
    }

    /// [`Self::url`] verifying the server against `ca`, a PEM file.
    pub fn url_trusting(&self, sslmode: &str, ca: &Path) -> String {
        format!(
            "postgres://postgres@localhost:{}/postgres?sslmode={sslmode}&sslrootcert={}",
            self.port,
            ca.display()
        )
    }

    /// Runs the calling test binary's PostgreSQL half (every test under a `postgres::` module,
    /// as `on_both_backends!` names them) again, in a child process whose
    /// `TEST_POSTGRES_URL` names this server with `sslmode=verify-full`, so that a suite shows
    /// it runs whole over TLS, not one connection only.
    ///
    /// # Panics
    ///
    /// Unless every test passed and at least `at_least` ran.
    pub fn rerun_postgres_half(&self, at_least: usize) {
        let output = Command::new(std::env::current_exe().expect("the test binary"))
            .args(["postgres::", "--test-threads=2"])
            .env(super::POSTGRES_URL_VAR, self.url("verify-full"))
            .output()
            .expect("the test binary runs");
        let printed = super::printed(&output);
        assert!(output.status.success(), "{printed}");
        let ran = printed
            .lines()
            .filter(|line| line.contains("postgres::") && line.ends_with("ok"));
        assert!(
            ran.count() >= at_least,
            "the PostgreSQL half did not run: {printed}"
        );
    }

    /// The CA that signed the server's certificate.
    pub fn ca(&self) -> PathBuf {
        self.folder.path().join("ca.pem")
    }

    /// Another CA, which signed nothing of this server's: verifying against it must fail.
    pub fn other_ca(&self) -> PathBuf {
        let dir = self.folder.path().join("other");
        std::fs::create_dir_all(&dir).expect("a folder");
        make_certificates(&dir, "ca", "unused");
        dir.join("ca.pem")
    }
}

impl Drop for TlsPostgres {
    fn drop(&mut self) {
        let _ = as_server_user(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.folder.path().join("data"))
            .args(["-m", "immediate", "stop"])
            .output();
    }
}

/// The folder of `initdb` and `pg_ctl`: Debian keeps them out of `PATH`.
fn server_programs() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| Some(entry.ok()?.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    found.sort();
    found.pop()
}

/// A CA (`{ca}.pem`, `{ca}.key`) and a certificate it signs for `localhost` and `127.0.0.1`
/// (`{name}.pem`, `{name}.key`), in `dir`.
fn make_certificates(dir: &Path, ca: &str, name: &str) {
    certificates::make_ca(dir, ca);
    certificates::issue(dir, ca, name, "DNS:localhost,IP:127.0.0.1");
    // PostgreSQL refuses a key others may read.
    run(Command::new("chmod")
        .arg("600")
        .arg(dir.join(format!("{name}.key"))));
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| output.stdout.trim_ascii() == b"0")
}

/// `program`, run as the PostgreSQL user when this runs as root.
fn as_server_user(program: &Path) -> Command {
    if running_as_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", SERVER_USER, "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}
