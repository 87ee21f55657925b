//! The `users` table.

use service_kit::database::flag;
use sqlx::{Row, any::AnyRow};

use service_kit::validation::FieldErrors;

use super::{DUPLICATE_EMAIL, DUPLICATE_USERNAME, Store, duplicate_field};
use crate::{
    clock::UnixMicros,
    domain::{Email, PersonName, Role, User, Username},
    error::AuthError,
};

const INSERT: &str = concat!(
    "INSERT INTO users (username, username_key, email, email_key, password_hash, first_name, \
     last_name, role, is_staff, is_superuser, is_active, date_joined) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING ",
    user_columns!()
);
const BY_ID: &str = concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1");
const LIST: &str = concat!(
    "SELECT ",
    user_columns!(),
    " FROM users ORDER BY id LIMIT $1 OFFSET $2"
);
const COUNT: &str = "SELECT COUNT(*) FROM users";
const LOGIN_BY_USERNAME: &str = concat!(
    "SELECT ",
    user_columns!(),
    ", password_hash, failed_logins, locked_until FROM users WHERE username_key = $1"
);
const LOGIN_BY_EMAIL: &str = concat!(
    "SELECT ",
    user_columns!(),
    ", password_hash, failed_logins, locked_until FROM users WHERE email_key = $1"
);
const LOGIN_BY_ID: &str = concat!(
    "SELECT ",
    user_columns!(),
    ", password_hash, failed_logins, locked_until FROM users WHERE id = $1"
);
/// Compare-and-set on the failure count, so that concurrent attempts each claim a distinct
/// count and none slips past the threshold.
const CLAIM_ATTEMPT: &str =
    "UPDATE users SET failed_logins = $1, locked_until = $2 WHERE id = $3 AND failed_logins = $4";
const RECORD_LOGIN: &str = concat!(
    "UPDATE users SET failed_logins = 0, locked_until = NULL, last_login = $1 WHERE id = $2 \
     RETURNING ",
    user_columns!()
);
const UPDATE: &str = concat!(
    "UPDATE users SET username = $1, username_key = $2, email = $3, email_key = $4, \
     first_name = $5, last_name = $6, role = $7, is_staff = $8, is_superuser = $9, \
     is_active = $10 WHERE id = $11 RETURNING ",
    user_columns!()
);
const USERNAME_TAKEN: &str = "SELECT COUNT(*) FROM users WHERE username_key = $1";
const EMAIL_TAKEN: &str = "SELECT COUNT(*) FROM users WHERE email_key = $1";
const SET_PASSWORD: &str = "UPDATE users SET password_hash = $1 WHERE id = $2";
const REPLACE_PASSWORD_HASH: &str =
    "UPDATE users SET password_hash = $1 WHERE id = $2 AND password_hash = $3";
const DELETE: &str = "DELETE FROM users WHERE id = $1";

pub(super) fn user_from_row(row: &AnyRow) -> Result<User, sqlx::Error> {
    let role: String = row.try_get("role")?;
    Ok(User {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        email: row.try_get("email")?,
        first_name: row.try_get("first_name")?,
        last_name: row.try_get("last_name")?,
        role: Role::from_db(&role)
            .ok_or_else(|| sqlx::Error::Decode(format!("role {role:?}").into()))?,
        is_staff: flag(row, "is_staff")?,
        is_superuser: flag(row, "is_superuser")?,
        is_active: flag(row, "is_active")?,
        date_joined: UnixMicros(row.try_get("date_joined")?),
        last_login: row.try_get::<Option<i64>, _>("last_login")?.map(UnixMicros),
    })
}

/// A user about to be inserted.
#[derive(Debug)]
pub struct NewUser {
    pub username: Option<Username>,
    pub email: Option<Email>,
    pub password_hash: String,
    pub first_name: PersonName,
    pub last_name: PersonName,
    pub role: Role,
    pub is_staff: bool,
    pub is_superuser: bool,
    pub is_active: bool,
}

/// The full new state of a user's profile (an update writes every column, like Django's save).
#[derive(Debug)]
pub struct UserChanges {
    pub username: Option<Username>,
    pub email: Option<Email>,
    pub first_name: PersonName,
    pub last_name: PersonName,
    pub role: Role,
    pub is_staff: bool,
    pub is_superuser: bool,
    pub is_active: bool,
}

/// How a login names its account.
#[derive(Debug)]
pub enum UserLookup {
    Username(Username),
    Email(Email),
    Id(i64),
}

/// A user with what a login needs: the hash and the failure count.
#[derive(Debug)]
pub struct LoginRecord {
    pub user: User,
    pub password_hash: String,
    pub failed_logins: i64,
    pub locked_until: Option<UnixMicros>,
}

impl Store {
    #[tracing::instrument(skip_all)]
    pub async fn insert_user(&self, user: NewUser, now: UnixMicros) -> Result<User, AuthError> {
        let row = sqlx::query(INSERT)
            .bind(user.username.as_ref().map(|u| u.as_str().to_owned()))
            .bind(user.username.as_ref().map(Username::key))
            .bind(user.email.as_ref().map(|e| e.as_str().to_owned()))
            .bind(user.email.as_ref().map(Email::key))
            .bind(user.password_hash)
            .bind(user.first_name.as_str().to_owned())
            .bind(user.last_name.as_str().to_owned())
            .bind(user.role.as_db())
            .bind(user.is_staff)
            .bind(user.is_superuser)
            .bind(user.is_active)
            .bind(now.0)
            .fetch_one(&self.pool)
            .await
            .map_err(duplicate_or)?;
        Ok(user_from_row(&row)?)
    }

    /// The duplicate errors an insert of these would meet (a dry run of the unique
    /// constraints; the constraints still decide a real insert).
    #[tracing::instrument(skip_all)]
    pub async fn taken(
        &self,
        username: Option<&Username>,
        email: Option<&Email>,
    ) -> Result<FieldErrors, AuthError> {
        let mut errors = FieldErrors::new();
        let checks = [
            (
                username.map(Username::key),
                USERNAME_TAKEN,
                "username",
                DUPLICATE_USERNAME,
            ),
            (email.map(Email::key), EMAIL_TAKEN, "email", DUPLICATE_EMAIL),
        ];
        for (key, query, field, message) in checks {
            let Some(key) = key else { continue };
            let count: i64 = sqlx::query(query)
                .bind(key)
                .fetch_one(&self.pool)
                .await?
                .try_get(0)?;
            if count > 0 {
                errors.add(field, message);
            }
        }
        Ok(errors)
    }

    #[tracing::instrument(skip(self))]
    pub async fn user(&self, id: i64) -> Result<User, AuthError> {
        let row = sqlx::query(BY_ID)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref()
            .map(user_from_row)
            .transpose()?
            .ok_or(AuthError::UserNotFound)
    }

    /// A page of users by id, and how many there are in all.
    #[tracing::instrument(skip(self))]
    pub async fn list_users(
        &self,
        limit: Option<u64>,
        offset: u64,
    ) -> Result<(Vec<User>, u64), AuthError> {
        let limit = limit.map_or(i64::MAX, |l| i64::try_from(l).unwrap_or(i64::MAX));
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        let rows = sqlx::query(LIST)
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.pool)
            .await?;
        let users = rows
            .iter()
            .map(user_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let total: i64 = sqlx::query(COUNT).fetch_one(&self.pool).await?.try_get(0)?;
        Ok((users, u64::try_from(total).unwrap_or(0)))
    }

    #[tracing::instrument(skip_all)]
    pub async fn login_record(
        &self,
        lookup: &UserLookup,
    ) -> Result<Option<LoginRecord>, AuthError> {
        let query = match lookup {
            UserLookup::Username(username) => sqlx::query(LOGIN_BY_USERNAME).bind(username.key()),
            UserLookup::Email(email) => sqlx::query(LOGIN_BY_EMAIL).bind(email.key()),
            UserLookup::Id(id) => sqlx::query(LOGIN_BY_ID).bind(*id),
        };
        let Some(row) = query.fetch_optional(&self.pool).await? else {
            return Ok(None);
        };
        Ok(Some(LoginRecord {
            user: user_from_row(&row)?,
            password_hash: row.try_get("password_hash")?,
            failed_logins: row.try_get("failed_logins")?,
            locked_until: row
                .try_get::<Option<i64>, _>("locked_until")?
                .map(UnixMicros),
        }))
    }

    /// Counts one more failed attempt (before the password is checked: a success resets it) if
    /// nobody else counted since `seen_failures` was read. False means: read again and retry.
    #[tracing::instrument(skip(self))]
    pub async fn claim_login_attempt(
        &self,
        user_id: i64,
        seen_failures: i64,
        locked_until: Option<UnixMicros>,
    ) -> Result<bool, AuthError> {
        let result = sqlx::query(CLAIM_ATTEMPT)
            .bind(seen_failures + 1)
            .bind(locked_until.map(|t| t.0))
            .bind(user_id)
            .bind(seen_failures)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected() == 1)
    }

    /// A successful login: clears the failure count, stamps `last_login`.
    #[tracing::instrument(skip(self))]
    pub async fn record_login(&self, user_id: i64, now: UnixMicros) -> Result<User, AuthError> {
        let row = sqlx::query(RECORD_LOGIN)
            .bind(now.0)
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref()
            .map(user_from_row)
            .transpose()?
            .ok_or(AuthError::UserNotFound)
    }

    #[tracing::instrument(skip(self, changes))]
    pub async fn update_user(&self, id: i64, changes: UserChanges) -> Result<User, AuthError> {
        let row = sqlx::query(UPDATE)
            .bind(changes.username.as_ref().map(|u| u.as_str().to_owned()))
            .bind(changes.username.as_ref().map(Username::key))
            .bind(changes.email.as_ref().map(|e| e.as_str().to_owned()))
            .bind(changes.email.as_ref().map(Email::key))
            .bind(changes.first_name.as_str().to_owned())
            .bind(changes.last_name.as_str().to_owned())
            .bind(changes.role.as_db())
            .bind(changes.is_staff)
            .bind(changes.is_superuser)
            .bind(changes.is_active)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(duplicate_or)?;
        row.as_ref()
            .map(user_from_row)
            .transpose()?
            .ok_or(AuthError::UserNotFound)
    }

    #[tracing::instrument(skip(self, password_hash))]
    pub async fn set_password(&self, id: i64, password_hash: String) -> Result<(), AuthError> {
        let result = sqlx::query(SET_PASSWORD)
            .bind(password_hash)
            .bind(id)
            .execute(&self.pool)
            .await?;
        if result.rows_affected() == 0 {
            return Err(AuthError::UserNotFound);
        }
        Ok(())
    }

    /// Stores `new` in place of `old` (the same password, hashed anew), unless the hash
    /// changed since `old` was read. Whether it was replaced.
    #[tracing::instrument(skip(self, old, new))]
    pub async fn replace_password_hash(
        &self,
        id: i64,
        old: &str,
        new: String,
    ) -> Result<bool, AuthError> {
        let result = sqlx::query(REPLACE_PASSWORD_HASH)
            .bind(new)
            .bind(id)
            .bind(old.to_owned())
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Deletes the user; its credentials go with it (ON DELETE CASCADE).
    #[tracing::instrument(skip(self))]
    pub async fn delete_user(&self, id: i64) -> Result<(), AuthError> {
        let result = sqlx::query(DELETE).bind(id).execute(&self.pool).await?;
        if result.rows_affected() == 0 {
            return Err(AuthError::UserNotFound);
        }
        Ok(())
    }
}

/// A duplicate username or email becomes its field error; anything else stays a database error.
pub(super) fn duplicate_or(err: sqlx::Error) -> AuthError {
    match duplicate_field(&err) {
        Some(errors) => AuthError::Invalid(errors),
        None => err.into(),
    }
}
