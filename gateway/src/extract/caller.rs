//! Who is calling. The `Authorization` header is parsed as DRF's `TokenAuthentication` parses it
//! (with its exact 401 messages); without one, the `sessionid` cookie is checked with the auth
//! service and, for unsafe methods, the CSRF double-submit token. A header token is not checked
//! here on protected routes: the service called next checks it anyway, which saves a round trip.
//! An unsafe request's `Idempotency-Key` is read here too, and travels with the writes it makes.

use secrecy::ExposeSecret;
use std::{borrow::Cow, net::IpAddr};

use axum::extract::{FromRef, FromRequestParts};
use http::{header, request::Parts};
use proto::{
    auth::v1::{CredentialKind, ValidateTokenRequest},
    credentials::{self, MalformedAuthorization},
    idempotency,
};
use tonic::{Code, metadata::MetadataValue};

use crate::{
    clients::{self, Credential, Upstreams},
    error::{ApiError, AuthenticationFailure},
    forwarded::ClientAddress,
    session,
};

/// The id of the current request, put in the request's extensions by the server's middleware.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The request id, the credential presented, if any, and the client's address.
#[derive(Debug, Clone)]
pub struct Caller {
    pub request_id: String,
    pub credential: Option<Credential>,
    /// The client's address (the peer, or whom the trusted proxies forwarded for), passed on so
    /// the auth service counts failed logins by the real client rather than by the gateway.
    pub client: Option<IpAddr>,
    /// The client's `Idempotency-Key` (POST, PUT, PATCH and DELETE only), checked.
    pub idempotency_key: Option<String>,
}

impl Caller {
    /// `message` as a gRPC request on behalf of this caller.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        clients::request(message, &self.request_id, self.credential.as_ref())
    }

    /// `message` as a gRPC request that presents `credential` instead of the caller's.
    pub fn request_as<T>(&self, message: T, credential: &Credential) -> tonic::Request<T> {
        clients::request(message, &self.request_id, Some(credential))
    }

    /// [`Caller::request`] for a write that applies at most once per key: with the client's
    /// `Idempotency-Key`, or else one made for this request alone. Made here for every keyless
    /// write, not only when one is retried: a retry is safe only if the first attempt carried
    /// the key too, and whether the first attempt applied is just what a retry cannot know.
    pub fn write_request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = self.request(message);
        let key = self
            .idempotency_key
            .clone()
            .unwrap_or_else(service_kit::request_id::generate);
        let value = MetadataValue::try_from(key).expect("a checked key is valid metadata");
        request
            .metadata_mut()
            .insert(idempotency::METADATA_KEY, value);
        request
    }

    /// [`Caller::request`], naming the client's address too: only for the calls that check a
    /// password, whose failures auth counts by client.
    pub fn request_naming_client<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = self.request(message);
        if let Some(client) = self.client {
            let value = MetadataValue::try_from(client.to_string())
                .expect("an IP address is valid metadata");
            request
                .metadata_mut()
                .insert(credentials::CLIENT_ADDRESS_KEY, value);
        }
        request
    }

    /// Whether `credential` authenticates: from the verdict cache, else asking auth.
    async fn validate(
        &self,
        upstreams: &Upstreams,
        credential: &Credential,
    ) -> Result<(), tonic::Status> {
        let verdicts = upstreams.verdicts();
        if verdicts
            .lookup(credential.kind, credential.key.expose_secret())
            .is_some()
        {
            return Ok(());
        }
        // Taken before asking: an event arriving meanwhile keeps the answer out of the cache.
        let ticket = verdicts.ticket();
        let message = ValidateTokenRequest {
            key: credential.key.expose_secret().to_owned(),
            kind: credential.kind.into(),
        };
        let verdict = upstreams
            .auth()
            .validate_token(clients::request(message, &self.request_id, None))
            .await?
            .into_inner();
        verdicts.insert(
            ticket,
            credential.kind,
            credential.key.expose_secret(),
            &verdict,
        );
        Ok(())
    }
}

/// The extractors of the caller: each reads the [`Caller`] ([`Caller::read`]), and then its
/// own `admit` decides, with the same rejection.
macro_rules! caller_extractor {
    ($extractor:ty) => {
        impl<S> FromRequestParts<S> for $extractor
        where
            Upstreams: FromRef<S>,
            S: Send + Sync,
        {
            type Rejection = ApiError;

            async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
                let upstreams = Upstreams::from_ref(state);
                let caller = Caller::read(parts, &upstreams).await?;
                <$extractor>::admit(caller, &upstreams).await
            }
        }
    };
}

caller_extractor!(Caller);
caller_extractor!(Authenticated);
caller_extractor!(Anyone);

impl Caller {
    /// The request id, the credential (the header's token, else the session cookie's, checked)
    /// and the client's address.
    async fn read(parts: &Parts, upstreams: &Upstreams) -> Result<Self, ApiError> {
        let request_id = parts
            .extensions
            .get::<RequestId>()
            .map(|id| id.0.clone())
            .unwrap_or_else(service_kit::request_id::generate);
        let client = parts
            .extensions
            .get::<ClientAddress>()
            .map(|client| client.0);
        let mut caller = Self {
            request_id,
            credential: header_token(parts)?,
            client,
            idempotency_key: idempotency_key(parts)?,
        };
        if caller.credential.is_none() {
            caller.credential = session_credential(&caller, parts, upstreams).await?;
        }
        Ok(caller)
    }

    /// Any caller, on the routes that check nothing more (logout decides for itself).
    async fn admit(self, _: &Upstreams) -> Result<Self, ApiError> {
        Ok(self)
    }
}

/// The key of an `Authorization: Token <key>` (or `Bearer`) header; any other scheme is no
/// credential at all, as in DRF.
fn header_token(parts: &Parts) -> Result<Option<Credential>, ApiError> {
    let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    // DRF splits the raw bytes and decodes the key last, so a key that is not UTF-8 gets its own
    // message while the scheme and the spaces are still judged first.
    let (text, is_utf8) = match std::str::from_utf8(value.as_bytes()) {
        Ok(text) => (Cow::Borrowed(text), true),
        Err(_) => (String::from_utf8_lossy(value.as_bytes()), false),
    };
    let scheme = text.split_whitespace().next().unwrap_or_default();
    // Only the gateway may present a session: from a client it would skip the CSRF check.
    if scheme.eq_ignore_ascii_case("session") {
        return Ok(None);
    }
    match credentials::parse(&text) {
        Ok((_, key)) if is_utf8 => Ok(Some(Credential {
            kind: CredentialKind::Token,
            key: key.into(),
        })),
        Ok(_) => Err(ApiError::NotAuthenticated(
            AuthenticationFailure::InvalidCharacters,
        )),
        Err(MalformedAuthorization::UnknownScheme) => Ok(None),
        Err(MalformedAuthorization::MissingKey) => Err(ApiError::NotAuthenticated(
            AuthenticationFailure::HeaderWithoutKey,
        )),
        Err(MalformedAuthorization::SpacesInKey) => Err(ApiError::NotAuthenticated(
            AuthenticationFailure::SpacesInKey,
        )),
    }
}

/// The `Idempotency-Key` of an unsafe request (the HTTP field has the metadata's name); a safe
/// one changes nothing, so its key means nothing and is not read.
fn idempotency_key(parts: &Parts) -> Result<Option<String>, ApiError> {
    if session::is_safe(&parts.method) {
        return Ok(None);
    }
    let mut values = parts.headers.get_all(idempotency::METADATA_KEY).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::MalformedIdempotencyKey(
            "Idempotency-Key must be sent once.",
        ));
    }
    idempotency::from_header(value.as_bytes())
        .map(Some)
        .map_err(|malformed| ApiError::MalformedIdempotencyKey(malformed.message()))
}

/// The session of the `sessionid` cookie, if it still authenticates. One that does not is
/// ignored (the request is anonymous), as Django does; one that does must pass the CSRF check on
/// unsafe methods, as DRF's `SessionAuthentication` demands.
async fn session_credential(
    caller: &Caller,
    parts: &Parts,
    upstreams: &Upstreams,
) -> Result<Option<Credential>, ApiError> {
    let Some(key) =
        session::cookie(&parts.headers, session::SESSION_COOKIE).filter(|key| !key.is_empty())
    else {
        return Ok(None);
    };
    let credential = Credential {
        kind: CredentialKind::Session,
        key: key.into(),
    };
    match caller.validate(upstreams, &credential).await {
        Ok(()) => {}
        Err(status) if status.code() == Code::Unauthenticated => return Ok(None),
        Err(status) => return Err(ApiError::auth(status)),
    }
    if !session::is_safe(&parts.method) {
        session::check_csrf(&parts.headers).map_err(ApiError::Forbidden)?;
    }
    Ok(Some(credential))
}

/// A caller on a protected route: without a credential, DRF's "not provided" 401.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Caller);

impl Authenticated {
    async fn admit(caller: Caller, _: &Upstreams) -> Result<Self, ApiError> {
        if caller.credential.is_none() {
            return Err(ApiError::NotAuthenticated(
                AuthenticationFailure::NotProvided,
            ));
        }
        Ok(Self(caller))
    }
}

/// A caller on a public route. A header token is checked all the same, because DRF does: a bad
/// `Authorization` header on a public route is a 401, not an anonymous request.
#[derive(Debug, Clone)]
pub struct Anyone(pub Caller);

impl Anyone {
    async fn admit(caller: Caller, upstreams: &Upstreams) -> Result<Self, ApiError> {
        if let Some(credential) = caller
            .credential
            .as_ref()
            .filter(|credential| credential.kind == CredentialKind::Token)
        {
            caller
                .validate(upstreams, credential)
                .await
                .map_err(ApiError::auth)?;
        }
        Ok(Self(caller))
    }
}

#[cfg(test)]
mod tests {
    use http::{HeaderValue, Request};

    use super::*;

    fn parts_with_authorization(value: &[u8]) -> Parts {
        let mut request = Request::new(());
        request.headers_mut().insert(
            header::AUTHORIZATION,
            HeaderValue::from_bytes(value).unwrap(),
        );
        request.into_parts().0
    }

    fn parse(value: &[u8]) -> Result<Option<String>, AuthenticationFailure> {
        match header_token(&parts_with_authorization(value)) {
            Ok(credential) => {
                Ok(credential.map(|credential| credential.key.expose_secret().to_owned()))
            }
            Err(ApiError::NotAuthenticated(failure)) => Err(failure),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn reads_the_header_as_drf_does() {
        assert_eq!(parse(b"Token abc"), Ok(Some("abc".to_owned())));
        assert_eq!(parse(b"BEARER abc"), Ok(Some("abc".to_owned())));
        assert_eq!(parse(b"Basic abc"), Ok(None));
        assert_eq!(
            parse(b"Token"),
            Err(AuthenticationFailure::HeaderWithoutKey)
        );
        assert_eq!(parse(b"Token a b"), Err(AuthenticationFailure::SpacesInKey));
        assert_eq!(
            parse(b"Token a\xff"),
            Err(AuthenticationFailure::InvalidCharacters)
        );
        assert_eq!(parse(b"Tok\xffen abc"), Ok(None));
    }

    #[test]
    fn never_takes_a_session_from_the_header() {
        assert_eq!(parse(b"Session abc"), Ok(None));
        assert_eq!(parse(b"session"), Ok(None));
    }
}
