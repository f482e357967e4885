//! A bounded cache of unwrapped data keys, for a KEK held by a token: a token call costs
//! far more than the AES it replaces, and an agent opens the same few customers all day.
//!
//! Bounded in size (the oldest entry leaves first) and in time (an entry older than the
//! time limit is never served, and is dropped when met). An entry is served only for the
//! exact wrapped key it was unwrapped from, so a re-wrapped or erased customer never gets
//! a stale key. Keys are held as `Zeroizing` bytes, wiped when dropped: on eviction, on
//! expiry, on [`DataKeyCache::forget`], and with the cache. The cache knows only bytes, not
//! the keyring's types, so the keyring depends on it and not the other way round.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

/// An unwrapped data key's bytes.
pub(crate) type KeyBytes = Zeroizing<[u8; 32]>;

struct Entry {
    wrapped: Vec<u8>,
    key: KeyBytes,
    at: Instant,
}

#[derive(Default)]
struct Entries {
    by_customer: HashMap<String, Entry>,
    /// Customers in insertion order, with the insertion time that identifies the entry
    /// (a customer re-inserted later has a newer time; the stale position is skipped).
    order: VecDeque<(String, Instant)>,
}

/// Unwrapped data keys, at most `capacity` of them, none older than `ttl`.
pub(crate) struct DataKeyCache {
    capacity: usize,
    ttl: Duration,
    entries: Mutex<Entries>,
}

impl DataKeyCache {
    pub(crate) fn new(capacity: usize, ttl: Duration) -> DataKeyCache {
        DataKeyCache {
            capacity,
            ttl,
            entries: Mutex::new(Entries::default()),
        }
    }

    /// The key cached for `customer_id` if it was unwrapped from `wrapped` within the
    /// time limit.
    pub(crate) fn get(&self, customer_id: &str, wrapped: &[u8]) -> Option<KeyBytes> {
        let mut entries = self.entries.lock().ok()?;
        let entry = entries.by_customer.get(customer_id)?;
        if entry.at.elapsed() > self.ttl {
            entries.by_customer.remove(customer_id);
            return None;
        }
        crate::constant_time_eq(&entry.wrapped, wrapped).then(|| entry.key.clone())
    }

    /// Keeps `key` for `customer_id`, evicting the oldest entries beyond the capacity.
    pub(crate) fn insert(&self, customer_id: &str, wrapped: &[u8], key: &KeyBytes) {
        if self.capacity == 0 {
            return;
        }
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        let at = Instant::now();
        entries.by_customer.insert(
            customer_id.to_owned(),
            Entry {
                wrapped: wrapped.to_vec(),
                key: key.clone(),
                at,
            },
        );
        entries.order.push_back((customer_id.to_owned(), at));
        while entries.by_customer.len() > self.capacity
            || entries.order.len() > self.capacity.saturating_mul(2)
        {
            let Some((oldest, inserted)) = entries.order.pop_front() else {
                break;
            };
            if entries
                .by_customer
                .get(&oldest)
                .is_some_and(|entry| entry.at == inserted)
            {
                entries.by_customer.remove(&oldest);
            }
        }
    }

    /// Drops (and so wipes) the key cached for `customer_id`.
    pub(crate) fn forget(&self, customer_id: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.by_customer.remove(customer_id);
        }
    }

    /// How many keys are held now.
    pub(crate) fn len(&self) -> usize {
        self.entries.lock().map_or(0, |e| e.by_customer.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> KeyBytes {
        Zeroizing::new([byte; 32])
    }

    #[test]
    fn serves_only_the_same_wrapped_key_within_the_limits() {
        let cache = DataKeyCache::new(2, Duration::from_secs(60));
        cache.insert("a", b"wa", &key(1));
        assert!(cache.get("a", b"wa").is_some());
        assert!(cache.get("a", b"other").is_none(), "a re-wrapped key");
        assert!(cache.get("b", b"wa").is_none());
        cache.insert("b", b"wb", &key(2));
        cache.insert("c", b"wc", &key(3));
        assert_eq!(cache.len(), 2);
        assert!(cache.get("a", b"wa").is_none(), "the oldest left first");
        assert!(cache.get("c", b"wc").is_some());
        cache.forget("c");
        assert!(cache.get("c", b"wc").is_none());
    }

    #[test]
    fn a_reinserted_customer_is_not_evicted_by_its_old_position() {
        let cache = DataKeyCache::new(2, Duration::from_secs(60));
        cache.insert("a", b"w1", &key(1));
        cache.insert("b", b"wb", &key(2));
        cache.insert("a", b"w2", &key(1));
        cache.insert("c", b"wc", &key(3));
        // "b" is now the oldest live entry; "a" was refreshed.
        assert!(cache.get("a", b"w2").is_some());
        assert!(cache.get("b", b"wb").is_none());
        assert!(cache.len() <= 2);
    }

    #[test]
    fn expired_entries_are_not_served() {
        let cache = DataKeyCache::new(4, Duration::ZERO);
        cache.insert("a", b"wa", &key(1));
        std::thread::sleep(Duration::from_millis(2));
        assert!(cache.get("a", b"wa").is_none());
        assert_eq!(cache.len(), 0);
        let off = DataKeyCache::new(0, Duration::from_secs(60));
        off.insert("a", b"wa", &key(1));
        assert_eq!(off.len(), 0);
    }
}
