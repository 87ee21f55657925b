//! The watch task of a verdict cache: it keeps the `WatchRevocations` stream open for as long
//! as the cache lives (reconnecting with backoff), applies each event to the cache *before*
//! acknowledging it, and turns auth's grants into the cache's trust (DESIGN.md, "Design:
//! verdict caches").

use std::{collections::VecDeque, sync::Weak, time::Duration};

use proto::auth::v1::{
    self as pb, CredentialKind, auth_service_client::AuthServiceClient, revocation_event::Event,
};
use tokio::{sync::mpsc, time::Instant};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

use super::{Inner, LEASE_MARGIN, State};

const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// Acknowledgements sent that auth has not yet said it granted; more are not remembered (auth
/// that grants none would make the list grow, and an old one buys a shorter lease anyway).
const MAX_UNGRANTED: usize = 1024;

/// Keeps a stream open for as long as the cache lives, reconnecting with backoff.
pub(super) async fn watch(cache: Weak<Inner>, client: AuthServiceClient<Channel>, name: String) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        match watch_once(&cache, client.clone(), &name).await {
            Ok(Stopped::CacheDropped) => return,
            Ok(Stopped::StreamEnded) => backoff = FIRST_BACKOFF,
            Err(status) => {
                tracing::debug!(holder = %name, code = ?status.code(), "revocation watch failed");
            }
        }
        // The lease is not renewed from here on: the cache serves until it runs out, and not
        // after (see `lookup`).
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
        if cache.strong_count() == 0 {
            return;
        }
    }
}

enum Stopped {
    CacheDropped,
    StreamEnded,
}

async fn watch_once(
    cache: &Weak<Inner>,
    mut client: AuthServiceClient<Channel>,
    name: &str,
) -> Result<Stopped, tonic::Status> {
    let (requests, outbound) = mpsc::channel(16);
    let mut events = client
        .watch_revocations(ReceiverStream::new(outbound))
        .await?
        .into_inner();
    {
        let Some(inner) = cache.upgrade() else {
            return Ok(Stopped::CacheDropped);
        };
        // A new registration replaces our old one on auth's side, so nothing cached under the
        // old one may stay: start empty, untrusted until the hello is granted.
        let mut state = inner.state();
        state.forget_all();
        if state.trusted(Instant::now()) {
            state.series.lost.increment(1);
        }
        state.trusted_until = None;
    }
    let hello = pb::WatchRequest {
        message: Some(pb::watch_request::Message::Hello(pb::WatchHello {
            holder: name.to_owned(),
        })),
    };
    // (seq acknowledged, when it was sent); 0 is the hello.
    let mut ungranted = VecDeque::from([(0u64, Instant::now())]);
    if requests.send(hello).await.is_err() {
        return Ok(Stopped::StreamEnded);
    }
    tracing::debug!(holder = %name, "revocation watch open");
    while let Some(event) = events.message().await? {
        let Some(inner) = cache.upgrade() else {
            return Ok(Stopped::CacheDropped);
        };
        apply(&mut inner.state(), &event, &mut ungranted);
        drop(inner);
        let ack = pb::WatchRequest {
            message: Some(pb::watch_request::Message::Ack(pb::WatchAck {
                seq: event.seq,
            })),
        };
        if ungranted.len() < MAX_UNGRANTED {
            ungranted.push_back((event.seq, Instant::now()));
        }
        if requests.send(ack).await.is_err() {
            break;
        }
    }
    Ok(Stopped::StreamEnded)
}

/// Applies one event: evicts what it names (before the caller acknowledges it), and extends
/// the trust by the lease auth says it granted.
pub(super) fn apply(
    state: &mut State,
    event: &pb::RevocationEvent,
    ungranted: &mut VecDeque<(u64, Instant)>,
) {
    match &event.event {
        Some(Event::Credentials(revoked)) => {
            for digest in &revoked.digests {
                let mut bytes = [0u8; 32];
                if hex::decode_to_slice(digest, &mut bytes).is_err() {
                    // Not a digest we could hold: to be safe, forget everything.
                    state.evict_where(|_| true);
                    continue;
                }
                let before = state.entries.len();
                for kind in [CredentialKind::Token, CredentialKind::Session] {
                    state.entries.remove(&(kind.into(), bytes));
                }
                state.counted(before);
            }
            state.epoch += 1;
        }
        Some(Event::UserId(user_id)) => {
            state.evict_where(|entry| entry.verdict.user.as_ref().map(|u| u.id) == Some(*user_id));
            state.epoch += 1;
        }
        Some(Event::Heartbeat(_)) => {}
        None => {
            // An event this build does not know: it may revoke anything.
            state.forget_all();
        }
    }
    let now = Instant::now();
    if event.lease_ms == 0 {
        // Caching is off at auth.
        state.forget_all();
        if state.trusted(now) {
            state.series.lost.increment(1);
        }
        state.trusted_until = None;
        return;
    }
    while ungranted
        .front()
        .is_some_and(|&(seq, _)| seq < event.granted)
    {
        ungranted.pop_front();
    }
    if let Some(&(seq, sent)) = ungranted.front()
        && seq == event.granted
    {
        let lease = Duration::from_millis(u64::from(event.lease_ms)).mul_f64(LEASE_MARGIN);
        let until = sent + lease;
        state.series.granted.increment(1);
        if !state.trusted(now) {
            state.note_trust_ended(now);
            // Trust begins (a stream's first grant) or comes back after it ran out. Auth
            // stopped waiting for this holder meanwhile, so a revocation may have gone unheard
            // (published before the hello was registered, or while the lease was over): nothing
            // kept from before may be served, and no verdict fetched before may be kept.
            state.forget_all();
        }
        state.trusted_until = Some(state.trusted_until.map_or(until, |old| old.max(until)));
        ungranted.pop_front();
    }
}
