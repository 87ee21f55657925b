//! What handlers take from a request, with rejections already in DRF's shapes:
//!
//! - [`Fields`]: the body, JSON or form-encoded, and DRF's readings of its fields.
//! - [`Caller`], [`Authenticated`], [`Anyone`]: the request id and the credential presented,
//!   checked as DRF checks it.
//! - [`ObjectId`]: a numeric id in the path (anything else is "Not found.").
//! - [`Paging`]: `?limit=&offset=` and the absolute URL the DRF envelope links from.

mod body;
mod caller;
mod path;

pub use body::{BODY_LIMIT, Fields};
pub use caller::{Anyone, Authenticated, Caller, RequestId};
pub use path::{ObjectId, Paging};
