//! Who is calling: a user, and the credential it presented.

use super::{CredentialKind, TokenDigest, User};
use crate::clock::UnixMicros;

/// Who is calling, and with which credential.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: User,
    pub kind: CredentialKind,
    pub digest: TokenDigest,
    /// The refresh chain the credential belongs to.
    pub family: String,
    pub expires_at: UnixMicros,
    /// The user's credentials version when validated: a refresh is issued only if it holds.
    pub credentials_version: i64,
}
