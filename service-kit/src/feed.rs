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

use std::{
    collections::VecDeque,
    future::Future,
    sync::{Arc, Mutex},
    time::Duration,
};

use sqlx::{
    AssertSqlSafe,
    postgres::{PgListener, PgPool, PgPoolOptions},
};
use tokio::{
    sync::{mpsc, watch},
    task::JoinHandle,
    time::Instant,
};

/// How often a writer looks again at who has acknowledged, if no acknowledgement wakes it.
const POLL: Duration = Duration::from_millis(100);

/// How long after a listener error the listener tries again.
const RELISTEN_BACKOFF: Duration = Duration::from_millis(200);

/// Renewals sent and not yet heard back that are remembered; older ones are given up.
const MAX_PENDING_RENEWALS: usize = 64;

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

/// The feed's statements for one service's [`Tables`].
#[derive(Debug)]
struct Statements {
    channel: &'static str,
    forget_lapsed: Arc<str>,
    join: Arc<str>,
    mark: Arc<str>,
    behind: Arc<str>,
    leave: Arc<str>,
    extend: Arc<str>,
    acknowledge: Arc<str>,
}

impl Statements {
    fn of(tables: Tables) -> Self {
        let Tables {
            channel,
            replicas,
            marks,
            mark_function,
            replica_prefix: _,
        } = tables;
        let sql = |text: String| Arc::<str>::from(text);
        Self {
            channel,
            forget_lapsed: sql(format!(
                "DELETE FROM {replicas} WHERE lease_until < now() - interval '1 hour'"
            )),
            // Acknowledged up to the last mark drawn: whatever it follows starts empty, after
            // those writes' commits.
            join: sql(format!(
                "INSERT INTO {replicas} (replica, acked_mark, lease_until) \
                 SELECT $1, CASE WHEN is_called THEN last_value ELSE 0 END, \
                        now() + $2 * interval '1 millisecond' \
                 FROM {marks}"
            )),
            mark: sql(format!("SELECT {mark_function}()")),
            behind: sql(format!(
                "SELECT count(*) FROM {replicas} WHERE acked_mark < $1 AND lease_until > now()"
            )),
            leave: sql(format!("DELETE FROM {replicas} WHERE replica = $1")),
            extend: sql(format!(
                "INSERT INTO {replicas} (replica, acked_mark, lease_until) \
                 VALUES ($1, 0, now() + $2 * interval '1 millisecond') \
                 ON CONFLICT (replica) DO UPDATE SET lease_until = EXCLUDED.lease_until"
            )),
            acknowledge: sql(format!(
                "WITH acked AS (UPDATE {replicas} SET acked_mark = GREATEST(acked_mark, $2) \
                 WHERE replica = $1 RETURNING 1) \
                 SELECT pg_notify($3, 'acked') FROM acked"
            )),
        }
    }
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

/// A notification heard on the channel, or the news that some may have been missed.
#[derive(Debug, PartialEq, Eq)]
enum Heard {
    /// The service's own: for the follower.
    Change(String),
    Mark(i64),
    Renewed {
        replica: String,
        renewal: u64,
    },
    Acked,
    /// The listener's connection broke: what was announced meanwhile is lost.
    Lost,
}

impl Heard {
    fn parse(payload: &str) -> Self {
        let feed_own = match payload.split_once(':') {
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
        // A malformed mark or renewal goes to the follower, which does not know it either.
        feed_own.unwrap_or_else(|| Self::Change(payload.to_owned()))
    }
}

/// A writer's side of the feed: announcing marks and waiting for the replicas. A console
/// command that writes (an import) is one without being a replica.
#[derive(Clone)]
pub struct Writer {
    pool: PgPool,
    statements: Arc<Statements>,
    leases: Leases,
}

impl Writer {
    /// A writer on the PostgreSQL at `url`, for replicas whose caches lease for `lease`.
    pub async fn connect(url: &str, tables: Tables, lease: Duration) -> Result<Self, FeedError> {
        let pool = pool(url).await.map_err(|source| FeedError {
            channel: tables.channel,
            source,
        })?;
        Ok(Self {
            pool,
            statements: Arc::new(Statements::of(tables)),
            leases: Leases::of(lease),
        })
    }

    /// Returns once every replica with a live lease has passed on what was committed before
    /// this call. Without the database, after one replica lease: by then every replica has
    /// either passed it on or stopped trusting. `acks` wakes it when a replica acknowledges
    /// (without it, it looks every [`POLL`]).
    async fn settle_with(&self, mut acks: Option<watch::Receiver<u64>>) {
        let deadline = Instant::now() + self.leases.replica;
        let statements = &self.statements;
        let mark = match sqlx::query_scalar::<_, i64>(AssertSqlSafe(statements.mark.clone()))
            .fetch_one(&self.pool)
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
            if let Some(acks) = &mut acks {
                acks.borrow_and_update();
            }
            let behind = sqlx::query_scalar::<_, i64>(AssertSqlSafe(statements.behind.clone()))
                .bind(mark)
                .fetch_one(&self.pool)
                .await;
            match behind {
                Ok(0) => return,
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "cannot read the replicas' marks"),
            }
            let acknowledged = async {
                match &mut acks {
                    Some(acks) => {
                        let _ = acks.changed().await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = acknowledged => {}
                () = tokio::time::sleep(POLL) => {}
                () = tokio::time::sleep_until(deadline) => {
                    tracing::warn!(mark, "replicas did not acknowledge; their leases are over");
                    return;
                }
            }
        }
    }

    /// [`Writer::settle_with`] for a writer that hears no acknowledgements.
    pub async fn settle(&self) {
        self.settle_with(None).await;
    }
}

/// A replica's place on the feed; cheap to clone.
pub struct Feed<F> {
    inner: Arc<Inner<F>>,
}

impl<F> Clone for Feed<F> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

struct Inner<F> {
    writer: Writer,
    replica: String,
    follower: Arc<F>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Bumped whenever some replica acknowledges a mark.
    acks: watch::Sender<u64>,
}

impl<F: Follower> Feed<F> {
    /// Joins as a replica passing the feed on to `follower`. Listening starts before the
    /// replica's row exists, so every mark a writer waits for it with is heard.
    pub async fn join(
        url: &str,
        tables: Tables,
        follower: Arc<F>,
        lease: Duration,
    ) -> Result<Self, FeedError> {
        let failed = |source| FeedError {
            channel: tables.channel,
            source,
        };
        let writer = Writer::connect(url, tables, lease).await?;
        let statements = writer.statements.clone();
        let mut listener = PgListener::connect_with(&writer.pool)
            .await
            .map_err(failed)?;
        listener.listen(tables.channel).await.map_err(failed)?;
        let replica = format!(
            "{}-{}",
            tables.replica_prefix,
            crate::request_id::generate()
        );
        sqlx::query(AssertSqlSafe(statements.forget_lapsed.clone()))
            .execute(&writer.pool)
            .await
            .map_err(failed)?;
        let sent = Instant::now();
        sqlx::query(AssertSqlSafe(statements.join.clone()))
            .bind(&replica)
            .bind(millis(writer.leases.replica))
            .execute(&writer.pool)
            .await
            .map_err(failed)?;
        follower.grant_until(sent + writer.leases.grant_window);

        let feed = Self {
            inner: Arc::new(Inner {
                writer,
                replica: replica.clone(),
                follower,
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
        tracing::info!(%replica, channel = tables.channel, "joined the feed");
        Ok(feed)
    }

    /// Returns once every replica with a live lease has passed on what was committed before
    /// this call (or, without the database, after one replica lease).
    pub async fn settle(&self) {
        let acks = self.inner.acks.subscribe();
        self.inner.writer.settle_with(Some(acks)).await;
    }

    /// Stops granting, waits until what this replica answers for can trust nothing more, and
    /// deletes its row: other replicas' writes stop waiting for it then, not a lease later.
    pub async fn leave(&self) {
        let member = &*self.inner;
        member.follower.stop_granting();
        member.follower.reset();
        member.follower.settled(member.follower.applied()).await;
        for task in member
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            task.abort();
        }
        if let Err(err) = sqlx::query(AssertSqlSafe(member.writer.statements.leave.clone()))
            .bind(&member.replica)
            .execute(&member.writer.pool)
            .await
        {
            tracing::warn!(error = %err, "cannot leave the feed; its lease will lapse");
        }
    }

    /// Passes what the listener hears on to the follower, in order, and hands marks to
    /// [`Feed::acknowledge`] with how far the follower had applied when they were heard.
    async fn pass_on(
        self,
        mut hearing: mpsc::UnboundedReceiver<Heard>,
        marks: watch::Sender<(i64, u64)>,
        renewals: Arc<Mutex<VecDeque<(u64, Instant)>>>,
    ) {
        let member = &*self.inner;
        while let Some(heard) = hearing.recv().await {
            match heard {
                Heard::Change(announcement) => {
                    if !member.follower.apply(&announcement) {
                        self.start_over(&format!("unknown announcement {announcement:?}"))
                            .await;
                    }
                }
                Heard::Mark(mark) => {
                    let applied = member.follower.applied();
                    marks.send_if_modified(|last| {
                        let newer = mark > last.0;
                        if newer {
                            *last = (mark, applied);
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
                    member.acks.send_modify(|version| *version += 1);
                }
                Heard::Lost => self.start_over("the listener's connection broke").await,
            }
        }
    }

    /// Announcements may have been missed: the follower forgets everything and trusts nothing
    /// until a renewal comes back on the listener as it is now.
    async fn start_over(&self, why: &str) {
        let member = &*self.inner;
        tracing::warn!(why, "changes may have been missed; caches start over");
        member.follower.stop_granting();
        member.follower.reset();
        // Writers waiting for marks that were lost are freed by the next one.
        if let Err(err) = sqlx::query(AssertSqlSafe(member.writer.statements.mark.clone()))
            .execute(&member.writer.pool)
            .await
        {
            tracing::warn!(error = %err, "cannot announce a mark");
        }
    }

    /// The renewal sent at `sent` came back, so the listener heard everything announced
    /// before it: the row's lease is extended, and the follower may grant until `sent` plus
    /// the grant window.
    async fn extend_lease(&self, sent: Instant) {
        let member = &*self.inner;
        let writer = &member.writer;
        let extended = sqlx::query(AssertSqlSafe(writer.statements.extend.clone()))
            .bind(&member.replica)
            .bind(millis(writer.leases.replica))
            .execute(&writer.pool)
            .await;
        match extended {
            Ok(_) => member
                .follower
                .grant_until(sent + writer.leases.grant_window),
            Err(err) => tracing::warn!(error = %err, "cannot renew the feed lease"),
        }
    }

    /// Acknowledges the highest mark heard once the follower has settled everything heard
    /// before it. One at a time: a later mark covers every earlier one.
    async fn acknowledge(self, mut marks: watch::Receiver<(i64, u64)>) {
        let member = &*self.inner;
        let writer = &member.writer;
        while marks.changed().await.is_ok() {
            let (mark, applied) = *marks.borrow_and_update();
            member.follower.settled(applied).await;
            let acknowledged = sqlx::query(AssertSqlSafe(writer.statements.acknowledge.clone()))
                .bind(&member.replica)
                .bind(mark)
                .bind(writer.statements.channel)
                .execute(&writer.pool)
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
        let writer = &member.writer;
        let mut ticks = tokio::time::interval(writer.leases.renew_every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        for renewal in 1u64.. {
            ticks.tick().await;
            {
                let mut pending = renewals.lock().unwrap_or_else(|p| p.into_inner());
                // Renewals lost on the way are not waited for forever.
                if pending.len() >= MAX_PENDING_RENEWALS {
                    pending.pop_front();
                }
                pending.push_back((renewal, Instant::now()));
            }
            if let Err(err) = sqlx::query("SELECT pg_notify($1, $2)")
                .bind(writer.statements.channel)
                .bind(format!("renew:{}:{renewal}", member.replica))
                .execute(&writer.pool)
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
                tracing::warn!(error = %err, "feed listener failed");
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
    // the whole replica lease, so a burst of writes must not queue for a few.
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
    fn tells_its_own_announcements_from_the_followers() {
        assert_eq!(Heard::parse("mark:7"), Heard::Mark(7));
        assert_eq!(
            Heard::parse("renew:auth-00ff:3"),
            Heard::Renewed {
                replica: "auth-00ff".to_owned(),
                renewal: 3
            }
        );
        assert_eq!(Heard::parse("acked"), Heard::Acked);
        for theirs in ["user:42", "mark:", "renew:3", "", "product:1"] {
            assert_eq!(Heard::parse(theirs), Heard::Change(theirs.to_owned()));
        }
    }

    #[test]
    fn what_a_replica_serves_stops_before_its_row_lapses() {
        let lease = Duration::from_millis(3000);
        let leases = Leases::of(lease);
        let holder_trust = lease.mul_f64(crate::verdicts::LEASE_MARGIN);
        assert!(leases.grant_window > leases.renew_every);
        assert!(leases.grant_window + holder_trust < leases.replica);
    }
}
