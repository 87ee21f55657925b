//! A product list's JSON, written once per distinct `ListProducts` reply and remembered by that
//! reply's bytes. Decoding a page and writing its JSON were two fifths of the gateway's
//! instructions per listed page (BENCHMARKS.md); a list nobody changed comes back as the same
//! bytes, so its JSON is looked up instead. Nothing is served without asking inventory: each
//! request still makes its call (which checks the caller), and the JSON is a function of the
//! reply alone, so what is remembered can never be stale.

use std::{
    collections::VecDeque,
    sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard},
};

use axum::response::{IntoResponse, Response};
use http::header;
use prost::{Message, bytes::Bytes};
use proto::inventory::v1::ListProductsResponse;
use serde_json::json;

use super::{PageBody, product};
use crate::error::ApiError;

/// How many distinct replies are remembered; the oldest goes first.
const REMEMBERED_REPLIES: usize = 16;
/// Larger replies are written each time, so that what is remembered stays small: the bench's
/// page of 20 products is about 1.8 KB.
const MAX_REMEMBERED_REPLY_BYTES: usize = 32 * 1024;

/// One reply's products as JSON objects joined by commas, and what the paging needs.
#[derive(Debug)]
pub struct ReplyJson {
    json: Vec<u8>,
    /// How many products the reply holds.
    pub count: u64,
    pub total: u64,
    pub more: bool,
}

impl ReplyJson {
    fn write(reply: &[u8]) -> Result<Self, ApiError> {
        let decoded = ListProductsResponse::decode(reply).map_err(|error| {
            ApiError::Internal(format!(
                "inventory's ListProducts reply did not decode: {error}"
            ))
        })?;
        Ok(Self {
            json: product::joined(&decoded.products),
            count: decoded.products.len() as u64,
            total: decoded.total_count,
            more: decoded.more,
        })
    }
}

/// Replies as they came, newest first, with the JSON written from them.
type Recent = VecDeque<(Bytes, Arc<ReplyJson>)>;

/// The replies seen last, with their JSON. Shared by every request: a lookup takes the lock
/// only to read, so requests on many threads look up at once.
#[derive(Debug, Default)]
pub struct ReplyMemo {
    recent: RwLock<Recent>,
}

impl ReplyMemo {
    /// The JSON of `reply`: remembered if these bytes came before, else written now.
    pub fn of(&self, reply: &[u8]) -> Result<Arc<ReplyJson>, ApiError> {
        if let Some(json) = find(&self.read(), reply) {
            return Ok(json);
        }
        let json = Arc::new(ReplyJson::write(reply)?);
        if reply.len() <= MAX_REMEMBERED_REPLY_BYTES {
            let mut recent = self.write();
            // Another request may have written the same reply meanwhile: keep one of them.
            if let Some(theirs) = find(&recent, reply) {
                return Ok(theirs);
            }
            // A copy: the reply shares tonic's receive buffer, which should not be kept.
            recent.push_front((Bytes::copy_from_slice(reply), json.clone()));
            recent.truncate(REMEMBERED_REPLIES);
        }
        Ok(json)
    }

    // Every change under the lock leaves the list whole; a poisoned lock is usable.
    fn read(&self) -> RwLockReadGuard<'_, Recent> {
        self.recent
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Recent> {
        self.recent
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn find(recent: &Recent, reply: &[u8]) -> Option<Arc<ReplyJson>> {
    recent
        .iter()
        .find(|(seen, _)| seen.as_ref() == reply)
        .map(|(_, json)| json.clone())
}

/// A page of products as a response: the JSON of the replies that read it, joined.
impl IntoResponse for PageBody<Arc<ReplyJson>> {
    fn into_response(self) -> Response {
        let (envelope, replies) = match self {
            Self::Plain(replies) => (None, replies),
            Self::Envelope {
                count,
                next,
                previous,
                results,
            } => (
                Some(json!({ "count": count, "next": next, "previous": previous })),
                results,
            ),
        };
        let parts: usize = replies.iter().map(|reply| reply.json.len() + 1).sum();
        let mut json = Vec::with_capacity(parts + 256);
        if let Some(envelope) = &envelope {
            serde_json::to_writer(&mut json, envelope).expect("a JSON value always serializes");
            // Opened again to add the results last, where DRF puts them.
            json.pop();
            json.extend_from_slice(b",\"results\":");
        }
        json.push(b'[');
        for (i, reply) in replies.iter().filter(|reply| reply.count > 0).enumerate() {
            if i > 0 {
                json.push(b',');
            }
            json.extend_from_slice(&reply.json);
        }
        json.push(b']');
        if envelope.is_some() {
            json.push(b'}');
        }
        ([(header::CONTENT_TYPE, "application/json")], json).into_response()
    }
}

#[cfg(test)]
mod tests {
    use proto::inventory::v1::Product;
    use serde_json::Value;

    use super::*;

    fn reply(names: &[&str], total: u64, more: bool) -> Vec<u8> {
        ListProductsResponse {
            products: names
                .iter()
                .zip(1..)
                .map(|(name, id)| Product {
                    id,
                    name: (*name).to_owned(),
                    price: "1.00".to_owned(),
                    ..Product::default()
                })
                .collect(),
            total_count: total,
            more,
        }
        .encode_to_vec()
    }

    #[test]
    fn the_same_bytes_give_the_json_written_for_them() {
        let memo = ReplyMemo::default();
        let bytes = reply(&["a", "b"], 2, false);
        let first = memo.of(&bytes).unwrap();
        assert!(Arc::ptr_eq(&first, &memo.of(&bytes).unwrap()));
        assert_eq!(
            String::from_utf8(first.json.clone()).unwrap(),
            r#"{"id":1,"name":"a","description":"","price":"1.00","quantity":0,"created_at":null,"updated_at":null},{"id":2,"name":"b","description":"","price":"1.00","quantity":0,"created_at":null,"updated_at":null}"#
        );
        assert_eq!((first.count, first.total, first.more), (2, 2, false));

        // One byte changed (a name) is another reply, with its own JSON.
        let changed = memo.of(&reply(&["a", "c"], 2, false)).unwrap();
        assert!(!Arc::ptr_eq(&first, &changed));
        assert!(String::from_utf8_lossy(&changed.json).contains(r#""name":"c""#));
        let counted = memo.of(&reply(&["a", "b"], 3, true)).unwrap();
        assert_eq!((counted.total, counted.more), (3, true));
    }

    #[test]
    fn remembers_a_bounded_number_of_small_replies() {
        let memo = ReplyMemo::default();
        let replies: Vec<Vec<u8>> = (0..=REMEMBERED_REPLIES)
            .map(|i| reply(&[&format!("p{i}")], 1, false))
            .collect();
        let first = memo.of(&replies[0]).unwrap();
        for reply in &replies[1..] {
            memo.of(reply).unwrap();
        }
        assert_eq!(memo.read().len(), REMEMBERED_REPLIES);
        // The oldest went: its bytes are written afresh.
        assert!(!Arc::ptr_eq(&first, &memo.of(&replies[0]).unwrap()));

        let large = reply(&["x".repeat(MAX_REMEMBERED_REPLY_BYTES).as_str()], 1, false);
        let written = memo.of(&large).unwrap();
        assert!(!Arc::ptr_eq(&written, &memo.of(&large).unwrap()));
        assert!(
            memo.read()
                .iter()
                .all(|(seen, _)| seen.len() <= MAX_REMEMBERED_REPLY_BYTES)
        );
    }

    #[test]
    fn the_same_reply_written_at_once_on_many_threads_is_remembered_once() {
        let memo = ReplyMemo::default();
        let bytes = reply(&["a", "b", "c"], 3, false);
        let start = std::sync::Barrier::new(8);
        let written: Vec<Arc<ReplyJson>> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..8)
                .map(|_| {
                    scope.spawn(|| {
                        start.wait();
                        memo.of(&bytes).unwrap()
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        });
        assert_eq!(memo.read().len(), 1);
        let kept = memo.of(&bytes).unwrap();
        assert!(written.iter().all(|json| Arc::ptr_eq(json, &kept)));
    }

    #[test]
    fn a_reply_that_does_not_decode_is_a_fault() {
        let memo = ReplyMemo::default();
        assert!(matches!(
            memo.of(&[0xff, 0xff, 0xff]),
            Err(ApiError::Internal(_))
        ));
        assert!(memo.read().is_empty());
    }

    /// The JSON of `products` as the list route gathers it: one reply per two products.
    fn gathered(products: &[Product]) -> Vec<Arc<ReplyJson>> {
        let memo = ReplyMemo::default();
        products
            .chunks(2)
            .map(|batch| {
                let reply = ListProductsResponse {
                    products: batch.to_vec(),
                    ..ListProductsResponse::default()
                };
                memo.of(&reply.encode_to_vec()).unwrap()
            })
            .collect()
    }

    async fn page_text(page: PageBody<Arc<ReplyJson>>) -> String {
        let body = page.into_response().into_body();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn a_page_is_a_plain_list_or_drfs_envelope() {
        let products: Vec<Product> = (1..=3)
            .map(|id| Product {
                id,
                name: format!("P{id}"),
                ..Product::default()
            })
            .collect();
        let each: Vec<Value> = products
            .iter()
            .map(|product| {
                json!({
                    "id": product.id,
                    "name": product.name,
                    "description": "",
                    "price": "",
                    "quantity": 0,
                    "created_at": null,
                    "updated_at": null,
                })
            })
            .collect();
        assert_eq!(
            page_text(PageBody::Plain(gathered(&products))).await,
            serde_json::to_string(&each).unwrap()
        );
        assert_eq!(page_text(PageBody::Plain(Vec::new())).await, "[]");
        let envelope = PageBody::Envelope {
            count: 5,
            next: Some("http://testserver/api/products/?limit=3&offset=3".to_owned()),
            previous: None,
            results: gathered(&products),
        };
        let expected = json!({
            "count": 5,
            "next": "http://testserver/api/products/?limit=3&offset=3",
            "previous": null,
            "results": each,
        });
        assert_eq!(
            page_text(envelope).await,
            serde_json::to_string(&expected).unwrap()
        );
    }

    #[tokio::test]
    async fn a_reply_without_products_adds_nothing_to_the_page() {
        let memo = ReplyMemo::default();
        let empty = ListProductsResponse::default().encode_to_vec();
        let products = [Product::default(), Product::default()];
        let mut replies = gathered(&products);
        replies.insert(0, memo.of(&empty).unwrap());
        replies.push(memo.of(&empty).unwrap());
        let text = page_text(PageBody::Plain(replies)).await;
        let each: Vec<Value> = serde_json::from_str(&text).unwrap();
        assert_eq!(each.len(), 2);
    }
}
