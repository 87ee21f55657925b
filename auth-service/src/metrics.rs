//! auth's own Prometheus series, beside the gRPC, database and process series service-kit
//! records: logins by outcome, lockouts, the hashing queue, the verdict-cache holders and how
//! long withdrawing writes waited for them, and the purge. Names and help texts are here; the
//! modules that see each event call these functions. With no recorder (no `METRICS_LISTEN`),
//! they record nothing.

use std::time::Duration;

const LOGINS: &str = "auth_logins_total";
const LOCKOUTS: &str = "auth_lockouts_total";
const HASHING_WAITING: &str = "auth_hashing_waiting";
const HASHING_RUNNING: &str = "auth_hashing_running";
const HASHING_REFUSED: &str = "auth_hashing_refused_total";
const HOLDERS: &str = "auth_revocation_holders";
const REGISTERED: &str = "auth_revocation_holders_registered_total";
const WITHDRAW_WAIT: &str = "auth_revocation_wait_seconds";
const PURGED: &str = "auth_purged_total";

/// Describes every series above; given to `service_kit::metrics::describe_with`.
pub fn describe() {
    metrics::describe_counter!(LOGINS, "Password logins, by outcome: ok, failed, locked.");
    metrics::describe_counter!(LOCKOUTS, "Failed logins that locked their scope.");
    metrics::describe_gauge!(
        HASHING_WAITING,
        "Password hashes waiting for a hashing slot."
    );
    metrics::describe_gauge!(
        HASHING_RUNNING,
        "Password hashes running on the hashing threads."
    );
    metrics::describe_counter!(
        HASHING_REFUSED,
        "Password hashes refused as overloaded (queue full or waited too long)."
    );
    metrics::describe_gauge!(HOLDERS, "Verdict-cache holders registered on this replica.");
    metrics::describe_counter!(REGISTERED, "Verdict-cache holders' registrations.");
    metrics::describe_histogram!(
        WITHDRAW_WAIT,
        metrics::Unit::Seconds,
        "How long a withdrawing write waited for the holders' acknowledgements."
    );
    metrics::describe_counter!(PURGED, "Expired rows purged, by kind.");
}

/// How a password login ended.
#[derive(Debug, Clone, Copy)]
pub enum Login {
    Ok,
    Failed,
    Locked,
}

pub fn login(outcome: Login) {
    let outcome = match outcome {
        Login::Ok => "ok",
        Login::Failed => "failed",
        Login::Locked => "locked",
    };
    metrics::counter!(LOGINS, "outcome" => outcome).increment(1);
}

pub fn locked_out() {
    metrics::counter!(LOCKOUTS).increment(1);
}

#[expect(clippy::cast_precision_loss, reason = "bounded by the hashing limits")]
pub fn hashing(waiting: usize, running: usize) {
    metrics::gauge!(HASHING_WAITING).set(waiting as f64);
    metrics::gauge!(HASHING_RUNNING).set(running as f64);
}

pub fn hashing_refused() {
    metrics::counter!(HASHING_REFUSED).increment(1);
}

#[expect(clippy::cast_precision_loss, reason = "a handful of holders")]
pub fn holders(now: usize) {
    metrics::gauge!(HOLDERS).set(now as f64);
}

pub fn holder_registered() {
    metrics::counter!(REGISTERED).increment(1);
}

pub fn withdraw_waited(waited: Duration) {
    metrics::histogram!(WITHDRAW_WAIT).record(waited);
}

pub fn purged_recovery(letters: u64, recovery_tokens: u64) {
    for (kind, count) in [("mail", letters), ("recovery_tokens", recovery_tokens)] {
        metrics::counter!(PURGED, "kind" => kind).increment(count);
    }
}

pub fn purged(credentials: u64, failures: u64, idempotency_keys: u64, audit_events: u64) {
    for (kind, count) in [
        ("credentials", credentials),
        ("failures", failures),
        ("idempotency_keys", idempotency_keys),
        ("audit_events", audit_events),
    ] {
        metrics::counter!(PURGED, "kind" => kind).increment(count);
    }
}
