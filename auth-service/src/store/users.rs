//! The `users` table: creating, reading, updating and deleting users (logins and passwords are
//! `passwords`).

use service_kit::validation::FieldErrors;
use sqlx::{AnyConnection, Connection, Row};

use super::{
    DUPLICATE_EMAIL, DUPLICATE_USERNAME, Store, audit,
    credentials::delete_credentials,
    duplicate_field,
    user_row::{bind_changes, bind_profile, found_user, user_from_row},
};
use crate::{
    domain::{
        Email, HashedPassword, Profile, ProfileChanges, TokenDigest, User, Username, audit::Event,
    },
    error::AuthError,
};

/// Said when an update would leave a user with neither a username nor an email.
pub const NEEDS_AN_IDENTITY: &str = "A user needs a username or an email.";

const INSERT: &str = concat!(
    "INSERT INTO users (",
    profile_columns!(),
    ", password_hash, date_joined) \
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
/// Every field a patch sets, in one statement (so two admins' changes to different fields both
/// stay); `$1`/`$2` say whether username/email are set (to a value or to none). The version is
/// bumped when the patch withdraws credentials. A superuser is changed only when `$16` allows
/// it (the caller is one, or only unprotected fields change).
const UPDATE: &str = concat!(
    "UPDATE users SET \
     username = CASE WHEN $1 THEN $3 ELSE username END, \
     username_key = CASE WHEN $1 THEN $4 ELSE username_key END, \
     email = CASE WHEN $2 THEN $5 ELSE email END, \
     email_key = CASE WHEN $2 THEN $6 ELSE email_key END, \
     first_name = COALESCE($7, first_name), last_name = COALESCE($8, last_name), \
     role = COALESCE($9, role), is_staff = COALESCE($10, is_staff), \
     is_superuser = COALESCE($11, is_superuser), is_active = COALESCE($12, is_active), \
     password_hash = COALESCE($13, password_hash), \
     credentials_version = credentials_version + $14, \
     email_verified = CASE WHEN $2 AND COALESCE(email_key, '') <> COALESCE($6, '') \
                      THEN FALSE ELSE email_verified END \
     WHERE id = $15 AND (NOT is_superuser OR $16) RETURNING ",
    user_columns!()
);
const USER_EXISTS: &str = "SELECT 1 FROM users WHERE id = $1";
/// Takes the user's row lock first (the order every credential write uses) and reads the user
/// as it is before the update.
const LOCK_AND_READ: &str = concat!(
    "UPDATE users SET credentials_version = credentials_version WHERE id = $1 RETURNING ",
    user_columns!()
);
const USERNAME_TAKEN: &str = "SELECT COUNT(*) FROM users WHERE username_key = $1";
const EMAIL_TAKEN: &str = "SELECT COUNT(*) FROM users WHERE email_key = $1";
const DELETE: &str =
    "DELETE FROM users WHERE id = $1 AND (NOT is_superuser OR $2) RETURNING username, email";

/// A user as an update left it.
#[derive(Debug)]
pub struct UpdatedUser {
    pub user: User,
    /// Whether it has an email it did not have before (now unverified).
    pub new_email: bool,
}

/// A user about to be inserted.
#[derive(Debug)]
pub struct NewUser {
    pub profile: Profile,
    pub password_hash: HashedPassword,
}

/// A partial update of a user's row: its profile's changes, and a new password's hash.
#[derive(Debug, Default)]
pub struct UserChanges {
    pub profile: ProfileChanges,
    pub password_hash: Option<HashedPassword>,
}

impl UserChanges {
    /// Whether only a superuser may make these changes to a superuser: its password, or what
    /// [`ProfileChanges::touches_superuser_powers`] names.
    pub fn touches_superuser_powers(&self) -> bool {
        self.password_hash.is_some() || self.profile.touches_superuser_powers()
    }

    /// Whether the user's credentials stop working: a new password revokes them; a
    /// deactivation makes them fail ("User inactive or deleted.", as DRF says) until a
    /// reactivation revokes them, so it starts from a clean slate. Either way no credential
    /// issued from what was read before may land.
    pub fn withdraws_credentials(&self) -> bool {
        self.password_hash.is_some() || self.profile.is_active == Some(false)
    }
}

impl Store {
    /// Inserts `user` at `event.at` on `connection` (a transaction of its own, or a savepoint
    /// within a keyed write's), recording `event` about the new user, with its powers.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn insert_user(
        connection: &mut AnyConnection,
        user: NewUser,
        event: Event,
    ) -> Result<User, AuthError> {
        let mut tx = connection.begin().await?;
        let row = bind_profile(sqlx::query(INSERT), &user.profile)
            .bind(user.password_hash.into_exposed())
            .bind(event.at.0)
            .fetch_one(&mut *tx)
            .await
            .map_err(duplicate_or)?;
        let user = user_from_row(&row)?;
        let event = event
            .on(user.id)
            .with("role", user.role.as_db())
            .with("is_staff", user.is_staff)
            .with("is_superuser", user.is_superuser)
            .with("is_active", user.is_active);
        audit::record(&mut *tx, &event).await?;
        tx.commit().await?;
        Ok(user)
    }

    /// The duplicate errors an insert of these would meet (a dry run of the unique
    /// constraints; the constraints still decide a real insert).
    #[tracing::instrument(level = "debug", skip_all)]
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

    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn user(&self, id: i64) -> Result<User, AuthError> {
        let row = sqlx::query(BY_ID)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        found_user(row)
    }

    /// A page of users by id, and how many there are in all.
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn list_users(&self, limit: u64, offset: u64) -> Result<(Vec<User>, u64), AuthError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
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

    /// Applies `changes` in one statement. In the same transaction, a new password revokes the
    /// user's credentials (but `keep`), a reactivation revokes all of them, and the events the
    /// change makes ([`Event::of_user_update`] of `base`) are recorded. A superuser is changed
    /// only when `may_change_superuser` or the changes leave its powers alone.
    #[tracing::instrument(level = "debug", skip(connection, changes, keep, base))]
    pub async fn update_user(
        connection: &mut AnyConnection,
        id: i64,
        changes: UserChanges,
        may_change_superuser: bool,
        keep: Option<&TokenDigest>,
        base: &Event,
    ) -> Result<UpdatedUser, AuthError> {
        let allowed = may_change_superuser || !changes.touches_superuser_powers();
        let withdraws = changes.withdraws_credentials();
        let new_password = changes.password_hash.is_some();
        let UserChanges {
            profile,
            password_hash,
        } = changes;
        let reactivates = profile.is_active == Some(true);
        // A transaction of its own, or a savepoint within a keyed write's.
        let mut tx = connection.begin().await?;
        let Some(before) = sqlx::query(LOCK_AND_READ)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .map(|row| user_from_row(&row))
            .transpose()?
        else {
            return Err(AuthError::UserNotFound);
        };
        let old_email_key = before.email.as_deref().map(str::to_lowercase);
        let set = sqlx::query(UPDATE)
            .bind(profile.username.is_some())
            .bind(profile.email.is_some());
        let row = bind_changes(set, &profile)
            .bind(password_hash.map(HashedPassword::into_exposed))
            .bind(i64::from(withdraws))
            .bind(id)
            .bind(allowed)
            .fetch_optional(&mut *tx)
            .await
            .map_err(update_error)?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Err(AuthError::PermissionDenied);
        };
        let user = user_from_row(&row)?;
        let revoke = if reactivates && !before.is_active {
            Some(None)
        } else if new_password {
            Some(keep)
        } else {
            None
        };
        if let Some(keep) = revoke {
            let revoked = delete_credentials(&mut tx, id, keep).await?;
            tracing::info!(revoked, "credentials revoked");
        }
        for event in Event::of_user_update(base, &before, &user, new_password) {
            audit::record(&mut *tx, &event).await?;
        }
        tx.commit().await?;
        let new_email_key = user.email.as_deref().map(str::to_lowercase);
        Ok(UpdatedUser {
            new_email: new_email_key.is_some() && new_email_key != old_email_key,
            user,
        })
    }

    /// Why a guarded delete of user `id` changed nothing: no such user, or a superuser the
    /// caller may not delete.
    async fn refusal_for(connection: &mut AnyConnection, id: i64) -> Result<AuthError, AuthError> {
        let row = sqlx::query(USER_EXISTS)
            .bind(id)
            .fetch_optional(connection)
            .await?;
        Ok(match row {
            None => AuthError::UserNotFound,
            Some(_) => AuthError::PermissionDenied,
        })
    }

    /// Deletes the user; its credentials go with it (ON DELETE CASCADE), and `event` is
    /// recorded with the names it had (the trail keeps its id, which no longer tells them). A
    /// superuser only when `may_delete_superuser`.
    #[tracing::instrument(level = "debug", skip(connection, event))]
    pub async fn delete_user(
        connection: &mut AnyConnection,
        id: i64,
        may_delete_superuser: bool,
        event: Event,
    ) -> Result<(), AuthError> {
        let mut tx = connection.begin().await?;
        let deleted = sqlx::query(DELETE)
            .bind(id)
            .bind(may_delete_superuser)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(deleted) = deleted else {
            tx.rollback().await?;
            return Err(Self::refusal_for(connection, id).await?);
        };
        let event = event
            .on(id)
            .with(
                "username",
                deleted.try_get::<Option<String>, _>("username")?,
            )
            .with("email", deleted.try_get::<Option<String>, _>("email")?);
        audit::record(&mut *tx, &event).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// A broken CHECK on update can only be the one that wants a username or an email (the role's
/// is met by construction).
fn update_error(err: sqlx::Error) -> AuthError {
    let breaks_check = err
        .as_database_error()
        .is_some_and(|db| db.kind() == sqlx::error::ErrorKind::CheckViolation);
    if breaks_check {
        FieldErrors::single("non_field_errors", NEEDS_AN_IDENTITY).into()
    } else {
        duplicate_or(err)
    }
}

/// A duplicate username or email becomes its field error; anything else stays a database error.
pub(super) fn duplicate_or(err: sqlx::Error) -> AuthError {
    match duplicate_field(&err) {
        Some(errors) => AuthError::Invalid(errors),
        None => err.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        domain::{PersonName, Role},
        store::passwords::LoginRecord,
    };

    #[test]
    fn hashes_never_print() {
        let hash = "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g".to_owned();
        let record = LoginRecord {
            user: User::plain(1),
            password_hash: HashedPassword::new(hash.clone()),
            credentials_version: 0,
            email_verified: true,
        };
        let new_user = NewUser {
            profile: Profile {
                username: None,
                email: None,
                first_name: PersonName::default(),
                last_name: PersonName::default(),
                role: Role::Clerk,
                is_staff: false,
                is_superuser: false,
                is_active: true,
            },
            password_hash: HashedPassword::new(hash.clone()),
        };
        let changes = UserChanges {
            password_hash: Some(HashedPassword::new(hash.clone())),
            ..UserChanges::default()
        };
        for printed in [
            format!("{record:?}"),
            format!("{new_user:?}"),
            format!("{changes:?}"),
        ] {
            assert!(!printed.contains(&hash), "{printed}");
            assert!(printed.contains("[REDACTED]"), "{printed}");
        }
    }
}
