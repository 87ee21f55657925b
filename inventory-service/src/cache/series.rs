//! The product cache's Prometheus series: reads by how they were answered, the copy's size,
//! its drops, its leases, and how long a write waited for every replica to drop its copy.

use metrics::{Counter, Gauge, Histogram};

const READS: &str = "product_cache_reads_total";
const PRODUCTS: &str = "product_cache_products";
const DROPS: &str = "product_cache_drops_total";
const LEASES: &str = "product_cache_leases_total";
const SETTLE: &str = "product_cache_write_settle_seconds";

fn describe() {
    metrics::describe_counter!(READS, "Product reads, by how they were answered.");
    metrics::describe_gauge!(PRODUCTS, "Products in the cached copy (0: no copy).");
    metrics::describe_counter!(DROPS, "Times the copy was dropped for a write.");
    metrics::describe_counter!(LEASES, "Leases on the copy: granted and lost.");
    metrics::describe_histogram!(
        SETTLE,
        metrics::Unit::Seconds,
        "How long a write waited, after its commit, for every replica to drop its copy."
    );
}

/// The handles the cache records through, registered when it starts.
pub(super) struct Series {
    /// Answered from the copy.
    pub hits: Counter,
    /// The copy was read whole to answer.
    pub misses: Counter,
    /// The copy could not serve (not trusted, too big, or being read): the store answered.
    pub bypassed: Counter,
    pub products: Gauge,
    pub drops: Counter,
    pub granted: Counter,
    pub lost: Counter,
    /// A write's wait, after its commit, for every replica's acknowledgement.
    pub settle: Histogram,
}

impl Series {
    pub fn new() -> Self {
        service_kit::metrics::describe_with(describe);
        Self {
            hits: metrics::counter!(READS, "result" => "hit"),
            misses: metrics::counter!(READS, "result" => "miss"),
            bypassed: metrics::counter!(READS, "result" => "bypass"),
            products: metrics::gauge!(PRODUCTS),
            drops: metrics::counter!(DROPS),
            granted: metrics::counter!(LEASES, "outcome" => "granted"),
            lost: metrics::counter!(LEASES, "outcome" => "lost"),
            settle: metrics::histogram!(SETTLE),
        }
    }
}

impl Default for Series {
    /// Records nothing (a cache built by a test).
    fn default() -> Self {
        Self {
            hits: Counter::noop(),
            misses: Counter::noop(),
            bypassed: Counter::noop(),
            products: Gauge::noop(),
            drops: Counter::noop(),
            granted: Counter::noop(),
            lost: Counter::noop(),
            settle: Histogram::noop(),
        }
    }
}
