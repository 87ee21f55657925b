//! Requests' fields into domain types, every error recorded at once (DRF answers them all).

use proto::auth::v1 as pb;
use service_kit::validation::{FieldErrors, Messages, REQUIRED};

use crate::{
    domain::{Email, Password, PersonName, Profile, Role, Username},
    error::AuthError,
    service::NewAccount,
};

/// The fields sign-up and user creation share.
pub(super) struct AccountFields {
    pub(super) username: Option<String>,
    pub(super) email: Option<String>,
    pub(super) password: Option<String>,
    pub(super) first_name: Option<String>,
    pub(super) last_name: Option<String>,
}

/// An account's fields, each parsed on its own (so a bad password does not hide a taken
/// username from a dry run).
pub(super) struct AccountParts {
    pub(super) username: Option<Username>,
    pub(super) email: Option<Email>,
    pub(super) password: Option<Password>,
    pub(super) first_name: Option<PersonName>,
    pub(super) last_name: Option<PersonName>,
}

impl AccountParts {
    /// The account, as a plain active CLERK (callers set role and flags), once every part
    /// parsed.
    pub(super) fn complete(self) -> Option<NewAccount> {
        Some(NewAccount {
            profile: Profile {
                username: self.username,
                email: self.email,
                first_name: self.first_name?,
                last_name: self.last_name?,
                role: Role::Clerk,
                is_staff: false,
                is_superuser: false,
                is_active: true,
            },
            password: self.password?,
        })
    }
}

/// Parses an account's fields, recording every error. A username or an email is required.
pub(super) fn parse_account(errors: &mut FieldErrors, fields: AccountFields) -> AccountParts {
    if fields.username.is_none() && fields.email.is_none() {
        errors.add("username", REQUIRED);
        errors.add("email", REQUIRED);
    }
    AccountParts {
        username: fields
            .username
            .and_then(|u| errors.check("username", Username::parse(&u))),
        email: fields
            .email
            .and_then(|e| errors.check("email", Email::parse(&e))),
        password: errors.check(
            "password",
            present(fields.password).and_then(|p| Password::parse(&p)),
        ),
        first_name: errors.check(
            "first_name",
            PersonName::parse(fields.first_name.as_deref().unwrap_or_default()),
        ),
        last_name: errors.check(
            "last_name",
            PersonName::parse(fields.last_name.as_deref().unwrap_or_default()),
        ),
    }
}

/// The parsed value when no field had an error; else every error at once.
pub(super) fn parsed<T>(errors: FieldErrors, value: Option<T>) -> Result<T, AuthError> {
    errors.into_result()?;
    value.ok_or_else(|| AuthError::internal("a request parsed without errors lacks a value"))
}

/// A field that an update may set, clear, or leave alone.
pub(super) fn clearable<T>(
    errors: &mut FieldErrors,
    field: &str,
    value: Option<String>,
    clear: bool,
    parse: fn(&str) -> Result<T, Messages>,
) -> Option<Option<T>> {
    match (value, clear) {
        (_, true) => Some(None),
        (Some(raw), false) => errors.check(field, parse(&raw)).map(Some),
        (None, false) => None,
    }
}

pub(super) fn present(value: Option<String>) -> Result<String, Messages> {
    value.ok_or_else(|| vec![REQUIRED.to_owned()])
}

/// A role from the wire; unspecified means the default, CLERK.
pub(super) fn role_of(value: i32) -> Result<Role, Messages> {
    match pb::Role::try_from(value) {
        Ok(pb::Role::Unspecified | pb::Role::Clerk) => Ok(Role::Clerk),
        Ok(pb::Role::Manager) => Ok(Role::Manager),
        Ok(pb::Role::Admin) => Ok(Role::Admin),
        Err(_) => Err(vec![format!("\"{value}\" is not a valid choice.")]),
    }
}
