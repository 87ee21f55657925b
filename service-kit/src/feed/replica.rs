//! A replica's place on the feed ([`Feed`]): joining, passing what it hears on to its
//! [`Follower`], acknowledging marks, renewing its lease, and leaving.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::Duration,
};

use sqlx::{AssertSqlSafe, postgres::PgListener};
use tokio::{
    sync::{mpsc, watch},
    task::JoinHandle,
    time::Instant,
};

use super::{
    FeedError, Follower, Tables,
    listener::{Heard, listen},
    writer::Writer,
};

/// Renewals sent and not yet heard back that are remembered; older ones are given up.
const MAX_PENDING_RENEWALS: usize = 64;

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

    /// Announces a renewal every [`Leases::renew_every`](super::Leases::renew_every); [`Feed::extend_lease`] acts on it
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

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
