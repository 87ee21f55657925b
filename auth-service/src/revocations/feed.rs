//! The revocation feed across auth replicas sharing one PostgreSQL (DESIGN.md, "Across
//! replicas").
//!
//! The database announces every withdrawal on the channel `auth_revocations`, from triggers
//! (migration 0003), so the announcement commits with the write. PostgreSQL delivers a
//! channel's notifications to each listener in commit order. Each replica listens and passes
//! what it hears to the holders of its [`Hub`]. A writer, after its commit, announces a *mark*
//! and waits until every replica with a live lease in `auth_replicas` has acknowledged a mark
//! at least as high. A replica does that once its holders have applied everything it heard
//! before the mark, and so before the write's commit.
//!
//! A replica renews its lease by announcing `renew` on the same channel. When the renewal comes
//! back, the replica extends its row's lease and lets its hub grant holder leases until a grant
//! window ([`Leases`]) after it sent the renewal. So a replica that stops hearing the feed stops
//! granting, its holders stop trusting, and its row lapses, in that order. Because of that, a
//! writer that cannot reach the database also knows when it may return: after one replica lease.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::Duration,
};

use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};
use tokio::{
    sync::{mpsc, watch},
    task::JoinHandle,
    time::Instant,
};

use super::{Hub, Revocation};
use crate::domain::TokenDigest;

const CHANNEL: &str = "auth_revocations";

/// How often a writer looks again at who has acknowledged, if no acknowledgement wakes it.
const POLL: Duration = Duration::from_millis(100);

/// How long after a listener error the listener tries again.
const RELISTEN_BACKOFF: Duration = Duration::from_millis(200);

/// Replicas whose lease lapsed this long ago are deleted when another joins.
const FORGET_LAPSED_REPLICAS: &str =
    "DELETE FROM auth_replicas WHERE lease_until < now() - interval '1 hour'";

/// The lengths of the feed's leases, all derived from the holders' lease `L`: renewals every
/// `L/6`; a renewal lets the hub grant for `L/3` after it was sent; the row's lease is
/// `L + L/3`. A holder trusts its cache for at most `0.75 L` after its last granted
/// acknowledgement, so it stops at most `L/3 + 0.75 L` after the last renewal was sent, before
/// the row lapses at `L + L/3`.
#[derive(Debug, Clone, Copy)]
struct Leases {
    renew_every: Duration,
    grant_window: Duration,
    replica: Duration,
}

impl Leases {
    fn of(holder_lease: Duration) -> Self {
        Self {
            renew_every: holder_lease / 6,
            grant_window: holder_lease / 3,
            replica: holder_lease + holder_lease / 3,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot join the revocation feed: {0}")]
pub struct FeedError(#[from] sqlx::Error);

/// A replica's place on the feed; cheap to clone.
#[derive(Clone)]
pub(super) struct Feed {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    leases: Leases,
    replica: String,
    hub: Hub,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Bumped whenever some replica acknowledges a mark.
    acks: watch::Sender<u64>,
}

/// A notification heard on the channel, or the news that some may have been missed.
#[derive(Debug, PartialEq, Eq)]
enum Heard {
    Credential(String),
    User(i64),
    Mark(i64),
    Renewed {
        replica: String,
        renewal: u64,
    },
    Acked,
    /// The listener's connection broke: what was announced meanwhile is lost.
    Lost,
    /// Something this build does not know: it may revoke anything.
    Unknown,
}

impl Heard {
    fn parse(payload: &str) -> Self {
        let parsed = match payload.split_once(':') {
            Some(("credential", digest)) => Some(Self::Credential(digest.to_owned())),
            Some(("user", id)) => id.parse().ok().map(Self::User),
            Some(("mark", mark)) => mark.parse().ok().map(Self::Mark),
            Some(("renew", rest)) => rest.rsplit_once(':').and_then(|(replica, renewal)| {
                Some(Self::Renewed {
                    replica: replica.to_owned(),
                    renewal: renewal.parse().ok()?,
                })
            }),
            None if payload == "acked" => Some(Self::Acked),
            _ => None,
        };
        parsed.unwrap_or(Self::Unknown)
    }
}

impl Feed {
    /// Joins as a replica passing the feed on to `hub`. Listening starts before the replica's
    /// row exists, so every mark a writer waits for it with is heard.
    pub(super) async fn join(url: &str, hub: Hub, lease: Duration) -> Result<Self, FeedError> {
        let pool = pool(url).await?;
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.listen(CHANNEL).await?;
        let replica = format!("auth-{}", service_kit::request_id::generate());
        let leases = Leases::of(lease);
        sqlx::query(FORGET_LAPSED_REPLICAS).execute(&pool).await?;
        let sent = Instant::now();
        // Acknowledged up to the last mark drawn: a holder that says hello from now on starts
        // with an empty cache, after those writes' commits.
        sqlx::query(
            "INSERT INTO auth_replicas (replica, acked_mark, lease_until) \
             SELECT $1, CASE WHEN is_called THEN last_value ELSE 0 END, \
                    now() + $2 * interval '1 millisecond' \
             FROM auth_revocation_marks",
        )
        .bind(&replica)
        .bind(millis(leases.replica))
        .execute(&pool)
        .await?;
        hub.grant_until(sent + leases.grant_window);

        let feed = Self {
            inner: Arc::new(Inner {
                pool,
                leases,
                replica: replica.clone(),
                hub,
                tasks: Mutex::new(Vec::new()),
                acks: watch::Sender::new(0),
            }),
        };
        let (heard, hearing) = mpsc::unbounded_channel();
        let renewals = Arc::new(Mutex::new(VecDeque::new()));
        let (marks, marks_heard) = watch::channel((0, 0));
        let tasks = vec![
            tokio::spawn(listen(listener, heard)),
            tokio::spawn(feed.clone().pass_on(hearing, marks, renewals.clone())),
            tokio::spawn(feed.clone().acknowledge(marks_heard)),
            tokio::spawn(feed.clone().renew(renewals)),
        ];
        *feed.inner.tasks.lock().unwrap_or_else(|p| p.into_inner()) = tasks;
        tracing::info!(%replica, "joined the revocation feed");
        Ok(feed)
    }

    /// Returns once every replica with a live lease has passed on what was committed before
    /// this call. Without the database, after one replica lease: by then every replica has
    /// either passed it on or stopped granting its holders leases, and they stopped trusting.
    pub(super) async fn settle(&self) {
        let deadline = Instant::now() + self.inner.leases.replica;
        let mut acks = self.inner.acks.subscribe();
        let mark = match sqlx::query_scalar::<_, i64>("SELECT auth_revocation_mark()")
            .fetch_one(&self.inner.pool)
            .await
        {
            Ok(mark) => mark,
            Err(err) => {
                tracing::warn!(error = %err, "cannot announce a mark; waiting out the leases");
                tokio::time::sleep_until(deadline).await;
                return;
            }
        };
        loop {
            acks.borrow_and_update();
            let behind = sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM auth_replicas \
                 WHERE acked_mark < $1 AND lease_until > now()",
            )
            .bind(mark)
            .fetch_one(&self.inner.pool)
            .await;
            match behind {
                Ok(0) => return,
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "cannot read the replicas' marks"),
            }
            tokio::select! {
                _ = acks.changed() => {}
                () = tokio::time::sleep(POLL) => {}
                () = tokio::time::sleep_until(deadline) => {
                    tracing::warn!(mark, "replicas did not acknowledge; their leases are over");
                    return;
                }
            }
        }
    }

    /// Stops granting, waits until this replica's holders can trust nothing more, and deletes
    /// its row: other replicas' writes stop waiting for it then, not a lease later.
    pub(super) async fn leave(&self) {
        let member = &*self.inner;
        member.hub.stop_granting();
        member.hub.reset();
        member.hub.settled(member.hub.last_seq()).await;
        for task in member
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            task.abort();
        }
        if let Err(err) = sqlx::query("DELETE FROM auth_replicas WHERE replica = $1")
            .bind(&member.replica)
            .execute(&self.inner.pool)
            .await
        {
            tracing::warn!(error = %err, "cannot leave the revocation feed; its lease will lapse");
        }
    }

    /// Passes what the listener hears on to the hub, in order, and hands marks to
    /// [`Feed::acknowledge`] with the hub's seq at the time they were heard.
    async fn pass_on(
        self,
        mut hearing: mpsc::UnboundedReceiver<Heard>,
        marks: watch::Sender<(i64, u64)>,
        renewals: Arc<Mutex<VecDeque<(u64, Instant)>>>,
    ) {
        let member = &*self.inner;
        while let Some(heard) = hearing.recv().await {
            match heard {
                Heard::Credential(digest) => {
                    member
                        .hub
                        .announce(&Revocation::Credentials(vec![TokenDigest(digest)]));
                }
                Heard::User(id) => {
                    member.hub.announce(&Revocation::User(id));
                }
                Heard::Mark(mark) => {
                    let seq = member.hub.last_seq();
                    marks.send_if_modified(|last| {
                        let newer = mark > last.0;
                        if newer {
                            *last = (mark, seq);
                        }
                        newer
                    });
                }
                Heard::Renewed { replica, renewal } if replica == member.replica => {
                    let sent = {
                        let mut pending = renewals.lock().unwrap_or_else(|p| p.into_inner());
                        while pending.front().is_some_and(|&(n, _)| n < renewal) {
                            pending.pop_front();
                        }
                        pending
                            .front()
                            .filter(|&&(n, _)| n == renewal)
                            .map(|&(_, sent)| sent)
                    };
                    if let Some(sent) = sent {
                        self.extend_lease(sent).await;
                    }
                }
                Heard::Renewed { .. } => {}
                Heard::Acked => {
                    self.inner.acks.send_modify(|version| *version += 1);
                }
                Heard::Lost | Heard::Unknown => {
                    tracing::warn!(
                        ?heard,
                        "revocations may have been missed; holders start over"
                    );
                    member.hub.stop_granting();
                    member.hub.reset();
                    // Writers waiting for marks that were lost are freed by the next one.
                    if let Err(err) = sqlx::query("SELECT auth_revocation_mark()")
                        .execute(&self.inner.pool)
                        .await
                    {
                        tracing::warn!(error = %err, "cannot announce a mark");
                    }
                }
            }
        }
    }

    /// The renewal sent at `sent` came back, so the listener heard everything announced
    /// before it: the row's lease is extended, and the hub may grant until `sent` plus the
    /// grant window.
    async fn extend_lease(&self, sent: Instant) {
        let member = &*self.inner;
        let extended = sqlx::query(
            "INSERT INTO auth_replicas (replica, acked_mark, lease_until) \
             VALUES ($1, 0, now() + $2 * interval '1 millisecond') \
             ON CONFLICT (replica) DO UPDATE SET lease_until = EXCLUDED.lease_until",
        )
        .bind(&member.replica)
        .bind(millis(self.inner.leases.replica))
        .execute(&self.inner.pool)
        .await;
        match extended {
            Ok(_) => member
                .hub
                .grant_until(sent + self.inner.leases.grant_window),
            Err(err) => tracing::warn!(error = %err, "cannot renew the feed lease"),
        }
    }

    /// Acknowledges the highest mark heard once the hub's holders have settled everything
    /// heard before it. One at a time: a later mark covers every earlier one.
    async fn acknowledge(self, mut marks: watch::Receiver<(i64, u64)>) {
        let member = &*self.inner;
        while marks.changed().await.is_ok() {
            let (mark, seq) = *marks.borrow_and_update();
            member.hub.settled(seq).await;
            let acknowledged = sqlx::query(
                "WITH acked AS (UPDATE auth_replicas SET acked_mark = GREATEST(acked_mark, $2) \
                 WHERE replica = $1 RETURNING 1) \
                 SELECT pg_notify($3, 'acked') FROM acked",
            )
            .bind(&member.replica)
            .bind(mark)
            .bind(CHANNEL)
            .execute(&self.inner.pool)
            .await;
            if let Err(err) = acknowledged {
                // Writers wait for it until the next mark, or until this lease lapses.
                tracing::warn!(error = %err, mark, "cannot acknowledge a mark");
            }
        }
    }

    /// Announces a renewal every [`Leases::renew_every`]; [`Feed::extend_lease`] acts on it
    /// when it comes back.
    async fn renew(self, renewals: Arc<Mutex<VecDeque<(u64, Instant)>>>) {
        let member = &*self.inner;
        let mut ticks = tokio::time::interval(self.inner.leases.renew_every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        for renewal in 1u64.. {
            ticks.tick().await;
            {
                let mut pending = renewals.lock().unwrap_or_else(|p| p.into_inner());
                // Renewals lost on the way are not waited for forever.
                if pending.len() >= 64 {
                    pending.pop_front();
                }
                pending.push_back((renewal, Instant::now()));
            }
            if let Err(err) = sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(format!("renew:{}:{renewal}", member.replica))
                .execute(&self.inner.pool)
                .await
            {
                tracing::warn!(error = %err, "cannot announce a renewal");
            }
        }
    }
}

/// Owns the listener, so that the rest never waits on it: hands on each notification and
/// each loss of the connection (after which it reconnects by itself).
async fn listen(mut listener: PgListener, heard: mpsc::UnboundedSender<Heard>) {
    loop {
        let next = match listener.try_recv().await {
            Ok(Some(notification)) => Heard::parse(notification.payload()),
            Ok(None) => Heard::Lost,
            Err(err) => {
                tracing::warn!(error = %err, "revocation feed listener failed");
                tokio::time::sleep(RELISTEN_BACKOFF).await;
                Heard::Lost
            }
        };
        if heard.send(next).is_err() {
            return;
        }
    }
}

async fn pool(url: &str) -> Result<PgPool, sqlx::Error> {
    // The listener holds one connection; writers' marks and looks at the replicas, the
    // acknowledgements and the renewals share the rest. A writer that cannot get one waits out
    // the whole replica lease, so a burst of logouts must not queue for a few.
    PgPoolOptions::new()
        .max_connections(10)
        .acquire_timeout(Duration::from_secs(2))
        .connect(url)
        .await
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_announcement_and_takes_the_unknown_for_the_worst() {
        let digest = "ab".repeat(32);
        assert_eq!(
            Heard::parse(&format!("credential:{digest}")),
            Heard::Credential(digest)
        );
        assert_eq!(Heard::parse("user:42"), Heard::User(42));
        assert_eq!(Heard::parse("mark:7"), Heard::Mark(7));
        assert_eq!(
            Heard::parse("renew:auth-00ff:3"),
            Heard::Renewed {
                replica: "auth-00ff".to_owned(),
                renewal: 3
            }
        );
        assert_eq!(Heard::parse("acked"), Heard::Acked);
        for unknown in ["user:x", "mark:", "group:1", "", "renew:3"] {
            assert_eq!(Heard::parse(unknown), Heard::Unknown, "{unknown}");
        }
    }

    #[test]
    fn a_holder_stops_trusting_before_its_replica_lapses() {
        let lease = Duration::from_millis(3000);
        let leases = Leases::of(lease);
        let holder_trust = lease.mul_f64(0.75);
        assert!(leases.grant_window > leases.renew_every);
        assert!(leases.grant_window + holder_trust < leases.replica);
    }
}
