//! Why a request is refused, case by case, in DRF's (and Django's) own words: not
//! authenticated (401), not allowed or failing a CSRF check (403), not found (404).

use std::borrow::Cow;

/// Why a request is not authenticated (DRF's `TokenAuthentication` cases).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthenticationFailure {
    NotProvided,
    HeaderWithoutKey,
    SpacesInKey,
    InvalidCharacters,
    InvalidToken,
    Expired,
    Inactive,
}

impl AuthenticationFailure {
    pub(super) fn detail(self) -> &'static str {
        match self {
            Self::NotProvided => "Authentication credentials were not provided.",
            Self::HeaderWithoutKey => "Invalid token header. No credentials provided.",
            Self::SpacesInKey => "Invalid token header. Token string should not contain spaces.",
            Self::InvalidCharacters => {
                "Invalid token header. Token string should not contain invalid characters."
            }
            Self::InvalidToken => "Invalid token.",
            Self::Expired => "Token has expired.",
            Self::Inactive => "User inactive or deleted.",
        }
    }

    /// The failure an auth-service `ErrorInfo` reason stands for.
    pub(super) fn from_reason(reason: Option<&str>) -> Self {
        match reason {
            Some(proto::reasons::CREDENTIALS_MISSING) => Self::NotProvided,
            Some(proto::reasons::TOKEN_EXPIRED) => Self::Expired,
            Some(proto::reasons::USER_INACTIVE) => Self::Inactive,
            _ => Self::InvalidToken,
        }
    }
}

/// Why a request is refused (403): not allowed, or a CSRF check of Django's failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Permission,
    CsrfCookieNotSet,
    CsrfTokenMissing,
    CsrfTokenIncorrect,
    /// The `Origin` (as sent) is neither the request's own nor trusted.
    CsrfBadOrigin(String),
    CsrfMalformedReferer,
    CsrfInsecureReferer,
    /// The `Referer` (as sent) is neither the request's own host nor trusted.
    CsrfBadReferer(String),
}

impl Refusal {
    /// DRF's words; a CSRF reason is Django's, after DRF's `CSRF Failed: `.
    pub(super) fn detail(&self) -> Cow<'static, str> {
        match self {
            Self::Permission => "You do not have permission to perform this action.".into(),
            Self::CsrfCookieNotSet => "CSRF Failed: CSRF cookie not set.".into(),
            Self::CsrfTokenMissing => "CSRF Failed: CSRF token missing.".into(),
            Self::CsrfTokenIncorrect => {
                "CSRF Failed: CSRF token from the 'X-Csrftoken' HTTP header incorrect.".into()
            }
            Self::CsrfBadOrigin(origin) => format!(
                "CSRF Failed: Origin checking failed - {origin} does not match any trusted \
                 origins."
            )
            .into(),
            Self::CsrfMalformedReferer => {
                "CSRF Failed: Referer checking failed - Referer is malformed.".into()
            }
            Self::CsrfInsecureReferer => "CSRF Failed: Referer checking failed - Referer is \
                                          insecure while host is secure."
                .into(),
            Self::CsrfBadReferer(referer) => format!(
                "CSRF Failed: Referer checking failed - {referer} does not match any trusted \
                 origins."
            )
            .into(),
        }
    }
}

/// What was not found (404).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    Route,
    Product,
    User,
    /// An e-mail verification key that is unknown, used or expired.
    VerificationKey,
}

impl Missing {
    pub(super) fn detail(self) -> &'static str {
        match self {
            Self::Route | Self::VerificationKey => "Not found.",
            Self::Product => "No Product matches the given query.",
            Self::User => "No User matches the given query.",
        }
    }
}
