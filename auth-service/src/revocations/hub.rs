//! The hub of verdict-cache holders on one replica (DESIGN.md, "Design: verdict caches"): who
//! is watching `WatchRevocations` here, the lease each one holds, and how far each has
//! acknowledged. Revocations are announced to every holder, and a write waits until each
//! holder with a live lease has acknowledged, or that lease ran out.
//!
//! Leases are measured on this side with the monotonic clock: an acknowledgement received at
//! `t` renews the holder's lease to `t + lease`. The holder measures its own from when it
//! *sent* that acknowledgement, less a margin, so it always stops trusting its cache first.
//! The seq of events is this hub's own counter; each holder's stream ([`super::stream`]) numbers
//! its own messages and maps them back to it.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use proto::auth::v1::revocation_event::Event;
use tokio::{
    sync::{mpsc, watch},
    time::Instant,
};

use super::{Revocation, validations::Validations};
use crate::metrics;

/// A registration's events: (global seq, event).
pub(super) type Events = mpsc::UnboundedReceiver<(u64, Event)>;

/// The hub; cheap to clone. With a zero lease it grants nothing and publishing is free.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

struct Inner {
    lease: Duration,
    /// This replica's own validations, evicted before any holder hears of a revocation.
    validations: Validations,
    state: Mutex<State>,
    /// Bumped on every acknowledgement and departure, so waiting writers look again.
    changed: watch::Sender<u64>,
    /// Set when the server shuts down: the streams end, or its graceful shutdown would wait
    /// for them forever.
    closing: watch::Sender<bool>,
}

#[derive(Default)]
struct State {
    /// The seq of the last event published (the global one, not a stream's).
    last_seq: u64,
    /// Each live registration by holder name.
    holders: HashMap<String, Holder>,
    /// Tells registrations apart when a holder says hello again under the same name.
    next_registration: u64,
    /// Until when acknowledgements may renew holders' leases; `None`: always (one replica,
    /// nothing else to stay within). The revocation feed bounds it by its own lease.
    grants_until: Option<Instant>,
}

impl State {
    /// Holders whose stream is open now.
    fn connected(&self) -> usize {
        self.holders
            .values()
            .filter(|holder| holder.events.is_some())
            .count()
    }
}

struct Holder {
    registration: u64,
    /// Where this holder's stream task takes its events from; `None` once the stream ended.
    events: Option<mpsc::UnboundedSender<(u64, Event)>>,
    /// Every event up to this global seq is applied by the holder.
    acked: u64,
    /// Until then, writes wait for this holder.
    lease_until: Instant,
}

impl Hub {
    pub fn new(lease: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                lease,
                validations: Validations::new(!lease.is_zero()),
                state: Mutex::new(State::default()),
                changed: watch::Sender::new(0),
                closing: watch::Sender::new(false),
            }),
        }
    }

    /// How long an acknowledgement keeps a holder's lease; zero: caching is off.
    pub(super) fn lease(&self) -> Duration {
        self.inner.lease
    }

    /// Turns true once the hub closes ([`Hub::close`]): every stream ends then.
    pub(super) fn closing(&self) -> watch::Receiver<bool> {
        self.inner.closing.subscribe()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves consistent data (every update is a
        // single assignment), so a poisoned lock is still used.
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Ends every holder's stream, now and as they come: the server is shutting down. Holders
    /// keep their leases until they run out, and reconnect to whichever replica answers.
    pub fn close(&self) {
        self.inner.closing.send_replace(true);
    }

    /// Sends `revocation` to every holder and returns once each holder with a live lease has
    /// acknowledged it, or that lease ran out: at most one lease later. Call it after the
    /// write's commit, so that a verdict fetched after the event was received is fresh.
    pub async fn publish(&self, revocation: &Revocation) {
        let seq = self.announce(revocation);
        let started = Instant::now();
        self.settled(seq).await;
        metrics::withdraw_waited(started.elapsed());
    }

    /// Sends `revocation` to every holder, at once; returns its seq for [`Hub::settled`].
    pub fn announce(&self, revocation: &Revocation) -> u64 {
        if self.inner.lease.is_zero() {
            return 0;
        }
        self.inner.validations.forget(revocation);
        let mut state = self.state();
        state.last_seq += 1;
        let seq = state.last_seq;
        let event = revocation.to_proto();
        for holder in state.holders.values() {
            if let Some(events) = &holder.events {
                // A stream that ended meanwhile is waited for until its lease runs out.
                let _ = events.send((seq, event.clone()));
            }
        }
        seq
    }

    /// The seq of the last event announced.
    pub fn last_seq(&self) -> u64 {
        self.state().last_seq
    }

    /// Returns once every holder with a live lease has acknowledged `seq`, or that lease ran
    /// out.
    pub async fn settled(&self, seq: u64) {
        let mut changes = self.inner.changed.subscribe();
        loop {
            changes.borrow_and_update();
            let Some(deadline) = self.blocking_until(seq) else {
                return;
            };
            tokio::select! {
                _ = changes.changed() => {}
                () = tokio::time::sleep_until(deadline) => {}
            }
        }
    }

    /// Ends every holder's stream as if it had missed an event that may revoke anything: the
    /// feed lost notifications. Each reconnects with an empty cache; a wait for any later seq
    /// waits for the old registrations until their leases run out.
    pub fn reset(&self) {
        self.inner.validations.forget_all();
        let mut state = self.state();
        state.last_seq += 1;
        for holder in state.holders.values_mut() {
            holder.events = None;
        }
        metrics::holders(state.connected());
        drop(state);
        self.inner.changed.send_modify(|version| *version += 1);
    }

    /// Acknowledgements renew leases until `until` (or later, if allowed already).
    pub fn grant_until(&self, until: Instant) {
        let mut state = self.state();
        state.grants_until = Some(state.grants_until.map_or(until, |old| old.max(until)));
    }

    /// From now on acknowledgements renew nothing, until [`Hub::grant_until`] allows again.
    pub fn stop_granting(&self) {
        self.state().grants_until = Some(Instant::now());
    }

    /// This replica's own validations, to be served only while [`Hub::may_grant`].
    pub fn validations(&self) -> &Validations {
        &self.inner.validations
    }

    pub fn may_grant(&self) -> bool {
        self.state()
            .grants_until
            .is_none_or(|until| Instant::now() < until)
    }

    /// The latest lease end among holders that have not acknowledged `seq` yet, if any; holders
    /// whose stream ended and whose lease ran out are forgotten on the way.
    fn blocking_until(&self, seq: u64) -> Option<Instant> {
        let now = Instant::now();
        let mut state = self.state();
        state
            .holders
            .retain(|_, holder| holder.events.is_some() || holder.lease_until > now);
        state
            .holders
            .values()
            .filter(|holder| holder.acked < seq && holder.lease_until > now)
            .map(|holder| holder.lease_until)
            .max()
    }

    /// Registers `name` with a first lease, replacing an older registration of the same name
    /// (that holder emptied its cache before saying hello again). It need not acknowledge
    /// anything published before: it has nothing cached from then.
    /// Returns the registration, the global seq it starts after, and its events; `None` while
    /// this hub may not grant leases.
    pub(super) fn register(&self, name: &str) -> Option<(u64, u64, Events)> {
        let (sender, receiver) = mpsc::unbounded_channel();
        let now = Instant::now();
        let mut state = self.state();
        if state.grants_until.is_some_and(|until| now >= until) {
            return None;
        }
        state.next_registration += 1;
        let registration = state.next_registration;
        let start = state.last_seq;
        let holder = Holder {
            registration,
            events: Some(sender),
            acked: state.last_seq,
            lease_until: now + self.inner.lease,
        };
        state.holders.insert(name.to_owned(), holder);
        metrics::holder_registered();
        metrics::holders(state.connected());
        drop(state);
        self.inner.changed.send_modify(|version| *version += 1);
        Some((registration, start, receiver))
    }

    /// The holder has applied every event up to `acked` (global seq), received now.
    pub(super) fn acknowledge(&self, name: &str, registration: u64, acked: u64) {
        let mut state = self.state();
        if let Some(holder) = state
            .holders
            .get_mut(name)
            .filter(|holder| holder.registration == registration)
        {
            holder.acked = holder.acked.max(acked);
            holder.lease_until = Instant::now() + self.inner.lease;
        }
        drop(state);
        self.inner.changed.send_modify(|version| *version += 1);
    }

    /// The stream ended: no more events reach the holder, and writes wait for it only until
    /// its lease runs out (it may still be serving from its cache until then).
    pub(super) fn depart(&self, name: &str, registration: u64) {
        let mut state = self.state();
        if let Some(holder) = state
            .holders
            .get_mut(name)
            .filter(|holder| holder.registration == registration)
        {
            holder.events = None;
        }
        metrics::holders(state.connected());
        drop(state);
        self.inner.changed.send_modify(|version| *version += 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_silent_holder_delays_a_write_by_one_lease_at_most() {
        let hub = Hub::new(Duration::from_secs(3));
        let (_registration, _start, _events) = hub.register("silent").unwrap();
        let started = Instant::now();
        hub.publish(&Revocation::User(1)).await;
        let waited = started.elapsed();
        assert!(waited <= Duration::from_secs(3), "{waited:?}");
        assert!(waited >= Duration::from_millis(2900), "{waited:?}");
        // Its lease is over and its stream still open: the next write does not wait.
        let started = Instant::now();
        hub.publish(&Revocation::User(1)).await;
        assert!(started.elapsed() < Duration::from_millis(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_returns_once_every_holder_acknowledged() {
        let hub = Hub::new(Duration::from_secs(3));
        let (registration, _start, mut events) = hub.register("prompt").unwrap();
        let holder = hub.clone();
        tokio::spawn(async move {
            while let Some((seq, _event)) = events.recv().await {
                holder.acknowledge("prompt", registration, seq);
            }
        });
        let started = Instant::now();
        hub.publish(&Revocation::User(1)).await;
        assert!(started.elapsed() < Duration::from_millis(10));
    }

    #[tokio::test(start_paused = true)]
    async fn outside_its_grant_window_a_hub_takes_no_new_holder() {
        let hub = Hub::new(Duration::from_secs(3));
        hub.grant_until(Instant::now() + Duration::from_secs(1));
        assert!(hub.register("early").is_some());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(!hub.may_grant());
        assert!(hub.register("late").is_none());
        hub.grant_until(Instant::now() + Duration::from_secs(1));
        assert!(hub.register("late").is_some());
        hub.stop_granting();
        assert!(hub.register("later").is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn after_a_reset_writes_wait_out_the_old_leases_even_if_all_was_acknowledged() {
        let hub = Hub::new(Duration::from_secs(3));
        let (registration, _start, mut events) = hub.register("holder").unwrap();
        let seq = hub.announce(&Revocation::User(1));
        assert_eq!(events.recv().await.map(|(seq, _)| seq), Some(seq));
        hub.acknowledge("holder", registration, seq);
        hub.reset();
        assert_eq!(events.recv().await, None, "its stream is ended");
        let started = Instant::now();
        hub.settled(hub.last_seq()).await;
        assert!(started.elapsed() >= Duration::from_millis(2900));
    }
}
