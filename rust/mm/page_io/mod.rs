//! Swap writes and their completion (mm/page_io.c `swap_writepage` → `__swap_writepage`, the
//! bio's `end_swap_bio_write` → `folio_end_writeback` in mm/filemap.c →
//! `folio_rotate_reclaimable` in mm/swap.c; v4.13..v6.12 follow the same path, 4.x with
//! `end_page_writeback` / `rotate_reclaimable_page`).
//!
//! The swap device completes its writes in one of two ways, a named choice ([`SwapIo`]):
//!
//! - [`SwapIo::Synchronous`] (the default): the bio completes inside the submit, as a
//!   `SWP_SYNCHRONOUS_IO` device's does (`swap_writepage_bdev_sync`, 6.12: zram, brd). The
//!   page is clean and off writeback when `pageout` returns, and `shrink_folio_list` frees it
//!   in the same pass ("A synchronous write - probably a ramdisk. Go ahead and try to reclaim
//!   the folio."). Reads still go through the swap cache with readahead, as the model's
//!   `do_swap_page` does for every device.
//! - [`SwapIo::VirtioBlk`]: a virtio-blk disk, as the oracle's guests have (`swap_writepage_bdev_async`,
//!   6.12). `__swap_writepage` sets PG_writeback (`folio_start_writeback`), counts PSWPOUT and
//!   queues the bio; the page stays in the swap cache, clean, under writeback, with the
//!   PG_reclaim that `pageout` set, and `shrink_folio_list` puts it back ("if
//!   (folio_test_writeback(folio)) goto keep;"). Completion (`Kernel::folio_end_writeback`)
//!   clears PG_writeback and, for a PG_reclaim page, moves it to the inactive tail (with
//!   MGLRU: the tail of the oldest generation) (PGROTATED), where the next reclaim pass frees
//!   it. A fault on it in the meantime finds it in the swap cache (a minor fault). MGLRU's
//!   eviction meets such pages as the profile's release does
//!   (`Profile::lru_gen_writeback_reactivates`, `vmscan/lru_gen.rs`).
//!
//! **The completion model of the virtio-blk device** (deterministic; the model has no device
//! time): the queue is FIFO and the device completes every queued write, in order, whenever
//! the CPU would otherwise wait for it: when the process sleeps on a swap read
//! (`Kernel::io_schedule`: the read is queued behind the writes, and QEMU's virtio-blk
//! completes the guest's requests in the order they were queued for one virtqueue on one
//! host thread; the writes complete before kswapd runs in that sleep), when reclaim waits in
//! `reclaim_throttle` (VMSCAN_THROTTLE_WRITEBACK, or NOPROGRESS for direct reclaim when it
//! sleeps: `Kernel::reclaim_throttle_noprogress`), when a
//! task waits on one page's writeback (`folio_wait_writeback`), when the queue is full
//! ([`VIRTIO_BLK_QUEUE_DEPTH`] requests: `blk_mq_get_tag` sleeps for a free tag), and, for a
//! lone kernel whose kswapd runs as if on another CPU, when an operation finishes
//! (`Kernel::settle`: the API's steps are far apart in time). On one CPU
//! (`KswapdMode::OneCpu`, the oracle's guests) writes do not complete while the CPU runs the
//! process or kswapd (no interrupt between two accesses): on TCG guests a request takes
//! longer than the guest's access, so this is the late end of the range, not a measurement.
//!
//! Not modelled: the per-CPU `lru_move_tail` batch (the rotation is applied at completion,
//! as `lru_add_drain` at the start of every `shrink_inactive_list` would make it visible to
//! reclaim); write errors; SWP_STABLE_WRITES (virtio-blk without integrity does not set it).
//!
//! This module holds the device's state; the functions on the kernel are in `writeback.rs`.

use crate::named::Named;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

mod writeback;
/// Requests the virtio-blk device holds before a submitter waits for a tag (QEMU's
/// virtio-blk `queue-size` default, 256, which `virtblk_probe` takes as the tag set's
/// `queue_depth`).
pub const VIRTIO_BLK_QUEUE_DEPTH: usize = 256;

/// How the swap device completes its writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SwapIo {
    /// `SWP_SYNCHRONOUS_IO` (zram, brd): the bio completes inside the submit.
    #[default]
    Synchronous,
    /// virtio-blk: writes complete in order when the CPU waits (see the module doc).
    VirtioBlk,
}

impl Named for SwapIo {
    const NAMES: &'static [(SwapIo, &'static str)] =
        &[(SwapIo::Synchronous, "synchronous"), (SwapIo::VirtioBlk, "virtio-blk")];
    const SETTING: &'static str = "the swap device";
}

/// The swap device's writes in flight.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SwapWriteback {
    pub(crate) io: SwapIo,
    /// The pages under writeback (PG_writeback), in submission order.
    pub(crate) queue: VecDeque<u32>,
}
