//! The outside load generators: wrk for HTTP/1.1 and h2load for gRPC, found on `PATH`, run as
//! child processes for one turn each, their output read back into a [`Summary`]. wrk reports
//! its latency distribution (`--latency`: p50 and p99 as it rounds them) and counts non-2xx
//! answers and socket errors; h2load writes every request's latency to a log file, from which
//! p50 and p99 are exact, and counts HTTP failures only (a gRPC error is a 200 with a status in
//! the trailers, so `drive` checks one call's status before the load).

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use crate::{grpc::GrpcRequest, http::HttpRequest, load::Summary};

/// The generators found, if any.
#[derive(Debug, Clone, Default)]
pub struct Tools {
    pub wrk: Option<PathBuf>,
    pub h2load: Option<PathBuf>,
}

impl Tools {
    pub fn find() -> Self {
        Self {
            wrk: on_path("wrk"),
            h2load: on_path("h2load"),
        }
    }

    /// What the run will use, for its heading.
    pub fn describe(&self) -> String {
        let name = |tool: &Option<PathBuf>, name: &str| match tool {
            Some(path) => path.display().to_string(),
            None => format!("no {name} on PATH (the bench's own generator instead)"),
        };
        format!(
            "HTTP load: {}; gRPC load: {}",
            name(&self.wrk, "wrk"),
            name(&self.h2load, "h2load")
        )
    }
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

/// `wrk -t{min(2,c)} -c{connections} -d{duration} --latency` on `request` (a Lua script sets a
/// method other than GET and the body); `warmup` first, unrecorded, when not zero.
pub fn wrk(
    wrk: &Path,
    request: &HttpRequest,
    connections: usize,
    warmup: Duration,
    duration: Duration,
) -> Result<Summary, String> {
    let mut script = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
    if request.method != "GET" {
        // A Lua long string, so the JSON needs no escaping.
        writeln!(
            script,
            "wrk.method = \"{}\"\nwrk.body = [==[{}]==]",
            request.method, request.body
        )
        .map_err(|e| e.to_string())?;
    }
    let run = |seconds: u64| {
        let mut command = Command::new(wrk);
        command.args([
            format!("-t{}", connections.min(2)),
            format!("-c{connections}"),
            format!("-d{seconds}s"),
            "--latency".to_owned(),
        ]);
        for (name, value) in &request.headers {
            command.arg("-H").arg(format!("{name}: {value}"));
        }
        command.arg("-s").arg(script.path()).arg(request.url());
        output(command)
    };
    if !warmup.is_zero() {
        run(warmup.as_secs().max(1))?;
    }
    parse_wrk(&run(duration.as_secs().max(1))?)
}

/// wrk's report: `Requests/sec`, the 50% and 99% lines of its distribution, non-2xx answers
/// and socket errors.
fn parse_wrk(report: &str) -> Result<Summary, String> {
    let field = |prefix: &str| {
        report
            .lines()
            .map(str::trim)
            .find_map(|line| line.strip_prefix(prefix))
            .map(str::trim)
    };
    let per_second: f64 = field("Requests/sec:")
        .and_then(|rate| rate.parse().ok())
        .ok_or_else(|| format!("no Requests/sec in wrk's report:\n{report}"))?;
    let latency = |at: &str| {
        field(at)
            .and_then(wrk_duration)
            .ok_or_else(|| format!("no {at} latency in wrk's report:\n{report}"))
    };
    let non_2xx: u64 = field("Non-2xx or 3xx responses:")
        .and_then(|count| count.parse().ok())
        .unwrap_or(0);
    // "Socket errors: connect 0, read 0, write 0, timeout 0"
    let socket: u64 = field("Socket errors:").map_or(0, |errors| {
        errors
            .split(',')
            .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
            .sum()
    });
    Ok(Summary {
        per_second,
        p50: latency("50%")?,
        p99: latency("99%")?,
        errors: non_2xx + socket,
        by: "wrk",
    })
}

/// wrk's `850.00us`, `2.47ms` or `1.02s`.
fn wrk_duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.trim().parse().ok()?;
    let seconds = match unit {
        "us" => number / 1e6,
        "ms" => number / 1e3,
        "s" => number,
        "m" => number * 60.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(seconds))
}

/// `h2load -c{connections} -m{streams} -t{min(2,c)} -D{duration} --warm-up-time` on `request`,
/// POSTing its gRPC frame with `content-type: application/grpc` and `te: trailers`.
pub fn h2load(
    h2load: &Path,
    request: &GrpcRequest,
    connections: usize,
    streams: usize,
    warmup: Duration,
    duration: Duration,
) -> Result<Summary, String> {
    let mut body = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
    body.write_all(&request.frame())
        .map_err(|e| e.to_string())?;
    let log = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
    let mut command = Command::new(h2load);
    command.args([
        format!("-c{connections}"),
        format!("-m{streams}"),
        format!("-t{}", connections.min(2)),
        format!("-D{}", duration.as_secs().max(1)),
        format!("--warm-up-time={}", warmup.as_secs().max(1)),
    ]);
    command.arg("-d").arg(body.path());
    command.arg(format!("--log-file={}", log.path().display()));
    let headers = [("content-type", "application/grpc"), ("te", "trailers")];
    for (name, value) in headers
        .into_iter()
        .chain(request.metadata.iter().map(|(n, v)| (*n, v.as_str())))
    {
        command.arg("-H").arg(format!("{name}: {value}"));
    }
    command.arg(request.url());
    // Whether or not h2load logs its warm-up, only the calls started after it count.
    let measured_from = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_micros())
        + warmup.as_secs().max(1) as u128 * 1_000_000;
    let report = output(command)?;
    let log = std::fs::read_to_string(log.path()).map_err(|e| e.to_string())?;
    parse_h2load(&report, &log, u64::try_from(measured_from).unwrap_or(0))
}

/// h2load's `finished in 2.00s, 63999.80 req/s, …`, its `requests:` counts, and the log's
/// latencies (the third column, microseconds) of the 2xx answers to calls started (the first
/// column, microseconds since the epoch) from `from_us` on.
fn parse_h2load(report: &str, log: &str, from_us: u64) -> Result<Summary, String> {
    let line = |prefix: &str| {
        report
            .lines()
            .find_map(|line| line.strip_prefix(prefix))
            .ok_or_else(|| format!("no {prefix:?} in h2load's report:\n{report}"))
    };
    let per_second: f64 = line("finished in ")?
        .split(", ")
        .find_map(|part| part.strip_suffix(" req/s"))
        .and_then(|rate| rate.parse().ok())
        .ok_or_else(|| format!("no req/s in h2load's report:\n{report}"))?;
    // "requests: N total, N started, N done, N succeeded, N failed, N errored, N timeout"
    let errors: u64 = line("requests: ")?
        .split(", ")
        .filter(|part| {
            part.ends_with(" failed") || part.ends_with(" errored") || part.ends_with(" timeout")
        })
        .filter_map(|part| part.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    let mut latencies: Vec<u64> = log
        .lines()
        .filter_map(|line| {
            let mut columns = line.split('\t');
            let started: u64 = columns.next()?.parse().ok()?;
            let status: u16 = columns.next()?.parse().ok()?;
            let micros = columns.next()?.trim().parse().ok()?;
            (started >= from_us && (200..300).contains(&status)).then_some(micros)
        })
        .collect();
    latencies.sort_unstable();
    let at = |q: f64| {
        let rank = (q * latencies.len() as f64).ceil() as usize;
        Duration::from_micros(
            latencies
                .get(rank.saturating_sub(1))
                .copied()
                .unwrap_or_default(),
        )
    };
    Ok(Summary {
        per_second,
        p50: at(0.50),
        p99: at(0.99),
        errors,
        by: "h2load",
    })
}

/// Runs `command` to its end: its standard output, or why it failed.
fn output(mut command: Command) -> Result<String, String> {
    let output = command
        .output()
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "{command:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrks_report() {
        let report = "  Latency Distribution\n     50%  410.00us\n     99%    2.47ms\n\
                      Non-2xx or 3xx responses: 3\n\
                      Socket errors: connect 0, read 2, write 0, timeout 1\n\
                      Requests/sec:  61728.50\n";
        let summary = parse_wrk(report).unwrap();
        assert_eq!(summary.per_second, 61728.5);
        assert_eq!(summary.p50, Duration::from_micros(410));
        assert_eq!(summary.p99, Duration::from_micros(2470));
        assert_eq!(summary.errors, 6);
    }

    #[test]
    fn reads_h2loads_report_and_log() {
        let report = "finished in 2.00s, 1500.50 req/s, 1.00MB/s\nrequests: 4 total, 4 \
                      started, 4 done, 3 succeeded, 1 failed, 0 errored, 0 timeout\n";
        let log = "1\t200\t5000\n2\t200\t100\n3\t200\t300\n4\t200\t200\n5\t500\t9000\n";
        let summary = parse_h2load(report, log, 2).unwrap();
        assert_eq!(summary.per_second, 1500.5);
        assert_eq!(summary.p50, Duration::from_micros(200));
        assert_eq!(summary.p99, Duration::from_micros(300));
        assert_eq!(summary.errors, 1);
    }
}
