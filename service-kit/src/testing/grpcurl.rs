//! grpcurl, the client people call the services with, run by tests as they run it.

use std::process::{Command, Output};

/// Runs `grpcurl` with `args`; `None` (with a notice) where it is not installed, except under
/// CI, where it panics (`.ci/run` installs it).
pub fn grpcurl(args: &[&str]) -> Option<Output> {
    match Command::new("grpcurl").args(args).output() {
        Ok(output) => Some(output),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            assert!(
                !super::is_ci(std::env::var("CI").ok().as_deref()),
                "grpcurl is not installed: the test would pass without running"
            );
            eprintln!("skipped: grpcurl is not installed");
            None
        }
        Err(err) => panic!("grpcurl: {err}"),
    }
}

/// What `output` printed, both streams.
pub fn printed(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
