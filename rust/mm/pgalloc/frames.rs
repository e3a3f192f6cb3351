//! The frames the page tables hold when they come out of the zone's memory (the state of
//! [`crate::mm::pgalloc`], kept apart from its functions on the kernel).

use std::collections::BTreeMap;

/// The frames the page tables of each process hold (by pid), in the order they were taken.
#[derive(Clone, Debug, Default)]
pub struct PgtablePages {
    pub(crate) frames: BTreeMap<u32, Vec<u32>>,
}

impl PgtablePages {
    /// Frames the tables of every process hold (`NR_PAGETABLE` of the tables the faults made).
    pub fn nr_pages(&self) -> u64 {
        self.frames.values().map(|v| v.len() as u64).sum()
    }
}
