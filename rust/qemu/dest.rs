//! The migration destination: loading precopy pages, the postcopy discard, LISTEN
//! (userfaultfd registration of guest RAM), placing pages with UFFDIO_COPY / UFFDIO_ZEROPAGE and
//! the received bitmap, the fault thread turning userfaults into page requests, and the cleanup
//! at the end (UFFDIO_UNREGISTER, which wakes every waiter).

use super::{Msg, QemuVersion};
use crate::error::Errno;
use crate::fault::Access;
use crate::kernel::Kernel;
use crate::mm::madvise::Advice;
use crate::profile::fixes::CmmaApply;
use crate::sim::bitmap::Bitmap;
use crate::sim::log::Ev;
use crate::uffd::UffdMsg;
use crate::uffd::ioctl::{UFFD_API, UFFDIO_REGISTER_MODE_MISSING};
use serde::{Deserialize, Serialize};

/// The thread id of QEMU's load / listen thread on the destination.
pub const TID_LISTEN: u32 = 1001;

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DstPhase {
    Precopy,
    Postcopy,
    Done,
    Failed(String),
}

/// What delivering a message did that the world must react to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivered {
    Nothing,
    /// The guest starts running here.
    Run,
    /// The migration is complete (cleanup done).
    Completed,
    /// The incoming migration failed.
    Failed(String),
}

/// A userfault the fault thread read for a page the destination had already received.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ReceivedFault {
    pub t: u64,
    pub gfn: u32,
    pub tid: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DestStats {
    pub precopy_loaded: u64,
    pub placed: u64,
    pub placed_zero: u64,
    pub requests_sent: u64,
    pub requests_suppressed: u64,
    pub userfaults: u64,
    pub received_faults: Vec<ReceivedFault>,
}

/// QEMU on the destination host.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct QemuDest {
    pub pid: u32,
    pub ram_base: u64,
    pub pages: u64,
    pub version: QemuVersion,
    /// `rb->receivedmap`.
    pub received: Bitmap,
    /// The storage attributes received and not yet applied (`sas->incoming_buffer`).
    pub cmma_incoming: super::CmmaPages,
    /// Pages with a request in flight (QEMU 5.2+ `page_requested`).
    pub requested: Bitmap,
    pub uffd: Option<u32>,
    pub phase: DstPhase,
    pub stats: DestStats,
}

/// What the destination's fault thread does with a userfault on a guest page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageRequest {
    /// A MIG_RP_MSG_REQ_PAGES message goes to the source.
    pub send: bool,
    /// The page is recorded in `mis->page_requested` (QEMU 5.2+).
    pub record_requested: bool,
}

/// `migrate_send_rp_req_pages` (migration/migration.c) for a fault on a page the destination
/// has (`received`) or has not received: the one implementation of the request decision, used
/// by [`QemuDest::fault_thread`] and the explorer (`crate::explore`).
///
/// QEMU 3.0: the request is sent unconditionally (`migrate_send_rp_req_pages` builds the
/// message and sends it). QEMU 5.2+: "If the page is there, skip sending the message." (`if
/// (received) { return 0; }`); otherwise the `page_requested` tree only records the address
/// ("if (!received && !g_tree_lookup(mis->page_requested, aligned)) { g_tree_insert(..) }")
/// and the message is sent whether or not the page was requested before: `return
/// migrate_send_rp_message_req_pages(mis, rb, start);`.
pub fn migrate_send_rp_req_pages(version: QemuVersion, received: bool) -> PageRequest {
    match version {
        QemuVersion::V3_0 => PageRequest { send: true, record_requested: false },
        QemuVersion::V5_2 => PageRequest { send: !received, record_requested: !received },
    }
}

impl QemuDest {
    pub fn new(pid: u32, ram_base: u64, pages: u64, version: QemuVersion) -> QemuDest {
        QemuDest {
            pid,
            ram_base,
            pages,
            version,
            received: Bitmap::new(pages),
            cmma_incoming: Default::default(),
            requested: Bitmap::new(pages),
            uffd: None,
            phase: DstPhase::Precopy,
            stats: DestStats::default(),
        }
    }

    fn hva(&self, gfn: u32) -> u64 {
        self.ram_base + ((gfn as u64) << 12)
    }

    fn fail(&mut self, why: String) -> Delivered {
        self.phase = DstPhase::Failed(why.clone());
        Delivered::Failed(why)
    }

    /// Handle one message of the stream.
    pub fn deliver(&mut self, k: &mut Kernel, msg: Msg) -> Delivered {
        match msg {
            Msg::Page { gfn, value, zero } => match self.phase {
                DstPhase::Precopy => self.load_precopy(k, gfn, value, zero),
                DstPhase::Postcopy => self.place(k, gfn, value, zero),
                _ => Delivered::Nothing,
            },
            Msg::Cmma { pages } => {
                self.cmma_incoming.append(*pages);
                Delivered::Nothing
            }
            Msg::CmmaDone => {
                // candidate QEMU change (profile/fixes.rs): keep the buffer until LISTEN
                if k.profile.fixes.cmma_apply == CmmaApply::AfterListen {
                    return Delivered::Nothing;
                }
                self.apply_cmma(k);
                Delivered::Nothing
            }
            Msg::Discard { start, len } => {
                // ram_discard_range: clear the received bits, then MADV_DONTNEED
                for g in start..start + len {
                    self.received.clear(g as u64);
                }
                let _ = k.madvise(self.pid, self.hva(start), (len as u64) << 12, Advice::Dontneed);
                k.log(Ev::RamDiscardRange, self.pid, TID_LISTEN, self.hva(start), start as u64, len as u64, 0);
                Delivered::Nothing
            }
            Msg::Listen => self.listen(k),
            Msg::Run => Delivered::Run,
            Msg::Eof => self.cleanup(k),
            Msg::ReqPage { .. } => Delivered::Nothing,
        }
    }

    /// Precopy `ram_load`: write the page into guest RAM (`ram_handle_compressed` only reads a
    /// zero page: `is_zero_range`), and set its received bit.
    fn load_precopy(&mut self, k: &mut Kernel, gfn: u32, value: u64, zero: bool) -> Delivered {
        let hva = self.hva(gfn);
        let r = if zero {
            match k.access(self.pid, TID_LISTEN, hva, false, 0) {
                Ok(Access::Done { value: 0 }) => Ok(Access::Done { value: 0 }),
                Ok(Access::Done { .. }) => k.access(self.pid, TID_LISTEN, hva, true, 0),
                other => other,
            }
        } else {
            k.access(self.pid, TID_LISTEN, hva, true, value)
        };
        match r {
            Ok(Access::Done { .. }) => {
                self.received.set(gfn as u64);
                self.stats.precopy_loaded += 1;
                Delivered::Nothing
            }
            Ok(other) => self.fail(format!("ram_load: the load of guest page {gfn:#x} did not complete: {other:?}")),
            Err(e) => self.fail(format!("ram_load: {e}")),
        }
    }

    /// `kvm_s390_stattrib_synchronize`: KVM_S390_SET_CMMA_BITS over the buffer.
    fn apply_cmma(&mut self, k: &mut Kernel) {
        let n = self.cmma_incoming.len() as u64;
        for (gfn, bits) in std::mem::take(&mut self.cmma_incoming).iter() {
            let _ = k.set_cmma_bits(self.pid, self.hva(gfn), bits);
        }
        k.log(Ev::SetCmmaBits, self.pid, TID_LISTEN, self.ram_base, 0, n, 0);
    }

    /// `postcopy_ram_enable_notify`: a userfaultfd, UFFDIO_API, and RAM registered MISSING.
    fn listen(&mut self, k: &mut Kernel) -> Delivered {
        let r = k.userfaultfd(self.pid).and_then(|u| {
            k.uffdio_api(u, UFFD_API, 0)?;
            k.uffdio_register(u, self.ram_base, self.pages << 12, UFFDIO_REGISTER_MODE_MISSING)?;
            Ok(u)
        });
        match r {
            Ok(u) => {
                self.uffd = Some(u);
                self.phase = DstPhase::Postcopy;
                if k.profile.fixes.cmma_apply == CmmaApply::AfterListen {
                    self.apply_cmma(k);
                }
                Delivered::Nothing
            }
            Err(e) => self.fail(format!("postcopy_ram_enable_notify: {e}")),
        }
    }

    /// `postcopy_place_page` / `postcopy_place_page_zero`: UFFDIO_COPY or UFFDIO_ZEROPAGE, then
    /// the received bit. Any error is fatal to the incoming migration (EEXIST included).
    fn place(&mut self, k: &mut Kernel, gfn: u32, value: u64, zero: bool) -> Delivered {
        let Some(u) = self.uffd else { return self.fail("postcopy page before LISTEN".into()) };
        let hva = self.hva(gfn);
        let r = if zero { k.uffdio_zeropage(u, hva, 4096, 0) } else { k.uffdio_copy(u, hva, &[value], 0) };
        let kind = if zero { Ev::PostcopyPlacePageZero } else { Ev::PostcopyPlacePage };
        match r {
            Ok(_) => {
                self.received.set(gfn as u64);
                self.requested.clear(gfn as u64);
                if zero {
                    self.stats.placed_zero += 1;
                } else {
                    self.stats.placed += 1;
                }
                k.log(kind, self.pid, TID_LISTEN, hva, gfn as u64, 0, 0);
                Delivered::Nothing
            }
            Err(e) => {
                let errno = e.errno_value().unwrap_or(Errno::EINVAL);
                k.log(kind, self.pid, TID_LISTEN, hva, gfn as u64, errno.code() as u64, 0);
                let what = if zero { "zero" } else { "copy" };
                self.fail(format!("postcopy_place_page: {} {what} host: {hva:#x} (size: 4096)", errno.strerror()))
            }
        }
    }

    /// The fault thread ("postcopy/fault"): read the userfaultfd and turn each page fault into
    /// a page request (QEMU 3.0: always; 5.2+: not for a page already received, but again for a
    /// page already requested).
    pub fn fault_thread(&mut self, k: &mut Kernel, now: u64) -> Vec<Msg> {
        let Some(u) = self.uffd else { return Vec::new() };
        let msgs: Vec<UffdMsg> = k.uffd_read(u).unwrap_or_default();
        let mut out = Vec::new();
        for m in msgs {
            let UffdMsg::Pagefault(m) = m else {
                // "Read unexpected event %ud from userfaultfd"
                continue;
            };
            if m.address < self.ram_base || m.address >= self.ram_base + (self.pages << 12) {
                continue; // "Fault outside guest"
            }
            self.stats.userfaults += 1;
            let gfn = ((m.address - self.ram_base) >> 12) as u32;
            if self.received.test(gfn as u64) {
                self.stats.received_faults.push(ReceivedFault { t: now, gfn, tid: m.ptid });
            }
            let req = migrate_send_rp_req_pages(self.version, self.received.test(gfn as u64));
            if req.record_requested {
                self.requested.set(gfn as u64);
            }
            if req.send {
                self.stats.requests_sent += 1;
                k.log(Ev::PostcopyRequest, self.pid, 0, m.address, gfn as u64, 0, 0);
                out.push(Msg::ReqPage { gfn });
            } else {
                self.stats.requests_suppressed += 1;
                k.log(Ev::PostcopyRequestSuppressed, self.pid, 0, m.address, gfn as u64, 0, 0);
            }
        }
        out
    }

    /// `postcopy_ram_incoming_cleanup` → `cleanup_range`: UFFDIO_UNREGISTER of guest RAM (waking
    /// any thread still parked) and close.
    fn cleanup(&mut self, k: &mut Kernel) -> Delivered {
        if let Some(u) = self.uffd.take() {
            let _ = k.uffdio_unregister(u, self.ram_base, self.pages << 12);
            let _ = k.uffd_close(u);
        }
        self.phase = DstPhase::Done;
        k.log(Ev::MigrationPhase, self.pid, 0, 0, crate::sim::log::phase::COMPLETED, 0, 0);
        Delivered::Completed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mm::mmap::MapKind;
    use crate::testutil::kernel;

    #[test]
    fn qemu_52_requests_a_page_again_for_a_second_fault_before_it_arrives() {
        // migration/migration.c (QEMU 5.2, "Maintain postcopy faulted addresses")
        // migrate_send_rp_req_pages: the page_requested tree only records the address; "if
        // (received) { return 0; } return migrate_send_rp_message_req_pages(mis, rb, start);"
        for version in [QemuVersion::V5_2, QemuVersion::V3_0] {
            let mut k = kernel("4.18");
            let pid = k.spawn("qemu", false).unwrap();
            let a = k.mmap(pid, 4 * 4096, MapKind::Anon, false, None).unwrap();
            let mut d = QemuDest::new(pid, a, 4, version);
            assert_eq!(d.deliver(&mut k, Msg::Listen), Delivered::Nothing);
            for tid in [1, 2] {
                assert!(matches!(k.access(pid, tid, a, false, 0).unwrap(), Access::Blocked { .. }));
            }
            let reqs = d.fault_thread(&mut k, 0);
            assert_eq!(reqs, vec![Msg::ReqPage { gfn: 0 }, Msg::ReqPage { gfn: 0 }], "{version:?}");
            assert_eq!(d.stats.requests_sent, 2, "{version:?}");
            assert_eq!(d.stats.requests_suppressed, 0, "{version:?}");
        }
    }
}
