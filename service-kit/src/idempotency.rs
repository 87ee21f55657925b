//! Idempotent writes: a write that carries `idempotency-key` metadata ([`proto::idempotency`])
//! applies at most once per caller, method and key, and every repeat gets the first answer. The
//! rules and all of their SQL live here, once for every service; each service's migrations
//! create the table, `idempotency_keys`:
//!
//! | column | what |
//! |---|---|
//! | `user_id`, `method`, `idempotency_key` | the primary key: whose key (its SHA-256, in hex), for which RPC |
//! | `fingerprint` | HMAC-SHA-256 of the encoded request message, keyed by the idempotency key |
//! | `response` | the encoded response message, when the write succeeded |
//! | `status_code`, `status_message`, `status_details` | the error the request earned, else NULL |
//! | `expires_at` | unix microseconds; from then on the key is forgotten |
//!
//! A keyed write is one transaction: forget the key if it has expired; reserve it (`INSERT … ON
//! CONFLICT DO NOTHING`); if that inserted, run the write on the same transaction (behind a
//! savepoint, so a refused write leaves the key but nothing else), record its answer and commit.
//! The write, the key and the answer commit together or not at all: a retry after a lost answer
//! finds the answer and applies nothing; a retry after the replica died mid-write finds no key
//! (the transaction rolled back) and applies once.
//!
//! Neither the key nor the request is kept: a request may hold a password (an admin's user
//! create, a password set), and an unkeyed digest of it gives the password to a word list. The
//! table holds the key's digest and the request's MAC under the key itself, which only the
//! client (or the gateway, which draws a random key per write) has; no stored answer holds a
//! secret (the keyed writes answer with users and products, never a credential).
//!
//! Concurrent duplicates need no "in progress" state to poll: the second `INSERT` of a key waits
//! for the first transaction (PostgreSQL waits on the unique index for the inserting transaction
//! to end, SQLite for its one write lock), then finds the first's answer, or, if the first rolled
//! back, reserves the key itself. A duplicate therefore waits at most as long as the first write
//! takes, which the callers' own deadlines bound.

use std::{
    future::Future,
    pin::Pin,
    time::{Duration, SystemTime},
};

use hmac::{Hmac, KeyInit, Mac};
use prost::Message;
use proto::idempotency::{self, DOMAIN, METADATA_KEY, REPLAYED_KEY, REUSED};
use sha2::{Digest, Sha256};
use sqlx::{Acquire, Any, AnyConnection, AnyPool, Row, any::AnyArguments, query::Query};
use tonic::{Code, Request, Response, Status, metadata::MetadataValue};

use crate::{
    grpc,
    time::{UnixMicros, micros_of},
    validation::FieldErrors,
};

const FORGET_EXPIRED_KEY: &str = "DELETE FROM idempotency_keys \
     WHERE user_id = $1 AND method = $2 AND idempotency_key = $3 AND expires_at <= $4";

const RESERVE: &str = "INSERT INTO idempotency_keys \
     (user_id, method, idempotency_key, fingerprint, expires_at) VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT DO NOTHING";

const RECORD_ANSWER: &str = "UPDATE idempotency_keys \
     SET response = $4, status_code = $5, status_message = $6, status_details = $7 \
     WHERE user_id = $1 AND method = $2 AND idempotency_key = $3";

const SELECT_ANSWER: &str = "SELECT fingerprint, response, status_code, status_message, \
     status_details FROM idempotency_keys \
     WHERE user_id = $1 AND method = $2 AND idempotency_key = $3";

const PURGE_EXPIRED: &str = "DELETE FROM idempotency_keys WHERE expires_at <= $1";

/// `IDEMPOTENCY_KEY_TTL_SECONDS`, the services' one setting of this module: how long a key and
/// its answer are kept, a day by default (long enough for any client's retries; Stripe keeps
/// 24 h); `0` forgets each key at once.
pub fn key_ttl_from_env() -> Result<Duration, crate::env::ConfigError> {
    Ok(Duration::from_secs(crate::env::parse_or(
        "IDEMPOTENCY_KEY_TTL_SECONDS",
        "86400",
    )?))
}

/// How often expired keys are deleted (a forgotten key is already ignored when it is seen).
const PURGE_INTERVAL: Duration = Duration::from_secs(3600);

/// The message of FAILED_PRECONDITION for a key reused with another request.
pub const REUSED_MESSAGE: &str = "This Idempotency-Key was already used with a different request.";

/// A write that carries a key: whose, for which method, and what the request was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyed {
    user_id: i64,
    method: &'static str,
    key: String,
    fingerprint: Vec<u8>,
}

impl Keyed {
    /// The key `request` carries, scoped to `user_id` calling `method`: `None` without one,
    /// INVALID_ARGUMENT (a field violation on `idempotency-key`) for one that is no key.
    pub fn of<T: Message>(
        request: &Request<T>,
        user_id: i64,
        method: &'static str,
    ) -> Result<Option<Self>, Status> {
        let Some(value) = request.metadata().get(METADATA_KEY) else {
            return Ok(None);
        };
        let key = value
            .to_str()
            .map_err(|_| idempotency::MalformedKey::InvalidCharacters)
            .and_then(idempotency::check)
            .map_err(|malformed| {
                Status::from(FieldErrors::single(METADATA_KEY, malformed.message()))
            })?;
        Ok(Some(Self {
            user_id,
            method,
            key: hex::encode(Sha256::digest(key.as_bytes())),
            fingerprint: fingerprint(key, &request.get_ref().encode_to_vec()),
        }))
    }

    /// `sql` with this key bound as every statement here names it: `$1` the user, `$2` the
    /// method, `$3` the key.
    fn query(&self, sql: &'static str) -> Query<'_, Any, AnyArguments> {
        sqlx::query(sql)
            .bind(self.user_id)
            .bind(self.method)
            .bind(self.key.as_str())
    }
}

/// The MAC of an encoded request under its idempotency key: equal for the same request with
/// the same key, and of no use to a word list without the key.
fn fingerprint(key: &str, request: &[u8]) -> Vec<u8> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(request);
    mac.finalize().into_bytes().to_vec()
}

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
}

impl Writes {
    /// Writes on `pool`, whose schema has the `idempotency_keys` table.
    pub fn new(pool: AnyPool, ttl: Duration) -> Self {
        Self { pool, ttl }
    }

    /// Runs `write`, at most once for `keyed`'s key: the first answer again for a repeat (a
    /// response marked `idempotent-replayed: true`), and FAILED_PRECONDITION ([`REUSED`]) for
    /// the key with another request. `E` is the service's error, which maps its database
    /// errors and its refusals to statuses.
    pub async fn run<R, E, F>(&self, keyed: Option<Keyed>, write: F) -> Result<Response<R>, Status>
    where
        R: Message + Default,
        E: From<sqlx::Error> + Into<Status>,
        F: for<'c> FnOnce(&'c mut AnyConnection) -> Write<'c, R, E>,
    {
        let database = |err: sqlx::Error| -> Status { E::from(err).into() };
        let Some(keyed) = keyed else {
            let mut connection = self.pool.acquire().await.map_err(database)?;
            return write(&mut connection)
                .await
                .map(Response::new)
                .map_err(Into::into);
        };
        let now = UnixMicros::now().0;
        let mut transaction = self.pool.begin().await.map_err(database)?;
        keyed
            .query(FORGET_EXPIRED_KEY)
            .bind(now)
            .execute(&mut *transaction)
            .await
            .map_err(database)?;
        let reserved = keyed
            .query(RESERVE)
            .bind(keyed.fingerprint.clone())
            .bind(now.saturating_add(micros_of(self.ttl)))
            .execute(&mut *transaction)
            .await
            .map_err(database)?
            .rows_affected()
            == 1;
        if !reserved {
            let row = keyed
                .query(SELECT_ANSWER)
                .fetch_one(&mut *transaction)
                .await
                .map_err(database)?;
            let answer = Answer::from_row(&row).map_err(database)?;
            let mut replayed = Response::new(replay(answer, &keyed.fingerprint)?);
            replayed
                .metadata_mut()
                .insert(REPLAYED_KEY, MetadataValue::from_static("true"));
            return Ok(replayed);
        }

        let mut savepoint = transaction.begin().await.map_err(database)?;
        let outcome = write(&mut savepoint).await.map_err(Into::into);
        let answer = match &outcome {
            Ok(response) => {
                savepoint.commit().await.map_err(database)?;
                Answer::Response(response.encode_to_vec())
            }
            Err(status) if decided_by_the_request(status.code()) => {
                savepoint.rollback().await.map_err(database)?;
                Answer::Status(status.clone())
            }
            // The service failed, not the request: nothing is kept (the transaction rolls back
            // when dropped), so a retry runs the write afresh.
            Err(_) => return outcome.map(Response::new),
        };
        let (response, code, message, details) = answer.into_columns();
        keyed
            .query(RECORD_ANSWER)
            .bind(response)
            .bind(code)
            .bind(message)
            .bind(details)
            .execute(&mut *transaction)
            .await
            .map_err(database)?;
        transaction.commit().await.map_err(database)?;
        outcome.map(Response::new)
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

/// Whether a call's error is the answer to its request (kept with the key and repeated), rather
/// than a failure of the service (not kept: nothing was written, so a retry may run afresh).
fn decided_by_the_request(code: Code) -> bool {
    matches!(
        code,
        Code::InvalidArgument
            | Code::NotFound
            | Code::AlreadyExists
            | Code::PermissionDenied
            | Code::FailedPrecondition
            | Code::OutOfRange
            | Code::Unauthenticated
    )
}

/// What a keyed write answered.
enum Answer {
    Response(Vec<u8>),
    Status(Status),
}

/// The answer columns: `response`, `status_code`, `status_message`, `status_details`.
type Columns = (
    Option<Vec<u8>>,
    Option<i64>,
    Option<String>,
    Option<Vec<u8>>,
);

impl Answer {
    fn into_columns(self) -> Columns {
        match self {
            Self::Response(bytes) => (Some(bytes), None, None, None),
            Self::Status(status) => (
                None,
                Some(i64::from(i32::from(status.code()))),
                Some(status.message().to_owned()),
                Some(status.details().to_vec()),
            ),
        }
    }

    /// A stored row's fingerprint and answer.
    fn from_row(row: &sqlx::any::AnyRow) -> Result<(Vec<u8>, Option<Self>), sqlx::Error> {
        let fingerprint: Vec<u8> = row.try_get("fingerprint")?;
        let response: Option<Vec<u8>> = row.try_get("response")?;
        let code: Option<i64> = row.try_get("status_code")?;
        let answer = match (response, code) {
            (Some(bytes), _) => Some(Self::Response(bytes)),
            (None, Some(code)) => {
                let message: Option<String> = row.try_get("status_message")?;
                let details: Option<Vec<u8>> = row.try_get("status_details")?;
                Some(Self::Status(Status::with_details(
                    Code::from(i32::try_from(code).unwrap_or_default()),
                    message.unwrap_or_default(),
                    details.unwrap_or_default().into(),
                )))
            }
            (None, None) => None,
        };
        Ok((fingerprint, answer))
    }
}

/// What a repeat gets: the stored answer when the request is the same, else the refusal.
fn replay<R: Message + Default>(
    (fingerprint, answer): (Vec<u8>, Option<Answer>),
    request: &[u8],
) -> Result<R, Status> {
    if fingerprint != request {
        return Err(grpc::with_reason(
            Code::FailedPrecondition,
            REUSED_MESSAGE,
            REUSED,
            DOMAIN,
        ));
    }
    match answer {
        Some(Answer::Response(bytes)) => R::decode(bytes.as_slice()).map_err(|err| {
            tracing::error!(%err, "a stored idempotent response does not decode");
            Status::internal("A server error occurred.")
        }),
        Some(Answer::Status(status)) => Err(status),
        // Never committed so: the answer is recorded in the reserving transaction.
        None => {
            tracing::error!("an idempotency key without an answer");
            Err(Status::internal("A server error occurred."))
        }
    }
}

#[cfg(test)]
mod tests {
    use tonic_types::StatusExt;

    use super::*;

    fn request_with_key(key: &str) -> Request<prost_types::Duration> {
        let mut request = Request::new(prost_types::Duration {
            seconds: 5,
            nanos: 0,
        });
        request
            .metadata_mut()
            .insert(METADATA_KEY, key.parse().unwrap());
        request
    }

    #[test]
    fn a_key_is_scoped_and_fingerprinted() {
        let keyed = Keyed::of(&request_with_key("k-1"), 7, "AdjustStock")
            .unwrap()
            .expect("a key");
        assert_eq!(
            (keyed.user_id, keyed.method, keyed.key.as_str()),
            (
                7,
                "AdjustStock",
                hex::encode(Sha256::digest(b"k-1")).as_str()
            )
        );
        let encoded = request_with_key("k-1").get_ref().encode_to_vec();
        assert_eq!(keyed.fingerprint, fingerprint("k-1", &encoded));
        assert_ne!(
            keyed.fingerprint,
            Sha256::digest(&encoded).to_vec(),
            "no unkeyed digest of the request"
        );
        let other_key = Keyed::of(&request_with_key("k-2"), 7, "AdjustStock")
            .unwrap()
            .unwrap();
        assert_ne!(keyed.fingerprint, other_key.fingerprint);
        let unkeyed = Request::new(prost_types::Duration::default());
        assert_eq!(Keyed::of(&unkeyed, 7, "AdjustStock").unwrap(), None);
    }

    #[test]
    fn a_malformed_key_is_invalid_argument() {
        let long = "k".repeat(idempotency::MAX_LEN + 1);
        let status = Keyed::of(&request_with_key(&long), 7, "AdjustStock").unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        let errors = FieldErrors::from_status(&status).expect("field violations");
        assert_eq!(
            errors.iter().collect::<Vec<_>>(),
            [(
                METADATA_KEY,
                "Idempotency-Key must be at most 255 characters long."
            )]
        );
    }

    #[test]
    fn a_stored_status_replays_whole() {
        let refused = grpc::with_reason(
            Code::FailedPrecondition,
            "Insufficient stock.",
            "INSUFFICIENT_STOCK",
            "inventory.v1",
        );
        let (response, code, message, details) = Answer::Status(refused).into_columns();
        assert_eq!(response, None);
        let stored = Status::with_details(
            Code::from(i32::try_from(code.unwrap()).unwrap()),
            message.unwrap(),
            details.unwrap().into(),
        );
        let replayed = replay::<()>((vec![1], Some(Answer::Status(stored))), &[1]).unwrap_err();
        assert_eq!(replayed.code(), Code::FailedPrecondition);
        assert_eq!(replayed.message(), "Insufficient stock.");
        let info = replayed.get_error_details().error_info().cloned().unwrap();
        assert_eq!(info.reason, "INSUFFICIENT_STOCK");

        let reused = replay::<()>((vec![1], None), &[2]).unwrap_err();
        assert_eq!(reused.code(), Code::FailedPrecondition);
        let info = reused.get_error_details().error_info().cloned().unwrap();
        assert_eq!(
            (info.reason.as_str(), info.domain.as_str()),
            (REUSED, DOMAIN)
        );
    }

    #[test]
    fn only_the_requests_own_errors_are_kept() {
        assert!(decided_by_the_request(Code::FailedPrecondition));
        assert!(decided_by_the_request(Code::NotFound));
        assert!(!decided_by_the_request(Code::Unavailable));
        assert!(!decided_by_the_request(Code::Internal));
        assert!(!decided_by_the_request(Code::Cancelled));
    }
}
