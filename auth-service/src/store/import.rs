//! Writing a checked Django dump (`crate::dump`) in one transaction. Each imported user keeps
//! the Django primary key it came from (`users.django_pk`): a user imported before from the
//! same pk is skipped, any other user with the same username or email (ignoring case, as this
//! service compares them) stops the import naming both records, and a token is attached only
//! to the user imported from its own `user` pk. Anything that cannot be written names its
//! record and rolls everything back.

use std::collections::HashMap;

use sqlx::{Any, Row, Transaction};

use super::{Store, audit, user_row::bind_profile, users::duplicate_or};
use crate::{
    clock::UnixMicros,
    domain::{CredentialKind, Email, Username, audit::Event},
    dump::{DjangoDump, ImportReport, ImportedUser, NotImported, UserRef},
    error::AuthError,
};
use service_kit::{database::Backend, django::RecordError};

macro_rules! imported_user_columns {
    () => {
        concat!(
            profile_columns!(),
            ", password_hash, date_joined, last_login, django_pk"
        )
    };
}

const EXISTING_USERS: &str =
    "SELECT id, username, email, username_key, email_key, django_pk FROM users";
const INSERT_KEEPING_ID: &str = concat!(
    "INSERT INTO users (",
    imported_user_columns!(),
    ", id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
     RETURNING id"
);
const INSERT_WITH_NEW_ID: &str = concat!(
    "INSERT INTO users (",
    imported_user_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id"
);
const INSERT_TOKEN: &str = "INSERT INTO credentials (digest, user_id, kind, family, created_at, \
                            expires_at) VALUES ($1, $2, $3, $1, $4, $5) \
                            ON CONFLICT (digest) DO NOTHING";
const TOKEN_HOLDER: &str = "SELECT user_id FROM credentials WHERE digest = $1";
/// allauth's verdict on the user's own address; another address of the user says nothing.
const ADDRESS_VERIFIED: &str =
    "UPDATE users SET email_verified = $1 WHERE id = $2 AND email_key = $3";
/// PostgreSQL's identity does not move past ids inserted explicitly (SQLite's AUTOINCREMENT
/// does): without this the next sign-up would get an imported user's id.
const ADVANCE_POSTGRES_IDS: &str = "SELECT setval(pg_get_serial_sequence('users', 'id'), \
                                    GREATEST((SELECT MAX(id) FROM users), 1), \
                                    (SELECT MAX(id) FROM users) IS NOT NULL)";

/// The users already stored, and those written so far, by what a user is found by.
#[derive(Default)]
struct KnownUsers {
    /// How an error names each user: `user "Dave" (id 7 here)`, or the dump's record.
    described: HashMap<i64, String>,
    by_username: HashMap<String, i64>,
    by_email: HashMap<String, i64>,
    by_django_pk: HashMap<String, i64>,
    /// Imported users' usernames as Django wrote them (its natural key, case and all).
    by_django_username: HashMap<String, i64>,
}

/// A user as [`KnownUsers`] files it.
struct Known<'a> {
    id: i64,
    described: String,
    username: Option<&'a str>,
    email_key: Option<String>,
    django_pk: Option<String>,
}

impl KnownUsers {
    fn add(&mut self, user: Known<'_>) {
        self.described.insert(user.id, user.described);
        if let Some(username) = user.username {
            self.by_username.insert(username.to_lowercase(), user.id);
            if user.django_pk.is_some() {
                self.by_django_username.insert(username.to_owned(), user.id);
            }
        }
        if let Some(key) = user.email_key {
            self.by_email.insert(key, user.id);
        }
        if let Some(pk) = user.django_pk {
            self.by_django_pk.insert(pk, user.id);
        }
    }

    /// Another user that `user` would collide with here: the same username or the same email,
    /// ignoring case; the field and that user's description.
    fn collision(&self, user: &ImportedUser) -> Option<(&'static str, &str)> {
        let username = user
            .profile
            .username
            .as_ref()
            .and_then(|username| self.by_username.get(&username.key()))
            .map(|id| ("username", id));
        let email = || {
            user.profile
                .email
                .as_ref()
                .and_then(|email| self.by_email.get(&email.key()))
                .map(|id| ("email", id))
        };
        let (field, id) = username.or_else(email)?;
        Some((field, self.described[id].as_str()))
    }

    /// The user a token (or an allauth address) names: the one imported from that Django user.
    fn token_holder(&self, user: &UserRef) -> Option<i64> {
        match user {
            UserRef::Pk(pk) => self.by_django_pk.get(pk),
            UserRef::Username(username) => self.by_django_username.get(username),
        }
        .copied()
    }
}

impl Store {
    /// Writes `dump` in one transaction, with `event` given its counts. `token_expires_at` is
    /// the lifetime DRF's tokens get here (theirs never end).
    pub async fn import_django(
        &self,
        dump: &DjangoDump,
        keep_ids: bool,
        (now, token_expires_at): (UnixMicros, UnixMicros),
        event: Event,
    ) -> Result<ImportReport, NotImported> {
        let mut tx = self.pool.begin().await.map_err(AuthError::from)?;
        let mut known = existing_users(&mut tx).await?;
        let mut report = ImportReport::default();
        for user in &dump.users {
            if known.by_django_pk.contains_key(&user.source.pk) {
                report.users_skipped += 1;
                continue;
            }
            if let Some((field, other)) = known.collision(user) {
                return Err(RecordError::new(
                    &user.source,
                    field,
                    format!(
                        "the same {field} (ignoring case) as {other}, and here a {field} \
                         names one account: change one of them in Django and dump again"
                    ),
                )
                .into());
            }
            if let Some(holder) = user.id.and_then(|id| known.described.get(&id)) {
                return Err(RecordError::new(
                    &user.source,
                    "pk",
                    format!(
                        "id {} is held by {holder}; run with --new-ids to give imported users \
                         new ids",
                        user.source.pk
                    ),
                )
                .into());
            }
            let id = insert_user(&mut tx, user).await?;
            known.add(Known {
                id,
                described: format!("{} ({})", user.source, display_name(user)),
                username: user.profile.username.as_ref().map(Username::as_str),
                email_key: user.profile.email.as_ref().map(Email::key),
                django_pk: Some(user.source.pk.clone()),
            });
            report.users_imported += 1;
        }
        for token in &dump.tokens {
            let Some(user_id) = known.token_holder(&token.user) else {
                return Err(RecordError::new(
                    &token.source,
                    "user",
                    "no user imported from that Django user, in the file or before",
                )
                .into());
            };
            let digest = token.key.digest().0;
            let inserted = sqlx::query(INSERT_TOKEN)
                .bind(digest.clone())
                .bind(user_id)
                .bind(CredentialKind::Token.as_db())
                .bind(now.0)
                .bind(token_expires_at.0)
                .execute(&mut *tx)
                .await
                .map_err(AuthError::from)?;
            if inserted.rows_affected() == 1 {
                report.tokens_imported += 1;
                continue;
            }
            let holder: i64 = sqlx::query(TOKEN_HOLDER)
                .bind(digest)
                .fetch_one(&mut *tx)
                .await
                .and_then(|row| row.try_get("user_id"))
                .map_err(AuthError::from)?;
            if holder != user_id {
                return Err(RecordError::new(
                    &token.source,
                    "key",
                    "this key is already a credential of another user here",
                )
                .into());
            }
            report.tokens_skipped += 1;
        }
        for address in &dump.addresses {
            let Some(user_id) = known.token_holder(&address.user) else {
                return Err(RecordError::new(
                    &address.source,
                    "user",
                    "no user imported from that Django user, in the file or before",
                )
                .into());
            };
            sqlx::query(ADDRESS_VERIFIED)
                .bind(address.verified)
                .bind(user_id)
                .bind(address.email.key())
                .execute(&mut *tx)
                .await
                .map_err(AuthError::from)?;
        }
        if self.backend == Backend::Postgres && report.users_imported > 0 && keep_ids {
            sqlx::query(ADVANCE_POSTGRES_IDS)
                .execute(&mut *tx)
                .await
                .map_err(AuthError::from)?;
        }
        let ImportReport {
            users_imported,
            users_skipped,
            tokens_imported,
            tokens_skipped,
        } = &report;
        let event = event
            .with("users_imported", *users_imported)
            .with("users_skipped", *users_skipped)
            .with("tokens_imported", *tokens_imported)
            .with("tokens_skipped", *tokens_skipped)
            .with("keep_ids", keep_ids);
        audit::record(&mut *tx, &event).await?;
        tx.commit().await.map_err(AuthError::from)?;
        Ok(report)
    }
}

async fn existing_users(tx: &mut Transaction<'_, Any>) -> Result<KnownUsers, AuthError> {
    let rows = sqlx::query(EXISTING_USERS).fetch_all(&mut **tx).await?;
    let mut known = KnownUsers::default();
    for row in rows {
        let id: i64 = row.try_get("id")?;
        let username: Option<String> = row.try_get("username")?;
        let email: Option<String> = row.try_get("email")?;
        let django_pk: Option<String> = row.try_get("django_pk")?;
        let name = username.as_deref().or(email.as_deref()).unwrap_or_default();
        let described = match &django_pk {
            Some(pk) => format!("user {name:?} (id {id} here, imported from Django pk {pk})"),
            None => format!("user {name:?} (id {id} here)"),
        };
        known.add(Known {
            id,
            described,
            username: username.as_deref(),
            email_key: row.try_get("email_key")?,
            django_pk,
        });
    }
    Ok(known)
}

async fn insert_user(
    tx: &mut Transaction<'_, Any>,
    user: &ImportedUser,
) -> Result<i64, NotImported> {
    let (statement, id) = match user.id {
        Some(id) => (INSERT_KEEPING_ID, Some(id)),
        None => (INSERT_WITH_NEW_ID, None),
    };
    let mut query = bind_profile(sqlx::query(statement), &user.profile)
        .bind(user.password_hash.expose().to_owned())
        .bind(user.date_joined.0)
        .bind(user.last_login.map(|t| t.0))
        .bind(user.source.pk.clone());
    if let Some(id) = id {
        query = query.bind(id);
    }
    let row = query
        .fetch_one(&mut **tx)
        .await
        .map_err(|err| match duplicate_or(err) {
            AuthError::Invalid(errors) => {
                let (field, message) = errors.iter().next().unwrap_or(("pk", "duplicate"));
                NotImported::Record(RecordError::new(&user.source, field, message))
            }
            other => NotImported::Store(other),
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
