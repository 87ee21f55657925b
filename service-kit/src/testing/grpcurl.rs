//! grpcurl, the client people call the services with, run by tests as they run it.

use std::process::{Command, Output};

/// Runs `grpcurl` with `args`; `None` (with a notice) where it is not installed, except under
/// CI, where it panics (`.ci/run` installs it).
pub fn grpcurl(args: &[&str]) -> Option<Output> {
    match Command::new("grpcurl").args(args).output() {
        Ok(output) => Some(output),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            super::tool_missing("grpcurl");
            None
        }
        Err(err) => panic!("grpcurl: {err}"),
    }
}
