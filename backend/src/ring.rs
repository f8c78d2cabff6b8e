//! A ring buffer of the newest `capacity` items, addressed by consecutive
//! sequence numbers.

use std::collections::VecDeque;

/// Items carry consecutive sequence numbers: the newest has the highest, and
/// every seq between the oldest kept and the newest is present, so lookups by
/// seq are O(1).
#[derive(Debug)]
pub struct RingBuffer<T> {
    items: VecDeque<T>,
    capacity: usize,
    /// Seq of `items[0]`; the next pushed item gets `first_seq + len`.
    first_seq: u64,
}

impl<T> RingBuffer<T> {
    /// An empty buffer whose first item will have seq 1.
    pub fn new(capacity: usize) -> Self {
        assert!(capacity > 0, "a ring buffer holds at least one item");
        Self { items: VecDeque::new(), capacity, first_seq: 1 }
    }

    /// An empty buffer whose first item will have seq `first_seq` (a room
    /// that moved here keeps its seqs).
    pub fn starting_at(capacity: usize, first_seq: u64) -> Self {
        Self { first_seq: first_seq.max(1), ..Self::new(capacity) }
    }

    /// Appends the item with the next seq; returns the item that fell out.
    pub fn push(&mut self, item: T) -> Option<T> {
        let evicted = if self.items.len() == self.capacity {
            self.first_seq += 1;
            self.items.pop_front()
        } else {
            None
        };
        self.items.push_back(item);
        evicted
    }

    /// Seq the next pushed item gets.
    pub fn next_seq(&self) -> u64 {
        self.first_seq + self.items.len() as u64
    }

    /// Seq of the newest item, or 0 when nothing was ever pushed.
    pub fn last_seq(&self) -> u64 {
        self.next_seq() - 1
    }

    /// Seq of the oldest item still kept (equals `next_seq` when empty).
    pub fn first_seq(&self) -> u64 {
        self.first_seq
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    fn index(&self, seq: u64) -> Option<usize> {
        let offset = seq.checked_sub(self.first_seq)?;
        (offset < self.items.len() as u64).then_some(offset as usize)
    }

    pub fn get(&self, seq: u64) -> Option<&T> {
        self.index(seq).map(|i| &self.items[i])
    }

    pub fn get_mut(&mut self, seq: u64) -> Option<&mut T> {
        self.index(seq).map(|i| &mut self.items[i])
    }

    /// Items with seq > `after`, oldest first.
    pub fn after(&self, after: u64) -> impl DoubleEndedIterator<Item = &T> + ExactSizeIterator {
        let skip = after.saturating_add(1).saturating_sub(self.first_seq);
        self.items.range(skip.min(self.items.len() as u64) as usize..)
    }

    /// Up to `limit` items with seq < `before`, oldest first, and whether
    /// older items remain.
    pub fn before(&self, before: u64, limit: usize) -> (impl Iterator<Item = &T>, bool) {
        let end = before.saturating_sub(self.first_seq).min(self.items.len() as u64) as usize;
        let start = end.saturating_sub(limit);
        (self.items.range(start..end), start > 0)
    }

    /// Every item, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> + ExactSizeIterator {
        self.items.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(capacity: usize, n: u64) -> RingBuffer<u64> {
        let mut ring = RingBuffer::new(capacity);
        for seq in 1..=n {
            assert_eq!(ring.next_seq(), seq);
            ring.push(seq);
        }
        ring
    }

    #[test]
    fn keeps_the_newest() {
        let ring = filled(1000, 1005);
        assert_eq!(ring.len(), 1000);
        assert_eq!((ring.first_seq(), ring.last_seq()), (6, 1005));
        assert_eq!(ring.iter().next(), Some(&6));
        assert_eq!(ring.iter().last(), Some(&1005));
        assert!(ring.iter().copied().eq(6..=1005));
    }

    #[test]
    fn push_reports_eviction() {
        let mut ring = filled(2, 2);
        assert_eq!(ring.push(3), Some(1));
        assert_eq!(ring.push(4), Some(2));
        assert_eq!(ring.get(2), None);
        assert_eq!(ring.get(3), Some(&3));
    }

    #[test]
    fn lookup_by_seq() {
        let mut ring = filled(10, 25);
        assert_eq!(ring.get(15), None);
        assert_eq!(ring.get(16), Some(&16));
        assert_eq!(ring.get(25), Some(&25));
        assert_eq!(ring.get(26), None);
        assert_eq!(ring.get(0), None);
        *ring.get_mut(20).unwrap() = 200;
        assert_eq!(ring.get(20), Some(&200));
    }

    #[test]
    fn after_and_before() {
        let ring = filled(10, 25);
        assert!(ring.after(22).copied().eq([23, 24, 25]));
        assert!(ring.after(0).copied().eq(16..=25), "a gap gives what is kept");
        assert_eq!(ring.after(25).count(), 0);
        assert_eq!(ring.after(u64::MAX).count(), 0);

        let (items, more) = ring.before(20, 3);
        assert!(items.copied().eq([17, 18, 19]));
        assert!(more);
        let (items, more) = ring.before(18, 5);
        assert!(items.copied().eq([16, 17]));
        assert!(!more);
        let (items, more) = ring.before(u64::MAX, 2);
        assert!(items.copied().eq([24, 25]));
        assert!(more);
        let (items, _) = ring.before(3, 5);
        assert_eq!(items.count(), 0);
    }

    #[test]
    fn empty() {
        let ring: RingBuffer<u8> = RingBuffer::new(3);
        assert!(ring.is_empty());
        assert_eq!((ring.first_seq(), ring.last_seq(), ring.next_seq()), (1, 0, 1));
        assert_eq!(ring.after(0).count(), 0);
    }
}
