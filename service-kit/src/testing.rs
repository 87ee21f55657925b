//! Test support: every test gets a database of its own, on SQLite (a file in a temporary
//! folder) or on PostgreSQL (a fresh database on the server named by `TEST_POSTGRES_URL`,
//! dropped when the test ends), so tests never depend on each other or on their order; servers
//! run in the test's runtime until stopped ([`Running`]); and a binary's commands that read
//! standard input are fed it ([`output_with_input`]).
//!
//! Faults between services are injected by [`fault_proxy`], a proxy a test puts between a
//! client and a server; [`race`] runs calls at once and says whether they really overlapped.
//! [`tls_postgres`] starts a PostgreSQL server of a test's own that takes TLS only;
//! [`certificates`] makes a throwaway CA and what it signs; [`grpcurl`] runs the real client;
//! [`scrape`] reads and checks what `/metrics` exposes; [`smtp`] is a real mail server.
//!
//! Without `TEST_POSTGRES_URL` the PostgreSQL half is skipped with a notice, except under CI
//! (`CI` set, as `.ci/run` runs), where a skipped half would pass unseen: there it panics.

use std::{
    future::Future,
    io::Write as _,
    pin::Pin,
    process::{Command, Output, Stdio},
    sync::atomic::{AtomicU64, Ordering},
};

use sqlx::{AnyConnection, Connection};
use tokio::{sync::oneshot, task::JoinHandle};

pub mod certificates;
pub mod fault_proxy;
pub mod grpcurl;
pub mod race;
pub mod scrape;
pub mod settings;
pub mod smtp;
pub mod tls_postgres;

/// The variable naming an administrative PostgreSQL URL, e.g.
/// `postgres://postgres@127.0.0.1:5432/postgres`. `.ci/run` always sets it.
pub const POSTGRES_URL_VAR: &str = "TEST_POSTGRES_URL";

/// The variable choosing the backend of tests that run on one only (the gateway's):
/// `postgres`, or `sqlite` (the default).
pub const BACKEND_VAR: &str = "TEST_BACKEND";

/// Whether `CI` (its value, if set) says this runs under CI: anything but empty, `0` or `false`.
fn is_ci(value: Option<&str>) -> bool {
    value.is_some_and(|value| !matches!(value, "" | "0" | "false"))
}

/// A tool a test needs (`what`: its name, and what goes unchecked) is not installed: a notice,
/// so that the test returns having checked nothing, except under CI (`CI` set), where such a
/// pass would go unseen: there it panics.
pub fn tool_missing(what: &str) {
    assert!(
        !is_ci(std::env::var("CI").ok().as_deref()),
        "{what} is not installed under CI: the test would pass without running"
    );
    eprintln!("skipped: {what} is not installed");
}

/// What a child process printed: its standard output, then its standard error.
pub fn printed(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The administrative PostgreSQL URL, or `None` (with a notice) to skip.
///
/// # Panics
///
/// Under CI when there is none: a PostgreSQL test that passes without running proves nothing.
fn admin_url_or_skip(url: Option<String>, under_ci: bool) -> Option<String> {
    if url.is_none() {
        assert!(
            !under_ci,
            "{POSTGRES_URL_VAR} is not set under CI: the PostgreSQL tests would pass without \
             running; set it to an administrative PostgreSQL URL"
        );
        eprintln!("skipped: {POSTGRES_URL_VAR} is not set");
    }
    url
}

/// Logs for tests: silent unless asked (`TEST_LOG=1 cargo test` shows every service's log).
pub fn init_logs() {
    if std::env::var_os("TEST_LOG").is_some() {
        crate::telemetry::init(crate::telemetry::LogFormat::Plain);
    }
}

/// The future a server is handed to know when to stop.
pub type Shutdown = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A server running in the test's runtime (each service's `Application`, bound on port 0),
/// and the means to stop it. Dropping it stops the server too, without waiting for it.
#[derive(Debug)]
pub struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Running {
    /// Spawns `serve`, handing it the future that resolves when the server is to stop: at
    /// [`Running::stop`] or when this is dropped.
    pub fn spawn<Serve>(serve: impl FnOnce(Shutdown) -> Serve) -> Self
    where
        Serve: Future<Output = ()> + Send + 'static,
    {
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = Box::pin(async {
            // A dropped sender resolves it as well.
            let _ = stopped.await;
        });
        Self {
            stop,
            task: tokio::spawn(serve(shutdown)),
        }
    }

    /// Stops the server and waits until it has drained its calls and closed its socket.
    ///
    /// # Panics
    ///
    /// If the server panicked (a test's `expect` on its result, for one).
    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.expect("the server task ends cleanly");
    }
}

/// Runs `command` with `input` on its standard input, closed after it, and waits for it to end:
/// its status and everything it printed. For a binary's own commands, as an operator pipes
/// into them (`import-django -`, a password to `createsuperuser`).
///
/// # Panics
///
/// If the program cannot be started, or its input not written.
pub fn output_with_input(command: &mut Command, input: &str) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut stdin = child.stdin.take().expect("a piped standard input");
    stdin
        .write_all(input.as_bytes())
        .expect("the input is written");
    // Closed, so that a command reading to the end stops waiting.
    drop(stdin);
    child.wait_with_output().expect("the binary ends")
}

/// A database that exists for one test.
#[derive(Debug)]
pub struct TestDatabase {
    url: String,
    cleanup: Cleanup,
}

#[derive(Debug)]
enum Cleanup {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

impl TestDatabase {
    /// A new SQLite file in a temporary folder.
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let url = format!("sqlite://{}", dir.path().join("test.db").display());
        Self {
            url,
            cleanup: Cleanup::Sqlite(dir),
        }
    }

    /// A new, empty PostgreSQL database, or `None` (with a notice) when `TEST_POSTGRES_URL` is
    /// unset.
    ///
    /// # Panics
    ///
    /// Under CI when `TEST_POSTGRES_URL` is unset: a PostgreSQL test that passes without running
    /// proves nothing.
    pub async fn postgres() -> Option<Self> {
        let under_ci = is_ci(std::env::var("CI").ok().as_deref());
        let admin_url = admin_url_or_skip(std::env::var(POSTGRES_URL_VAR).ok(), under_ci)?;
        Some(
            Self::postgres_on(&admin_url, "test")
                .await
                .unwrap_or_else(|err| panic!("{POSTGRES_URL_VAR}: {err}")),
        )
    }

    /// A new, empty database called `{label}_…` on the PostgreSQL server `admin_url` names,
    /// dropped with the value (also for the benchmark, which takes its URL elsewhere).
    pub async fn postgres_on(admin_url: &str, label: &str) -> Result<Self, String> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "{label}_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            crate::request_id::generate().get(..8).unwrap_or_default()
        );
        sqlx::any::install_default_drivers();
        let mut admin = AnyConnection::connect(admin_url)
            .await
            .map_err(|err| format!("the PostgreSQL URL does not connect: {err}"))?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .map_err(|err| format!("CREATE DATABASE {name}: {err}"))?;
        Ok(Self {
            url: replace_database(admin_url, &name),
            cleanup: Cleanup::Postgres {
                admin_url: admin_url.to_owned(),
                name,
            },
        })
    }

    /// A new database on the backend [`BACKEND_VAR`] names, SQLite unless it says `postgres`.
    ///
    /// # Panics
    ///
    /// When it names another backend, or `postgres` without `TEST_POSTGRES_URL`.
    pub async fn of_chosen_backend() -> Self {
        match std::env::var(BACKEND_VAR).as_deref() {
            Err(_) | Ok("" | "sqlite") => Self::sqlite(),
            Ok("postgres") => match Self::postgres().await {
                Some(db) => db,
                None => panic!("{BACKEND_VAR}=postgres needs {POSTGRES_URL_VAR}"),
            },
            Ok(other) => panic!("{BACKEND_VAR}={other}: expected sqlite or postgres"),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}

/// `admin_url` with its database path replaced by `name`.
fn replace_database(admin_url: &str, name: &str) -> String {
    let (base, query) = match admin_url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (admin_url, None),
    };
    let authority_end = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_end..]
        .find('/')
        .map_or(base.len(), |i| authority_end + i);
    let mut url = format!("{}/{name}", &base[..path_start]);
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    url
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Cleanup::Postgres { admin_url, name } = &self.cleanup else {
            return;
        };
        let (admin_url, statement) = (
            admin_url.clone(),
            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        );
        // Drop runs inside the test's runtime, which cannot be blocked on; a thread with its own
        // runtime does the async cleanup.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut admin = AnyConnection::connect(&admin_url).await?;
                sqlx::query(sqlx::AssertSqlSafe(statement))
                    .execute(&mut admin)
                    .await?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test database {name}");
        }
    }
}

/// Runs each named `async fn(TestDatabase)` once on SQLite and once on PostgreSQL (skipped with
/// a notice when `TEST_POSTGRES_URL` is unset, failing under CI).
///
/// `on_both_backends!(start => a, b)` runs `async fn a(app)` with what `async fn start(db)`
/// (in the same module) makes of each database: for tests that all begin by starting the same
/// thing.
#[macro_export]
macro_rules! on_both_backends {
    ($start:ident => $($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = $crate::testing::TestDatabase::sqlite();
                    super::$name(super::$start(db).await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(db) = $crate::testing::TestDatabase::postgres().await {
                        super::$name(super::$start(db).await).await;
                    }
                }
            )*
        }
    };
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::testing::TestDatabase::sqlite()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(db) = $crate::testing::TestDatabase::postgres().await {
                        super::$name(db).await;
                    }
                }
            )*
        }
    };
}

/// [`on_both_backends!`] for tests of what only PostgreSQL serves (several replicas on one
/// database): a module `postgres` with one test per name.
#[macro_export]
macro_rules! on_postgres {
    ($($name:ident),* $(,)?) => {
        mod postgres_only {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(db) = $crate::testing::TestDatabase::postgres().await {
                        super::$name(db).await;
                    }
                }
            )*
        }
    };
}

/// The command line of the binary at `path`, named `name`: `--version` prints its name and
/// version, and `--help` lists the settings it reads, the subscriber's too, without serving.
pub fn assert_command_line(path: &str, name: &str, version: &str) {
    let run = |argument: &str| {
        let output = Command::new(path)
            .arg(argument)
            .stdin(Stdio::null())
            .output()
            .expect("the binary runs");
        assert!(
            output.status.success(),
            "{name} {argument}: {}",
            printed(&output)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    assert_eq!(run("--version").trim(), format!("{name} {version}"));
    let help = run("--help");
    for listed in crate::telemetry::SETTINGS.map(|(setting, _)| setting) {
        assert!(
            help.contains(listed),
            "{name} --help does not list {listed}: {help}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::{admin_url_or_skip, is_ci, replace_database};

    #[test]
    fn replaces_the_database_and_keeps_the_query() {
        assert_eq!(
            replace_database("postgres://u@h:5432/postgres?sslmode=disable", "t1"),
            "postgres://u@h:5432/t1?sslmode=disable"
        );
        assert_eq!(
            replace_database("postgres://u@h", "t2"),
            "postgres://u@h/t2"
        );
    }

    #[test]
    fn a_missing_postgres_url_fails_under_ci_and_skips_elsewhere() {
        let url = "postgres://u@h/postgres".to_owned();
        assert_eq!(admin_url_or_skip(Some(url.clone()), true), Some(url));
        assert_eq!(admin_url_or_skip(None, false), None);
        let panic = std::panic::catch_unwind(|| admin_url_or_skip(None, true))
            .expect_err("no URL under CI is a failure");
        let message = panic.downcast_ref::<String>().expect("a message");
        assert!(
            message.contains("TEST_POSTGRES_URL is not set under CI"),
            "{message}"
        );
    }

    #[test]
    fn ci_is_any_value_but_empty_zero_or_false() {
        for value in ["true", "1", "yes"] {
            assert!(is_ci(Some(value)), "{value}");
        }
        for value in [None, Some(""), Some("0"), Some("false")] {
            assert!(!is_ci(value), "{value:?}");
        }
    }
}
