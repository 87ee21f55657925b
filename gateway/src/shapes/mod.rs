//! The JSON bodies the routes answer with, apart from the routes themselves: nothing here calls a
//! service or knows a path. Which fields of a user each document shows ([`user`]), a product
//! ([`ProductBody`]), a list of products written once per distinct reply of inventory's
//! ([`ReplyMemo`]), and DRF's list envelope ([`PageBody`]). Each shape's OpenAPI schema is
//! declared beside the code that writes it, and its tests hold the two together.

mod product;
mod product_list;
mod user;

use serde::Serialize;

pub use self::{
    product::ProductBody,
    product_list::{ReplyJson, ReplyMemo},
    user::{
        FULL_USER, USER_ACCOUNT_AND_ROLE, USER_NAMES_AND_EMAIL, USER_PROFILE,
        USER_PROFILE_AND_FLAGS, UserField, UserShape, read_role, user,
    },
};
use crate::{extract::Paging, openapi::Schema};

/// The page of a list a request asked for: a plain array, or with `?limit=` DRF's
/// `{"count", "next", "previous", "results"}`.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum PageBody<T> {
    Plain(Vec<T>),
    Envelope {
        count: u64,
        next: Option<String>,
        previous: Option<String>,
        results: Vec<T>,
    },
}

impl<T> PageBody<T> {
    /// `items`, of `count` in all, as `paging` asked for them.
    pub fn new(items: Vec<T>, count: u64, paging: &Paging) -> Self {
        match paging.limit {
            None => Self::Plain(items),
            Some(limit) => Self::Envelope {
                count,
                next: paging.next(limit, count),
                previous: paging.previous(limit),
                results: items,
            },
        }
    }
}

/// The schema of a [`PageBody`] of `items`: the plain list, or DRF's envelope.
pub fn page_schema(items: Schema) -> Schema {
    let link = || {
        Schema::Scalar(serde_json::json!({
            "type": "string", "format": "uri", "nullable": true
        }))
    };
    Schema::OneOf(vec![
        Schema::array(items.clone()),
        Schema::object([
            ("count", Schema::integer()),
            ("next", link()),
            ("previous", link()),
            ("results", Schema::array(items)),
        ]),
    ])
}

/// RFC 3339 in UTC, as prost writes it; `None` shows as `null`.
fn rfc3339(timestamp: Option<&prost_types::Timestamp>) -> Option<String> {
    timestamp.map(ToString::to_string)
}
