//! The hub of verdict-cache holders on one replica (DESIGN.md, "Design: verdict caches"): who
//! is watching `WatchRevocations` here, the lease each one holds, and how far each has
//! acknowledged. Revocations are announced to every holder, and a write waits until each
//! holder with a live lease has acknowledged, or that lease ran out.
//!
//! Leases are measured on this side with the monotonic clock: an acknowledgement received at
//! `t` renews the holder's lease to `t + lease`. The holder measures its own from when it
//! *sent* that acknowledgement, less a margin, so it always stops trusting its cache first.
//! The seq of events is this hub's own counter.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use proto::auth::v1::{self as pb, revocation_event::Event};
use tokio::{
    sync::{mpsc, watch},
    time::Instant,
};
use tonic::{Status, Streaming};

use super::{Revocation, validations::Validations};

/// A registration's events: (global seq, event).
type Events = mpsc::UnboundedReceiver<(u64, Event)>;

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
        self.settled(seq).await;
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
    fn register(&self, name: &str) -> Option<(u64, u64, Events)> {
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
        drop(state);
        self.inner.changed.send_modify(|version| *version += 1);
        Some((registration, start, receiver))
    }

    /// The holder has applied every event up to `acked` (global seq), received now.
    fn acknowledge(&self, name: &str, registration: u64, acked: u64) {
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
    fn depart(&self, name: &str, registration: u64) {
        let mut state = self.state();
        if let Some(holder) = state
            .holders
            .get_mut(name)
            .filter(|holder| holder.registration == registration)
        {
            holder.events = None;
        }
        drop(state);
        self.inner.changed.send_modify(|version| *version += 1);
    }

    /// Serves one `WatchRevocations` stream: the hello, then events and heartbeats out and
    /// acknowledgements in, until either side goes away. `out` is the response stream.
    pub async fn serve_holder(
        self,
        inbound: Streaming<pb::WatchRequest>,
        out: mpsc::Sender<Result<pb::RevocationEvent, Status>>,
    ) {
        let mut closing = self.inner.closing.subscribe();
        tokio::select! {
            () = self.clone().serve_stream(inbound, out) => {}
            _ = closing.wait_for(|closing| *closing) => {}
        }
    }

    async fn serve_stream(
        self,
        mut inbound: Streaming<pb::WatchRequest>,
        out: mpsc::Sender<Result<pb::RevocationEvent, Status>>,
    ) {
        let name = match inbound.message().await {
            Ok(Some(pb::WatchRequest {
                message: Some(pb::watch_request::Message::Hello(hello)),
            })) if !hello.holder.is_empty() => hello.holder,
            Ok(_) => {
                let _ = out
                    .send(Err(Status::invalid_argument(
                        "the first message must be a hello naming the holder",
                    )))
                    .await;
                return;
            }
            // Bytes that are no WatchRequest: the codec's INVALID_ARGUMENT, told to the caller.
            Err(status) => {
                let _ = out.send(Err(status)).await;
                return;
            }
        };
        let lease_ms = u32::try_from(self.inner.lease.as_millis()).unwrap_or(u32::MAX);
        if lease_ms == 0 {
            // Caching is off: say so once, and hold the stream open so the holder does not
            // reconnect in a loop.
            let off = pb::RevocationEvent {
                seq: 1,
                lease_ms: 0,
                granted: 0,
                event: Some(Event::Heartbeat(pb::Heartbeat {})),
            };
            if out.send(Ok(off)).await.is_ok() {
                while let Ok(Some(_)) = inbound.message().await {}
            }
            return;
        }
        let Some((registration, start, mut events)) = self.register(&name) else {
            // Cut off from the feed, this replica could not keep a new holder exact.
            let _ = out
                .send(Err(Status::unavailable(
                    "this replica is not on the revocation feed at the moment",
                )))
                .await;
            return;
        };
        // However the stream ends (even cancelled at shutdown), the holder departs.
        let _departure = Departure {
            hub: &self,
            name: &name,
            registration,
        };
        tracing::info!(holder = %name, "verdict cache holder connected");
        let mut stream = HolderStream {
            lease_ms,
            seq: 0,
            granted: 0,
            acked: 0,
            forwarded: start,
            unacked: VecDeque::new(),
        };
        // The hello's grant goes out at once: the holder may cache from then on.
        let first = stream.next(start, Event::Heartbeat(pb::Heartbeat {}));
        if out.send(Ok(first)).await.is_err() {
            return;
        }
        let period = self.inner.lease / 3;
        let mut heartbeats = tokio::time::interval_at(Instant::now() + period, period);
        heartbeats.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let message = tokio::select! {
                event = events.recv() => match event {
                    Some((seq, event)) => stream.next(seq, event),
                    // A new stream of the same holder replaced this one.
                    None => break,
                },
                _ = heartbeats.tick() => {
                    let forwarded = stream.forwarded;
                    stream.next(forwarded, Event::Heartbeat(pb::Heartbeat {}))
                }
                received = inbound.message() => match received {
                    Ok(Some(pb::WatchRequest {
                        message: Some(pb::watch_request::Message::Ack(ack)),
                    })) => {
                        if let Some(acked) = stream.acknowledged(ack.seq, self.may_grant()) {
                            self.acknowledge(&name, registration, acked);
                        }
                        continue;
                    }
                    // Anything else is a broken holder: end its stream.
                    _ => break,
                },
            };
            // A holder that does not take its events for a whole lease has lost it anyway.
            let sent = tokio::time::timeout(self.inner.lease, out.send(Ok(message))).await;
            if !matches!(sent, Ok(Ok(()))) {
                break;
            }
        }
    }
}

struct Departure<'a> {
    hub: &'a Hub,
    name: &'a str,
    registration: u64,
}

impl Drop for Departure<'_> {
    fn drop(&mut self) {
        self.hub.depart(self.name, self.registration);
        tracing::info!(holder = %self.name, "verdict cache holder disconnected");
    }
}

/// One stream's numbering: its own seq for every message, and which global seq each covers.
struct HolderStream {
    lease_ms: u32,
    seq: u64,
    /// The holder's last acknowledgement received (0: the hello).
    granted: u64,
    /// The global seq of the last event sent on this stream.
    forwarded: u64,
    /// The holder's last acknowledgement received, granted or not.
    acked: u64,
    /// Sent, not yet acknowledged: (stream seq, global seq covered).
    unacked: VecDeque<(u64, u64)>,
}

impl HolderStream {
    fn next(&mut self, global: u64, event: Event) -> pb::RevocationEvent {
        self.seq += 1;
        self.forwarded = self.forwarded.max(global);
        self.unacked.push_back((self.seq, self.forwarded));
        pb::RevocationEvent {
            seq: self.seq,
            lease_ms: self.lease_ms,
            granted: self.granted,
            event: Some(event),
        }
    }

    /// The global seq an acknowledgement of stream seq `seq` covers; `None` for a seq never
    /// sent (or already acknowledged). With `grant`, the next messages renew the holder's
    /// lease from this acknowledgement; without, they repeat the last grant, renewing nothing.
    fn acknowledged(&mut self, seq: u64, grant: bool) -> Option<u64> {
        if seq > self.seq || seq <= self.acked {
            return None;
        }
        self.acked = seq;
        if grant {
            self.granted = seq;
        }
        let mut covered = None;
        while let Some(&(sent, global)) = self.unacked.front() {
            if sent > seq {
                break;
            }
            covered = Some(global);
            self.unacked.pop_front();
        }
        covered
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_acknowledgement_covers_everything_sent_before_it() {
        let mut stream = HolderStream {
            lease_ms: 3000,
            seq: 0,
            granted: 0,
            acked: 0,
            forwarded: 4,
            unacked: VecDeque::new(),
        };
        stream.next(4, Event::Heartbeat(pb::Heartbeat {}));
        stream.next(5, Event::UserId(1));
        stream.next(5, Event::Heartbeat(pb::Heartbeat {}));
        assert_eq!(stream.acknowledged(9, true), None, "never sent");
        assert_eq!(stream.acknowledged(2, true), Some(5));
        assert_eq!(stream.acknowledged(2, true), None, "already acknowledged");
        assert_eq!(stream.acknowledged(3, true), Some(5));
        assert_eq!(stream.granted, 3);
        stream.next(5, Event::Heartbeat(pb::Heartbeat {}));
        assert_eq!(stream.acknowledged(4, false), Some(5));
        assert_eq!(
            stream.granted, 3,
            "an acknowledgement not granted renews nothing"
        );
    }

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
