//! The `idempotency-key` metadata, which makes a write safe to send again. The service that owns
//! the write keeps each key it is given (per calling user and method) with a fingerprint of the
//! request and the answer, for a configured time: the same key with the same request gets the
//! first answer again and changes nothing; the same key with another request is
//! FAILED_PRECONDITION with reason [`REUSED`] (the gateway's 422). So a client, or the gateway,
//! may retry a keyed write after an ambiguous failure (UNAVAILABLE, an answer lost on the way)
//! and it applies once; a write without a key is never retried.
//!
//! A key is what the HTTP `Idempotency-Key` field carries (draft-ietf-httpapi-idempotency-key-
//! header): 1 to [`MAX_LEN`] printable ASCII characters. The draft sets no bound; this one keeps
//! a stored key small, and fits the UUIDs and random strings clients send.

/// The metadata key.
pub const METADATA_KEY: &str = "idempotency-key";

/// The methods that change nothing, by gRPC path: a client may always send one a second time
/// (to another replica, after the first failed); a write only when it carries a key. Generated
/// from the methods the `.proto` files mark `option idempotency_level = NO_SIDE_EFFECTS`.
pub const READS: &[&str] = include!(concat!(env!("OUT_DIR"), "/reads.rs"));

/// The response metadata (and the gateway's HTTP header, as Stripe names it) that marks an
/// answer as a repeat of the one stored with the key: `idempotent-replayed: true`.
pub const REPLAYED_KEY: &str = "idempotent-replayed";

/// The longest key accepted, in characters (ASCII, so also bytes).
pub const MAX_LEN: usize = 255;

/// The `google.rpc.ErrorInfo` domain of the reasons below, raised by whichever service owns
/// the write.
pub const DOMAIN: &str = "idempotency";

/// The key was used before, by the same caller on the same method, with another request.
pub const REUSED: &str = "IDEMPOTENCY_KEY_REUSED";

/// Why a value is not a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MalformedKey {
    Empty,
    TooLong,
    /// A character outside printable ASCII, or a quoted string not closed or badly escaped.
    InvalidCharacters,
}

impl MalformedKey {
    /// What is wrong, for the caller.
    pub fn message(self) -> &'static str {
        match self {
            Self::Empty => "Idempotency-Key must not be empty.",
            Self::TooLong => "Idempotency-Key must be at most 255 characters long.",
            Self::InvalidCharacters => "Idempotency-Key must be printable ASCII characters only.",
        }
    }
}

/// Checks a key as it travels in metadata (already unquoted).
pub fn check(key: &str) -> Result<&str, MalformedKey> {
    if key.is_empty() {
        Err(MalformedKey::Empty)
    } else if key.len() > MAX_LEN {
        Err(MalformedKey::TooLong)
    } else if !key.bytes().all(|byte| (0x20..=0x7e).contains(&byte)) {
        Err(MalformedKey::InvalidCharacters)
    } else {
        Ok(key)
    }
}

/// The key in an HTTP `Idempotency-Key` value. The draft makes it a structured-field string
/// (`"8e03…"`, with `\"` and `\\` escapes); clients written for Stripe send the bare key, so a
/// value that does not start with a quote is taken as it is.
pub fn from_header(value: &[u8]) -> Result<String, MalformedKey> {
    let text = std::str::from_utf8(value).map_err(|_| MalformedKey::InvalidCharacters)?;
    let key = match text.strip_prefix('"') {
        Some(quoted) => unquote(quoted)?,
        None => text.to_owned(),
    };
    check(&key)?;
    Ok(key)
}

/// The rest of an sf-string after its opening quote, unescaped; nothing may follow the closing
/// quote.
fn unquote(quoted: &str) -> Result<String, MalformedKey> {
    let mut key = String::with_capacity(quoted.len());
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' if chars.as_str().is_empty() => return Ok(key),
            '\\' => match chars.next() {
                Some(escaped @ ('"' | '\\')) => key.push(escaped),
                _ => return Err(MalformedKey::InvalidCharacters),
            },
            '"' => return Err(MalformedKey::InvalidCharacters),
            c => key.push(c),
        }
    }
    Err(MalformedKey::InvalidCharacters)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// READS comes from the `.proto` options; this holds the options to the naming rule, so a
    /// new `Get…` or `List…` that forgets its option (and would lose its retries), or a write
    /// marked by mistake (and would be sent twice), fails here.
    #[test]
    fn the_reads_are_the_methods_named_as_reads() {
        use prost::Message;
        let set = prost_types::FileDescriptorSet::decode(crate::FILE_DESCRIPTOR_SET).unwrap();
        let named_as_reads: Vec<String> = set
            .file
            .iter()
            .flat_map(|file| {
                file.service.iter().flat_map(move |service| {
                    service
                        .method
                        .iter()
                        .filter(|method| {
                            ["Get", "List", "Validate"]
                                .iter()
                                .any(|verb| method.name().starts_with(verb))
                        })
                        .map(move |method| {
                            format!("/{}.{}/{}", file.package(), service.name(), method.name())
                        })
                })
            })
            .collect();
        assert_eq!(READS, named_as_reads);
        assert_eq!(READS.len(), 7, "{READS:?}");
    }

    #[test]
    fn takes_bare_and_quoted_keys() {
        let uuid = "8e03978e-40d5-43e8-bc93-6894a57f9324";
        assert_eq!(from_header(uuid.as_bytes()).as_deref(), Ok(uuid));
        assert_eq!(
            from_header(format!("\"{uuid}\"").as_bytes()).as_deref(),
            Ok(uuid)
        );
        assert_eq!(
            from_header(br#""a \"b\" \\c""#).as_deref(),
            Ok(r#"a "b" \c"#)
        );
        assert_eq!(from_header(&[b'k'; MAX_LEN]).map(|key| key.len()), Ok(255));
    }

    #[test]
    fn refuses_what_is_no_key() {
        assert_eq!(from_header(b""), Err(MalformedKey::Empty));
        assert_eq!(from_header(b"\"\""), Err(MalformedKey::Empty));
        assert_eq!(
            from_header(&[b'k'; MAX_LEN + 1]),
            Err(MalformedKey::TooLong)
        );
        for bad in [
            &b"caf\xc3\xa9"[..],
            b"tab\there",
            b"\xff",
            b"\"open",
            b"\"a\"b\"",
            b"\"bad \\n escape\"",
        ] {
            assert_eq!(
                from_header(bad),
                Err(MalformedKey::InvalidCharacters),
                "{bad:?}"
            );
        }
        assert_eq!(check("nul\0"), Err(MalformedKey::InvalidCharacters));
    }
}
