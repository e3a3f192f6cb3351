//! The migration source: precopy iterations with KVM dirty logging, the s390 storage
//! attributes (CMMA) in migration mode, the switch to postcopy (discard of dirty pages), and
//! the postcopy background stream with page requests served first (`get_queued_page`).

use super::Msg;
use crate::kernel::Kernel;
use crate::sim::bitmap::Bitmap;
use crate::sim::log::Ev;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// The thread id of QEMU's migration thread (it reads guest RAM to send it).
pub const TID_MIGRATION: u32 = 1000;

/// Where the source is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SrcPhase {
    Precopy { iteration: u32 },
    Postcopy,
    Done,
}

/// What one step of the source produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SrcStep {
    /// Messages to put on the stream.
    Send(Vec<Msg>),
    /// Precopy is over: switch to postcopy.
    Switchover,
    /// Nothing to do until a page request arrives.
    Idle,
}

/// Counters of the source.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SourceStats {
    pub precopy_pages: u64,
    pub postcopy_pages: u64,
    pub zero_pages: u64,
    pub iterations: u32,
    pub requests: u64,
    pub requests_not_dirty: u64,
}

/// QEMU on the source host.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct QemuSource {
    pub pid: u32,
    pub ram_base: u64,
    pub pages: u64,
    /// The migration bitmap: pages still to send.
    pub dirty: Bitmap,
    pub phase: SrcPhase,
    cursor: u64,
    pub requests: VecDeque<u32>,
    /// Precopy passes before postcopy starts.
    pub max_iterations: u32,
    /// Start postcopy early when no more than this many pages are dirty after a pass.
    pub stop_dirty_pages: u64,
    pub stats: SourceStats,
}

impl QemuSource {
    pub fn new(pid: u32, ram_base: u64, pages: u64, max_iterations: u32) -> QemuSource {
        let mut dirty = Bitmap::new(pages);
        dirty.set_all();
        QemuSource {
            pid,
            ram_base,
            pages,
            dirty,
            phase: SrcPhase::Precopy { iteration: 0 },
            cursor: 0,
            requests: VecDeque::new(),
            max_iterations: max_iterations.max(1),
            stop_dirty_pages: 0,
            stats: SourceStats::default(),
        }
    }

    fn hva(&self, gfn: u32) -> u64 {
        self.ram_base + ((gfn as u64) << 12)
    }

    /// `cmma_save_setup` + `kvm_s390_vm_start_migration`: migration mode on (every ESSA is
    /// intercepted and marks its page CMMA-dirty), and the storage attributes of every page
    /// go out first.
    pub fn setup(&mut self, k: &mut Kernel) -> Vec<Msg> {
        k.kvm_migration_mode = true;
        // ram_init_bitmaps: dirty logging starts with a sync, so what the guest dirtied before
        // the migration does not count twice (every page is to be sent anyway)
        k.sync_dirty_log(self.pid, self.ram_base, &mut self.dirty);
        let pages = (0..self.pages as u32).map(|g| (g, k.get_cmma_bits(self.pid, self.hva(g)).unwrap_or(0))).collect();
        k.log(Ev::MigrationPhase, self.pid, 0, 0, crate::sim::log::phase::PRECOPY, 0, 0);
        vec![Msg::Cmma { pages: Box::new(pages) }]
    }

    /// The CMMA bits of pages whose state changed since the last send (`cmma_save_iterate`).
    fn cmma_dirty(&mut self, k: &mut Kernel) -> Option<Msg> {
        let pid = self.pid;
        let dirty: Vec<u64> = k.cmma_dirty.iter().filter(|(p, _)| *p == pid).map(|(_, a)| *a).collect();
        if dirty.is_empty() {
            return None;
        }
        let mut pages = super::CmmaPages::default();
        for a in dirty {
            k.cmma_dirty.remove(&(pid, a));
            let gfn = ((a - self.ram_base) >> 12) as u32;
            pages.push(gfn, k.get_cmma_bits(pid, a).unwrap_or(0));
        }
        Some(Msg::Cmma { pages: Box::new(pages) })
    }

    /// `ram_save_target_page`: read the page (the migration thread's access may fault on the
    /// source) and frame it as a page or a zero page.
    fn save_page(&mut self, k: &mut Kernel, gfn: u32, iteration: u64) -> Msg {
        let value = match k.access(self.pid, TID_MIGRATION, self.hva(gfn), false, 0) {
            Ok(crate::fault::Access::Done { value }) => value,
            _ => 0,
        };
        let zero = value == 0;
        if zero {
            self.stats.zero_pages += 1;
        }
        k.log(Ev::PrecopySend, self.pid, TID_MIGRATION, self.hva(gfn), gfn as u64, iteration, 0);
        Msg::Page { gfn, value, zero }
    }

    /// One step: the next page of the current pass (precopy) or the next requested / remaining
    /// page (postcopy).
    pub fn step(&mut self, k: &mut Kernel) -> SrcStep {
        match self.phase {
            SrcPhase::Precopy { iteration } => {
                if let Some(g) = self.dirty.next_set(self.cursor) {
                    self.cursor = g + 1;
                    self.dirty.clear(g);
                    self.stats.precopy_pages += 1;
                    return SrcStep::Send(vec![self.save_page(k, g as u32, iteration as u64)]);
                }
                // end of a pass: migration_bitmap_sync
                let it = iteration + 1;
                self.stats.iterations = it;
                k.sync_dirty_log(self.pid, self.ram_base, &mut self.dirty);
                let cmma = self.cmma_dirty(k);
                if it >= self.max_iterations || self.dirty.count() <= self.stop_dirty_pages {
                    return SrcStep::Switchover;
                }
                self.phase = SrcPhase::Precopy { iteration: it };
                self.cursor = 0;
                SrcStep::Send(cmma.into_iter().collect())
            }
            SrcPhase::Postcopy => {
                while let Some(g) = self.requests.pop_front() {
                    if self.dirty.clear(g as u64) {
                        self.stats.postcopy_pages += 1;
                        return SrcStep::Send(vec![self.save_page(k, g, u64::MAX)]);
                    }
                    // "Skips pages that are already sent (!dirty)"
                    self.stats.requests_not_dirty += 1;
                    k.log(Ev::GetQueuedPageNotDirty, self.pid, TID_MIGRATION, self.hva(g), g as u64, 0, 0);
                }
                let next = self.dirty.next_set(self.cursor).or_else(|| self.dirty.next_set(0));
                if let Some(g) = next {
                    self.cursor = g + 1;
                    self.dirty.clear(g);
                    self.stats.postcopy_pages += 1;
                    return SrcStep::Send(vec![self.save_page(k, g as u32, u64::MAX)]);
                }
                self.phase = SrcPhase::Done;
                SrcStep::Send(vec![Msg::Eof])
            }
            SrcPhase::Done => SrcStep::Idle,
        }
    }

    /// `postcopy_start`, with the guest stopped: the last dirty sync; the final data of the
    /// iterative devices that cannot postcopy (the storage attributes, then STATTR_FLAG_DONE);
    /// the discard of every page not yet sent or dirtied since (`postcopy_discard_send_range`);
    /// then LISTEN and RUN. Each message goes to `send` in order, with the number of messages
    /// still to come after it (a large guest has tens of millions of discard ranges: they are
    /// never collected).
    pub fn switchover(&mut self, k: &mut Kernel, send: &mut dyn FnMut(Msg, usize)) {
        k.sync_dirty_log(self.pid, self.ram_base, &mut self.dirty);
        let cmma = self.cmma_dirty(k);
        let discards = self.dirty.runs_iter().count();
        let mut left = cmma.is_some() as usize + 1 + discards + 2;
        let mut out = |m: Msg| {
            left -= 1;
            send(m, left);
        };
        if let Some(m) = cmma {
            out(m);
        }
        out(Msg::CmmaDone);
        for (s, l) in self.dirty.runs_iter() {
            out(Msg::Discard { start: s as u32, len: l as u32 });
        }
        out(Msg::Listen);
        out(Msg::Run);
        self.phase = SrcPhase::Postcopy;
        self.cursor = 0;
        k.log(Ev::MigrationPhase, self.pid, 0, 0, crate::sim::log::phase::POSTCOPY, self.dirty.count(), 0);
    }

    /// A page request arrived on the return path (`ram_save_queue_pages`).
    pub fn queue_request(&mut self, gfn: u32) {
        self.stats.requests += 1;
        self.requests.push_back(gfn);
    }
}
