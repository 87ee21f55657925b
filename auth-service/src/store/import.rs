//! Writing a checked Django dump (`crate::import`) in one transaction: users that exist (same
//! username, ignoring case) are skipped, tokens already stored are skipped, and anything that
//! cannot be written names its record and rolls everything back.

use std::collections::HashMap;

use sqlx::{Any, Row, Transaction};

use super::{
    DUPLICATE_EMAIL, Store,
    users::{bind_profile, duplicate_or},
};
use crate::{
    clock::UnixMicros,
    domain::{CredentialKind, Email, Username},
    error::AuthError,
    import::{DjangoDump, ImportError, ImportReport, ImportedUser, UserRef},
};
use service_kit::{database::Backend, django::RecordError};

macro_rules! imported_user_columns {
    () => {
        concat!(
            profile_columns!(),
            ", password_hash, date_joined, last_login"
        )
    };
}

const EXISTING_USERS: &str = "SELECT id, username, username_key, email_key FROM users";
const INSERT_KEEPING_ID: &str = concat!(
    "INSERT INTO users (",
    imported_user_columns!(),
    ", id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id"
);
const INSERT_WITH_NEW_ID: &str = concat!(
    "INSERT INTO users (",
    imported_user_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id"
);
const INSERT_TOKEN: &str = "INSERT INTO credentials (digest, user_id, kind, family, created_at, \
                            expires_at) VALUES ($1, $2, $3, $1, $4, $5) \
                            ON CONFLICT (digest) DO NOTHING";
/// PostgreSQL's identity does not move past ids inserted explicitly (SQLite's AUTOINCREMENT
/// does): without this the next sign-up would get an imported user's id.
const ADVANCE_POSTGRES_IDS: &str = "SELECT setval(pg_get_serial_sequence('users', 'id'), \
                                    GREATEST((SELECT MAX(id) FROM users), 1), \
                                    (SELECT MAX(id) FROM users) IS NOT NULL)";

/// The users already stored, and those written so far, by what a user is found by.
#[derive(Default)]
struct KnownUsers {
    ids: HashMap<i64, String>,
    by_username: HashMap<String, i64>,
    by_email: HashMap<String, i64>,
}

impl KnownUsers {
    fn add(
        &mut self,
        id: i64,
        name: String,
        username_key: Option<String>,
        email_key: Option<String>,
    ) {
        self.ids.insert(id, name);
        if let Some(key) = username_key {
            self.by_username.insert(key, id);
        }
        if let Some(key) = email_key {
            self.by_email.insert(key, id);
        }
    }

    /// The user here that `user` is: the same username, or (for a user without one) the same
    /// email, ignoring case.
    fn existing(&self, user: &ImportedUser) -> Option<i64> {
        match (&user.profile.username, &user.profile.email) {
            (Some(username), _) => self.by_username.get(&username.key()).copied(),
            (None, Some(email)) => self.by_email.get(&email.key()).copied(),
            (None, None) => None,
        }
    }
}

impl Store {
    /// Writes `dump` in one transaction. `token_expires_at` is the lifetime DRF's tokens get
    /// here (theirs never end).
    pub async fn import_django(
        &self,
        dump: &DjangoDump,
        keep_ids: bool,
        now: UnixMicros,
        token_expires_at: UnixMicros,
    ) -> Result<ImportReport, ImportError> {
        let mut tx = self.pool.begin().await.map_err(AuthError::from)?;
        let mut known = existing_users(&mut tx).await?;
        let mut report = ImportReport::default();
        // Django's primary key (as the dump writes it) → the id here.
        let mut ids_of_pk: HashMap<&str, i64> = HashMap::new();
        for user in &dump.users {
            if let Some(id) = known.existing(user) {
                report.users_skipped += 1;
                ids_of_pk.insert(&user.source.pk, id);
                continue;
            }
            if let Some(email) = &user.profile.email
                && known.by_email.contains_key(&email.key())
            {
                return Err(RecordError::new(&user.source, "email", DUPLICATE_EMAIL).into());
            }
            if let Some(holder) = user.id.and_then(|id| known.ids.get(&id)) {
                return Err(RecordError::new(
                    &user.source,
                    "pk",
                    format!(
                        "id {} is held by user {holder:?} here; run with --new-ids to give \
                         imported users new ids",
                        user.source.pk
                    ),
                )
                .into());
            }
            let id = insert_user(&mut tx, user).await?;
            known.add(
                id,
                display_name(user),
                user.profile.username.as_ref().map(Username::key),
                user.profile.email.as_ref().map(Email::key),
            );
            ids_of_pk.insert(&user.source.pk, id);
            report.users_imported += 1;
        }
        for token in &dump.tokens {
            let user_id = match &token.user {
                UserRef::Pk(pk) => ids_of_pk.get(pk.as_str()).copied().or_else(|| {
                    // A dump of tokens alone, after its users: the ids were kept.
                    let id = pk.parse().ok().filter(|_| keep_ids)?;
                    known.ids.contains_key(&id).then_some(id)
                }),
                UserRef::Username(username) => {
                    known.by_username.get(&username.to_lowercase()).copied()
                }
            };
            let Some(user_id) = user_id else {
                return Err(RecordError::new(
                    &token.source,
                    "user",
                    "no such user in the file or here",
                )
                .into());
            };
            let inserted = sqlx::query(INSERT_TOKEN)
                .bind(token.key.digest().0)
                .bind(user_id)
                .bind(CredentialKind::Token.as_db())
                .bind(now.0)
                .bind(token_expires_at.0)
                .execute(&mut *tx)
                .await
                .map_err(AuthError::from)?;
            if inserted.rows_affected() == 1 {
                report.tokens_imported += 1;
            } else {
                report.tokens_skipped += 1;
            }
        }
        if self.backend == Backend::Postgres && report.users_imported > 0 && keep_ids {
            sqlx::query(ADVANCE_POSTGRES_IDS)
                .execute(&mut *tx)
                .await
                .map_err(AuthError::from)?;
        }
        tx.commit().await.map_err(AuthError::from)?;
        Ok(report)
    }
}

async fn existing_users(tx: &mut Transaction<'_, Any>) -> Result<KnownUsers, AuthError> {
    let rows = sqlx::query(EXISTING_USERS).fetch_all(&mut **tx).await?;
    let mut known = KnownUsers::default();
    for row in rows {
        let username: Option<String> = row.try_get("username")?;
        known.add(
            row.try_get("id")?,
            username.unwrap_or_default(),
            row.try_get("username_key")?,
            row.try_get("email_key")?,
        );
    }
    Ok(known)
}

async fn insert_user(
    tx: &mut Transaction<'_, Any>,
    user: &ImportedUser,
) -> Result<i64, ImportError> {
    let (statement, id) = match user.id {
        Some(id) => (INSERT_KEEPING_ID, Some(id)),
        None => (INSERT_WITH_NEW_ID, None),
    };
    let mut query = bind_profile(sqlx::query(statement), &user.profile)
        .bind(user.password_hash.clone())
        .bind(user.date_joined.0)
        .bind(user.last_login.map(|t| t.0));
    if let Some(id) = id {
        query = query.bind(id);
    }
    let row = query
        .fetch_one(&mut **tx)
        .await
        .map_err(|err| match duplicate_or(err) {
            AuthError::Invalid(errors) => {
                let (field, message) = errors.iter().next().unwrap_or(("pk", "duplicate"));
                ImportError::Record(RecordError::new(&user.source, field, message))
            }
            other => ImportError::Store(other),
        })?;
    Ok(row.try_get("id").map_err(AuthError::from)?)
}

fn display_name(user: &ImportedUser) -> String {
    user.profile
        .username
        .as_ref()
        .map(|u| u.as_str().to_owned())
        .or_else(|| user.profile.email.as_ref().map(|e| e.as_str().to_owned()))
        .unwrap_or_default()
}
