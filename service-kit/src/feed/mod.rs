//! A feed of changes across the replicas of one service that share one PostgreSQL, so that
//! caches kept by every replica stay exact (DESIGN.md, "Across replicas"): auth's verdict
//! caches, inventory's product cache.
//!
//! The database announces every change on the service's channel from triggers, so the
//! announcement commits with the write; PostgreSQL delivers a channel's notifications to each
//! listener in commit order. Each replica listens and hands what it hears to its [`Follower`]
//! (the caches it keeps or serves). A writer, after its commit, announces a *mark* and waits
//! ([`Feed::settle`]) until every replica with a live lease in the service's replicas table has
//! acknowledged a mark at least as high. A replica does that once its follower has settled
//! everything heard before the mark, and so before the write's commit.
//!
//! A replica renews its lease by announcing `renew` on the same channel. When the renewal comes
//! back, the replica extends its row's lease and lets its follower trust (grant) until a grant
//! window ([`Leases`]) after it sent the renewal. So a replica that stops hearing the feed
//! stops granting, what its caches hold stops being served, and its row lapses, in that order.
//! Because of that, a writer that cannot reach the database also knows when it may return:
//! after one replica lease.
//!
//! Each service names its own channel, replicas table and mark function ([`Tables`]); its
//! migrations create them (auth's `0003_revocation_feed.sql` is the model).
//!
//! - `statements`: the feed's SQL, from a service's [`Tables`].
//! - `listener`: the PostgreSQL listener, and what it hears.
//! - `writer`: [`Writer`], announcing marks and waiting for the replicas.
//! - `replica`: [`Feed`], a replica's place on the feed.

mod listener;
mod replica;
mod statements;
mod writer;

use std::{future::Future, time::Duration};

use tokio::time::Instant;

pub use replica::Feed;
pub use writer::Writer;

/// What a service's migrations name its feed's parts: fixed identifiers of the service's own
/// schema, never input, from which the feed's statements are written once.
#[derive(Debug, Clone, Copy)]
pub struct Tables {
    /// The `LISTEN` channel its triggers notify.
    pub channel: &'static str,
    /// `(replica TEXT PRIMARY KEY, acked_mark BIGINT, lease_until TIMESTAMPTZ)`.
    pub replicas: &'static str,
    /// The sequence marks are drawn from.
    pub marks: &'static str,
    /// A function that draws the next mark from `marks`, announces `mark:<n>` on the channel,
    /// and returns it.
    pub mark_function: &'static str,
    /// How the replicas are named in the table and the logs (`auth`, `inventory`).
    pub replica_prefix: &'static str,
}

/// What a replica keeps in step with the feed: the caches it serves or holds.
pub trait Follower: Send + Sync + 'static {
    /// Applies one of the service's own announcements (anything but the feed's `mark`,
    /// `renew` and `acked`), in the order heard. `false` for one it does not understand,
    /// which the feed takes for the worst: everything may have changed.
    fn apply(&self, announcement: &str) -> bool;

    /// How far it has applied, for [`Follower::settled`].
    fn applied(&self) -> u64;

    /// Resolves once what was applied up to `applied` can no longer be served stale by anybody
    /// this replica answers for.
    fn settled(&self, applied: u64) -> impl Future<Output = ()> + Send;

    /// It may trust (grant) until `until`, or later if allowed already.
    fn grant_until(&self, until: Instant);

    /// From now on it trusts nothing, until [`Follower::grant_until`] allows again.
    fn stop_granting(&self);

    /// Announcements may have been lost: forget everything.
    fn reset(&self);
}

/// The lengths of the feed's leases, all derived from the caches' lease `L`: renewals every
/// `L/6`; a renewal lets the follower grant for `L/3` after it was sent; the row's lease is
/// `L + L/3`. A verdict-cache holder trusts its cache for at most `0.75 L` after its last
/// granted acknowledgement, so it stops at most `L/3 + 0.75 L` after the last renewal was
/// sent, before the row lapses at `L + L/3`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leases {
    pub renew_every: Duration,
    pub grant_window: Duration,
    pub replica: Duration,
}

impl Leases {
    pub fn of(lease: Duration) -> Self {
        Self {
            renew_every: lease / 6,
            grant_window: lease / 3,
            replica: lease + lease / 3,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot join the {channel} feed: {source}")]
pub struct FeedError {
    channel: &'static str,
    source: sqlx::Error,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_replica_serves_stops_before_its_row_lapses() {
        let lease = Duration::from_millis(3000);
        let leases = Leases::of(lease);
        let holder_trust = lease.mul_f64(crate::verdicts::LEASE_MARGIN);
        assert!(leases.grant_window > leases.renew_every);
        assert!(leases.grant_window + holder_trust < leases.replica);
    }
}
