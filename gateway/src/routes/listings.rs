//! The product list routes' JSON, written once per distinct `ListProducts` reply and remembered
//! by that reply's bytes. Decoding a page and writing its JSON were two fifths of the gateway's
//! instructions per listed page (BENCHMARKS.md); a list nobody changed comes back as the same
//! bytes, so its JSON is looked up instead. Nothing is served without asking inventory: each
//! request still makes its call (which checks the caller), and the JSON is a function of the
//! reply alone, so what is remembered can never be stale.

use std::{
    collections::VecDeque,
    sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard},
};

use prost::{Message, bytes::Bytes};
use proto::inventory::v1::ListProductsResponse;

use super::{pages::Items, shapes};
use crate::error::ApiError;

/// How many distinct replies are remembered; the oldest goes first.
const REMEMBERED_REPLIES: usize = 16;
/// Larger replies are written each time, so that what is remembered stays small: the bench's
/// page of 20 products is about 1.8 KB.
const MAX_REMEMBERED_REPLY_BYTES: usize = 32 * 1024;

/// One reply's products as JSON objects joined by commas, and what the paging needs.
#[derive(Debug)]
pub struct Listing {
    json: Vec<u8>,
    products: usize,
    pub total: u64,
    pub more: bool,
}

impl Listing {
    fn write(reply: &[u8]) -> Result<Self, ApiError> {
        let decoded = ListProductsResponse::decode(reply).map_err(|error| {
            ApiError::Internal(format!(
                "inventory's ListProducts reply did not decode: {error}"
            ))
        })?;
        Ok(Self {
            json: shapes::joined_products(&decoded.products),
            products: decoded.products.len(),
            total: decoded.total_count,
            more: decoded.more,
        })
    }
}

/// Replies as they came, newest first, with the listings written from them.
type Recent = VecDeque<(Bytes, Arc<Listing>)>;

/// The replies seen last, with their listings. Shared by every request: a lookup takes the
/// lock only to read, so requests on many threads look up at once.
#[derive(Debug, Default)]
pub struct Listings {
    recent: RwLock<Recent>,
}

impl Listings {
    /// The listing of `reply`: remembered if these bytes came before, else written now.
    pub fn of(&self, reply: &[u8]) -> Result<Arc<Listing>, ApiError> {
        if let Some(listing) = find(&self.read(), reply) {
            return Ok(listing);
        }
        let listing = Arc::new(Listing::write(reply)?);
        if reply.len() <= MAX_REMEMBERED_REPLY_BYTES {
            let mut recent = self.write();
            // Another request may have written the same reply meanwhile: keep one of them.
            if let Some(theirs) = find(&recent, reply) {
                return Ok(theirs);
            }
            // A copy: the reply shares tonic's receive buffer, which should not be kept.
            recent.push_front((Bytes::copy_from_slice(reply), listing.clone()));
            recent.truncate(REMEMBERED_REPLIES);
        }
        Ok(listing)
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

fn find(recent: &Recent, reply: &[u8]) -> Option<Arc<Listing>> {
    recent
        .iter()
        .find(|(seen, _)| seen.as_ref() == reply)
        .map(|(_, listing)| listing.clone())
}

/// The products of a page: the listings of the calls that read it, in order.
#[derive(Debug, Default)]
pub struct ProductList {
    listings: Vec<Arc<Listing>>,
    products: usize,
}

impl ProductList {
    /// The JSON of each non-empty part, to be joined by commas.
    pub fn json_parts(&self) -> impl Iterator<Item = &[u8]> {
        self.listings
            .iter()
            .filter(|listing| listing.products > 0)
            .map(|listing| listing.json.as_slice())
    }

    /// The parts' bytes, without the commas between them.
    pub fn json_len(&self) -> usize {
        self.listings.iter().map(|listing| listing.json.len()).sum()
    }

    pub fn part_count(&self) -> usize {
        self.listings.len()
    }
}

impl From<Arc<Listing>> for ProductList {
    fn from(listing: Arc<Listing>) -> Self {
        Self {
            products: listing.products,
            listings: vec![listing],
        }
    }
}

impl Items for ProductList {
    fn count(&self) -> usize {
        self.products
    }

    fn push_chunk(&mut self, next: Self) {
        self.products += next.products;
        self.listings.extend(next.listings);
    }
}

#[cfg(test)]
mod tests {
    use proto::inventory::v1::Product;

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
    fn the_same_bytes_give_the_listing_written_for_them() {
        let listings = Listings::default();
        let bytes = reply(&["a", "b"], 2, false);
        let first = listings.of(&bytes).unwrap();
        assert!(Arc::ptr_eq(&first, &listings.of(&bytes).unwrap()));
        assert_eq!(
            String::from_utf8(first.json.clone()).unwrap(),
            r#"{"id":1,"name":"a","description":"","price":"1.00","quantity":0,"created_at":null,"updated_at":null},{"id":2,"name":"b","description":"","price":"1.00","quantity":0,"created_at":null,"updated_at":null}"#
        );
        assert_eq!((first.products, first.total, first.more), (2, 2, false));

        // One byte changed (a name) is another reply, with its own JSON.
        let changed = listings.of(&reply(&["a", "c"], 2, false)).unwrap();
        assert!(!Arc::ptr_eq(&first, &changed));
        assert!(String::from_utf8_lossy(&changed.json).contains(r#""name":"c""#));
        let counted = listings.of(&reply(&["a", "b"], 3, true)).unwrap();
        assert_eq!((counted.total, counted.more), (3, true));
    }

    #[test]
    fn remembers_a_bounded_number_of_small_replies() {
        let listings = Listings::default();
        let replies: Vec<Vec<u8>> = (0..=REMEMBERED_REPLIES)
            .map(|i| reply(&[&format!("p{i}")], 1, false))
            .collect();
        let first = listings.of(&replies[0]).unwrap();
        for reply in &replies[1..] {
            listings.of(reply).unwrap();
        }
        assert_eq!(listings.read().len(), REMEMBERED_REPLIES);
        // The oldest went: its bytes are written afresh.
        assert!(!Arc::ptr_eq(&first, &listings.of(&replies[0]).unwrap()));

        let large = reply(&["x".repeat(MAX_REMEMBERED_REPLY_BYTES).as_str()], 1, false);
        let written = listings.of(&large).unwrap();
        assert!(!Arc::ptr_eq(&written, &listings.of(&large).unwrap()));
        assert!(
            listings
                .read()
                .iter()
                .all(|(seen, _)| seen.len() <= MAX_REMEMBERED_REPLY_BYTES)
        );
    }

    #[test]
    fn the_same_reply_written_at_once_on_many_threads_is_remembered_once() {
        let listings = Listings::default();
        let bytes = reply(&["a", "b", "c"], 3, false);
        let start = std::sync::Barrier::new(8);
        let written: Vec<Arc<Listing>> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..8)
                .map(|_| {
                    scope.spawn(|| {
                        start.wait();
                        listings.of(&bytes).unwrap()
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        });
        assert_eq!(listings.read().len(), 1);
        let kept = listings.of(&bytes).unwrap();
        assert!(written.iter().all(|listing| Arc::ptr_eq(listing, &kept)));
    }

    #[test]
    fn a_reply_that_does_not_decode_is_a_fault() {
        let listings = Listings::default();
        assert!(matches!(
            listings.of(&[0xff, 0xff, 0xff]),
            Err(ApiError::Internal(_))
        ));
        assert!(listings.read().is_empty());
    }

    #[test]
    fn a_list_counts_its_products_and_skips_empty_parts() {
        let listings = Listings::default();
        let mut list = ProductList::default();
        list.push_chunk(listings.of(&reply(&["a", "b"], 0, true)).unwrap().into());
        list.push_chunk(listings.of(&reply(&[], 0, true)).unwrap().into());
        list.push_chunk(listings.of(&reply(&["c"], 0, false)).unwrap().into());
        assert_eq!(list.count(), 3);
        assert_eq!(list.json_parts().count(), 2);
        assert_eq!(
            list.json_len(),
            list.json_parts().map(<[u8]>::len).sum::<usize>()
        );
    }
}
