//! The sum-tree of prioritized replay: priorities at the leaves, prefix-sum search.

/// A sum-tree over `size` leaves (a power of two): `nodes[1]` is the total, leaf `i` is
/// `nodes[size + i]`.
#[derive(Clone, Debug)]
pub(super) struct SumTree {
    pub(super) size: usize,
    pub(super) nodes: Vec<f64>,
}

impl SumTree {
    pub(super) fn new(capacity: usize) -> Self {
        let size = capacity.next_power_of_two();
        SumTree { size, nodes: vec![0.0; 2 * size] }
    }

    pub(super) fn set(&mut self, i: usize, value: f64) {
        let mut n = self.size + i;
        self.nodes[n] = value;
        while n > 1 {
            n /= 2;
            self.nodes[n] = self.nodes[2 * n] + self.nodes[2 * n + 1];
        }
    }

    pub(super) fn get(&self, i: usize) -> f64 {
        self.nodes[self.size + i]
    }

    pub(super) fn total(&self) -> f64 {
        self.nodes[1]
    }

    /// The leaf where the prefix sum passes `u` (`0 ≤ u < total`), skipping empty leaves.
    pub(super) fn find(&self, mut u: f64) -> usize {
        let mut n = 1;
        while n < self.size {
            let left = self.nodes[2 * n];
            if u < left || self.nodes[2 * n + 1] <= 0.0 {
                n *= 2;
            } else {
                u -= left;
                n = 2 * n + 1;
            }
        }
        n - self.size
    }
}
