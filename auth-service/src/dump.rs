//! A Django dump, checked: the users, their password hashes and their DRF tokens of the JSON of
//! `manage.py dumpdata auth.user authtoken.token` (a custom user model's label works too), as
//! domain values. Every record is checked here before the database is touched; the store then
//! writes them all in one transaction (`Store::import_django`), so a bad record names itself
//! and nothing is written. The `import-django` command (`crate::import`) drives the two.
//!
//! A user imported here remembers the Django pk it came from: importing again skips that user,
//! and a token is attached only to the user imported from its own `user` pk. Any other user
//! with the same username or email, ignoring case (Django tells `Boss` and `boss` apart, this
//! service does not), stops the import with both records named.
//!
//! allauth's `account.emailaddress` records, when the dump has them, say which users' emails
//! were verified (for `ACCOUNT_EMAIL_VERIFICATION`); a user without one counts as verified.
//!
//! Passwords keep their Django hash (login verifies it and replaces it with argon2id, see
//! `hashing`). Token keys are stored as digests like ours; their lifetime starts at the import.

use std::collections::BTreeMap;

use serde_json::Value;
use service_kit::django::{Fields, Record, RecordError, RecordRef};

use crate::{
    clock::{Clock as _, SystemClock, UnixMicros},
    domain::{Email, HashedPassword, PersonName, Profile, Role, TokenKey, Username},
    error::AuthError,
    hashing::StoredHash,
};

/// DRF's token model: the record's primary key is the key itself.
const DRF_TOKEN_MODEL: &str = "authtoken.token";
/// allauth's addresses: which were verified (`dumpdata account.emailaddress`).
const ALLAUTH_ADDRESS_MODEL: &str = "account.emailaddress";

/// Why a checked dump was not imported: nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum NotImported {
    /// One record cannot be imported (as it is, or beside the users already here).
    #[error("{0} (nothing was imported)")]
    Record(#[from] RecordError),
    #[error("the import failed and nothing was written: {0}")]
    Store(#[from] AuthError),
}

/// A user of the dump, checked.
#[derive(Debug)]
pub struct ImportedUser {
    pub source: RecordRef,
    /// Django's id, kept unless `--new-ids`.
    pub id: Option<i64>,
    pub profile: Profile,
    pub password_hash: HashedPassword,
    pub date_joined: UnixMicros,
    pub last_login: Option<UnixMicros>,
}

/// How a token names its user: by primary key, or by natural key (`dumpdata
/// --natural-foreign`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserRef {
    Pk(String),
    Username(String),
}

#[derive(Debug)]
pub struct ImportedToken {
    pub source: RecordRef,
    pub key: TokenKey,
    pub user: UserRef,
}

/// An allauth address of a user, and whether it was verified.
#[derive(Debug)]
pub struct ImportedAddress {
    pub source: RecordRef,
    pub user: UserRef,
    pub email: Email,
    pub verified: bool,
}

/// Everything of a dump this service takes, and what it leaves.
#[derive(Debug, Default)]
pub struct DjangoDump {
    pub users: Vec<ImportedUser>,
    pub tokens: Vec<ImportedToken>,
    /// A user's verified state comes from the one of these with its email; a user with none
    /// counts as verified.
    pub addresses: Vec<ImportedAddress>,
    /// Records of other models, by model.
    pub ignored: BTreeMap<String, usize>,
}

/// What an import did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub users_imported: usize,
    /// Users imported before from the same Django pk.
    pub users_skipped: usize,
    pub tokens_imported: usize,
    pub tokens_skipped: usize,
}

/// Checks every record. Users are the records whose fields look like a user (a `password` and
/// a `username` or `email`), tokens are DRF's; the rest is counted and left.
pub fn check_dump(records: Vec<Record>, keep_ids: bool) -> Result<DjangoDump, RecordError> {
    let mut dump = DjangoDump::default();
    for record in records {
        let source = record.reference();
        let fields = record.fields(&source);
        if record.model == DRF_TOKEN_MODEL {
            dump.tokens.push(check_token(&record, &fields)?);
        } else if record.model == ALLAUTH_ADDRESS_MODEL {
            dump.addresses.push(ImportedAddress {
                user: user_ref(&fields)?,
                email: fields.checked(
                    "email",
                    Email::parse(&fields.text("email")?.unwrap_or_default()),
                )?,
                verified: fields.flag("verified", false)?,
                source,
            });
        } else if fields.has("password") && (fields.has("username") || fields.has("email")) {
            let id = if keep_ids {
                let id = record.integer_pk(&source).map_err(|mut err| {
                    err.message += "; run with --new-ids to give users new ids";
                    err
                })?;
                Some(id)
            } else {
                None
            };
            dump.users.push(check_user(source.clone(), id, &fields)?);
        } else {
            *dump.ignored.entry(record.model).or_default() += 1;
        }
    }
    Ok(dump)
}

fn check_user(
    source: RecordRef,
    id: Option<i64>,
    fields: &Fields<'_>,
) -> Result<ImportedUser, RecordError> {
    let username = fields
        .text("username")?
        .map(|raw| fields.checked("username", Username::parse(&raw)))
        .transpose()?;
    // Django allows a blank email; here that is no email.
    let email = fields
        .text("email")?
        .filter(|raw| !raw.trim().is_empty())
        .map(|raw| fields.checked("email", Email::parse(&raw)))
        .transpose()?;
    if username.is_none() && email.is_none() {
        return Err(fields.fail("username", "a user needs a username or an email"));
    }
    let password_hash = fields.text("password")?.unwrap_or_default();
    StoredHash::parse(&password_hash).map_err(|err| fields.fail("password", err.to_string()))?;
    let is_superuser = fields.flag("is_superuser", false)?;
    let role = match fields.text("role")? {
        Some(role) => Role::from_db(&role.to_uppercase()).ok_or_else(|| {
            fields.fail(
                "role",
                format!("unknown role {role:?} (expected {})", Role::listed()),
            )
        })?,
        None if is_superuser => Role::Admin,
        None => Role::Clerk,
    };
    let name = |field: &str| {
        let raw = fields.text(field)?.unwrap_or_default();
        fields.checked(field, PersonName::parse(&raw))
    };
    Ok(ImportedUser {
        id,
        profile: Profile {
            username,
            email,
            first_name: name("first_name")?,
            last_name: name("last_name")?,
            role,
            is_staff: fields.flag("is_staff", false)?,
            is_superuser,
            is_active: fields.flag("is_active", true)?,
        },
        password_hash: HashedPassword::new(password_hash),
        date_joined: fields
            .datetime("date_joined")?
            .map_or_else(|| SystemClock.now(), UnixMicros),
        last_login: fields.datetime("last_login")?.map(UnixMicros),
        source,
    })
}

fn check_token(record: &Record, fields: &Fields<'_>) -> Result<ImportedToken, RecordError> {
    let key = record
        .pk
        .as_str()
        .and_then(TokenKey::parse)
        .ok_or_else(|| fields.fail("key", "a DRF token key is 40 lowercase hex characters"))?;
    Ok(ImportedToken {
        source: record.reference(),
        key,
        user: user_ref(fields)?,
    })
}

/// The record's `user`: a pk, or a natural key.
fn user_ref(fields: &Fields<'_>) -> Result<UserRef, RecordError> {
    Ok(match fields.get("user") {
        Some(Value::Number(pk)) => UserRef::Pk(pk.to_string()),
        Some(Value::String(pk)) => UserRef::Pk(pk.clone()),
        Some(Value::Array(natural)) => match natural.as_slice() {
            [Value::String(username)] => UserRef::Username(username.clone()),
            _ => return Err(fields.fail("user", "not a user's natural key")),
        },
        _ => return Err(fields.fail("user", "missing or not a user")),
    })
}

#[cfg(test)]
mod tests {
    use service_kit::django;

    use super::*;

    const USERS: &str = include_str!("../tests/fixtures/django/auth_users.json");

    fn parse_dump(text: &str, keep_ids: bool) -> Result<DjangoDump, RecordError> {
        check_dump(django::parse_dump(text).unwrap(), keep_ids)
    }
    const CUSTOM_USERS: &str = include_str!("../tests/fixtures/django/custom_users.json");

    #[test]
    fn reads_a_real_dumpdata_of_users_and_tokens() {
        let dump = parse_dump(USERS, true).unwrap();
        assert_eq!(dump.users.len(), 9);
        assert_eq!(dump.tokens.len(), 4);
        assert!(dump.ignored.is_empty());
        let alice = dump
            .users
            .iter()
            .find(|u| u.profile.username.as_ref().map(Username::as_str) == Some("alice"))
            .unwrap();
        assert_eq!(alice.id, Some(1));
        assert_eq!(
            alice.profile.email.as_ref().map(Email::as_str),
            Some("alice@example.com")
        );
        assert_eq!(alice.profile.first_name.as_str(), "Alice");
        assert_eq!(alice.profile.role, Role::Clerk);
        // "2023-03-01T09:15:30.123Z"
        assert_eq!(alice.date_joined, UnixMicros(1_677_662_130_123_000));
        let bob = dump
            .users
            .iter()
            .find(|u| u.profile.username.as_ref().map(Username::as_str) == Some("bob"))
            .unwrap();
        assert_eq!(bob.profile.email, None, "a blank email is no email");
        let root = dump
            .users
            .iter()
            .find(|u| u.profile.username.as_ref().map(Username::as_str) == Some("root"))
            .unwrap();
        assert_eq!(
            root.profile.role,
            Role::Admin,
            "a superuser without a role is an admin"
        );
    }

    #[test]
    fn debug_never_shows_a_hash() {
        let dump = parse_dump(USERS, true).unwrap();
        let printed = format!("{dump:?}");
        for user in &dump.users {
            assert!(!printed.contains(user.password_hash.expose()), "{printed}");
        }
        assert!(printed.contains("[REDACTED]"), "{printed}");
    }

    #[test]
    fn a_custom_user_model_with_a_role_keeps_it() {
        let dump = parse_dump(CUSTOM_USERS, true).unwrap();
        let roles: Vec<_> = dump
            .users
            .iter()
            .map(|u| {
                (
                    u.profile.username.as_ref().unwrap().as_str().to_owned(),
                    u.profile.role,
                )
            })
            .collect();
        assert!(roles.contains(&("mona_manager".to_owned(), Role::Manager)));
        assert!(roles.contains(&("adam-admin".to_owned(), Role::Admin)));
        assert!(roles.contains(&("kim.clerk".to_owned(), Role::Clerk)));
    }

    #[test]
    fn a_bad_record_names_its_model_pk_and_field() {
        let cases = [
            (
                r#"[{"model": "auth.user", "pk": 7, "fields": {"username": "x", "password": "md5$a$b"}}]"#,
                "auth.user pk 7, field password: unsupported password hash algorithm \"md5\"",
            ),
            (
                r#"[{"model": "auth.user", "pk": 8, "fields": {"username": "x y", "password": "!"}}]"#,
                "auth.user pk 8, field username: Enter a valid username.",
            ),
            (
                r#"[{"model": "auth.user", "pk": 9, "fields": {"username": "x", "password": "!", "date_joined": "yesterday"}}]"#,
                "auth.user pk 9, field date_joined: not an ISO 8601",
            ),
            (
                r#"[{"model": "authtoken.token", "pk": "short", "fields": {"user": 1}}]"#,
                "authtoken.token pk short, field key:",
            ),
            (
                r#"[{"model": "accounts.user", "pk": 3, "fields": {"username": "x", "password": "!", "role": "BOSS"}}]"#,
                "accounts.user pk 3, field role: unknown role \"BOSS\"",
            ),
            (
                r#"[{"model": "accounts.user", "pk": "0b5c", "fields": {"username": "x", "password": "!"}}]"#,
                "accounts.user pk 0b5c, field pk: not a positive integer id; run with --new-ids",
            ),
        ];
        for (text, expected) in cases {
            let err = parse_dump(text, true).unwrap_err().to_string();
            assert!(
                err.starts_with(expected),
                "{err:?} should start with {expected:?}"
            );
        }
    }

    #[test]
    fn other_models_are_counted_and_left() {
        let text =
            r#"[{"model": "auth.group", "pk": 1, "fields": {"name": "staff", "permissions": []}}]"#;
        let dump = parse_dump(text, true).unwrap();
        assert_eq!(dump.ignored.get("auth.group"), Some(&1));
        assert!(dump.users.is_empty());
    }

    #[test]
    fn new_ids_accept_any_primary_key() {
        let text = r#"[{"model": "accounts.user", "pk": "0b5c", "fields": {"email": "a@example.com", "password": "!"}},
                       {"model": "authtoken.token", "pk": "0123456789abcdef0123456789abcdef01234567", "fields": {"user": "0b5c"}}]"#;
        let dump = parse_dump(text, false).unwrap();
        assert_eq!(dump.users[0].id, None);
        assert_eq!(dump.tokens[0].user, UserRef::Pk("0b5c".to_owned()));
    }
}
