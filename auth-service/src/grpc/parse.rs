//! Requests' fields into domain types, every error recorded at once (DRF answers them all).

use proto::auth::v1 as pb;
use service_kit::validation::{BLANK, FieldErrors, Messages, REQUIRED};

use super::convert::role_to_proto;
use crate::{
    clock::UnixMicros,
    domain::{
        Email, Password, PersonName, Profile, ProfileChanges, Role, Username,
        audit::{EventType, Origin},
    },
    error::AuthError,
    service::{AccountChanges, DisableProof, LoginRequest, MfaCompletion, NewAccount},
    store::AuditFilter,
    store::UserLookup,
};

const ROLE_NOT_SELF_ASSIGNABLE: &str = "This role cannot be self-assigned.";

/// The [`AccountFields`] of a request that carries them by these names (sign-up's and user
/// creation's), moved out of it.
macro_rules! account_fields {
    ($request:ident) => {
        AccountFields {
            username: $request.username,
            email: $request.email,
            password: $request.password,
            first_name: $request.first_name,
            last_name: $request.last_name,
        }
    };
}

/// The fields sign-up and user creation share.
struct AccountFields {
    username: Option<String>,
    email: Option<String>,
    password: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
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
fn parse_account(errors: &mut FieldErrors, fields: AccountFields) -> AccountParts {
    if fields.username.is_none() && fields.email.is_none() {
        errors.add("username", REQUIRED);
        errors.add("email", REQUIRED);
    }
    AccountParts {
        username: optional(errors, "username", fields.username, Username::parse),
        email: optional(errors, "email", fields.email, Email::parse),
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

/// Sign-up's account, each field parsed on its own, and every error: any role but CLERK is one,
/// since nobody grants themselves another.
pub(super) fn registration(request: pb::RegisterRequest) -> (FieldErrors, AccountParts) {
    let mut errors = FieldErrors::new();
    if !matches!(role_of(request.role), Ok(Role::Clerk)) {
        errors.add("role", ROLE_NOT_SELF_ASSIGNABLE);
    }
    let account = parse_account(&mut errors, account_fields!(request));
    (errors, account)
}

/// An admin's new account: its fields, its role, and its flags (absent: neither staff nor
/// superuser, and active).
pub(super) fn new_user(request: pb::CreateUserRequest) -> Result<NewAccount, AuthError> {
    let mut errors = FieldErrors::new();
    let role = errors.check("role", role_of(request.role));
    let account = parse_account(&mut errors, account_fields!(request));
    let (mut account, role) = parsed(errors, account.complete().zip(role))?;
    account.profile = Profile {
        role,
        is_staff: request.is_staff.unwrap_or(false),
        is_superuser: request.is_superuser.unwrap_or(false),
        is_active: request.is_active.unwrap_or(true),
        ..account.profile
    };
    Ok(account)
}

/// An admin's partial update of a user; the fields are parsed in their order, as DRF lists
/// their errors.
pub(super) fn account_changes(request: pb::UpdateUserRequest) -> Result<AccountChanges, AuthError> {
    let mut errors = FieldErrors::new();
    let username = clearable(
        &mut errors,
        "username",
        request.username,
        request.clear_username,
        Username::parse,
    );
    let email = clearable(
        &mut errors,
        "email",
        request.email,
        request.clear_email,
        Email::parse,
    );
    let password = optional(&mut errors, "password", request.password, Password::parse);
    let profile = ProfileChanges {
        username,
        email,
        first_name: optional(
            &mut errors,
            "first_name",
            request.first_name,
            PersonName::parse,
        ),
        last_name: optional(
            &mut errors,
            "last_name",
            request.last_name,
            PersonName::parse,
        ),
        role: match request.role {
            0 => None,
            role => errors.check("role", role_of(role)),
        },
        is_staff: request.is_staff,
        is_superuser: request.is_superuser,
        is_active: request.is_active,
    };
    parsed(errors, Some(AccountChanges { profile, password }))
}

/// A login from `origin`: the account, by username or else by email, and the password
/// presented.
pub(super) fn login(request: pb::LoginRequest, origin: Origin) -> Result<LoginRequest, AuthError> {
    let mut errors = FieldErrors::new();
    let lookup = match (request.username, request.email) {
        (Some(username), _) => errors
            .check("username", Username::parse(&username))
            .map(UserLookup::Username),
        (None, Some(email)) => errors
            .check("email", Email::parse(&email))
            .map(UserLookup::Email),
        (None, None) => {
            errors.add("username", REQUIRED);
            None
        }
    };
    let password = errors.check("password", presented(request.password));
    let (lookup, password) = parsed(errors, lookup.zip(password))?;
    Ok(LoginRequest {
        lookup,
        password,
        open_session: request.open_session,
        origin,
        route: request.route.unwrap_or_default(),
    })
}

/// The second step of a login: the challenge and the code, as presented.
pub(super) fn mfa_completion(
    request: pb::CompleteMfaLoginRequest,
    origin: Origin,
) -> Result<MfaCompletion, AuthError> {
    let mut errors = FieldErrors::new();
    let challenge = errors.check("challenge", typed(request.challenge));
    let code = errors.check("code", typed(request.code));
    let (challenge, code) = parsed(errors, challenge.zip(code))?;
    Ok(MfaCompletion {
        challenge,
        code,
        origin,
    })
}

/// A code (TOTP or recovery) as presented: it must be given, and not blank.
pub(super) fn factor_code(code: Option<String>) -> Result<String, AuthError> {
    let mut errors = FieldErrors::new();
    let code = errors.check("code", typed(code));
    parsed(errors, code)
}

/// How a user proves who they are to disable the second factor: a code, else the password;
/// neither is the service's refusal, not a field error here.
pub(super) fn disable_proof(
    request: pb::DisableTotpRequest,
) -> Result<Option<DisableProof>, AuthError> {
    let mut errors = FieldErrors::new();
    let proof = match (request.code, request.password) {
        (Some(code), _) => errors
            .check("code", typed(Some(code)))
            .map(DisableProof::Code),
        (None, Some(password)) => errors
            .check("password", presented(Some(password)))
            .map(DisableProof::Password),
        (None, None) => return Ok(None),
    };
    parsed(errors, proof).map(Some)
}

/// What a ListAuditEvents asks for: the filter, and its page (`limit`, `offset`).
pub(super) fn audit_filter(
    request: pb::ListAuditEventsRequest,
) -> Result<(AuditFilter, u64, u64), AuthError> {
    let pb::ListAuditEventsRequest {
        limit,
        offset,
        user_id,
        r#type,
        since,
        until,
    } = request;
    let kind = match r#type {
        Some(name) => Some(
            EventType::from_name(&name)
                .ok_or_else(|| FieldErrors::single("type", "Unknown event type."))?
                .name(),
        ),
        None => None,
    };
    let micros = |time: prost_types::Timestamp| {
        UnixMicros(
            time.seconds
                .saturating_mul(1_000_000)
                .saturating_add(i64::from(time.nanos / 1000)),
        )
    };
    let filter = AuditFilter {
        user_id,
        kind,
        since: since.map(micros),
        until: until.map(micros),
    };
    let limit = limit.map_or(proto::MAX_PAGE_SIZE, |limit| {
        limit.min(proto::MAX_PAGE_SIZE)
    });
    Ok((filter, limit, offset))
}

/// A password change: the old password as presented, and the new one, checked.
pub(super) fn password_change(
    request: pb::ChangePasswordRequest,
) -> Result<(Password, Password), AuthError> {
    let mut errors = FieldErrors::new();
    let old = errors.check("old_password", presented(request.old_password));
    let new = errors.check(
        "new_password",
        present(request.new_password).and_then(|p| Password::parse(&p)),
    );
    parsed(errors, old.zip(new))
}

/// The parsed value when no field had an error; else every error at once.
pub(super) fn parsed<T>(errors: FieldErrors, value: Option<T>) -> Result<T, AuthError> {
    errors.into_result()?;
    value.ok_or_else(|| AuthError::internal("a request parsed without errors lacks a value"))
}

/// A field that may be absent: parsed if present.
fn optional<T>(
    errors: &mut FieldErrors,
    field: &str,
    value: Option<String>,
    parse: fn(&str) -> Result<T, Messages>,
) -> Option<T> {
    value.and_then(|raw| errors.check(field, parse(&raw)))
}

/// A field that an update may set, clear, or leave alone.
fn clearable<T>(
    errors: &mut FieldErrors,
    field: &str,
    value: Option<String>,
    clear: bool,
    parse: fn(&str) -> Result<T, Messages>,
) -> Option<Option<T>> {
    if clear {
        Some(None)
    } else {
        optional(errors, field, value, parse).map(Some)
    }
}

/// A field that must be given: "This field is required." when it is not.
pub(super) fn present(value: Option<String>) -> Result<String, Messages> {
    value.ok_or_else(|| vec![REQUIRED.to_owned()])
}

/// A value typed by a person (a code, a challenge): given, and not blank.
fn typed(value: Option<String>) -> Result<String, Messages> {
    present(value).and_then(|text| {
        if text.trim().is_empty() {
            Err(vec![BLANK.to_owned()])
        } else {
            Ok(text)
        }
    })
}

/// A password presented to be verified, not judged ([`Password::unchecked`]).
fn presented(value: Option<String>) -> Result<Password, Messages> {
    present(value).and_then(|p| Password::unchecked(&p))
}

/// A role from the wire, by [`role_to_proto`]'s pairs; unspecified means the default, CLERK.
fn role_of(value: i32) -> Result<Role, Messages> {
    if value == i32::from(pb::Role::Unspecified) {
        return Ok(Role::default());
    }
    Role::ALL
        .into_iter()
        .find(|role| i32::from(role_to_proto(*role)) == value)
        .ok_or_else(|| vec![format!("\"{value}\" is not a valid choice.")])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_proto_role_is_one_domain_role_and_back() {
        assert_eq!(role_of(0), Ok(Role::Clerk), "unspecified is the default");
        let wire: Vec<i32> = (1..)
            .take_while(|value| pb::Role::try_from(*value).is_ok())
            .collect();
        assert_eq!(
            wire.len(),
            Role::ALL.len(),
            "one domain role per proto role"
        );
        for value in wire {
            let role = role_of(value).expect("a domain role");
            assert_eq!(i32::from(role_to_proto(role)), value, "{role:?}");
        }
        assert_eq!(
            role_of(99),
            Err(vec!["\"99\" is not a valid choice.".to_owned()])
        );
    }
}
