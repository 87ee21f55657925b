//! Accounts: public sign-up, the first superuser, self-service password change, and user
//! management for admins. An admin's write comes in two halves: the checks and the password
//! hashing (`prepare_*`, never inside a database write lock), then the write itself on the
//! connection [`service_kit::idempotency::Writes`] gives it (`Accounts::*_on`), after which the
//! handler publishes the change to the verdict caches.

use service_kit::validation::FieldErrors;
use sqlx::{AnyConnection, Connection};

use super::{Accounts, Issued, login::AttemptScopes};
use crate::{
    domain::{
        CredentialKind, Email, Password, Principal, Profile, ProfileChanges, TokenDigest, User,
        Username,
        audit::{Event, EventType, Origin},
    },
    dump::{DjangoDump, ImportReport, NotImported},
    error::AuthError,
    revocations::Revocation,
    store::{NEEDS_AN_IDENTITY, NewUser, Store, UserChanges, UserLookup},
};

/// A validated account to create.
#[derive(Debug)]
pub struct NewAccount {
    pub profile: Profile,
    pub password: Password,
}

/// A validated partial update of an account: `None` leaves the password as it is.
#[derive(Debug, Default)]
pub struct AccountChanges {
    pub profile: ProfileChanges,
    pub password: Option<Password>,
}

/// An admin's update of a user, checked and hashed: [`Accounts::update_user_on`] applies it.
#[derive(Debug)]
pub struct UserUpdate {
    id: i64,
    changes: UserChanges,
    may_change_superuser: bool,
    /// The caller's own credential, kept when admins change their own password.
    keep: Option<TokenDigest>,
    /// Who changes it, from where and when: what every event of the update shares.
    event: Event,
}

/// An admin's new account, checked and hashed, and its `user.created` event (whose time the
/// user is created at): [`Accounts::create_user_on`] writes it.
#[derive(Debug)]
pub struct UserCreation {
    user: NewUser,
    event: Event,
}

#[derive(Debug)]
pub struct RegisterOutcome {
    pub user: User,
    pub token: Option<Issued>,
}

const WRONG_OLD_PASSWORD: &str =
    "Your old password was entered incorrectly. Please enter it again.";

impl Accounts {
    /// Public sign-up (the caller already refused any role but CLERK and any flag); with
    /// `issue_token` the new user is logged in at once. An address given is unverified, and
    /// its verification message is enqueued with the user (unless verification is off).
    #[tracing::instrument(skip_all)]
    pub async fn register(
        &self,
        account: NewAccount,
        issue_token: bool,
        origin: &Origin,
    ) -> Result<RegisterOutcome, AuthError> {
        let user = self.hash_account(account).await?;
        let now = self.clock.now();
        let event = Event::new(EventType::UserCreated, now, origin).with("source", "register");
        let mut tx = self.store.pool().begin().await?;
        let user = Self::create_user_on(&mut tx, UserCreation { user, event }).await?;
        let mailed = self.ask_to_verify(&mut tx, &user, now).await?;
        tx.commit().await?;
        if mailed {
            self.outbox.committed();
        }
        if !issue_token {
            return Ok(RegisterOutcome { user, token: None });
        }
        let logged_in = Event::new(EventType::LoginSucceeded, self.clock.now(), origin)
            .by_self(user.id)
            .with("via", "register");
        let user = self.store.record_login(user.id, &logged_in).await?;
        // A new user starts at credentials version 0; a withdrawing write since then refuses.
        let token = self
            .issue(user.id, CredentialKind::Token, 0, || {
                AuthError::TokenInvalid
            })
            .await?;
        Ok(RegisterOutcome {
            user,
            token: Some(token),
        })
    }

    /// What a registration of these would be refused for as a duplicate, creating nothing.
    pub async fn duplicates(
        &self,
        username: Option<&Username>,
        email: Option<&Email>,
    ) -> Result<FieldErrors, AuthError> {
        self.store.taken(username, email).await
    }

    /// Inserts an account as given, with no permission check: for sign-up and for
    /// `createsuperuser` at the console, which `source` names in the trail.
    pub async fn insert_account(
        &self,
        account: NewAccount,
        source: &'static str,
        origin: &Origin,
    ) -> Result<User, AuthError> {
        let user = self.hash_account(account).await?;
        let event =
            Event::new(EventType::UserCreated, self.clock.now(), origin).with("source", source);
        let mut connection = self.store.pool().acquire().await?;
        Self::create_user_on(&mut connection, UserCreation { user, event }).await
    }

    /// The row of `account`, its password hashed.
    async fn hash_account(&self, account: NewAccount) -> Result<NewUser, AuthError> {
        let password_hash = self.hasher.hash(&account.password).await?;
        Ok(NewUser {
            profile: account.profile,
            password_hash,
        })
    }

    /// Writes a prepared account, and its event, on `connection` (a keyed write's, or any).
    pub async fn create_user_on(
        connection: &mut AnyConnection,
        creation: UserCreation,
    ) -> Result<User, AuthError> {
        let UserCreation { user, event } = creation;
        let user = Store::insert_user(connection, user, event).await?;
        tracing::info!(user_id = user.id, role = user.role.as_db(), "user created");
        Ok(user)
    }

    /// Changes the caller's password; every other credential of the caller is revoked. A wrong
    /// old password counts toward the account's lockout like a failed login, so this is no
    /// free password oracle.
    #[tracing::instrument(skip_all, fields(user_id = principal.user.id))]
    pub async fn change_password(
        &self,
        principal: &Principal,
        origin: &Origin,
        old: Password,
        new: Password,
    ) -> Result<(), AuthError> {
        let scopes = AttemptScopes::of_user(principal.user.id, origin.client);
        let changed = || {
            Event::new(EventType::PasswordChanged, self.clock.now(), origin)
                .by_self(principal.user.id)
                .with("by", "self")
        };
        let locked = changed().failed().with("reason", "locked");
        self.refuse_if_locked(&scopes, &locked).await?;
        let record = self
            .store
            .login_record(&UserLookup::Id(principal.user.id))
            .await?
            .ok_or(AuthError::TokenInvalid)?;
        if !self
            .hasher
            .verify(&old, Some(record.password_hash))
            .await?
            .matches()
        {
            let wrong = changed().failed().with("reason", "wrong_old_password");
            self.count_failure(&scopes, wrong).await?;
            return Err(FieldErrors::single("old_password", WRONG_OLD_PASSWORD).into());
        }
        self.admit_success(&scopes, &locked).await?;
        let hash = self.hasher.hash(&new).await?;
        let revoked = self
            .store
            .set_password(principal.user.id, hash, Some(&principal.digest), changed())
            .await?;
        self.revocations
            .publish(Revocation::User(principal.user.id))
            .await;
        tracing::info!(revoked, "password changed");
        Ok(())
    }

    /// An admin's new account, checked and hashed, for [`Accounts::create_user_on`].
    pub async fn prepare_user_creation(
        &self,
        principal: &Principal,
        account: NewAccount,
        origin: &Origin,
    ) -> Result<UserCreation, AuthError> {
        require_user_admin(principal)?;
        if account.profile.is_superuser && !principal.user.is_superuser {
            return Err(AuthError::PermissionDenied);
        }
        let user = self.hash_account(account).await?;
        let event = Event::new(EventType::UserCreated, self.clock.now(), origin)
            .by(principal.user.id)
            .with("source", "admin");
        Ok(UserCreation { user, event })
    }

    pub async fn user(&self, principal: &Principal, id: i64) -> Result<User, AuthError> {
        require_user_admin(principal)?;
        self.store.user(id).await
    }

    pub async fn list_users(
        &self,
        principal: &Principal,
        limit: u64,
        offset: u64,
    ) -> Result<(Vec<User>, u64), AuthError> {
        require_user_admin(principal)?;
        self.store.list_users(limit, offset).await
    }

    /// A partial update, checked and hashed, for [`Accounts::update_user_on`]. Only a superuser
    /// may change a superuser's password, activity, staff flag or role, or delete it.
    #[tracing::instrument(skip_all, fields(user_id = id))]
    pub async fn prepare_user_update(
        &self,
        principal: &Principal,
        id: i64,
        changes: AccountChanges,
        origin: &Origin,
    ) -> Result<UserUpdate, AuthError> {
        require_user_admin(principal)?;
        if changes.profile.is_superuser.is_some() && !principal.user.is_superuser {
            return Err(AuthError::PermissionDenied);
        }
        if changes.profile.clears_identity() {
            return Err(FieldErrors::single("non_field_errors", NEEDS_AN_IDENTITY).into());
        }
        let password_hash = match &changes.password {
            Some(password) => Some(self.hasher.hash(password).await?),
            None => None,
        };
        let changes = UserChanges {
            profile: changes.profile,
            password_hash,
        };
        Ok(UserUpdate {
            id,
            changes,
            may_change_superuser: principal.user.is_superuser,
            keep: (id == principal.user.id).then(|| principal.digest.clone()),
            event: Event::new(EventType::UserUpdated, self.clock.now(), origin)
                .by(principal.user.id)
                .on(id),
        })
    }

    /// Applies a prepared update in one statement on `connection`. A new password or a
    /// deactivation revokes the user's credentials (but the one the caller is using, when
    /// admins change their own). A new email is unverified, and its verification message
    /// enqueued in the same transaction (unless verification is off).
    pub async fn update_user_on(
        &self,
        connection: &mut AnyConnection,
        update: UserUpdate,
    ) -> Result<User, AuthError> {
        let UserUpdate {
            id,
            changes,
            may_change_superuser,
            keep,
            event,
        } = update;
        let mut tx = connection.begin().await?;
        let updated = Store::update_user(
            &mut tx,
            id,
            changes,
            may_change_superuser,
            keep.as_ref(),
            &event,
        )
        .await?;
        if updated.new_email {
            self.ask_to_verify(&mut tx, &updated.user, self.clock.now())
                .await?;
        }
        tx.commit().await?;
        Ok(updated.user)
    }

    /// Whether `principal` may delete users, and superusers among them, and the
    /// `user.deleted` event a deletion records.
    pub fn prepare_user_deletion(
        &self,
        principal: &Principal,
        origin: &Origin,
    ) -> Result<(bool, Event), AuthError> {
        require_user_admin(principal)?;
        let event =
            Event::new(EventType::UserDeleted, self.clock.now(), origin).by(principal.user.id);
        Ok((principal.user.is_superuser, event))
    }

    /// Deletes the user on `connection` and, with it, every credential it holds; `event`
    /// recorded with it.
    pub async fn delete_user_on(
        connection: &mut AnyConnection,
        id: i64,
        may_delete_superuser: bool,
        event: Event,
    ) -> Result<(), AuthError> {
        Store::delete_user(connection, id, may_delete_superuser, event).await?;
        tracing::info!(user_id = id, "user deleted");
        Ok(())
    }

    /// Tells the verdict caches that user `id` changed, once its write has committed. Any
    /// change, not only the withdrawing ones: a cached verdict carries the whole user, and
    /// evicting costs one ValidateToken. A repeat of a keyed write publishes again, which
    /// costs as little.
    pub async fn user_changed(&self, id: i64) {
        self.revocations.publish(Revocation::User(id)).await;
    }
}

impl Accounts {
    /// Writes a checked Django dump, all or nothing, at the console (no caller to check).
    /// Imported DRF tokens live `TOKEN_TTL_SECONDS` from now, like ours. The trail gets one
    /// `users.imported` event with the counts, not one per user: the import is one operator's
    /// action, its users are in the dump file, and a migration of thousands of users would
    /// otherwise bury every other event.
    pub async fn import(
        &self,
        dump: &DjangoDump,
        keep_ids: bool,
    ) -> Result<ImportReport, NotImported> {
        let now = self.clock.now();
        let event = Event::new(EventType::UsersImported, now, &Origin::default());
        self.store
            .import_django(dump, keep_ids, (now, now.plus(self.token_ttl)), event)
            .await
    }
}

fn require_user_admin(principal: &Principal) -> Result<(), AuthError> {
    if principal.user.can_manage_users() {
        Ok(())
    } else {
        Err(AuthError::PermissionDenied)
    }
}
