//! Lists read in bounded pages. A service returns at most [`proto::MAX_PAGE_SIZE`] items a call
//! (fewer when they are large, so a reply stays under the message limit); a list route reads on
//! from where the last call ended until it has the page it was asked for or, when no page was
//! asked (seed 000's `/api/inventory/`), everything.

use std::future::Future;

use crate::{error::ApiError, extract::Paging};

/// What a list route gathers from its calls, one call's items at a time.
pub trait Items: Default {
    fn count(&self) -> usize;
    /// Adds the items of the call after the last one added.
    fn push_chunk(&mut self, next: Self);
}

impl<T> Items for Vec<T> {
    fn count(&self) -> usize {
        self.len()
    }

    fn push_chunk(&mut self, next: Self) {
        self.extend(next);
    }
}

/// The items read, and how many there are in all (as the last call said).
pub struct Listed<C> {
    pub items: C,
    pub total: u64,
}

/// What one call returned.
pub struct Chunk<C> {
    pub items: C,
    /// How many there are in all (0 when the call was not asked to count).
    pub total: u64,
    /// Whether items follow this chunk.
    pub more: bool,
}

/// Calls `page(offset, limit)` until `paging`'s page (or the whole list) is read.
pub async fn read_all<C, F, Fut>(paging: &Paging, mut page: F) -> Result<Listed<C>, ApiError>
where
    C: Items,
    F: FnMut(u64, u64) -> Fut,
    Fut: Future<Output = Result<Chunk<C>, ApiError>>,
{
    let mut listed = Listed {
        items: C::default(),
        total: 0,
    };
    let mut offset = paging.offset;
    loop {
        let read = listed.items.count() as u64;
        let limit = paging
            .limit
            .map_or(proto::MAX_PAGE_SIZE, |wanted| wanted.saturating_sub(read))
            .min(proto::MAX_PAGE_SIZE);
        if limit == 0 {
            break;
        }
        let chunk = page(offset, limit).await?;
        listed.total = chunk.total;
        let count = chunk.items.count();
        if count == 0 {
            break;
        }
        offset = offset.saturating_add(count as u64);
        listed.items.push_chunk(chunk.items);
        if !chunk.more {
            break;
        }
    }
    Ok(listed)
}
