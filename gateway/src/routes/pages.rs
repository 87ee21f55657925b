//! Lists read in bounded pages. A service returns at most [`proto::MAX_PAGE_SIZE`] items a call
//! (fewer when they are large, so a reply stays under the message limit); a list route reads on
//! from where the last call ended until it has the page it was asked for or, when no page was
//! asked (seed 000's `/api/inventory/`), everything.

use std::future::Future;

use crate::{error::ApiError, extract::Paging};

/// The items read, and how many there are in all (as the last call said).
pub struct Listed<T> {
    pub items: Vec<T>,
    pub total: u64,
}

/// What one call returned.
pub struct Chunk<T> {
    pub items: Vec<T>,
    /// How many there are in all (0 when the call was not asked to count).
    pub total: u64,
    /// Whether items follow this chunk.
    pub more: bool,
}

/// Calls `page(offset, limit)` until `paging`'s page (or the whole list) is read.
pub async fn read_all<T, F, Fut>(paging: &Paging, mut page: F) -> Result<Listed<T>, ApiError>
where
    F: FnMut(u64, u64) -> Fut,
    Fut: Future<Output = Result<Chunk<T>, ApiError>>,
{
    let mut listed = Listed {
        items: Vec::new(),
        total: 0,
    };
    let mut offset = paging.offset;
    loop {
        let read = listed.items.len() as u64;
        let limit = paging
            .limit
            .map_or(proto::MAX_PAGE_SIZE, |wanted| wanted.saturating_sub(read))
            .min(proto::MAX_PAGE_SIZE);
        if limit == 0 {
            break;
        }
        let chunk = page(offset, limit).await?;
        listed.total = chunk.total;
        if chunk.items.is_empty() {
            break;
        }
        offset = offset.saturating_add(chunk.items.len() as u64);
        listed.items.extend(chunk.items);
        if !chunk.more {
            break;
        }
    }
    Ok(listed)
}
