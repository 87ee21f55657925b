//! Validated types: once a request field becomes one of these, nothing inside re-checks it.
//! Parsers return DRF's messages; callers name the field. Beside them, who is calling
//! ([`Principal`]), which every layer from the handlers to the verdict caches passes on.

pub mod audit;
mod identity;
mod password;
mod principal;
mod role;
mod token;
mod user;

pub use identity::{Email, PersonName, Username};
pub use password::{HashedPassword, Password};
pub use principal::Principal;
pub use role::Role;
pub use token::{CredentialKind, TokenDigest, TokenKey};
pub use user::{Profile, ProfileChanges, User};
