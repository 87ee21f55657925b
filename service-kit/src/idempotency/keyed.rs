//! [`Keyed`]: the idempotency key a write carries, scoped to its caller and method, with the
//! request's MAC under the key (what the table stores instead of either).

use hmac::{Hmac, KeyInit, Mac};
use prost::Message;
use proto::idempotency::{self, METADATA_KEY};
use sha2::{Digest, Sha256};
use sqlx::{Any, any::AnyArguments, query::Query};
use tonic::{Request, Status};

use crate::validation::FieldErrors;

/// A write that carries a key: whose, for which method, and what the request was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyed {
    user_id: i64,
    method: &'static str,
    key: String,
    /// The request's MAC under the key, as [`fingerprint`] makes it.
    pub(super) fingerprint: Vec<u8>,
}

impl Keyed {
    /// The key `request` carries, scoped to `user_id` calling `method`: `None` without one,
    /// INVALID_ARGUMENT (a field violation on `idempotency-key`) for one that is no key.
    pub fn of<T: Message>(
        request: &Request<T>,
        user_id: i64,
        method: &'static str,
    ) -> Result<Option<Self>, Status> {
        let Some(value) = request.metadata().get(METADATA_KEY) else {
            return Ok(None);
        };
        let key = value
            .to_str()
            .map_err(|_| idempotency::MalformedKey::InvalidCharacters)
            .and_then(idempotency::check)
            .map_err(|malformed| {
                Status::from(FieldErrors::single(METADATA_KEY, malformed.message()))
            })?;
        Ok(Some(Self {
            user_id,
            method,
            key: hex::encode(Sha256::digest(key.as_bytes())),
            fingerprint: fingerprint(key, &request.get_ref().encode_to_vec()),
        }))
    }

    /// `sql` with this key bound as every statement here names it: `$1` the user, `$2` the
    /// method, `$3` the key.
    pub(super) fn query(&self, sql: &'static str) -> Query<'_, Any, AnyArguments> {
        sqlx::query(sql)
            .bind(self.user_id)
            .bind(self.method)
            .bind(self.key.as_str())
    }
}

/// The MAC of an encoded request under its idempotency key: equal for the same request with
/// the same key, and of no use to a word list without the key.
fn fingerprint(key: &str, request: &[u8]) -> Vec<u8> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(request);
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;

    fn request_with_key(key: &str) -> Request<prost_types::Duration> {
        let mut request = Request::new(prost_types::Duration {
            seconds: 5,
            nanos: 0,
        });
        request
            .metadata_mut()
            .insert(METADATA_KEY, key.parse().unwrap());
        request
    }

    #[test]
    fn a_key_is_scoped_and_fingerprinted() {
        let keyed = Keyed::of(&request_with_key("k-1"), 7, "AdjustStock")
            .unwrap()
            .expect("a key");
        assert_eq!(
            (keyed.user_id, keyed.method, keyed.key.as_str()),
            (
                7,
                "AdjustStock",
                hex::encode(Sha256::digest(b"k-1")).as_str()
            )
        );
        let encoded = request_with_key("k-1").get_ref().encode_to_vec();
        assert_eq!(keyed.fingerprint, fingerprint("k-1", &encoded));
        assert_ne!(
            keyed.fingerprint,
            Sha256::digest(&encoded).to_vec(),
            "no unkeyed digest of the request"
        );
        let other_key = Keyed::of(&request_with_key("k-2"), 7, "AdjustStock")
            .unwrap()
            .unwrap();
        assert_ne!(keyed.fingerprint, other_key.fingerprint);
        let unkeyed = Request::new(prost_types::Duration::default());
        assert_eq!(Keyed::of(&unkeyed, 7, "AdjustStock").unwrap(), None);
    }

    #[test]
    fn a_malformed_key_is_invalid_argument() {
        let long = "k".repeat(idempotency::MAX_LEN + 1);
        let status = Keyed::of(&request_with_key(&long), 7, "AdjustStock").unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        let errors = FieldErrors::from_status(&status).expect("field violations");
        assert_eq!(
            errors.iter().collect::<Vec<_>>(),
            [(
                METADATA_KEY,
                "Idempotency-Key must be at most 255 characters long."
            )]
        );
    }
}
