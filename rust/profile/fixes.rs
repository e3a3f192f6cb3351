//! Candidate fixes for the hazards the model finds beyond the seed (FINDINGS.md §1–3), as
//! profile switches. None of them is in a released kernel or QEMU: each stands for a change a
//! kernel or QEMU engineer could make, so that `Profile::derive` can try it against the
//! explorer and the postcopy study before anyone boots a machine. Every built-in profile has
//! [`CandidateFixes::RELEASED`] (the code as released).

use serde::{Deserialize, Serialize};

/// A check before `__gmap_zap` → `ptep_zap_unused(mm, vmaddr, ptep, 0)` in KVM's processing of
/// the collaborative block-removal list (arch/s390/mm/gmap.c, all modelled releases; FINDINGS.md
/// §1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CbrlGuard {
    /// As released: `__gmap_zap` zaps the swap PTE of an UNUSED page whatever the VMA.
    None,
    /// Candidate kernel change: `__gmap_zap` looks the VMA up (it does since v5.15) and returns
    /// without `ptep_zap_unused` when `userfaultfd_armed(vma)`, the same guard bce73e484239 put
    /// on the `pte_unused` drop of `try_to_unmap_one`. The swap PTE stays, so a later access
    /// swaps the page in (the "swap instead" of the seed fix: the page is already in swap).
    UffdArmed,
}

/// A check in DIAG 0x10's host half, `diag_release_pages` → `gmap_discard` (arch/s390/kvm/diag.c,
/// arch/s390/mm/gmap.c; FINDINGS.md §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Diag10Guard {
    /// As released: `gmap_discard` zaps the range (`zap_page_range`) without a userfaultfd
    /// REMOVE event.
    None,
    /// Candidate kernel change: `gmap_discard` skips every VMA that is `userfaultfd_armed` (the
    /// pages stay; the guest's release is only a hint, which the kernel may ignore).
    UffdArmed,
}

/// When the destination QEMU applies the storage attributes (the CMMA usage states) it received,
/// with KVM_S390_SET_CMMA_BITS (hw/s390x/s390-stattrib-kvm.c, `kvm_s390_stattrib_synchronize`;
/// FINDINGS.md §3). A QEMU switch, carried by the destination host's profile so that one
/// variant names a whole candidate setup.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CmmaApply {
    /// As released (QEMU 3.0 through 9.x): at STATTR_FLAG_DONE, in the device state of the
    /// switchover, before the postcopy discards and LISTEN (`postcopy_ram_enable_notify`) arm
    /// userfaultfd.
    AtStattrDone,
    /// Candidate QEMU change: keep the buffer at STATTR_FLAG_DONE and apply it right after
    /// `postcopy_ram_enable_notify` registered guest RAM with userfaultfd, so no page is UNUSED
    /// in a VMA that is not armed.
    AfterListen,
}

/// What KVM_S390_SET_CMMA_BITS (`kvm_s390_set_cmma_bits` → `set_pgste_bits`,
/// arch/s390/kvm/kvm-s390.c) does with an UNUSED usage state (FINDINGS.md §3, the kernel-side
/// alternative to [`CmmaApply::AfterListen`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CmmaSetUnused {
    /// As released: the usage state is written into the PGSTE of every page of the buffer.
    Apply,
    /// Candidate kernel change: a page whose host PTE is present keeps the STABLE state (its
    /// content is resident, the destination just wrote it); only a page with no host page takes
    /// UNUSED. The cost: a guest-free received page stays resident until the guest frees it
    /// again with ESSA.
    NonResidentOnly,
}

/// The candidate-fix switches of a profile (all as released in every built-in profile).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CandidateFixes {
    /// A userfaultfd guard before `ptep_zap_unused` in the CBRL path.
    pub cbrl_guard: CbrlGuard,
    /// A userfaultfd guard in DIAG 0x10's `gmap_discard`.
    pub diag10_guard: Diag10Guard,
    /// When the destination QEMU applies storage attributes.
    pub cmma_apply: CmmaApply,
    /// What KVM_S390_SET_CMMA_BITS does with UNUSED on a resident page.
    pub cmma_set_unused: CmmaSetUnused,
}

impl CandidateFixes {
    /// The kernel and QEMU as released: no candidate fix.
    pub const RELEASED: CandidateFixes = CandidateFixes {
        cbrl_guard: CbrlGuard::None,
        diag10_guard: Diag10Guard::None,
        cmma_apply: CmmaApply::AtStattrDone,
        cmma_set_unused: CmmaSetUnused::Apply,
    };
}
