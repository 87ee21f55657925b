//! Validated types: once a request field becomes one of these, nothing inside re-checks it.
//! Parsers return DRF's messages; callers name the field.

mod identity;
mod password;
mod token;
mod user;

pub use identity::{Email, PersonName, Username};
pub use password::Password;
pub use token::{CredentialKind, TokenDigest, TokenKey};
pub use user::{Profile, ProfileChanges, Role, User};
