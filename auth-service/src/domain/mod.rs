//! Validated types: once a request field becomes one of these, nothing inside re-checks it.
//! Parsers return DRF's messages; callers name the field. Beside them, who is calling
//! ([`Principal`]), which every layer from the handlers to the verdict caches passes on, and
//! what a user presents as a second factor ([`FactorCode`]).

pub mod audit;
mod identity;
mod password;
mod principal;
mod role;
mod second_factor;
mod token;
mod user;

pub use identity::{Email, PersonName, Username};
pub use password::{HashedPassword, Password};
pub use principal::Principal;
pub use role::Role;
pub use second_factor::{FactorCode, RECOVERY_CODES, RecoveryCode};
pub use token::{CredentialKind, TokenDigest, TokenKey};
pub use user::{Profile, ProfileChanges, User};
