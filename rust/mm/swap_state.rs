//! The swap cache (mm/swap_state.c): the page caching each swap slot and the workingset
//! shadow an evicted page leaves in its slot. The slots themselves are [`crate::mm::swapfile`].

use crate::mm::swapfile::SwapDevice;

impl SwapDevice {
    /// The swap-cache page of a slot.
    #[inline]
    pub fn cache_page(&self, off: u32) -> Option<u32> {
        let c = self.cache[off as usize];
        if c == 0 { None } else { Some(c - 1) }
    }

    /// `add_to_swap_cache` / `__delete_from_swap_cache` bookkeeping.
    pub fn set_cache_page(&mut self, off: u32, pfn: Option<u32>) {
        self.cache[off as usize] = pfn.map_or(0, |p| p + 1);
    }

    pub fn set_shadow(&mut self, off: u32, age: u32) {
        self.shadow[off as usize] = age.wrapping_add(1).max(1);
    }

    /// Take the workingset shadow of a slot (`workingset_refault` consumes it).
    pub fn take_shadow(&mut self, off: u32) -> Option<u32> {
        let s = std::mem::take(&mut self.shadow[off as usize]);
        if s == 0 { None } else { Some(s - 1) }
    }
}
