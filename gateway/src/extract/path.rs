//! What handlers read from the URL: the object id of a detail route, and the DRF
//! `LimitOffsetPagination` parameters with the URL its `next` and `previous` links start from.

use axum::extract::{FromRequestParts, Path};
use http::request::Parts;

use crate::{
    error::{ApiError, Missing},
    forwarded::Secure,
    hosts::RequestHost,
};

/// The `{id}` of a detail route. Like Django's `<int:pk>`, only digits match; anything else is
/// an unknown route ("Not found."), not an unknown object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectId(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for ObjectId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let not_found = || ApiError::NotFound(Missing::Route);
        let Path(text) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| not_found())?;
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(not_found());
        }
        text.parse().map(Self).map_err(|_| not_found())
    }
}

/// `?limit=N&offset=M`. Without a usable limit the list is not paged (DRF with no default page
/// size); an unusable offset is 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paging {
    pub limit: Option<u64>,
    pub offset: u64,
    /// `http://host/path`, for the envelope's links.
    base_url: String,
    /// The query's other parameters (a list's filters), which the links keep.
    others: Vec<(String, String)>,
}

impl Paging {
    /// The DRF envelope's `next` link, if there are items after this page.
    pub fn next(&self, limit: u64, count: u64) -> Option<String> {
        let offset = self.offset.checked_add(limit)?;
        (offset < count).then(|| self.link(limit, Some(offset)))
    }

    /// The DRF envelope's `previous` link, if this page is not the first (DRF drops the offset
    /// when it would be 0).
    pub fn previous(&self, limit: u64) -> Option<String> {
        if self.offset == 0 {
            return None;
        }
        let offset = self.offset.checked_sub(limit).filter(|offset| *offset > 0);
        Some(self.link(limit, offset))
    }

    /// This list at `limit` and `offset`, its other parameters kept, every parameter sorted by
    /// name as DRF's `replace_query_param` writes them.
    fn link(&self, limit: u64, offset: Option<u64>) -> String {
        let (limit, offset) = (limit.to_string(), offset.map(|offset| offset.to_string()));
        let mut pairs: Vec<(&str, &str)> = self
            .others
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        pairs.push(("limit", &limit));
        if let Some(offset) = &offset {
            pairs.push(("offset", offset));
        }
        pairs.sort_by_key(|(name, _)| *name);
        let query = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        format!("{}?{query}", self.base_url)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Paging {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let mut paging = Self {
            limit: None,
            offset: 0,
            // Only a host `ALLOWED_HOSTS` let through, never the raw header: a link must not
            // point wherever a client's `Host` says. `https` when the request came over it.
            base_url: format!(
                "{}://{}{}",
                if parts.extensions.get::<Secure>().is_some_and(|s| s.0) {
                    "https"
                } else {
                    "http"
                },
                parts
                    .extensions
                    .get::<RequestHost>()
                    .map_or("localhost", |host| host.0.as_str()),
                parts.uri.path()
            ),
            others: Vec::new(),
        };
        let query = parts.uri.query().unwrap_or_default();
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            match name.as_ref() {
                // Like DRF's `max_limit`: a larger page is cut to the largest.
                "limit" => {
                    paging.limit = value
                        .parse()
                        .ok()
                        .filter(|limit| *limit > 0)
                        .map(|limit: u64| limit.min(proto::MAX_PAGE_SIZE));
                }
                "offset" => paging.offset = value.parse().unwrap_or(0),
                _ => paging.others.push((name.into_owned(), value.into_owned())),
            }
        }
        Ok(paging)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paging(offset: u64) -> Paging {
        Paging {
            limit: Some(2),
            offset,
            base_url: "http://h/api/products/".to_owned(),
            others: Vec::new(),
        }
    }

    #[test]
    fn links_like_drf() {
        assert_eq!(
            paging(0).next(2, 5).as_deref(),
            Some("http://h/api/products/?limit=2&offset=2")
        );
        assert_eq!(paging(4).next(2, 5), None);
        assert_eq!(paging(0).previous(2), None);
        assert_eq!(
            paging(2).previous(2).as_deref(),
            Some("http://h/api/products/?limit=2")
        );
        assert_eq!(
            paging(4).previous(2).as_deref(),
            Some("http://h/api/products/?limit=2&offset=2")
        );
    }

    /// A filtered list's links keep its filters, every parameter in name order as DRF's.
    #[test]
    fn links_keep_the_other_parameters() {
        let filtered = Paging {
            others: vec![
                ("type".to_owned(), "login.failed".to_owned()),
                ("since".to_owned(), "2026-01-01T00:00:00+00:00".to_owned()),
            ],
            ..paging(2)
        };
        assert_eq!(
            filtered.next(2, 10).as_deref(),
            Some(
                "http://h/api/products/?limit=2&offset=4\
                 &since=2026-01-01T00%3A00%3A00%2B00%3A00&type=login.failed"
            )
        );
        assert_eq!(
            filtered.previous(2).as_deref(),
            Some(
                "http://h/api/products/?limit=2\
                 &since=2026-01-01T00%3A00%3A00%2B00%3A00&type=login.failed"
            )
        );
    }
}
