//! [`GroupCommit`]: SQLite's one writer connection shared by many writes, several of them
//! committed together. A write queues; the committer takes every write queued while the batch
//! before it was committing, runs each behind a savepoint of its own in one transaction (so each
//! keeps or drops its own changes and meets its own failure), and commits once: one fsync of the
//! WAL makes the whole batch durable. Only then does a kept write's caller get its answer, so an
//! answer is never given for a write a power cut could take back. A write alone waits for no
//! other: the batch is whatever queued, never a timer.

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
};

use sqlx::{Acquire, AnyConnection, AnyPool};
use tokio::sync::{mpsc, oneshot};

/// The most writes one commit takes: enough to share a commit across every connection a busy
/// gateway holds, few enough that the first of them does not wait long for the last.
const BATCH: usize = 64;

/// Writes queued for the committer beyond the batch it runs; callers wait beyond that.
const QUEUE: usize = 1024;

/// How many writes each commit took: `db_write_batch_size{pool}`.
pub(crate) const BATCH_SIZE: &str = "db_write_batch_size";

/// Its buckets: powers of two up to [`BATCH`].
pub(crate) const BATCH_BUCKETS: [f64; 7] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0];

/// What a write does with its own changes once it has run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Commit them with the batch; the answer waits for that commit.
    Yes,
    /// Roll back to before it (a failure of the service, or a refusal its caller records
    /// afresh): the answer is given at once, since it depends on no commit.
    No,
}

/// A write's future on the batch's connection: whether it keeps its changes, and its answer.
pub type Running<'c, T> = Pin<Box<dyn Future<Output = (Keep, T)> + Send + 'c>>;

/// A queued write: run on the batch's connection, or told the batch failed before it ran.
type Job =
    Box<dyn for<'c> FnOnce(Result<&'c mut AnyConnection, &'c sqlx::Error>) -> Ran<'c> + Send>;
type Ran<'c> = Pin<Box<dyn Future<Output = (Keep, Deliver)> + Send + 'c>>;
/// Hands the write's answer to its caller, with the batch's commit failure if it had one.
type Deliver = Box<dyn FnOnce(Option<&sqlx::Error>) + Send>;

/// The queue to a pool's one writer connection, and its committer.
#[derive(Debug, Clone)]
pub struct GroupCommit {
    pool: AnyPool,
    /// How many writes each commit took.
    sizes: metrics::Histogram,
    /// The committer's queue: started on the first write (the runtime is there then), and again
    /// should the committer have died (a panicking write takes its batch with it, not the rest).
    queue: Arc<Mutex<Option<mpsc::Sender<Job>>>>,
}

/// A write that ran and was rolled back or committed, or the batch's commit failed.
pub type Committed<T> = Result<T, sqlx::Error>;

impl GroupCommit {
    /// Commits the writes of `pool` (named `name` in the metrics), whose one connection
    /// (SQLite's writer) it borrows for each batch; other users of the pool take their turn
    /// between batches.
    pub fn new(pool: AnyPool, name: &'static str) -> Self {
        Self {
            pool,
            sizes: metrics::histogram!(BATCH_SIZE, "pool" => name),
            queue: Arc::new(Mutex::new(None)),
        }
    }

    /// Runs `write` in the next batch and gives its answer: once the batch committed when it
    /// keeps its changes, at once when it does not; the commit's error if the commit failed (the
    /// write is then undone with the rest of its batch).
    pub async fn run<T, F>(&self, write: F) -> Committed<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut AnyConnection) -> Running<'c, T> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel::<Committed<T>>();
        let job: Job = Box::new(move |connection| {
            Box::pin(async move {
                let connection = match connection {
                    Ok(connection) => connection,
                    Err(err) => {
                        let failed = copy(err);
                        let deliver: Deliver = Box::new(move |_| {
                            let _ = answer.send(Err(failed));
                        });
                        return (Keep::No, deliver);
                    }
                };
                let (keep, value) = write(connection).await;
                let deliver: Deliver = Box::new(move |failed| {
                    let outcome = match failed {
                        Some(err) if keep == Keep::Yes => Err(copy(err)),
                        _ => Ok(value),
                    };
                    let _ = answer.send(outcome);
                });
                (keep, deliver)
            })
        });
        let queue = self.sender();
        if queue.send(job).await.is_err() {
            return Err(sqlx::Error::PoolClosed);
        }
        answered.await.unwrap_or_else(|_| {
            tracing::error!("a write ended without an answer: its batch failed");
            Err(sqlx::Error::WorkerCrashed)
        })
    }

    fn sender(&self) -> mpsc::Sender<Job> {
        let mut queue = self
            .queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(sender) = queue.as_ref().filter(|sender| !sender.is_closed()) {
            return sender.clone();
        }
        let (sender, jobs) = mpsc::channel(QUEUE);
        tokio::spawn(commit_batches(self.pool.clone(), self.sizes.clone(), jobs));
        queue.insert(sender).clone()
    }
}

/// The committer: a batch at a time, for as long as anyone can queue a write.
async fn commit_batches(pool: AnyPool, sizes: metrics::Histogram, mut jobs: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(BATCH);
    while let taken @ 1.. = jobs.recv_many(&mut batch, BATCH).await {
        #[expect(clippy::cast_precision_loss, reason = "at most BATCH")]
        sizes.record(taken as f64);
        commit(&pool, batch.drain(..)).await;
    }
}

/// Runs one batch in one transaction and commits it; every write's answer is delivered.
async fn commit(pool: &AnyPool, mut batch: std::vec::Drain<'_, Job>) {
    let alone = batch.len() == 1;
    let mut waiting: Vec<Deliver> = Vec::with_capacity(batch.len());
    let mut transaction = match pool.begin().await {
        Ok(transaction) => transaction,
        Err(err) => return fail(batch, &err, waiting).await,
    };
    while let Some(job) = batch.next() {
        let ran = if alone {
            // One write needs no savepoint: the transaction is its own.
            Ok(job(Ok(&mut transaction)).await)
        } else {
            in_savepoint(&mut transaction, job).await
        };
        match ran {
            Ok((Keep::Yes, deliver)) => waiting.push(deliver),
            Ok((Keep::No, deliver)) if alone => {
                drop(transaction);
                return deliver(None);
            }
            Ok((Keep::No, deliver)) => deliver(None),
            Err((err, deliver)) => {
                // A savepoint could not be opened or closed: the connection is in no state
                // to trust for the rest of the batch, which is rolled back.
                tracing::warn!(%err, "a batch of writes failed at a savepoint");
                drop(transaction);
                waiting.push(deliver);
                return fail(batch, &err, waiting).await;
            }
        }
    }
    let committed = transaction.commit().await;
    if let Err(err) = &committed {
        tracing::warn!(%err, writes = waiting.len(), "a batch of writes failed to commit");
    }
    let failed = committed.as_ref().err();
    for deliver in waiting {
        deliver(failed);
    }
}

/// Runs `job` behind a savepoint, kept or rolled back as it says; the savepoint's failure with
/// the job's answer when it could not be opened or closed.
async fn in_savepoint(
    transaction: &mut AnyConnection,
    job: Job,
) -> Result<(Keep, Deliver), (sqlx::Error, Deliver)> {
    let mut savepoint = match transaction.begin().await {
        Ok(savepoint) => savepoint,
        Err(err) => {
            let (_, deliver) = job(Err(&err)).await;
            return Err((err, deliver));
        }
    };
    let (keep, deliver) = job(Ok(&mut savepoint)).await;
    let closed = match keep {
        Keep::Yes => savepoint.commit().await,
        Keep::No => savepoint.rollback().await,
    };
    match closed {
        Ok(()) => Ok((keep, deliver)),
        Err(err) => Err((err, deliver)),
    }
}

/// Answers a failed batch: `waiting` (which ran, and are undone) and the rest of `batch`
/// (which never ran) with `err`.
async fn fail(batch: std::vec::Drain<'_, Job>, err: &sqlx::Error, waiting: Vec<Deliver>) {
    for deliver in waiting {
        deliver(Some(err));
    }
    for job in batch {
        let (_, deliver) = job(Err(err)).await;
        deliver(Some(err));
    }
}

/// The batch's failure, for each write of it: the kind (unavailable or not, see
/// [`super::is_unavailable`]) is kept, for the service's own mapping to a status.
fn copy(err: &sqlx::Error) -> sqlx::Error {
    if super::is_unavailable(err) {
        sqlx::Error::Io(std::io::Error::other(err.to_string()))
    } else {
        sqlx::Error::Protocol(format!("the batch's commit failed: {err}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::database::TestSqlite;

    /// A SQLite file of its own, with a table whose foreign key is checked at commit only: a
    /// write that breaks it runs, and fails its batch's commit.
    async fn database(name: &str) -> TestSqlite {
        let db = TestSqlite::new(&format!("group-{name}"), &[]).await;
        for statement in [
            "CREATE TABLE owners (id INTEGER PRIMARY KEY)",
            "CREATE TABLE rows (id INTEGER PRIMARY KEY, owner INTEGER \
             REFERENCES owners (id) DEFERRABLE INITIALLY DEFERRED)",
            "INSERT INTO owners (id) VALUES (1)",
        ] {
            sqlx::query(statement).execute(&db.pool).await.unwrap();
        }
        db
    }

    /// A write inserting row `id` owned by `owner`, keeping it or not.
    fn insert(
        id: i64,
        owner: i64,
        keep: Keep,
    ) -> impl for<'c> FnOnce(&'c mut AnyConnection) -> Running<'c, i64> + Send + 'static {
        move |connection| {
            Box::pin(async move {
                sqlx::query("INSERT INTO rows (id, owner) VALUES ($1, $2)")
                    .bind(id)
                    .bind(owner)
                    .execute(&mut *connection)
                    .await
                    .unwrap();
                (keep, id)
            })
        }
    }

    async fn stored(pool: &AnyPool) -> Vec<i64> {
        sqlx::query_scalar("SELECT id FROM rows ORDER BY id")
            .fetch_all(pool)
            .await
            .unwrap()
    }

    /// Writes queued while a batch runs commit together in the next: one of them failing the
    /// commit fails and undoes all of them (with a commit each, its neighbours would stand), and
    /// none is answered as written.
    #[tokio::test(flavor = "current_thread")]
    async fn writes_queued_behind_a_batch_share_its_successors_commit() {
        let db = database("share").await;
        let pool = db.pool.clone();
        let group = GroupCommit::new(pool.clone(), "test");
        let (release, released) = oneshot::channel::<()>();
        let first = tokio::spawn({
            let group = group.clone();
            async move {
                group
                    .run(move |connection| {
                        Box::pin(async move {
                            released.await.unwrap();
                            insert(1, 1, Keep::Yes)(connection).await
                        })
                    })
                    .await
            }
        });
        tokio::task::yield_now().await;
        let queued: Vec<_> = [(2, 1), (3, 99), (4, 1)]
            .into_iter()
            .map(|(id, owner)| {
                let group = group.clone();
                tokio::spawn(async move { group.run(insert(id, owner, Keep::Yes)).await })
            })
            .collect();
        // On this one thread, each queued write has been sent once every task has run.
        for _ in 0..8 {
            tokio::task::yield_now().await;
        }
        release.send(()).unwrap();
        assert_eq!(first.await.unwrap().unwrap(), 1);
        for write in queued {
            let failed = write.await.unwrap().expect_err("the batch's commit failed");
            assert!(
                failed.to_string().contains("FOREIGN KEY"),
                "the commit's own failure: {failed}"
            );
        }
        assert_eq!(stored(&pool).await, [1]);

        // The writer is there for the next batch.
        assert_eq!(group.run(insert(5, 1, Keep::Yes)).await.unwrap(), 5);
        assert_eq!(stored(&pool).await, [1, 5]);
        pool.close().await;
    }

    /// A write that keeps nothing is rolled back alone; its batch's others commit.
    #[tokio::test(flavor = "current_thread")]
    async fn a_write_that_keeps_nothing_leaves_its_batch_standing() {
        let db = database("keep").await;
        let pool = db.pool.clone();
        let group = GroupCommit::new(pool.clone(), "test");
        let writes: Vec<_> = [(1, Keep::Yes), (2, Keep::No), (3, Keep::Yes)]
            .into_iter()
            .map(|(id, keep)| {
                let group = group.clone();
                tokio::spawn(async move { group.run(insert(id, 1, keep)).await })
            })
            .collect();
        for write in writes {
            write.await.unwrap().expect("each write is answered");
        }
        assert_eq!(stored(&pool).await, [1, 3]);

        // Alone, too.
        assert_eq!(group.run(insert(4, 1, Keep::No)).await.unwrap(), 4);
        assert_eq!(stored(&pool).await, [1, 3]);
        pool.close().await;
    }
}
