//! A verdict cache's Prometheus series, labelled by its holder (`gateway`, `inventory`):
//! lookups by result, entries, evictions, and its trust in auth's lease (granted, lost).

use metrics::{Counter, Gauge};

const LOOKUPS: &str = "verdict_cache_lookups_total";
const ENTRIES: &str = "verdict_cache_entries";
const EVICTIONS: &str = "verdict_cache_evictions_total";
const LEASES: &str = "verdict_cache_leases_total";

fn describe() {
    metrics::describe_counter!(LOOKUPS, "Verdict cache lookups, by holder and result.");
    metrics::describe_gauge!(ENTRIES, "Verdicts cached, by holder.");
    metrics::describe_counter!(
        EVICTIONS,
        "Verdicts dropped: revoked, expired, or forgotten when trust ended."
    );
    metrics::describe_counter!(
        LEASES,
        "Leases on auth's revocation feed: granted (one per acknowledgement) and lost."
    );
}

/// The handles a cache records through, registered once, when it starts.
pub(super) struct Series {
    pub hits: Counter,
    pub misses: Counter,
    pub entries: Gauge,
    pub evictions: Counter,
    /// Acknowledgements auth granted a lease for.
    pub granted: Counter,
    /// Times trust ran out, or auth turned caching off, while the cache trusted its lease.
    pub lost: Counter,
}

impl Series {
    pub fn new(holder: &'static str) -> Self {
        crate::metrics::describe_with(describe);
        Self {
            hits: metrics::counter!(LOOKUPS, "holder" => holder, "result" => "hit"),
            misses: metrics::counter!(LOOKUPS, "holder" => holder, "result" => "miss"),
            entries: metrics::gauge!(ENTRIES, "holder" => holder),
            evictions: metrics::counter!(EVICTIONS, "holder" => holder),
            granted: metrics::counter!(LEASES, "holder" => holder, "outcome" => "granted"),
            lost: metrics::counter!(LEASES, "holder" => holder, "outcome" => "lost"),
        }
    }
}

impl Default for Series {
    /// Records nothing (a cache built by a test).
    fn default() -> Self {
        Self {
            hits: Counter::noop(),
            misses: Counter::noop(),
            entries: Gauge::noop(),
            evictions: Counter::noop(),
            granted: Counter::noop(),
            lost: Counter::noop(),
        }
    }
}
