//! A writer's side of the feed: announcing a mark after a commit, and waiting until every
//! replica with a live lease has acknowledged it. Concurrent writers share rounds, as a group
//! commit shares a flush: one mark drawn after all their commits answers for all of them.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use sqlx::{
    AssertSqlSafe,
    postgres::{PgPool, PgPoolOptions},
};
use tokio::{sync::watch, time::Instant};

use super::{FeedError, Leases, Tables, statements::Statements};

/// How often a writer looks again at who has acknowledged, if no acknowledgement wakes it.
const POLL: Duration = Duration::from_millis(100);

/// A writer's side of the feed: announcing marks and waiting for the replicas. A console
/// command that writes (an import) is one without being a replica.
#[derive(Clone)]
pub struct Writer {
    pub(super) pool: PgPool,
    pub(super) statements: Arc<Statements>,
    pub(super) leases: Leases,
    rounds: Arc<Rounds>,
}

/// The writers' rounds: at most one runs at a time, and a writer that arrives while one runs
/// waits for the next, which answers for every writer that arrived before it began. So at 32
/// concurrent writes a round costs its round trips once for all of them, not 32 times.
#[derive(Default)]
struct Rounds {
    /// Rounds begun: a round numbered above what a writer read on arrival drew its mark after
    /// that writer's commit.
    begun: AtomicU64,
    /// Held while a round runs; its value is the number of the last round finished.
    finished: tokio::sync::Mutex<u64>,
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
            rounds: Arc::default(),
        })
    }

    /// Returns once every replica with a live lease has passed on what was committed before
    /// this call: after the first round to begin after it (waiting for the round in progress,
    /// if any, to end first). Without the database, a round ends after one replica lease: by
    /// then every replica has either passed it on or stopped trusting. `acks` wakes it when a
    /// replica acknowledges (without it, it looks every [`POLL`]).
    pub(super) async fn settle_with(&self, acks: Option<watch::Receiver<u64>>) {
        // What was committed before this call is covered by any round begun after this read.
        let needed = self.rounds.begun.load(Ordering::SeqCst) + 1;
        let mut finished = self.rounds.finished.lock().await;
        if *finished >= needed {
            return;
        }
        let round = self.rounds.begun.fetch_add(1, Ordering::SeqCst) + 1;
        self.round(acks).await;
        *finished = round;
    }

    /// One round: draws a mark and waits until every replica with a live lease has
    /// acknowledged it (or, failing that, out the leases).
    async fn round(&self, mut acks: Option<watch::Receiver<u64>>) {
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

    /// `Writer::settle_with` for a writer that hears no acknowledgements.
    pub async fn settle(&self) {
        self.settle_with(None).await;
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
