//! Bounded caches: an LRU whose budget is a total weight (bytes, roughly) rather than a count.

use lru::LruCache;
use std::hash::Hash;

/// An LRU cache holding at most `budget` units of weight; entries heavier than the budget
/// are not kept at all.
pub(crate) struct WeightedLru<K: Hash + Eq, V: Clone> {
    map: LruCache<K, (V, usize)>,
    weight: usize,
    budget: usize,
}

impl<K: Hash + Eq, V: Clone> WeightedLru<K, V> {
    /// An empty cache of `budget` units.
    pub(crate) fn new(budget: usize) -> Self {
        WeightedLru {
            map: LruCache::unbounded(),
            weight: 0,
            budget,
        }
    }

    /// The value for `key`, marked as recently used.
    pub(crate) fn get(&mut self, key: &K) -> Option<V> {
        self.map.get(key).map(|(v, _)| v.clone())
    }

    /// Whether `key` is cached (without touching its recency).
    pub(crate) fn contains(&self, key: &K) -> bool {
        self.map.contains(key)
    }

    /// Inserts `value` weighing `weight`, evicting the least recently used entries as needed.
    pub(crate) fn insert(&mut self, key: K, value: V, weight: usize) {
        if let Some((_, old)) = self.map.pop(&key) {
            self.weight -= old;
        }
        if weight > self.budget {
            return;
        }
        while self.weight + weight > self.budget {
            match self.map.pop_lru() {
                Some((_, (_, w))) => self.weight -= w,
                None => break,
            }
        }
        self.weight += weight;
        self.map.put(key, (value, weight));
    }

    /// The total weight held.
    #[cfg(test)]
    pub(crate) fn weight(&self) -> usize {
        self.weight
    }

    /// The number of entries.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recently_used_by_weight() {
        let mut c = WeightedLru::new(10);
        c.insert(1, "a", 4);
        c.insert(2, "b", 4);
        assert_eq!(c.get(&1), Some("a"));
        c.insert(3, "c", 4);
        // 2 was the least recently used.
        assert_eq!(c.get(&2), None);
        assert_eq!(c.get(&1), Some("a"));
        assert_eq!(c.weight(), 8);
        c.insert(4, "too heavy", 11);
        assert_eq!(c.get(&4), None);
        c.insert(1, "a2", 2);
        assert_eq!(c.weight(), 6);
        assert_eq!(c.len(), 2);
        assert!(c.contains(&3));
    }
}
