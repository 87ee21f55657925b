//! Idempotent writes: a write that carries `idempotency-key` metadata ([`proto::idempotency`])
//! applies at most once per caller, method and key, and every repeat gets the first answer. The
//! rules and all of their SQL live here, once for every service, the migration that creates the
//! table, `idempotency_keys`, too ([`CREATE_TABLE`]; each service splices it into its own):
//!
//! | column | what |
//! |---|---|
//! | `user_id`, `method`, `idempotency_key` | the primary key: whose key (its SHA-256, in hex), for which RPC |
//! | `fingerprint` | HMAC-SHA-256 of the encoded request message, keyed by the idempotency key |
//! | `response` | the encoded response message, when the write succeeded |
//! | `status_code`, `status_message`, `status_details` | the error the request earned, else NULL |
//! | `expires_at` | unix microseconds; from then on the key is forgotten |
//!
//! A keyed write is one transaction: reserve the key (one upsert, which also takes over a key
//! that has expired); if that reserved it, run the write on the same transaction, record its
//! answer and commit. The write, the key and the answer commit together or not at all: a retry
//! after a lost answer finds the answer and applies nothing; a retry after the replica died
//! mid-write finds no key (the transaction rolled back) and applies once. A write refused by the
//! request's own error is rolled back whole (what it wrote before refusing with it too), and a
//! second transaction records the key with its refusal (or, should another request have taken
//! the key meanwhile, answers with that one's answer): no savepoint around every write for the
//! rare refusal.
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

use crate::database::SharedMigration;

/// The migration that creates `idempotency_keys`, which each service places in its own
/// ([`Migrations::shared`](crate::database::Migrations::shared)) at the version its copy of the
/// file had. Its text is that of those copies to the byte, as the databases they migrated
/// recorded it, so its comments tell of the table as it was first made (with an unkeyed SHA-256
/// fingerprint, whose rows the services' later migrations dropped).
pub const CREATE_TABLE: SharedMigration = SharedMigration {
    description: "idempotency keys",
    sqlite: include_str!("../../migrations/sqlite/idempotency_keys.sql"),
    postgres: include_str!("../../migrations/postgres/idempotency_keys.sql"),
};

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

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use sqlx::{
        SqlSafeStr,
        migrate::{Migration, MigrationType},
    };

    use super::*;

    /// The SHA-384s sqlx recorded, per backend, for auth's `0004_idempotency_keys.sql` and
    /// inventory's `0002_idempotency_keys.sql` (one text) in every database they migrated before
    /// they moved here: a database that has them must still start.
    const APPLIED: [(&str, &str); 2] = [
        (
            "sqlite",
            "53da31f54a691833bb90a083a34c31bef28d7e75cbc81d1140e2a8094d74fc427457c97acffb00b1a65a951221473393",
        ),
        (
            "postgres",
            "74d9b24e9fd117e7f80f740e24adcddd1b97521fafb09cdf4c58d5ccad35dadffa49a8544d7bcb5424e740b7c27784c3",
        ),
    ];

    #[test]
    fn the_table_is_made_by_the_very_text_databases_recorded() {
        assert_eq!(CREATE_TABLE.description, "idempotency keys");
        for ((backend, applied), sql) in APPLIED
            .into_iter()
            .zip([CREATE_TABLE.sqlite, CREATE_TABLE.postgres])
        {
            let migration = Migration::new(
                0,
                Cow::Borrowed(CREATE_TABLE.description),
                MigrationType::Simple,
                sql.into_sql_str(),
                false,
            );
            assert_eq!(hex::encode(&migration.checksum), applied, "{backend}");
        }
    }
}
