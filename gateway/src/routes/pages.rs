//! Lists read in bounded batches. A service returns at most [`proto::MAX_PAGE_SIZE`] items a
//! call (fewer when they are large, so a reply stays under the message limit); a list route
//! reads on from where the last call ended until it has the page it was asked for or, when no
//! page was asked (seed 000's `/api/inventory/`), everything.

use std::future::Future;

use crate::{error::ApiError, extract::Paging};

/// What one call returned.
pub struct Batch<T> {
    pub items: Vec<T>,
    /// How many of the list's objects the items hold (one item may hold a whole reply's).
    pub count: u64,
    /// How many there are in all (0 when the call was not asked to count).
    pub total: u64,
    /// Whether objects follow this batch.
    pub more: bool,
}

/// The batches' items, in order, and how many objects there are in all (as the last call said).
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
}

/// Calls `call(offset, limit)` until `paging`'s page (or the whole list) is read.
pub async fn read_all<T, F, Fut>(paging: &Paging, mut call: F) -> Result<Page<T>, ApiError>
where
    F: FnMut(u64, u64) -> Fut,
    Fut: Future<Output = Result<Batch<T>, ApiError>>,
{
    let mut page = Page {
        items: Vec::new(),
        total: 0,
    };
    let (mut offset, mut read) = (paging.offset, 0u64);
    loop {
        let limit = paging
            .limit
            .map_or(proto::MAX_PAGE_SIZE, |wanted| wanted.saturating_sub(read))
            .min(proto::MAX_PAGE_SIZE);
        if limit == 0 {
            break;
        }
        let batch = call(offset, limit).await?;
        page.total = batch.total;
        if batch.count == 0 {
            break;
        }
        offset = offset.saturating_add(batch.count);
        read += batch.count;
        page.items.extend(batch.items);
        if !batch.more {
            break;
        }
    }
    Ok(page)
}
