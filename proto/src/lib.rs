//! The gRPC contracts shared by every service: generated messages, clients and servers for
//! `auth.v1` and `inventory.v1`, the encoded descriptor set that server reflection serves, and
//! the conventions the `.proto` comments describe in words: the `authorization` metadata
//! ([`credentials`]), the `idempotency-key` metadata of writes and which calls may be sent twice
//! ([`idempotency`]), the `google.rpc.ErrorInfo` reasons ([`reasons`]), and what each role is
//! called and may do ([`roles`]). Every client and
//! server encodes with [`codec::ProtoCodec`].

pub mod codec;
pub mod idempotency;
pub mod roles;

pub mod auth {
    pub mod v1 {
        tonic::include_proto!("auth.v1");
    }
}

pub mod inventory {
    pub mod v1 {
        tonic::include_proto!("inventory.v1");
    }
}

/// The encoded `FileDescriptorSet` of every `.proto` in this crate (with their imports), for
/// `tonic_reflection`.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/descriptor_set.bin"));

/// `google.rpc.ErrorInfo` reasons: auth's in domain [`reasons::DOMAIN`], inventory's in
/// [`reasons::inventory::DOMAIN`]. Clients branch on these, never on status messages.
/// The most items one List call returns (DRF's `max_limit`): a request without a limit, or with
/// a larger one, gets at most this many. A service may return fewer when the items are large (a
/// reply stays under the message size limit); callers that want everything read on from the
/// offset plus what they got, until a call returns nothing.
pub const MAX_PAGE_SIZE: u64 = 1000;

pub mod reasons {
    pub const DOMAIN: &str = "auth.v1";
    /// No `authorization` metadata at all.
    pub const CREDENTIALS_MISSING: &str = "CREDENTIALS_MISSING";
    /// Unknown, revoked, refreshed-away or malformed key.
    pub const TOKEN_INVALID: &str = "TOKEN_INVALID";
    /// The key's lifetime is over; it has been deleted.
    pub const TOKEN_EXPIRED: &str = "TOKEN_EXPIRED";
    /// The key's user is deactivated (as a token check, UNAUTHENTICATED; at login after a
    /// correct password, PERMISSION_DENIED).
    pub const USER_INACTIVE: &str = "USER_INACTIVE";
    /// Wrong username, email or password.
    pub const INVALID_CREDENTIALS: &str = "INVALID_CREDENTIALS";
    /// Too many failed logins; RESOURCE_EXHAUSTED with a `google.rpc.RetryInfo`.
    pub const ACCOUNT_LOCKED: &str = "ACCOUNT_LOCKED";
    /// Authenticated, but the role or flags do not allow the call.
    pub const PERMISSION_DENIED: &str = "PERMISSION_DENIED";
    /// A login of an account whose email is not verified, with
    /// `ACCOUNT_EMAIL_VERIFICATION=mandatory` (FAILED_PRECONDITION, after a correct password).
    pub const EMAIL_NOT_VERIFIED: &str = "EMAIL_NOT_VERIFIED";
    /// An email verification key that is unknown, used, expired or for an old address
    /// (NOT_FOUND).
    pub const VERIFICATION_KEY_INVALID: &str = "VERIFICATION_KEY_INVALID";

    /// The inventory service's own reasons (it passes auth's through unchanged).
    pub mod inventory {
        pub const DOMAIN: &str = "inventory.v1";
        /// AdjustStock would take the quantity below zero (FAILED_PRECONDITION).
        pub const INSUFFICIENT_STOCK: &str = "INSUFFICIENT_STOCK";
    }
}

/// The `authorization` metadata: `Token <key>` or `Bearer <key>` for a token, `Session <key>`
/// for a gateway cookie session. The scheme matches ignoring case, as DRF's does.
pub mod credentials {
    use crate::auth::v1::CredentialKind;

    /// The metadata key.
    pub const METADATA_KEY: &str = "authorization";

    /// The address of the client a proxy (the gateway) calls on behalf of, so that the auth
    /// service counts failed logins by the real client; without it, the caller's own peer
    /// address counts. A forged value only moves a caller between per-address buckets: the
    /// account-wide ceiling still holds.
    pub const CLIENT_ADDRESS_KEY: &str = "x-client-address";

    /// Why an `authorization` value is not a credential.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum MalformedAuthorization {
        /// A known scheme with nothing after it.
        MissingKey,
        /// A key with spaces inside.
        SpacesInKey,
        /// Any other scheme (e.g. `Basic`).
        UnknownScheme,
    }

    /// Splits an `authorization` value into the kind of credential and its key.
    pub fn parse(value: &str) -> Result<(CredentialKind, &str), MalformedAuthorization> {
        let mut parts = value.split_whitespace();
        let scheme = parts.next().unwrap_or_default();
        let kind = if scheme.eq_ignore_ascii_case("token") || scheme.eq_ignore_ascii_case("bearer")
        {
            CredentialKind::Token
        } else if scheme.eq_ignore_ascii_case("session") {
            CredentialKind::Session
        } else {
            return Err(MalformedAuthorization::UnknownScheme);
        };
        let key = parts.next().ok_or(MalformedAuthorization::MissingKey)?;
        if parts.next().is_some() {
            return Err(MalformedAuthorization::SpacesInKey);
        }
        Ok((kind, key))
    }

    /// Why a call's `authorization` metadata presents no usable credential, in the two
    /// answers a gRPC service gives (DRF's): none at all, or one that cannot be a key.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum CredentialsRefused {
        /// No `authorization`, or a scheme that is no credential (e.g. `Basic`).
        Missing,
        /// A known scheme without a key, a key with spaces, or a value that is not text.
        Malformed,
    }

    /// The credential a gRPC call presents in its `authorization` metadata.
    pub fn of_metadata(
        metadata: &tonic::metadata::MetadataMap,
    ) -> Result<(CredentialKind, &str), CredentialsRefused> {
        let value = metadata
            .get(METADATA_KEY)
            .ok_or(CredentialsRefused::Missing)?
            .to_str()
            .map_err(|_| CredentialsRefused::Malformed)?;
        parse(value).map_err(|malformed| match malformed {
            MalformedAuthorization::UnknownScheme => CredentialsRefused::Missing,
            MalformedAuthorization::MissingKey | MalformedAuthorization::SpacesInKey => {
                CredentialsRefused::Malformed
            }
        })
    }

    /// The `authorization` value that presents `key` as a credential of `kind`.
    pub fn format(kind: CredentialKind, key: &str) -> String {
        match kind {
            CredentialKind::Session => format!("Session {key}"),
            CredentialKind::Token | CredentialKind::Unspecified => format!("Token {key}"),
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn parses_schemes_ignoring_case() {
            assert_eq!(parse("Token abc"), Ok((CredentialKind::Token, "abc")));
            assert_eq!(parse("bearer abc"), Ok((CredentialKind::Token, "abc")));
            assert_eq!(parse("SESSION abc"), Ok((CredentialKind::Session, "abc")));
        }

        #[test]
        fn rejects_what_drf_rejects() {
            assert_eq!(parse("Token"), Err(MalformedAuthorization::MissingKey));
            assert_eq!(parse("Token a b"), Err(MalformedAuthorization::SpacesInKey));
            assert_eq!(
                parse("Basic abc"),
                Err(MalformedAuthorization::UnknownScheme)
            );
            assert_eq!(parse(""), Err(MalformedAuthorization::UnknownScheme));
        }

        #[test]
        fn metadata_answers_missing_or_malformed() {
            let with = |value: &'static [u8]| {
                let mut metadata = tonic::metadata::MetadataMap::new();
                let value = tonic::metadata::MetadataValue::try_from(value).unwrap();
                metadata.insert(METADATA_KEY, value);
                metadata
            };
            let refused = |metadata: &_| of_metadata(metadata).err();
            assert_eq!(
                of_metadata(&with(b"Token abc")),
                Ok((CredentialKind::Token, "abc"))
            );
            assert_eq!(
                refused(&tonic::metadata::MetadataMap::new()),
                Some(CredentialsRefused::Missing)
            );
            assert_eq!(
                refused(&with(b"Basic abc")),
                Some(CredentialsRefused::Missing)
            );
            assert_eq!(
                refused(&with(b"Token")),
                Some(CredentialsRefused::Malformed)
            );
            assert_eq!(
                refused(&with(b"Token a b")),
                Some(CredentialsRefused::Malformed)
            );
            assert_eq!(
                refused(&with(b"Token \xe9")),
                Some(CredentialsRefused::Malformed)
            );
        }

        #[test]
        fn format_round_trips() {
            for kind in [CredentialKind::Token, CredentialKind::Session] {
                assert_eq!(parse(&format(kind, "k1")), Ok((kind, "k1")));
            }
        }
    }
}
