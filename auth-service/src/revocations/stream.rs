//! One holder's `WatchRevocations` stream: the hello that registers it with the [`Hub`], then
//! the hub's events and heartbeats out and acknowledgements in, each message numbered with the
//! stream's own seq ([`HolderStream`]) and mapped back to the hub's global seq it covers.

use std::collections::VecDeque;

use proto::auth::v1::{self as pb, revocation_event::Event};
use tokio::{sync::mpsc, time::Instant};
use tonic::{Status, Streaming};

use super::hub::Hub;

/// Serves one `WatchRevocations` stream of `hub`: the hello, then events and heartbeats out and
/// acknowledgements in, until either side goes away or the hub closes. `out` is the response
/// stream.
pub(super) async fn serve(
    hub: Hub,
    inbound: Streaming<pb::WatchRequest>,
    out: mpsc::Sender<Result<pb::RevocationEvent, Status>>,
) {
    let mut closing = hub.closing();
    tokio::select! {
        () = serve_stream(hub, inbound, out) => {}
        _ = closing.wait_for(|closing| *closing) => {}
    }
}

async fn serve_stream(
    hub: Hub,
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
    let lease_ms = u32::try_from(hub.lease().as_millis()).unwrap_or(u32::MAX);
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
    let Some((registration, start, mut events)) = hub.register(&name) else {
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
        hub: &hub,
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
    let period = hub.lease() / 3;
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
                    if let Some(acked) = stream.acknowledged(ack.seq, hub.may_grant()) {
                        hub.acknowledge(&name, registration, acked);
                    }
                    continue;
                }
                // Anything else is a broken holder: end its stream.
                _ => break,
            },
        };
        // A holder that does not take its events for a whole lease has lost it anyway.
        let sent = tokio::time::timeout(hub.lease(), out.send(Ok(message))).await;
        if !matches!(sent, Ok(Ok(()))) {
            break;
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
}
