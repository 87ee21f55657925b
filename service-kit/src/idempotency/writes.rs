//! [`Writes`]: running a service's writes, a keyed one in the transaction that reserves its key
//! and records its answer (on SQLite, in a batch of writes committed together), and purging the
//! keys that expired.

use std::{
    future::Future,
    pin::Pin,
    time::{Duration, SystemTime},
};

use prost::Message;
use proto::idempotency::REPLAYED_KEY;
use sqlx::{AnyConnection, AnyPool};
use tonic::{Response, Status, metadata::MetadataValue};

use super::{
    Keyed,
    answer::{Answer, decided_by_the_request, replay},
};
use crate::{
    database::{Backend, GroupCommit, Keep, Running},
    time::{UnixMicros, micros_of},
};

/// Reserves the key for this write: a new row, or a row whose key expired taken over afresh
/// (one statement, so a write costs one round trip less than a delete and an insert). Affects
/// no row when the key is held and not expired: the write ran, or runs, under it already.
const RESERVE: &str = "INSERT INTO idempotency_keys \
     (user_id, method, idempotency_key, fingerprint, expires_at) VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (user_id, method, idempotency_key) DO UPDATE SET \
     fingerprint = excluded.fingerprint, expires_at = excluded.expires_at, response = NULL, \
     status_code = NULL, status_message = NULL, status_details = NULL \
     WHERE idempotency_keys.expires_at <= $6";

const RECORD_ANSWER: &str = "UPDATE idempotency_keys \
     SET response = $4, status_code = $5, status_message = $6, status_details = $7 \
     WHERE user_id = $1 AND method = $2 AND idempotency_key = $3";

const SELECT_ANSWER: &str = "SELECT fingerprint, response, status_code, status_message, \
     status_details FROM idempotency_keys \
     WHERE user_id = $1 AND method = $2 AND idempotency_key = $3";

const PURGE_EXPIRED: &str = "DELETE FROM idempotency_keys WHERE expires_at <= $1";

/// How often expired keys are deleted (a forgotten key is already ignored when it is seen).
const PURGE_INTERVAL: Duration = Duration::from_secs(3600);

/// A write to run on a connection of the service's database: on the keyed transaction, or on a
/// pooled connection when there is no key. It owns what it uses (clone the store in), so that
/// it may borrow the connection alone.
pub type Write<'c, R, E> = Pin<Box<dyn Future<Output = Result<R, E>> + Send + 'c>>;

/// Runs a service's writes, keyed or not, on its database.
#[derive(Debug, Clone)]
pub struct Writes {
    pool: AnyPool,
    /// `IDEMPOTENCY_KEY_TTL_SECONDS`: how long a key and its answer are kept.
    ttl: Duration,
    /// How long writes waited for a connection: `db_pool_acquire_seconds{pool}`.
    waited: metrics::Histogram,
    /// On SQLite, the one writer's queue, whose writes commit in batches; on PostgreSQL, none:
    /// each write is a transaction on a connection of its own.
    group: Option<GroupCommit>,
}

impl Writes {
    /// Writes on `pool` (named `name` in the metrics), whose schema has the `idempotency_keys`
    /// table.
    pub fn new(pool: AnyPool, name: &'static str, ttl: Duration) -> Self {
        let waited = metrics::histogram!(crate::database::ACQUIRE_SECONDS, "pool" => name);
        let backend = Backend::of_url(pool.connect_options().database_url.as_str());
        let group =
            (backend == Some(Backend::Sqlite)).then(|| GroupCommit::new(pool.clone(), name));
        Self {
            pool,
            ttl,
            waited,
            group,
        }
    }

    /// Runs `write`, at most once for `keyed`'s key: the first answer again for a repeat (a
    /// response marked `idempotent-replayed: true`), and FAILED_PRECONDITION ([`REUSED`](proto::idempotency::REUSED)) for
    /// the key with another request. `E` is the service's error, which maps its database
    /// errors and its refusals to statuses. An answer is given once what it tells of is
    /// committed.
    pub async fn run<R, E, F>(&self, keyed: Option<Keyed>, write: F) -> Result<Response<R>, Status>
    where
        R: Message + Default + Send + 'static,
        E: From<sqlx::Error> + Into<Status> + 'static,
        F: for<'c> FnOnce(&'c mut AnyConnection) -> Write<'c, R, E> + Send + 'static,
    {
        let asked = std::time::Instant::now();
        let ttl = self.ttl;
        if keyed.is_none() && self.group.is_none() {
            // PostgreSQL, no key: each statement commits on its own, as the write wrote it.
            let mut connection = self.pool.acquire().await.map_err(database::<E>)?;
            self.waited.record(asked.elapsed());
            return write(&mut connection)
                .await
                .map(Response::new)
                .map_err(Into::into);
        }
        let ending = self
            .transact(asked, move |connection| {
                Box::pin(apply::<R, E, F>(connection, keyed, ttl, write))
            })
            .await
            .map_err(database::<E>)?;
        match ending {
            Ending::Commit(answer) => answer,
            Ending::RollBack(status) => Err(status),
            Ending::Refuse { refusal, keyed } => {
                let recorded = self
                    .transact(std::time::Instant::now(), move |connection| {
                        Box::pin(record_refusal::<R, E>(connection, keyed, ttl, refusal))
                    })
                    .await
                    .map_err(database::<E>)?;
                match recorded {
                    Ending::Commit(answer) => answer,
                    Ending::RollBack(status)
                    | Ending::Refuse {
                        refusal: status, ..
                    } => Err(status),
                }
            }
        }
    }

    /// Runs `work` in a transaction of its own (PostgreSQL) or of its batch (SQLite), committed
    /// when it keeps its changes; what it came to.
    async fn transact<T, F>(&self, asked: std::time::Instant, work: F) -> Result<T, sqlx::Error>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut AnyConnection) -> Running<'c, T> + Send + 'static,
    {
        let waited = self.waited.clone();
        if let Some(group) = &self.group {
            return group
                .run(move |connection| {
                    waited.record(asked.elapsed());
                    work(connection)
                })
                .await;
        }
        let mut transaction = self.pool.begin().await?;
        waited.record(asked.elapsed());
        let (keep, value) = work(&mut transaction).await;
        if keep == Keep::Yes {
            transaction.commit().await?;
        }
        Ok(value)
    }

    /// Deletes every key expired at `now`; how many.
    pub async fn purge_expired(&self, now: SystemTime) -> Result<u64, sqlx::Error> {
        let result = sqlx::query(PURGE_EXPIRED)
            .bind(UnixMicros::from(now).0)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected())
    }

    /// Purges expired keys hourly, for as long as it is polled.
    pub async fn purge_periodically(self) {
        let mut ticks = tokio::time::interval(PURGE_INTERVAL);
        loop {
            ticks.tick().await;
            match self.purge_expired(SystemTime::now()).await {
                Ok(0) => {}
                Ok(purged) => tracing::info!(purged, "expired idempotency keys purged"),
                Err(err) => tracing::warn!(%err, "purging idempotency keys failed"),
            }
        }
    }
}

/// A database error as the service `E` maps it.
fn database<E: From<sqlx::Error> + Into<Status>>(err: sqlx::Error) -> Status {
    E::from(err).into()
}

/// How a write's transaction ends.
enum Ending<R> {
    /// Committed, with its answer (a replayed one, too).
    Commit(Result<Response<R>, Status>),
    /// Rolled back: a failure of the service, not of the request, so nothing is kept and a
    /// retry runs the write afresh.
    RollBack(Status),
    /// Rolled back whole, the keyed request refused: its key and refusal are then recorded on
    /// their own ([`record_refusal`]).
    Refuse { refusal: Status, keyed: Keyed },
}

impl<R> Ending<R> {
    fn keep(&self) -> Keep {
        match self {
            Self::Commit(_) => Keep::Yes,
            Self::RollBack(_) | Self::Refuse { .. } => Keep::No,
        }
    }
}

/// Runs `write` on `connection`, inside the transaction the caller commits: for `keyed`, the
/// key reserved first and the answer recorded after, or the first answer replayed. A write the
/// request's own error ends is rolled back whole, what it wrote before refusing with it, and
/// its refusal recorded afterwards: no savepoint around the write, two statements fewer for
/// every write that is not refused.
async fn apply<R, E, F>(
    connection: &mut AnyConnection,
    keyed: Option<Keyed>,
    ttl: Duration,
    write: F,
) -> (Keep, Ending<R>)
where
    R: Message + Default,
    E: From<sqlx::Error> + Into<Status>,
    F: for<'c> FnOnce(&'c mut AnyConnection) -> Write<'c, R, E>,
{
    let ending = match keyed {
        None => match write(connection).await {
            Ok(response) => Ending::Commit(Ok(Response::new(response))),
            Err(err) => Ending::RollBack(err.into()),
        },
        Some(keyed) => keyed_write::<R, E, F>(connection, keyed, ttl, write)
            .await
            .unwrap_or_else(|err| Ending::RollBack(database::<E>(err))),
    };
    (ending.keep(), ending)
}

/// [`apply`] for a keyed write; a database error as such.
async fn keyed_write<R, E, F>(
    connection: &mut AnyConnection,
    keyed: Keyed,
    ttl: Duration,
    write: F,
) -> Result<Ending<R>, sqlx::Error>
where
    R: Message + Default,
    E: From<sqlx::Error> + Into<Status>,
    F: for<'c> FnOnce(&'c mut AnyConnection) -> Write<'c, R, E>,
{
    if let Some(replayed) = reserve(connection, &keyed, ttl).await? {
        return Ok(Ending::Commit(replayed));
    }
    let response = match write(connection).await {
        Ok(response) => response,
        Err(err) => {
            let status: Status = err.into();
            return Ok(if decided_by_the_request(status.code()) {
                Ending::Refuse {
                    refusal: status,
                    keyed,
                }
            } else {
                Ending::RollBack(status)
            });
        }
    };
    record(
        connection,
        &keyed,
        Answer::Response(response.encode_to_vec()),
    )
    .await?;
    Ok(Ending::Commit(Ok(Response::new(response))))
}

/// Records `refusal` as the answer under `keyed`, in the transaction after the refused write's
/// was rolled back; or, if a request took the key meanwhile, replays its answer instead.
async fn record_refusal<R, E>(
    connection: &mut AnyConnection,
    keyed: Keyed,
    ttl: Duration,
    refusal: Status,
) -> (Keep, Ending<R>)
where
    R: Message + Default,
    E: From<sqlx::Error> + Into<Status>,
{
    let recorded = async {
        if let Some(replayed) = reserve(connection, &keyed, ttl).await? {
            return Ok(Ending::Commit(replayed));
        }
        record(connection, &keyed, Answer::Status(refusal.clone())).await?;
        Ok(Ending::Commit(Err(refusal)))
    };
    let ending = recorded
        .await
        .unwrap_or_else(|err| Ending::RollBack(database::<E>(err)));
    (ending.keep(), ending)
}

/// Reserves `keyed`'s key; if another request holds it, that request's answer to replay (or
/// the refusal of a key reused with another request).
async fn reserve<R: Message + Default>(
    connection: &mut AnyConnection,
    keyed: &Keyed,
    ttl: Duration,
) -> Result<Option<Result<Response<R>, Status>>, sqlx::Error> {
    let now = UnixMicros::now().0;
    let reserved = keyed
        .query(RESERVE)
        .bind(keyed.fingerprint.clone())
        .bind(now.saturating_add(micros_of(ttl)))
        .bind(now)
        .execute(&mut *connection)
        .await?
        .rows_affected()
        == 1;
    if reserved {
        return Ok(None);
    }
    let row = keyed
        .query(SELECT_ANSWER)
        .fetch_one(&mut *connection)
        .await?;
    let answer = Answer::from_row(&row)?;
    // Committed with the rest: the answer read may be that of a write in the same batch.
    Ok(Some(replay(answer, &keyed.fingerprint).map(|message| {
        let mut replayed = Response::new(message);
        replayed
            .metadata_mut()
            .insert(REPLAYED_KEY, MetadataValue::from_static("true"));
        replayed
    })))
}

/// Stores `answer` in `keyed`'s reserved row.
async fn record(
    connection: &mut AnyConnection,
    keyed: &Keyed,
    answer: Answer,
) -> Result<(), sqlx::Error> {
    let (response, code, message, details) = answer.into_columns();
    keyed
        .query(RECORD_ANSWER)
        .bind(response)
        .bind(code)
        .bind(message)
        .bind(details)
        .execute(connection)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests;
