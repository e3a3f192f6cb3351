//! Address spaces and their memory: page frames, mm_struct, VMAs, anon_vma, the shmem page
//! cache, mmap/munmap/mlock, fork, madvise and the zap of page ranges.
//!
//! Everything lives in flat tables owned by the [`crate::kernel::Kernel`]: mms by pid, VMAs
//! and address spaces by id, anon_vmas by id, frames by pfn.

use serde::{Deserialize, Serialize};
pub mod anon_vma;
pub mod compaction;
pub mod fork;
pub mod guest_zone;
pub mod guest_zones;
pub mod madvise;
pub mod memcg_vmstats;
pub mod memcontrol;
pub mod memory_failure;
pub mod migrate;
pub mod mlock;
pub mod mmap;
pub mod mmzone;
pub mod mprotect;
pub mod mremap;
pub mod page;
pub mod page_alloc;
pub mod page_io;
pub mod pgalloc;
pub mod pte_marker;
pub mod shmem;
pub mod slub;
pub mod swap;
pub mod swap_state;
pub mod swapfile;
pub mod tlb_flush;
pub mod vmstat;
pub mod zap;

use crate::arch::pgtable::PageTables;
use crate::sim::hint::Hint;
use std::collections::BTreeMap;

/// `vm_flags` bits, with the values of include/linux/mm.h.
pub mod vm {
    pub const VM_NONE: u64 = 0;
    pub const VM_READ: u64 = 0x0000_0001;
    pub const VM_WRITE: u64 = 0x0000_0002;
    pub const VM_EXEC: u64 = 0x0000_0004;
    pub const VM_SHARED: u64 = 0x0000_0008;
    pub const VM_MAYREAD: u64 = 0x0000_0010;
    pub const VM_MAYWRITE: u64 = 0x0000_0020;
    pub const VM_MAYEXEC: u64 = 0x0000_0040;
    pub const VM_MAYSHARE: u64 = 0x0000_0080;
    pub const VM_GROWSDOWN: u64 = 0x0000_0100;
    pub const VM_UFFD_MISSING: u64 = 0x0000_0200;
    pub const VM_PFNMAP: u64 = 0x0000_0400;
    pub const VM_UFFD_WP: u64 = 0x0000_1000;
    pub const VM_LOCKED: u64 = 0x0000_2000;
    pub const VM_IO: u64 = 0x0000_4000;
    pub const VM_SEQ_READ: u64 = 0x0000_8000;
    pub const VM_RAND_READ: u64 = 0x0001_0000;
    pub const VM_DONTCOPY: u64 = 0x0002_0000;
    pub const VM_DONTEXPAND: u64 = 0x0004_0000;
    pub const VM_LOCKONFAULT: u64 = 0x0008_0000;
    pub const VM_ACCOUNT: u64 = 0x0010_0000;
    pub const VM_NORESERVE: u64 = 0x0020_0000;
    pub const VM_HUGETLB: u64 = 0x0040_0000;
    pub const VM_WIPEONFORK: u64 = 0x0200_0000;
    pub const VM_DONTDUMP: u64 = 0x0400_0000;
    pub const VM_SOFTDIRTY: u64 = 0x0800_0000;
    pub const VM_MIXEDMAP: u64 = 0x1000_0000;
    pub const VM_HUGEPAGE: u64 = 0x2000_0000;
    pub const VM_NOHUGEPAGE: u64 = 0x4000_0000;
    pub const VM_MERGEABLE: u64 = 0x8000_0000;
    /// `VM_UFFD_MINOR` is `BIT(38)` (v6.x; 37 in v5.13) where the arch selects
    /// HAVE_ARCH_USERFAULTFD_MINOR, and `VM_NONE` elsewhere (s390).
    pub const VM_UFFD_MINOR_BIT38: u64 = 1 << 38;

    /// `VM_SPECIAL`.
    pub const VM_SPECIAL: u64 = VM_IO | VM_DONTEXPAND | VM_PFNMAP | VM_MIXEDMAP;

    pub const NAMES: [(u64, &str); 24] = [
        (VM_READ, "VM_READ"),
        (VM_WRITE, "VM_WRITE"),
        (VM_EXEC, "VM_EXEC"),
        (VM_SHARED, "VM_SHARED"),
        (VM_MAYREAD, "VM_MAYREAD"),
        (VM_MAYWRITE, "VM_MAYWRITE"),
        (VM_MAYEXEC, "VM_MAYEXEC"),
        (VM_MAYSHARE, "VM_MAYSHARE"),
        (VM_UFFD_MISSING, "VM_UFFD_MISSING"),
        (VM_UFFD_WP, "VM_UFFD_WP"),
        (VM_LOCKED, "VM_LOCKED"),
        (VM_SEQ_READ, "VM_SEQ_READ"),
        (VM_RAND_READ, "VM_RAND_READ"),
        (VM_DONTCOPY, "VM_DONTCOPY"),
        (VM_LOCKONFAULT, "VM_LOCKONFAULT"),
        (VM_ACCOUNT, "VM_ACCOUNT"),
        (VM_NORESERVE, "VM_NORESERVE"),
        (VM_HUGETLB, "VM_HUGETLB"),
        (VM_WIPEONFORK, "VM_WIPEONFORK"),
        (VM_DONTDUMP, "VM_DONTDUMP"),
        (VM_SOFTDIRTY, "VM_SOFTDIRTY"),
        (VM_HUGEPAGE, "VM_HUGEPAGE"),
        (VM_NOHUGEPAGE, "VM_NOHUGEPAGE"),
        (VM_UFFD_MINOR_BIT38, "VM_UFFD_MINOR"),
    ];

    pub fn names(flags: u64) -> Vec<&'static str> {
        NAMES.iter().filter(|(b, _)| flags & b != 0).map(|(_, n)| *n).collect()
    }
}

/// rss counter indices (`enum { MM_FILEPAGES, MM_ANONPAGES, MM_SWAPENTS, MM_SHMEMPAGES }`).
pub const MM_FILEPAGES: usize = 0;
pub const MM_ANONPAGES: usize = 1;
pub const MM_SWAPENTS: usize = 2;
pub const MM_SHMEMPAGES: usize = 3;
pub const RSS_NAMES: [&str; 4] = ["MM_FILEPAGES", "MM_ANONPAGES", "MM_SWAPENTS", "MM_SHMEMPAGES"];

/// A virtual memory area (`struct vm_area_struct`).
#[derive(Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Vma {
    pub mm: u32,
    pub start: u64,
    pub end: u64,
    pub flags: u64,
    /// `vm_pgoff`: for anon VMAs the virtual page number at mmap time, for file VMAs the offset
    /// into the file.
    pub pgoff: u64,
    /// The shmem object (address_space id) a file VMA maps.
    pub file: Option<u32>,
    /// `vma->anon_vma`: where new anon pages of this VMA are filed.
    pub anon_vma: Option<u32>,
    /// `anon_vma_chain`: every anon_vma whose pages this VMA may map (its own and its
    /// ancestors' after fork).
    pub anon_vma_chain: Vec<u32>,
    /// `vm_userfaultfd_ctx.ctx`.
    pub uffd: Option<u32>,
    /// `vm_page_prot`, in the arch's PTE format.
    pub page_prot: u64,
}

crate::sim::clone_fields::clone_fields!(Vma {
    mm,
    start,
    end,
    flags,
    pgoff,
    file,
    anon_vma,
    anon_vma_chain,
    uffd,
    page_prot
});

impl Vma {
    /// `linear_page_index(vma, addr)`.
    #[inline]
    pub fn pgoff_of(&self, addr: u64) -> u64 {
        ((addr - self.start) >> 12) + self.pgoff
    }
    /// `vma_address(page, vma)` for a page at `pgoff`, if the VMA covers it.
    #[inline]
    pub fn address_of(&self, pgoff: u64) -> Option<u64> {
        let pages = (self.end - self.start) >> 12;
        if pgoff >= self.pgoff && pgoff - self.pgoff < pages {
            Some(self.start + ((pgoff - self.pgoff) << 12))
        } else {
            None
        }
    }
    /// `vma_is_anonymous`.
    pub fn is_anonymous(&self) -> bool {
        self.file.is_none()
    }
    /// `is_cow_mapping`: private and may be written.
    pub fn is_cow_mapping(&self) -> bool {
        self.flags & (vm::VM_SHARED | vm::VM_MAYWRITE) == vm::VM_MAYWRITE
    }
    pub fn pages(&self) -> u64 {
        (self.end - self.start) >> 12
    }
}

/// An `anon_vma`: the set of VMAs that may map the anon pages filed under it.
#[derive(Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AnonVma {
    pub root: u32,
    pub parent: u32,
    /// The VMAs linked to this anon_vma through their anon_vma_chain (the kernel's interval
    /// tree `rb_root`, here a list: the rmap checks each VMA's range).
    pub vmas: Vec<u32>,
}

crate::sim::clone_fields::clone_fields!(AnonVma { root, parent, vmas });

/// What a shmem page-cache slot holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CacheEntry {
    Page(u32),
    /// A swap offset (the kernel stores the swap entry in the xarray).
    Swap(u32),
}

/// A shmem object (`struct address_space` of a shmem inode): its page cache and the VMAs that
/// map it (`i_mmap`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AddressSpace {
    pub name: String,
    pub pages: BTreeMap<u64, CacheEntry>,
    pub i_mmap: Vec<u32>,
    pub size_pages: u64,
}

/// A thread of a process (a vCPU thread for a KVM guest).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Thread {
    /// Parked on a userfault.
    pub blocked: Option<crate::uffd::types::Blocked>,
    /// The outcome of the last access this thread completed (also after a wake).
    pub last: Option<crate::fault::types::Access>,
    /// Total time this thread spent parked on userfaults (ns).
    pub blocked_ns: u64,
}

/// A process's `mm_struct`.
#[derive(Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Mm {
    pub pid: u32,
    pub name: String,
    pub alive: bool,
    /// `mm_has_pgste` (s390 KVM host process).
    pub has_pgste: bool,
    /// `mm_uses_skeys`.
    pub uses_skeys: bool,
    /// `test_kvm_facility(kvm, 147)` of the KVM VM this process hosts: its CPU model offers
    /// facility 147, the ESSA no-DAT extension (QEMU's `cmm-nt`, S390_FEAT_CMM_NT). True for a
    /// new KVM process, as QEMU's default `-cpu host` model has it on a z14 or later host with
    /// CMMA; [`crate::Kernel::set_kvm_facility_147`] takes it away (`-cpu ...,cmm-nt=off`, an older
    /// CPU model). False for a plain process.
    pub kvm_facility_147: bool,
    /// `mm->context.allow_cow_sharing` (v6.11+): cleared when the guest enables storage keys.
    pub allow_cow_sharing: bool,
    /// VMAs by start address.
    pub vmas: BTreeMap<u64, u32>,
    pub pt: PageTables,
    /// `mm->rss_stat`, indexed by MM_FILEPAGES...MM_SHMEMPAGES.
    pub rss: [i64; 4],
    pub threads: BTreeMap<u32, Thread>,
    /// Top-down mmap base.
    pub mmap_base: u64,
    /// The VMA (+1) of the last `vma_lookup` (the pre-6.1 per-thread `vmacache`, one entry).
    #[serde(skip)]
    pub vma_hint: Hint<u32>,
    /// The thread (+1) whose access of this mm completed last without parking it: its record
    /// is in `threads` and not blocked, so the next access by it skips the lookup that checks
    /// (0: none). Set by `Kernel::finish_access`, cleared when that thread parks or
    /// the threads go (`exit_mm`).
    #[serde(skip)]
    pub thread_hint: Hint<u32>,
}

crate::sim::clone_fields::clone_fields!(Mm {
    pid,
    name,
    alive,
    has_pgste,
    uses_skeys,
    kvm_facility_147,
    allow_cow_sharing,
    vmas = crate::sim::clone_fields::clone_if_changed,
    pt,
    rss,
    threads = crate::sim::clone_fields::clone_if_changed,
    mmap_base,
    vma_hint,
    thread_hint
});
