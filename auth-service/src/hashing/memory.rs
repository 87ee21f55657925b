//! Argon2's working memory, kept between hashes.

use std::sync::{Mutex, PoisonError};

use argon2::Block;

/// Argon2's working memory (`ARGON2_MEMORY_KIB` for each hash), kept between hashes: at most
/// one buffer per hashing slot. Allocated afresh for every hash, it came from the allocator
/// each time: glibc kept what it got back in per-thread arenas, so auth grew to many times the
/// slots' worth (about 280 MiB in a login storm with 19 MiB hashes; BENCHMARKS.md), and any
/// allocator that gives the pages back pays their faults again on the next hash.
pub(super) struct WorkingMemory {
    blocks: usize,
    free: Mutex<Vec<Vec<Block>>>,
}

impl WorkingMemory {
    /// Buffers of `blocks` argon2 blocks; none is allocated before the first hash.
    pub(super) fn new(blocks: usize) -> Self {
        Self {
            blocks,
            free: Mutex::new(Vec::new()),
        }
    }

    /// How many buffers are kept now.
    #[cfg(test)]
    pub(super) fn kept(&self) -> usize {
        self.free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Runs `work`, then gives back every buffer it left (memory needed once, at start-up).
    pub(super) fn unkept<T>(memory: &Self, work: impl FnOnce() -> T) -> T {
        let result = work();
        memory.give_back();
        result
    }

    /// Gives back every buffer kept: after the hashes of start-up, so that a server nobody has
    /// logged in to yet holds none (one is `ARGON2_MEMORY_KIB`, 19 MiB by default, more than
    /// the rest of an idle auth).
    pub(super) fn give_back(&self) {
        self.free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    pub(super) fn with<T>(&self, work: impl FnOnce(&mut [Block]) -> T) -> T {
        let kept = self
            .free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let mut blocks = kept.unwrap_or_else(|| vec![Block::default(); self.blocks]);
        let result = work(&mut blocks);
        self.free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(blocks);
        result
    }
}
