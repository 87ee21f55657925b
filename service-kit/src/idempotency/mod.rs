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
//!
//! - `keyed`: [`Keyed`], the key a write carries, digested and scoped.
//! - `writes`: [`Writes`], the keyed transaction and the purge of expired keys.
//! - `answer`: which answers are kept, how they are stored, and what a repeat gets.

mod answer;
mod keyed;
mod writes;

use std::time::Duration;

pub use keyed::Keyed;
pub use writes::{Write, Writes};

/// `IDEMPOTENCY_KEY_TTL_SECONDS`, the services' one setting of this module: how long a key and
/// its answer are kept, a day by default (long enough for any client's retries; Stripe keeps
/// 24 h); `0` forgets each key at once.
pub fn key_ttl_from_env() -> Result<Duration, crate::env::ConfigError> {
    Ok(Duration::from_secs(crate::env::parse_or(
        "IDEMPOTENCY_KEY_TTL_SECONDS",
        "86400",
    )?))
}

/// The message of FAILED_PRECONDITION for a key reused with another request.
pub const REUSED_MESSAGE: &str = "This Idempotency-Key was already used with a different request.";
