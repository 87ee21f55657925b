//! The holder side of verdict caches (DESIGN.md, "Design: verdict caches"): auth's
//! `ValidateToken` answers, kept by credential digest while this process holds a lease on auth's
//! `WatchRevocations`, so that a credential check costs no round trip and a revocation is still
//! exact. A background task keeps the stream open, applies each event *before* acknowledging
//! it, and renews the lease; without a lease nothing is served from the cache (every check goes
//! to auth, which fails closed when it is down), and the task reconnects with backoff.
//!
//! Callers keep making their own `ValidateToken` calls (with their deadlines and metadata):
//! [`VerdictCache::lookup`] first; on a miss, [`VerdictCache::ticket`] before the call and
//! [`VerdictCache::insert`] with a positive answer after it. A ticket taken before an event
//! arrived refuses the insert, since auth may have read the credential before the revocation;
//! so does one taken before trust began (a stream's first grant) or came back after running
//! out, since auth did not wait for this holder in between.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, SystemTime},
};

use proto::auth::v1::{
    CredentialKind, ValidateTokenResponse, auth_service_client::AuthServiceClient,
};
use sha2::{Digest, Sha256};
use tokio::time::Instant;
use tonic::transport::Channel;

/// The share of a granted lease this side trusts, measured from when it *sent* the
/// acknowledgement that bought it (auth measures from when it received it): the holder stops
/// trusting its cache well before auth stops waiting for it, even if the two clocks' rates
/// differ or this process is slow to look at its own.
pub const LEASE_MARGIN: f64 = 0.75;

/// More entries than this and new verdicts are no longer cached (after dropping the expired).
const MAX_ENTRIES: usize = 100_000;

mod series;
mod watch;

use series::Series;

/// A cache of positive verdicts; cheap to clone. Its watch task ends when the last clone goes.
#[derive(Clone)]
pub struct VerdictCache {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for VerdictCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.inner.state();
        f.debug_struct("VerdictCache")
            .field("entries", &state.entries.len())
            .field("trusted_until", &state.trusted_until)
            .field("epoch", &state.epoch)
            .finish()
    }
}

/// The epoch a lookup missed in; see [`VerdictCache::insert`].
#[derive(Debug, Clone, Copy)]
pub struct Ticket {
    epoch: u64,
}

/// A credential's cache key: its kind and the SHA-256 of its key (the same digest auth stores
/// and names in its events), so the key itself is kept nowhere.
type Key = (i32, [u8; 32]);

struct Entry {
    verdict: ValidateTokenResponse,
    expires_at: SystemTime,
}

struct Inner {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    entries: HashMap<Key, Entry>,
    /// While `Some` and in the future, entries may be served and inserted.
    trusted_until: Option<Instant>,
    /// Bumped by every event and every loss of trust: a verdict fetched across a bump may
    /// predate a revocation, and is not cached.
    epoch: u64,
    series: Series,
}

impl State {
    fn trusted(&self, now: Instant) -> bool {
        self.trusted_until.is_some_and(|until| until > now)
    }

    fn forget_all(&mut self) {
        self.evict_where(|_| true);
        self.epoch += 1;
    }

    /// Drops the entries `doomed` picks, counting them.
    fn evict_where(&mut self, mut doomed: impl FnMut(&Entry) -> bool) {
        let before = self.entries.len();
        self.entries.retain(|_, entry| !doomed(entry));
        self.counted(before);
    }

    /// Counts what left since the cache held `before` entries, and how many it holds now.
    #[expect(clippy::cast_precision_loss, reason = "at most MAX_ENTRIES")]
    fn counted(&mut self, before: usize) {
        let now = self.entries.len();
        self.series
            .evictions
            .increment(before.saturating_sub(now) as u64);
        self.series.entries.set(now as f64);
    }

    /// Notes that trust ran out (once), so that it counts as lost.
    fn note_trust_ended(&mut self, now: Instant) {
        if self.trusted_until.is_some_and(|until| until <= now) {
            self.trusted_until = None;
            self.series.lost.increment(1);
        }
    }
}

impl State {
    /// The verdict served for `key` now, if any.
    fn find(&mut self, now: Instant, key: Key) -> Option<ValidateTokenResponse> {
        if !self.trusted(now) {
            self.note_trust_ended(now);
            if !self.entries.is_empty() {
                // The lease ran out: nothing cached may be served again.
                self.forget_all();
            }
            return None;
        }
        let entry = self.entries.get(&key)?;
        // Expiry is judged here, on this clock: an entry past it is never served.
        if entry.expires_at <= SystemTime::now() {
            let before = self.entries.len();
            self.entries.remove(&key);
            self.counted(before);
            return None;
        }
        Some(entry.verdict.clone())
    }
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        // Every update under the lock leaves the state consistent; a poisoned lock is usable.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn key_of(kind: CredentialKind, key: &str) -> Key {
    (kind.into(), Sha256::digest(key.as_bytes()).into())
}

fn to_system_time(timestamp: &prost_types::Timestamp) -> Option<SystemTime> {
    let seconds = u64::try_from(timestamp.seconds).ok()?;
    let nanos = u32::try_from(timestamp.nanos).ok()?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::new(seconds, nanos))
}

impl VerdictCache {
    /// A cache that watches auth's revocations over `channel`, as holder `{service}-{random}`.
    /// It serves nothing until auth has granted it a lease.
    pub fn spawn(channel: Channel, service: &'static str) -> Self {
        let cache = Self {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    series: Series::new(service),
                    ..State::default()
                }),
            }),
        };
        let name = format!("{service}-{}", crate::request_id::generate());
        tokio::spawn(watch::watch(
            Arc::downgrade(&cache.inner),
            AuthServiceClient::new(channel),
            name,
        ));
        cache
    }

    /// The cached verdict on this credential, if trusted and not expired.
    pub fn lookup(&self, kind: CredentialKind, key: &str) -> Option<ValidateTokenResponse> {
        let now = Instant::now();
        let mut state = self.inner.state();
        let found = state.find(now, key_of(kind, key));
        match found {
            Some(_) => state.series.hits.increment(1),
            None => state.series.misses.increment(1),
        }
        found
    }

    /// Take before asking auth, and hand to [`VerdictCache::insert`] with the answer.
    pub fn ticket(&self) -> Ticket {
        Ticket {
            epoch: self.inner.state().epoch,
        }
    }

    /// Caches a positive verdict fetched after `ticket`, unless an event (or a loss of trust)
    /// came in between, or the cache is not trusted now.
    pub fn insert(
        &self,
        ticket: Ticket,
        kind: CredentialKind,
        key: &str,
        verdict: &ValidateTokenResponse,
    ) {
        let Some(expires_at) = verdict.expires_at.as_ref().and_then(to_system_time) else {
            return;
        };
        if verdict.user.is_none() || expires_at <= SystemTime::now() {
            return;
        }
        let mut state = self.inner.state();
        if state.epoch != ticket.epoch || !state.trusted(Instant::now()) {
            return;
        }
        if state.entries.len() >= MAX_ENTRIES {
            let now = SystemTime::now();
            state.evict_where(|entry| entry.expires_at <= now);
            if state.entries.len() >= MAX_ENTRIES {
                return;
            }
        }
        let before = state.entries.len();
        state.entries.insert(
            key_of(kind, key),
            Entry {
                verdict: verdict.clone(),
                expires_at,
            },
        );
        state.counted(before);
    }

    /// Whether the cache holds a live lease now (and so may serve).
    pub fn is_trusted(&self) -> bool {
        self.inner.state().trusted(Instant::now())
    }

    /// How many verdicts are cached (served or not).
    pub fn len(&self) -> usize {
        self.inner.state().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use proto::auth::v1::{self as pb, revocation_event::Event};

    use super::{watch::apply, *};

    fn verdict(user_id: i64) -> ValidateTokenResponse {
        ValidateTokenResponse {
            user: Some(pb::User {
                id: user_id,
                ..Default::default()
            }),
            kind: CredentialKind::Token.into(),
            expires_at: Some(prost_types::Timestamp {
                seconds: 4_000_000_000,
                nanos: 0,
            }),
        }
    }

    fn untrusted_cache() -> VerdictCache {
        VerdictCache {
            inner: Arc::new(Inner {
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// Applies event `seq` of a stream, granting the acknowledgement `granted` (3 s lease).
    fn receive(
        cache: &VerdictCache,
        ungranted: &mut VecDeque<(u64, Instant)>,
        (seq, granted): (u64, u64),
        event: Event,
    ) {
        let event = pb::RevocationEvent {
            seq,
            lease_ms: 3000,
            granted,
            event: Some(event),
        };
        apply(&mut cache.inner.state(), &event, ungranted);
    }

    fn heartbeat() -> Event {
        Event::Heartbeat(pb::Heartbeat {})
    }

    #[tokio::test]
    async fn serves_only_while_trusted_and_evicts_before_acknowledging() {
        let cache = untrusted_cache();
        let key = "a".repeat(40);
        let ticket = cache.ticket();
        cache.insert(ticket, CredentialKind::Token, &key, &verdict(1));
        assert!(cache.is_empty(), "no lease, no caching");

        let mut ungranted = VecDeque::from([(0, Instant::now())]);
        receive(&cache, &mut ungranted, (1, 0), heartbeat());
        assert!(cache.is_trusted());
        let ticket = cache.ticket();
        cache.insert(ticket, CredentialKind::Token, &key, &verdict(1));
        assert_eq!(cache.lookup(CredentialKind::Token, &key), Some(verdict(1)));
        assert_eq!(cache.lookup(CredentialKind::Session, &key), None);

        let digest = hex::encode(Sha256::digest(key.as_bytes()));
        let revoked = Event::Credentials(pb::RevokedCredentials {
            digests: vec![digest],
        });
        receive(&cache, &mut ungranted, (2, 0), revoked);
        assert_eq!(cache.lookup(CredentialKind::Token, &key), None);
        // A verdict fetched across the event is not cached.
        cache.insert(ticket, CredentialKind::Token, &key, &verdict(1));
        assert!(cache.is_empty());
    }

    #[tokio::test]
    async fn a_user_event_evicts_every_verdict_of_the_user() {
        let cache = untrusted_cache();
        let mut ungranted = VecDeque::from([(0, Instant::now())]);
        receive(&cache, &mut ungranted, (1, 0), heartbeat());
        let ticket = cache.ticket();
        for (key, user) in [("k1", 1), ("k2", 1), ("k3", 2)] {
            cache.insert(ticket, CredentialKind::Token, key, &verdict(user));
        }
        receive(&cache, &mut ungranted, (2, 0), Event::UserId(1));
        assert_eq!(cache.len(), 1);
        assert!(cache.lookup(CredentialKind::Token, "k3").is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_check_that_began_before_the_first_grant_is_not_kept() {
        let cache = untrusted_cache();
        // A new stream: empty and untrusted; a check misses and asks auth.
        let ticket = cache.ticket();
        let mut ungranted = VecDeque::from([(0, Instant::now())]);
        receive(&cache, &mut ungranted, (1, 0), heartbeat());
        assert!(cache.is_trusted());
        // Auth answered before a revocation it never sent this holder (the hello was not
        // registered yet): the answer must not be kept.
        cache.insert(ticket, CredentialKind::Token, "k", &verdict(1));
        assert!(cache.is_empty());
        let ticket = cache.ticket();
        cache.insert(ticket, CredentialKind::Token, "k", &verdict(1));
        assert_eq!(cache.len(), 1, "a check that began under the grant is kept");
    }

    #[tokio::test(start_paused = true)]
    async fn what_was_kept_before_trust_ran_out_is_not_served_when_it_comes_back() {
        let cache = untrusted_cache();
        let mut ungranted = VecDeque::from([(0, Instant::now())]);
        receive(&cache, &mut ungranted, (1, 0), heartbeat());
        let ticket = cache.ticket();
        cache.insert(ticket, CredentialKind::Token, "k", &verdict(1));
        // No acknowledgement granted for a whole lease: auth stops waiting for this holder,
        // and a revocation may still be on its way. Nothing looks at the cache meanwhile.
        ungranted.push_back((1, Instant::now()));
        tokio::time::advance(Duration::from_secs(3)).await;
        assert!(!cache.is_trusted());
        ungranted.push_back((2, Instant::now()));
        receive(&cache, &mut ungranted, (3, 2), heartbeat());
        assert!(cache.is_trusted(), "granted again");
        assert_eq!(cache.lookup(CredentialKind::Token, "k"), None);
    }

    /// Trusted throughout (tokio's clock is paused, the lease never runs out): only the
    /// verdict's own `expires_at`, on the wall clock, ends it.
    #[tokio::test(start_paused = true)]
    async fn a_verdict_past_its_expiry_is_never_served() {
        let cache = untrusted_cache();
        let mut ungranted = VecDeque::from([(0, Instant::now())]);
        receive(&cache, &mut ungranted, (1, 0), heartbeat());
        let expires_at = SystemTime::now() + Duration::from_millis(200);
        let soon = ValidateTokenResponse {
            expires_at: Some(prost_types::Timestamp::from(expires_at)),
            ..verdict(1)
        };
        cache.insert(cache.ticket(), CredentialKind::Token, "k", &soon);
        assert_eq!(cache.lookup(CredentialKind::Token, "k"), Some(soon));
        std::thread::sleep(Duration::from_millis(250));
        assert!(cache.is_trusted());
        assert_eq!(cache.lookup(CredentialKind::Token, "k"), None);
        assert!(cache.is_empty(), "the expired verdict is dropped");
    }

    #[tokio::test(start_paused = true)]
    async fn trust_ends_a_margin_before_the_lease_measured_from_the_acknowledgement() {
        let cache = untrusted_cache();
        let sent = Instant::now();
        let mut ungranted = VecDeque::from([(0, sent)]);
        tokio::time::advance(Duration::from_millis(500)).await;
        receive(&cache, &mut ungranted, (1, 0), heartbeat());
        let until = cache.inner.state().trusted_until.unwrap();
        assert_eq!(until, sent + Duration::from_millis(2250));
        let ticket = cache.ticket();
        cache.insert(ticket, CredentialKind::Token, "k", &verdict(1));
        tokio::time::advance(Duration::from_millis(1800)).await;
        assert!(cache.lookup(CredentialKind::Token, "k").is_none());
        assert!(cache.is_empty(), "dropped when the lease ended");
        // A heartbeat granting nothing new does not extend it.
        receive(&cache, &mut ungranted, (2, 0), heartbeat());
        assert!(!cache.is_trusted());
    }
}
