//! The connection slots: which client holds each open connection, the caps on all of them
//! ([`Limits::max_connections`]) and on each client address's
//! ([`Limits::max_connections_per_client`]), and which idle connection gives its slot up when a
//! new one would pass a cap.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex, MutexGuard},
};

use super::{Limits, activity::Activity};

/// Why a new connection gets no slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Full {
    /// Every slot is taken, and no connection is idle.
    Gateway,
    /// The client's address holds its whole share, and none of its connections is idle.
    Client,
}

/// Every open connection's slot.
#[derive(Debug)]
pub(super) struct Slots {
    max_connections: usize,
    max_per_client: usize,
    held: Mutex<Held>,
}

/// The connections holding a slot; an evicted one leaves at once, before it has closed.
#[derive(Debug, Default)]
struct Held {
    next_id: u64,
    connections: HashMap<u64, Holder>,
    /// How many of `connections` each address holds; an address holding none is not listed.
    per_client: HashMap<IpAddr, usize>,
}

#[derive(Debug)]
struct Holder {
    client: IpAddr,
    activity: Arc<Activity>,
}

/// One connection's place; dropping it (when the connection ends) frees it, unless it was
/// already given to another.
#[derive(Debug)]
pub(super) struct Slot {
    slots: Arc<Slots>,
    id: u64,
}

impl Slots {
    pub(super) fn new(limits: Limits) -> Self {
        Self {
            max_connections: limits.max_connections as usize,
            max_per_client: limits.max_connections_per_client as usize,
            held: Mutex::default(),
        }
    }

    fn held(&self) -> MutexGuard<'_, Held> {
        self.held
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A slot for a new connection from `client`. A client at its share evicts its own idlest
    /// connection, and one that would pass the global cap evicts the idlest of all; a
    /// connection whose request is arriving or being answered is never evicted, so when none
    /// is idle the new one is refused.
    pub(super) fn claim(
        self: &Arc<Self>,
        client: IpAddr,
        activity: Arc<Activity>,
    ) -> Result<Slot, Full> {
        let mut held = self.held();
        let holds = held.per_client.get(&client).copied().unwrap_or(0);
        if holds >= self.max_per_client && !held.evict_idlest(|holder| holder.client == client) {
            return Err(Full::Client);
        }
        if held.connections.len() >= self.max_connections && !held.evict_idlest(|_| true) {
            return Err(Full::Gateway);
        }
        let id = held.next_id;
        held.next_id += 1;
        held.connections.insert(id, Holder { client, activity });
        *held.per_client.entry(client).or_default() += 1;
        Ok(Slot {
            slots: self.clone(),
            id,
        })
    }
}

impl Held {
    /// Evicts the connection idle the longest among those `eligible`, if any is idle: it is
    /// told to close and its slot is free at once. A scan of every connection, but only when a
    /// cap is reached.
    fn evict_idlest(&mut self, eligible: impl Fn(&Holder) -> bool) -> bool {
        let mut idle: Vec<_> = self
            .connections
            .iter()
            .filter(|(_, holder)| eligible(holder))
            .filter_map(|(id, holder)| Some((holder.activity.idle_since()?, *id)))
            .collect();
        idle.sort_unstable();
        // One whose request began since it was looked at is skipped for the next.
        let evicted = idle
            .into_iter()
            .find(|(_, id)| self.connections[id].activity.evict_if_idle());
        match evicted {
            Some((_, id)) => {
                self.release(id);
                true
            }
            None => false,
        }
    }

    fn release(&mut self, id: u64) {
        let Some(holder) = self.connections.remove(&id) else {
            return;
        };
        if let Some(count) = self.per_client.get_mut(&holder.client) {
            *count -= 1;
            if *count == 0 {
                self.per_client.remove(&holder.client);
            }
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots.held().release(self.id);
    }
}

#[cfg(test)]
mod tests {
    use std::{net::Ipv4Addr, time::Duration};

    use super::*;

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
    const C: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 3));

    fn slots(max_connections: u32, max_connections_per_client: u32) -> Arc<Slots> {
        Arc::new(Slots::new(Limits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections,
            max_connections_per_client,
        }))
    }

    /// A new connection, its head still to come.
    fn fresh() -> Arc<Activity> {
        Arc::new(Activity::new(Limits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 1,
            max_connections_per_client: 1,
        }))
    }

    #[test]
    fn a_client_at_its_share_makes_room_only_from_its_own_idle_connections() {
        let slots = slots(3, 1);
        let a = fresh();
        let _a = slots.claim(A, a.clone()).unwrap();
        let b = fresh();
        let _b = slots.claim(B, b.clone()).unwrap();
        b.answered();
        // A's only connection is not idle; B's idle one is not A's to take.
        assert_eq!(slots.claim(A, fresh()).unwrap_err(), Full::Client);
        assert!(!b.is_evicted_and_idle());
        a.answered();
        let _again = slots.claim(A, fresh()).unwrap();
        assert!(a.is_evicted_and_idle());
    }

    #[test]
    fn an_evicted_connection_frees_its_slot_once() {
        let slots = slots(2, 2);
        let (first, second) = (fresh(), fresh());
        let first_slot = slots.claim(A, first.clone()).unwrap();
        let _second = slots.claim(A, second.clone()).unwrap();
        second.answered();
        // Apart by more than the clock's resolution.
        std::thread::sleep(Duration::from_millis(1));
        first.answered();
        // The idlest is the one idle the longest, `second`, not the oldest.
        let _third = slots.claim(B, fresh()).unwrap();
        assert!(second.is_evicted_and_idle());
        assert!(!first.is_evicted_and_idle());
        // `first` ending frees its own slot, and only it.
        drop(first_slot);
        let _fourth = slots.claim(B, fresh()).unwrap();
        assert_eq!(slots.claim(C, fresh()).unwrap_err(), Full::Gateway);
        assert_eq!(slots.held().per_client.get(&A), None);
        assert_eq!(slots.held().per_client.get(&B), Some(&2));
    }
}
