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
use sqlx::{AnyConnection, AnyPool, Connection};
use tonic::{Response, Status, metadata::MetadataValue};

use super::{
    Keyed,
    answer::{Answer, decided_by_the_request, replay},
};
use crate::{
    database::{GroupCommit, Keep},
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
        let sqlite = pool.connect_options().database_url.scheme() == "sqlite";
        let group = sqlite.then(|| GroupCommit::new(pool.clone(), name));
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
        if let Some(group) = &self.group {
            let waited = self.waited.clone();
            let ran = group
                .run(move |connection| {
                    Box::pin(async move {
                        waited.record(asked.elapsed());
                        apply::<R, E, F>(connection, keyed, ttl, write).await
                    })
                })
                .await;
            return ran.map_err(database::<E>)?;
        }
        let Some(keyed) = keyed else {
            let mut connection = self.pool.acquire().await.map_err(database::<E>)?;
            self.waited.record(asked.elapsed());
            return write(&mut connection)
                .await
                .map(Response::new)
                .map_err(Into::into);
        };
        let mut transaction = self.pool.begin().await.map_err(database::<E>)?;
        self.waited.record(asked.elapsed());
        let (keep, answer) = apply::<R, E, F>(&mut transaction, Some(keyed), ttl, write).await;
        if keep == Keep::Yes {
            transaction.commit().await.map_err(database::<E>)?;
        }
        answer
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

/// Runs `write` on `connection`, inside the transaction the caller commits: for `keyed`, the
/// key reserved first and the answer recorded after (the write behind a savepoint, so a refused
/// write leaves the key and its refusal but nothing else), or the first answer replayed. Whether
/// the transaction's changes are to be kept: not after a failure of the service (a retry must
/// then run the write afresh).
async fn apply<R, E, F>(
    connection: &mut AnyConnection,
    keyed: Option<Keyed>,
    ttl: Duration,
    write: F,
) -> (Keep, Result<Response<R>, Status>)
where
    R: Message + Default,
    E: From<sqlx::Error> + Into<Status>,
    F: for<'c> FnOnce(&'c mut AnyConnection) -> Write<'c, R, E>,
{
    let Some(keyed) = keyed else {
        return match write(connection).await {
            Ok(response) => (Keep::Yes, Ok(Response::new(response))),
            Err(err) => (Keep::No, Err(err.into())),
        };
    };
    match keyed_write::<R, E, F>(connection, &keyed, ttl, write).await {
        Ok(kept) => kept,
        Err(err) => (Keep::No, Err(database::<E>(err))),
    }
}

/// [`apply`] for a keyed write; a database error as such.
async fn keyed_write<R, E, F>(
    connection: &mut AnyConnection,
    keyed: &Keyed,
    ttl: Duration,
    write: F,
) -> Result<(Keep, Result<Response<R>, Status>), sqlx::Error>
where
    R: Message + Default,
    E: From<sqlx::Error> + Into<Status>,
    F: for<'c> FnOnce(&'c mut AnyConnection) -> Write<'c, R, E>,
{
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
    if !reserved {
        let row = keyed
            .query(SELECT_ANSWER)
            .fetch_one(&mut *connection)
            .await?;
        let answer = Answer::from_row(&row)?;
        let replayed = replay(answer, &keyed.fingerprint).map(|message| {
            let mut replayed = Response::new(message);
            replayed
                .metadata_mut()
                .insert(REPLAYED_KEY, MetadataValue::from_static("true"));
            replayed
        });
        // Kept: the answer read may be that of a write in the same uncommitted batch.
        return Ok((Keep::Yes, replayed));
    }

    let mut savepoint = connection.begin().await?;
    let outcome: Result<R, Status> = write(&mut savepoint).await.map_err(Into::into);
    let answer = match &outcome {
        Ok(response) => {
            savepoint.commit().await?;
            Answer::Response(response.encode_to_vec())
        }
        Err(status) if decided_by_the_request(status.code()) => {
            savepoint.rollback().await?;
            Answer::Status(status.clone())
        }
        // The service failed, not the request: nothing is kept, so a retry runs the write
        // afresh.
        Err(_) => return Ok((Keep::No, outcome.map(Response::new))),
    };
    let (response, code, message, details) = answer.into_columns();
    keyed
        .query(RECORD_ANSWER)
        .bind(response)
        .bind(code)
        .bind(message)
        .bind(details)
        .execute(&mut *connection)
        .await?;
    Ok((Keep::Yes, outcome.map(Response::new)))
}
