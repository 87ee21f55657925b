//! A user's row: the columns every user query returns and a profile is stored in, reading a
//! [`User`] from the one and binding a [`Profile`], or its [`ProfileChanges`], to the other. Every module of the store that
//! reads or writes users uses these.

use service_kit::database::flag;
use sqlx::{
    Any, Row,
    any::{AnyArguments, AnyRow},
    query::Query,
};

use crate::{
    clock::UnixMicros,
    domain::{Email, Profile, ProfileChanges, Role, User, Username},
    error::AuthError,
};

/// The columns every user query returns, in [`user_from_row`]'s order.
macro_rules! user_columns {
    () => {
        "id, username, email, first_name, last_name, role, is_staff, is_superuser, is_active, \
         date_joined, last_login, credentials_version"
    };
}

/// The columns a `Profile` is stored in, in the order [`bind_changes`] binds them.
macro_rules! profile_columns {
    () => {
        "username, username_key, email, email_key, first_name, last_name, role, is_staff, \
         is_superuser, is_active"
    };
}

/// The user in a row that holds the columns of `user_columns!`.
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

/// The user a statement found: no row is no such user.
pub(super) fn found_user(row: Option<AnyRow>) -> Result<User, AuthError> {
    let row = row.ok_or(AuthError::UserNotFound)?;
    Ok(user_from_row(&row)?)
}

/// Binds `profile` to a statement's next parameters, in the order of `profile_columns!`.
pub(super) fn bind_profile(
    query: Query<'static, Any, AnyArguments>,
    profile: &Profile,
) -> Query<'static, Any, AnyArguments> {
    bind_changes(query, &ProfileChanges::from(profile.clone()))
}

/// Binds `changes` to a statement's next parameters, in the order of `profile_columns!`: NULL
/// for a field left as it is, or for a username or an email cleared.
pub(super) fn bind_changes(
    query: Query<'static, Any, AnyArguments>,
    changes: &ProfileChanges,
) -> Query<'static, Any, AnyArguments> {
    let ProfileChanges {
        username,
        email,
        first_name,
        last_name,
        role,
        is_staff,
        is_superuser,
        is_active,
    } = changes;
    let username = username.as_ref().and_then(Option::as_ref);
    let email = email.as_ref().and_then(Option::as_ref);
    query
        .bind(username.map(|u| u.as_str().to_owned()))
        .bind(username.map(Username::key))
        .bind(email.map(|e| e.as_str().to_owned()))
        .bind(email.map(Email::key))
        .bind(first_name.as_ref().map(|n| n.as_str().to_owned()))
        .bind(last_name.as_ref().map(|n| n.as_str().to_owned()))
        .bind(role.map(Role::as_db))
        .bind(*is_staff)
        .bind(*is_superuser)
        .bind(*is_active)
}
