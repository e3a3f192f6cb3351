//! The userfaultfd system call and ioctls, with the kernel's argument checks and errnos
//! (fs/userfaultfd.c `userfaultfd_*`, mm/userfaultfd.c `mfill_atomic` / `mcopy_atomic`).

use super::events::VM_UFFD_ALL;
use super::{UffdCtx, UffdMsg};
use crate::error::{Errno, Error, Result};
use crate::fault::Fault;
use crate::kernel::Kernel;
use crate::mm::page::{ZERO_PFN, pg};
use crate::mm::{CacheEntry, MM_ANONPAGES, MM_SHMEMPAGES, vm};
use crate::sim::log::Ev;

pub const UFFD_API: u64 = 0xAA;
pub const _UFFDIO_REGISTER: u32 = 0x00;
pub const _UFFDIO_UNREGISTER: u32 = 0x01;
pub const _UFFDIO_WAKE: u32 = 0x02;
pub const _UFFDIO_COPY: u32 = 0x03;
pub const _UFFDIO_ZEROPAGE: u32 = 0x04;
pub const _UFFDIO_MOVE: u32 = 0x05;
pub const _UFFDIO_WRITEPROTECT: u32 = 0x06;
pub const _UFFDIO_CONTINUE: u32 = 0x07;
pub const _UFFDIO_POISON: u32 = 0x08;
pub const _UFFDIO_API: u32 = 0x3F;

pub const UFFDIO_REGISTER_MODE_MISSING: u64 = 1 << 0;
pub const UFFDIO_REGISTER_MODE_WP: u64 = 1 << 1;
pub const UFFDIO_REGISTER_MODE_MINOR: u64 = 1 << 2;
pub const UFFDIO_COPY_MODE_DONTWAKE: u64 = 1 << 0;
pub const UFFDIO_COPY_MODE_WP: u64 = 1 << 1;
pub const UFFDIO_ZEROPAGE_MODE_DONTWAKE: u64 = 1 << 0;
pub const UFFDIO_CONTINUE_MODE_DONTWAKE: u64 = 1 << 0;
pub const UFFDIO_WRITEPROTECT_MODE_WP: u64 = 1 << 0;
pub const UFFDIO_WRITEPROTECT_MODE_DONTWAKE: u64 = 1 << 1;

const fn bit(n: u32) -> u64 {
    1u64 << n
}

/// The ioctls of `uffdio_api.ioctls` and `uffdio_register.ioctls` by name (`_UFFDIO_*`
/// without the prefix): bit `1 << _UFFDIO_X` of the masks (include/uapi/linux/userfaultfd.h).
pub const UFFD_IOCTL_NAMES: [(&str, u64); 10] = [
    ("REGISTER", bit(_UFFDIO_REGISTER)),
    ("UNREGISTER", bit(_UFFDIO_UNREGISTER)),
    ("WAKE", bit(_UFFDIO_WAKE)),
    ("COPY", bit(_UFFDIO_COPY)),
    ("ZEROPAGE", bit(_UFFDIO_ZEROPAGE)),
    ("MOVE", bit(_UFFDIO_MOVE)),
    ("WRITEPROTECT", bit(_UFFDIO_WRITEPROTECT)),
    ("CONTINUE", bit(_UFFDIO_CONTINUE)),
    ("POISON", bit(_UFFDIO_POISON)),
    ("API", bit(_UFFDIO_API)),
];

/// `UFFD_API_IOCTLS`.
pub const UFFD_API_IOCTLS: u64 = bit(_UFFDIO_REGISTER) | bit(_UFFDIO_UNREGISTER) | bit(_UFFDIO_API);

/// `mmap_min_addr` (the usual distribution default).
pub const MMAP_MIN_ADDR: u64 = 65536;

fn einval(call: &'static str, detail: impl Into<String>) -> Error {
    Error::errno(Errno::EINVAL, call, detail)
}

impl Kernel {
    /// `UFFD_API_RANGE_IOCTLS` of the profile.
    fn range_ioctls(&self) -> u64 {
        let mut r = bit(_UFFDIO_WAKE) | bit(_UFFDIO_COPY) | bit(_UFFDIO_ZEROPAGE);
        if self.profile.uffd_wp {
            r |= bit(_UFFDIO_WRITEPROTECT);
        }
        if self.profile.uffd_minor {
            r |= bit(_UFFDIO_CONTINUE) | bit(_UFFDIO_MOVE) | bit(_UFFDIO_POISON);
        }
        r
    }

    fn ctx(&self, ctx: u32, call: &'static str) -> Result<&UffdCtx> {
        match self.uffds.get(ctx as usize) {
            Some(c) if !c.released => {
                if !c.api_done {
                    return Err(einval(call, "UFFDIO_API has not been done on this userfaultfd"));
                }
                Ok(c)
            }
            _ => Err(Error::errno(Errno::EINVAL, call, format!("userfaultfd {ctx} is closed or does not exist"))),
        }
    }

    /// `validate_range`.
    fn validate_range(&self, call: &'static str, start: u64, len: u64) -> Result<u64> {
        let ts = self.arch().task_size();
        if start & 0xfff != 0 {
            return Err(einval(call, format!("start {start:#x} is not page-aligned")));
        }
        if len & 0xfff != 0 {
            return Err(einval(call, format!("len {len:#x} is not a multiple of the page size")));
        }
        if len == 0 {
            return Err(einval(call, "len is 0"));
        }
        if start < MMAP_MIN_ADDR {
            return Err(einval(call, format!("start {start:#x} is below mmap_min_addr {MMAP_MIN_ADDR:#x}")));
        }
        if start >= ts || len > ts - start {
            return Err(einval(call, format!("range {start:#x}+{len:#x} is beyond the task size")));
        }
        Ok(start + len)
    }

    /// The contexts open on `pid`'s mm, oldest first: not closed and not released by the
    /// process's exit (the file descriptors `/proc/PID/fd` would list as `anon_inode:[userfaultfd]`;
    /// a FORK event's child contexts count for the child). A kernel restored from a snapshot has
    /// no other way to name them.
    pub fn userfaultfds_of(&self, pid: u32) -> Result<Vec<u32>> {
        self.mm(pid)?;
        let open = self.uffds.iter().enumerate().filter(|(_, c)| c.mm == pid && !c.released);
        Ok(open.map(|(id, _)| id as u32).collect())
    }

    /// `userfaultfd(2)`: a new context on `pid`'s mm (UFFDIO_API still to be done).
    pub fn userfaultfd(&mut self, pid: u32) -> Result<u32> {
        self.mm(pid)?;
        self.uffds.push(UffdCtx {
            mm: pid,
            features: 0,
            api_done: false,
            released: false,
            waiters: Vec::new(),
            events: Default::default(),
            seq: 0,
        });
        Ok((self.uffds.len() - 1) as u32)
    }

    /// `UFFDIO_API`: agree on `features`. Returns (features offered, ioctls). Unknown or
    /// unsupported features, a wrong `api`, or a second call are -EINVAL.
    pub fn uffdio_api(&mut self, ctx: u32, api: u64, features: u64) -> Result<(u64, u64)> {
        const CALL: &str = "UFFDIO_API";
        let Some(c) = self.uffds.get(ctx as usize) else {
            return Err(einval(CALL, format!("userfaultfd {ctx} does not exist")));
        };
        if c.released {
            return Err(einval(CALL, "the userfaultfd is closed"));
        }
        if api != UFFD_API {
            return Err(einval(CALL, format!("api {api:#x} is not UFFD_API (0xAA)")));
        }
        let offered = self.profile.uffd_features_offered();
        if features & !offered != 0 {
            return Err(einval(
                CALL,
                format!(
                    "features {:#x} are not offered by profile {} on {} (offered: {offered:#x})",
                    features & !offered,
                    self.profile.name,
                    self.arch().name()
                ),
            ));
        }
        if c.api_done {
            return Err(einval(CALL, "UFFDIO_API was already done on this userfaultfd"));
        }
        let c = &mut self.uffds[ctx as usize];
        c.features = features;
        c.api_done = true;
        Ok((offered, UFFD_API_IOCTLS))
    }

    /// `UFFDIO_REGISTER`: arm `[start, start+len)` for `mode` (MISSING / WP / MINOR). Splits
    /// and merges VMAs; returns the ioctls guaranteed on the range.
    pub fn uffdio_register(&mut self, ctx: u32, start: u64, len: u64, mode: u64) -> Result<u64> {
        const CALL: &str = "UFFDIO_REGISTER";
        let pid = self.ctx(ctx, CALL)?.mm;
        let p = &self.profile;
        let known = UFFDIO_REGISTER_MODE_MISSING
            | UFFDIO_REGISTER_MODE_WP
            | if p.uffd_minor { UFFDIO_REGISTER_MODE_MINOR } else { 0 };
        if mode == 0 {
            return Err(einval(CALL, "mode is 0"));
        }
        if mode & !known != 0 {
            return Err(einval(CALL, format!("mode {mode:#x} has bits profile {} does not know", p.name)));
        }
        let mut vm_flags = 0;
        if mode & UFFDIO_REGISTER_MODE_MISSING != 0 {
            vm_flags |= vm::VM_UFFD_MISSING;
        }
        if mode & UFFDIO_REGISTER_MODE_WP != 0 {
            if !p.uffd_wp {
                return Err(einval(
                    CALL,
                    format!(
                        "write-protect tracking is not implemented in {} (the FIXME in userfaultfd_register)",
                        p.name
                    ),
                ));
            }
            if !p.arch_has_uffd_wp() {
                return Err(einval(
                    CALL,
                    format!("{} has no uffd-wp PTE bit (no HAVE_ARCH_USERFAULTFD_WP)", self.arch().name()),
                ));
            }
            vm_flags |= vm::VM_UFFD_WP;
        }
        if mode & UFFDIO_REGISTER_MODE_MINOR != 0 {
            if self.vm_uffd_minor() == 0 {
                return Err(einval(CALL, format!("{} has no HAVE_ARCH_USERFAULTFD_MINOR", self.arch().name())));
            }
            vm_flags |= self.vm_uffd_minor();
        }
        let end = self.validate_range(CALL, start, len)?;
        self.mm(pid)?;
        let vmas = self.vmas_in(pid, start, end);
        if vmas.is_empty() {
            let any_above = self.mmx(pid).vmas.range(start..).next().is_some() || self.vma_lookup(pid, start).is_some();
            return Err(if !self.profile.uffd_register_vma_find && !any_above {
                Error::errno(Errno::ENOMEM, CALL, format!("no VMA at or above {start:#x}"))
            } else {
                einval(CALL, format!("no VMA in {start:#x}..{end:#x}"))
            });
        }
        for &id in &vmas {
            let v = self.vma(id);
            if !self.vma_can_userfault(id, vm_flags) {
                return Err(einval(CALL, format!("the VMA at {:#x} cannot be registered for this mode", v.start)));
            }
            if let Some(other) = v.uffd {
                if other != ctx {
                    return Err(Error::errno(
                        Errno::EBUSY,
                        CALL,
                        format!("the VMA at {:#x} is registered with another userfaultfd", v.start),
                    ));
                }
            }
        }
        let replace = self.profile.uffd_minor;
        let ids = self.split_range(pid, start, end);
        for &id in &ids {
            let v = self.vma_mut(id);
            if v.uffd == Some(ctx) && v.flags & vm_flags == vm_flags {
                continue;
            }
            v.flags = if replace { (v.flags & !VM_UFFD_ALL) | vm_flags } else { v.flags | vm_flags };
            v.uffd = Some(ctx);
            // userfaultfd_set_vm_flags: write-notify a shared VMA while it is uffd-wp (6.12)
            self.vma_set_page_prot(id);
        }
        self.vma_merge_all(&ids);
        let mut ioctls = self.range_ioctls();
        if mode & UFFDIO_REGISTER_MODE_WP == 0 {
            ioctls &= !bit(_UFFDIO_WRITEPROTECT);
        }
        if mode & UFFDIO_REGISTER_MODE_MINOR == 0 {
            ioctls &= !bit(_UFFDIO_CONTINUE);
        }
        self.log(Ev::UffdRegister, pid, 0, start, ctx as u64, len, mode);
        Ok(ioctls)
    }

    /// `vma_can_userfault`: anon, shmem (and hugetlb); MINOR only on shmem (and hugetlb); WP
    /// on shmem only with file-backed uffd-wp ([`crate::Profile::uffd_wp_markers`]; v5.7..v5.18
    /// `if ((vm_flags & VM_UFFD_WP) && !vma_is_anonymous(vma)) return false;`).
    fn vma_can_userfault(&self, vma: u32, vm_flags: u64) -> bool {
        let v = self.vma(vma);
        if vm_flags & self.vm_uffd_minor() != 0 && self.vm_uffd_minor() != 0 && v.is_anonymous() {
            return false;
        }
        if vm_flags & vm::VM_UFFD_WP != 0 && !v.is_anonymous() && !self.profile.uffd_wp_markers {
            return false;
        }
        v.is_anonymous() || v.file.is_some()
    }

    /// `UFFDIO_UNREGISTER`: disarm the range; threads parked on MISSING faults in it are woken
    /// ("so they will not hang permanently").
    pub fn uffdio_unregister(&mut self, ctx: u32, start: u64, len: u64) -> Result<()> {
        const CALL: &str = "UFFDIO_UNREGISTER";
        let pid = self.ctx(ctx, CALL)?.mm;
        let end = self.validate_range(CALL, start, len)?;
        self.mm(pid)?;
        let vmas = self.vmas_in(pid, start, end);
        if vmas.is_empty() {
            let any_above = self.mmx(pid).vmas.range(start..).next().is_some();
            return Err(if !self.profile.uffd_register_vma_find && !any_above {
                Error::errno(Errno::ENOMEM, CALL, format!("no VMA at or above {start:#x}"))
            } else {
                einval(CALL, format!("no VMA in {start:#x}..{end:#x}"))
            });
        }
        for &id in &vmas {
            if !self.vma_can_userfault(id, 0) {
                return Err(einval(CALL, format!("the VMA at {:#x} cannot be registered", self.vma(id).start)));
            }
        }
        // "Wake any concurrent pending userfault while we unregister": the woken threads run
        // after the unregister, so they retry against the disarmed VMAs
        let mut wake = Vec::new();
        let ids = self.split_range(pid, start, end);
        for &id in &ids {
            let v = self.vma(id);
            let Some(owner) = v.uffd else { continue };
            if self.profile.uffd_unregister_resets_wp && self.userfaultfd_wp(id) {
                // "Reset ptes for the whole vma range if wr-protected" (v6.0+)
                let (s, e) = (v.start, v.end);
                self.uffd_wp_range(id, s, e, false);
            }
            let v = self.vma(id);
            if v.flags & vm::VM_UFFD_MISSING != 0 {
                wake.push((owner, v.start, v.end - v.start));
            }
            let v = self.vma_mut(id);
            v.flags &= !VM_UFFD_ALL;
            v.uffd = None;
            self.vma_set_page_prot(id);
        }
        self.vma_merge_all(&ids);
        for (owner, s, l) in wake {
            self.wake_userfault(owner, s, l);
        }
        self.log(Ev::UffdUnregister, pid, 0, start, ctx as u64, len, 0);
        self.settle();
        Ok(())
    }

    /// `UFFDIO_WAKE`.
    pub fn uffdio_wake(&mut self, ctx: u32, start: u64, len: u64) -> Result<usize> {
        const CALL: &str = "UFFDIO_WAKE";
        let pid = self.ctx(ctx, CALL)?.mm;
        self.validate_range(CALL, start, len)?;
        let n = self.wake_userfault(ctx, start, len);
        self.log(Ev::UffdWake, pid, 0, start, ctx as u64, len, n as u64);
        self.settle();
        Ok(n)
    }

    /// The checks common to COPY / ZEROPAGE / CONTINUE before the copy loop: the range, the
    /// mm (`mmget_not_zero`, -ESRCH), then mm/userfaultfd.c `find_dst_vma` (4.17; 6.12
    /// `uffd_mfill_lock` → `validate_dst_vma`): -ENOENT when the range is not inside one
    /// registered VMA.
    fn mfill_prepare(&self, ctx: u32, call: &'static str, dst: u64, len: u64) -> Result<(u32, u32)> {
        let pid = self.ctx(ctx, call)?.mm;
        let end = self.validate_range(call, dst, len)?;
        if self.mm(pid).is_err() {
            return Err(Error::errno(Errno::ESRCH, call, format!("process {pid} has exited")));
        }
        let Some(vma) = self.vma_lookup(pid, dst) else {
            return Err(Error::errno(Errno::ENOENT, call, format!("no VMA at {dst:#x}")));
        };
        let v = self.vma(vma);
        if end > v.end {
            return Err(Error::errno(Errno::ENOENT, call, format!("{dst:#x}..{end:#x} is not inside one VMA")));
        }
        if v.uffd.is_none() {
            return Err(Error::errno(
                Errno::ENOENT,
                call,
                format!("the VMA at {:#x} is not registered with userfaultfd", v.start),
            ));
        }
        Ok((pid, vma))
    }

    /// Finish an mfill ioctl: wake the filled range unless DONTWAKE; a partial fill is
    /// -EAGAIN, a failure on the first page its errno.
    fn mfill_finish(
        &mut self,
        ctx: u32,
        call: &'static str,
        kind: Ev,
        (pid, dst, len): (u32, u64, u64),
        done: u64,
        err: Option<Error>,
        dontwake: bool,
    ) -> Result<u64> {
        self.log(
            kind,
            pid,
            0,
            dst,
            ctx as u64,
            done,
            err.as_ref().and_then(|e| e.errno_value()).map_or(0, |e| e.code() as u64),
        );
        if done == 0 {
            self.settle();
            return Err(err.expect("no progress means an error"));
        }
        if !dontwake {
            self.wake_userfault(ctx, dst, done);
        }
        self.settle();
        if done == len {
            Ok(done)
        } else {
            let why = err.map_or(String::new(), |e| e.to_string());
            Err(Error::errno(Errno::EAGAIN, call, format!("copied {done} of {len} bytes; then {why}")))
        }
    }

    /// `UFFDIO_COPY`: fill the pages at `dst` with `values` (one content tag per page) and wake
    /// the faulters. -EEXIST when a PTE is not none (the first page's content stays).
    pub fn uffdio_copy(&mut self, ctx: u32, dst: u64, values: &[u64], mode: u64) -> Result<u64> {
        self.mfill_copy(ctx, dst, values.len() as u64 * 4096, |i| values[i as usize], mode)
    }

    /// `UFFDIO_COPY` of `len` bytes whose every page holds `value`.
    pub fn uffdio_copy_same(&mut self, ctx: u32, dst: u64, len: u64, value: u64, mode: u64) -> Result<u64> {
        if len % 4096 != 0 || len == 0 {
            return Err(einval("UFFDIO_COPY", format!("length {len} is not a positive multiple of the page size")));
        }
        self.mfill_copy(ctx, dst, len, |_| value, mode)
    }

    /// `UFFDIO_COPY` of `len` bytes, page `i` from `value_of(i)`; the range is validated before
    /// any page is touched.
    fn mfill_copy(&mut self, ctx: u32, dst: u64, len: u64, value_of: impl Fn(u64) -> u64, mode: u64) -> Result<u64> {
        const CALL: &str = "UFFDIO_COPY";
        let allowed = UFFDIO_COPY_MODE_DONTWAKE | if self.profile.uffd_wp { UFFDIO_COPY_MODE_WP } else { 0 };
        if mode & !allowed != 0 {
            return Err(einval(CALL, format!("mode {mode:#x} is not allowed")));
        }
        if mode & UFFDIO_COPY_MODE_WP != 0 && !self.profile.arch_has_uffd_wp() {
            return Err(einval(CALL, "UFFDIO_COPY_MODE_WP without uffd-wp support"));
        }
        let (pid, vma) = self.mfill_prepare(ctx, CALL, dst, len)?;
        let wp = mode & UFFDIO_COPY_MODE_WP != 0;
        if wp && self.vma(vma).flags & vm::VM_UFFD_WP == 0 {
            return Err(einval(CALL, "UFFDIO_COPY_MODE_WP on a range not registered for write-protect"));
        }
        let mut done = 0u64;
        let mut err = None;
        for i in 0..len / 4096 {
            let addr = dst + i * 4096;
            match self.mfill_one(pid, vma, addr, Fill::Copy(value_of(i)), CALL) {
                Ok(()) if wp => {
                    // MFILL_ATOMIC_WP: _dst_pte = pte_mkuffd_wp(_dst_pte)
                    let idx = self.mmx(pid).pt.pte_index(addr).expect("just filled");
                    let p = self.arch().pte_mkuffd_wp(self.mmx(pid).pt.pte(idx));
                    self.mmx_mut(pid).pt.set_pte(idx, p);
                    done += 4096;
                }
                Ok(()) => done += 4096,
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        self.mfill_finish(ctx, CALL, Ev::UffdCopy, (pid, dst, len), done, err, mode & UFFDIO_COPY_MODE_DONTWAKE != 0)
    }

    /// `UFFDIO_ZEROPAGE`: map zero pages at `[start, start+len)`: the shared zero page, or a
    /// zeroed page where the mm forbids the zero page on profiles that check it (v6.10+).
    pub fn uffdio_zeropage(&mut self, ctx: u32, start: u64, len: u64, mode: u64) -> Result<u64> {
        const CALL: &str = "UFFDIO_ZEROPAGE";
        if mode & !UFFDIO_ZEROPAGE_MODE_DONTWAKE != 0 {
            return Err(einval(CALL, format!("mode {mode:#x} is not allowed")));
        }
        let (pid, vma) = self.mfill_prepare(ctx, CALL, start, len)?;
        let mut done = 0u64;
        let mut err = None;
        for i in 0..len / 4096 {
            match self.mfill_one(pid, vma, start + i * 4096, Fill::Zero, CALL) {
                Ok(()) => done += 4096,
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        self.mfill_finish(
            ctx,
            CALL,
            Ev::UffdZeropage,
            (pid, start, len),
            done,
            err,
            mode & UFFDIO_ZEROPAGE_MODE_DONTWAKE != 0,
        )
    }

    /// `UFFDIO_CONTINUE` (MINOR ranges, v5.13+): map the page cache pages that are already
    /// there.
    pub fn uffdio_continue(&mut self, ctx: u32, start: u64, len: u64, mode: u64) -> Result<u64> {
        const CALL: &str = "UFFDIO_CONTINUE";
        if !self.profile.uffd_minor {
            return Err(einval(CALL, format!("profile {} has no UFFDIO_CONTINUE", self.profile.name)));
        }
        if mode & !UFFDIO_CONTINUE_MODE_DONTWAKE != 0 {
            return Err(einval(CALL, format!("mode {mode:#x} is not allowed")));
        }
        let (pid, vma) = self.mfill_prepare(ctx, CALL, start, len)?;
        if self.vma(vma).file.is_none() || self.vma(vma).flags & self.vm_uffd_minor() == 0 || self.vm_uffd_minor() == 0
        {
            return Err(einval(CALL, "the VMA is not a shmem VMA registered for MINOR faults"));
        }
        let mut done = 0u64;
        let mut err = None;
        for i in 0..len / 4096 {
            match self.mfill_one(pid, vma, start + i * 4096, Fill::Continue, CALL) {
                Ok(()) => done += 4096,
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        self.mfill_finish(
            ctx,
            CALL,
            Ev::UffdContinue,
            (pid, start, len),
            done,
            err,
            mode & UFFDIO_CONTINUE_MODE_DONTWAKE != 0,
        )
    }

    /// `UFFDIO_WRITEPROTECT` (v5.7+): only VMAs registered for WP; s390 has none.
    pub fn uffdio_writeprotect(&mut self, ctx: u32, start: u64, len: u64, mode: u64) -> Result<()> {
        const CALL: &str = "UFFDIO_WRITEPROTECT";
        if !self.profile.uffd_wp {
            return Err(einval(CALL, format!("profile {} has no UFFDIO_WRITEPROTECT", self.profile.name)));
        }
        if mode & !(UFFDIO_WRITEPROTECT_MODE_WP | UFFDIO_WRITEPROTECT_MODE_DONTWAKE) != 0 {
            return Err(einval(CALL, format!("mode {mode:#x} is not allowed")));
        }
        let enable = mode & UFFDIO_WRITEPROTECT_MODE_WP != 0;
        let dontwake = mode & UFFDIO_WRITEPROTECT_MODE_DONTWAKE != 0;
        if enable && dontwake {
            return Err(einval(CALL, "DONTWAKE only goes with resolving (mode without WP)"));
        }
        let pid = self.ctx(ctx, CALL)?.mm;
        let end = self.validate_range(CALL, start, len)?;
        let vmas = self.vmas_in(pid, start, end);
        if vmas.is_empty() || vmas.iter().any(|&v| self.vma(v).flags & vm::VM_UFFD_WP == 0) {
            return Err(Error::errno(
                Errno::ENOENT,
                CALL,
                format!("{start:#x}..{end:#x} is not registered for write-protect tracking"),
            ));
        }
        for id in vmas {
            let (s, e) = (start.max(self.vma(id).start), end.min(self.vma(id).end));
            self.uffd_wp_range(id, s, e, enable);
        }
        // "Only wake when resolving wp"
        if !enable && !dontwake {
            self.wake_userfault(ctx, start, len);
        }
        self.settle();
        Ok(())
    }

    /// `uffd_wp_range` → `change_protection(MM_CP_UFFD_WP[_RESOLVE])` → `change_pte_range`
    /// (6.12 mm/mprotect.c) over present and swap PTEs; resolving makes an exclusive anon page
    /// writable again (`can_change_pte_writable`). Where `userfaultfd_wp_use_markers` (shmem;
    /// anon with UFFD_FEATURE_WP_UNPOPULATED) protecting allocates the page tables
    /// (`pgtable_populate_needed`) and puts a `PTE_MARKER_UFFD_WP` marker in each none PTE
    /// ("even if the pte is none, the page/swap cache could exist"); resolving drops a marker
    /// ("the next page fault will trigger without uffd trapping"); protecting leaves one.
    pub(crate) fn uffd_wp_range(&mut self, vma: u32, start: u64, end: u64, enable: bool) {
        let arch = self.arch();
        let (pid, flags) = (self.vma(vma).mm, self.vma(vma).flags);
        let markers = enable && self.userfaultfd_wp_use_markers(vma);
        if markers {
            let mut a = start;
            while a < end {
                if self.pte_alloc(pid, a).is_err() {
                    // change_prepare: -ENOMEM ends the walk; the PTEs before stay protected
                    break;
                }
                a += 4096;
            }
        }
        let mut cur = start;
        while let Some((a, idx)) = self.next_pte_slot(pid, cur, end) {
            cur = a + 4096;
            let p = self.mmx(pid).pt.pte(idx);
            if arch.pte_none(p) {
                if markers {
                    let m = self.make_pte_marker(crate::mm::pte_marker::PTE_MARKER_UFFD_WP).expect("markers");
                    self.set_pte_at(pid, idx, m);
                }
            } else if self.is_pte_marker(p) {
                if !enable {
                    self.pte_clear(pid, idx);
                }
            } else if arch.pte_present(p) {
                let n = if enable {
                    arch.pte_mkuffd_wp(p)
                } else {
                    let mut n = arch.pte_clear_uffd_wp(p);
                    let writable = flags & vm::VM_WRITE != 0
                        && match self.vm_normal_page(n) {
                            Some(pfn) if flags & vm::VM_SHARED == 0 => {
                                let f = &self.mem.frames[pfn as usize];
                                f.anon() && f.test(pg::PG_ANON_EXCLUSIVE)
                            }
                            Some(_) => arch.pte_dirty(n),
                            None => false,
                        };
                    if writable {
                        n = arch.pte_mkwrite(n);
                    }
                    n
                };
                self.ptep_xchg(pid, idx, n);
            } else if arch.is_swap_pte(p) {
                self.mmx_mut(pid).pt.set_pte(idx, arch.pte_swp_set_uffd_wp(p, enable));
            }
        }
    }

    /// `read(2)` on the userfaultfd: every unread message (page faults and non-cooperative
    /// events) in the order they were queued.
    pub fn uffd_read(&mut self, ctx: u32) -> Result<Vec<UffdMsg>> {
        self.ctx(ctx, "read")?;
        let c = &mut self.uffds[ctx as usize];
        let mut out: Vec<(u64, UffdMsg)> = Vec::new();
        for w in c.waiters.iter_mut().filter(|w| !w.read) {
            w.read = true;
            out.push((w.seq, UffdMsg::Pagefault(w.msg)));
        }
        out.extend(c.events.drain(..));
        out.sort_by_key(|(seq, _)| *seq);
        Ok(out.into_iter().map(|(_, m)| m).collect())
    }

    /// `close(2)` of the userfaultfd (`userfaultfd_release`, fs/userfaultfd.c): every VMA it
    /// armed is disarmed and every parked thread woken. 6.12 (`userfaultfd_release_all` →
    /// `userfaultfd_clear_vma`, mm/userfaultfd.c 6.12.117; `Profile::uffd_close_resets_wp`,
    /// c88033efe9a3, v6.9) first resolves the write protection of each VM_UFFD_WP VMA, as
    /// UNREGISTER does.
    pub fn uffd_close(&mut self, ctx: u32) -> Result<()> {
        let Some(c) = self.uffds.get(ctx as usize) else {
            return Err(Error::errno(Errno::EINVAL, "close", format!("userfaultfd {ctx} does not exist")));
        };
        if c.released {
            return Ok(());
        }
        let pid = c.mm;
        if self.mm(pid).is_ok() {
            let ids: Vec<u32> =
                self.mmx(pid).vmas.values().copied().filter(|&v| self.vma(v).uffd == Some(ctx)).collect();
            for &id in &ids {
                if self.profile.uffd_close_resets_wp && self.userfaultfd_wp(id) {
                    // userfaultfd_release_all → userfaultfd_clear_vma (mm/userfaultfd.c
                    // 6.12.117): "Reset ptes for the whole vma range if wr-protected"
                    let (s, e) = (self.vma(id).start, self.vma(id).end);
                    self.uffd_wp_range(id, s, e, false);
                }
                let v = self.vma_mut(id);
                v.flags &= !VM_UFFD_ALL;
                v.uffd = None;
                self.vma_set_page_prot(id);
            }
            self.vma_merge_all(&ids);
        }
        self.uffds[ctx as usize].released = true;
        let waiters = std::mem::take(&mut self.uffds[ctx as usize].waiters);
        for w in waiters {
            self.resume_thread(w.pid, w.tid);
        }
        self.settle();
        Ok(())
    }

    /// Fill one page of an mfill ioctl (`mfill_atomic_pte`).
    fn mfill_one(&mut self, pid: u32, vma: u32, addr: u64, fill: Fill, call: &'static str) -> Result<()> {
        let arch = self.arch();
        let (flags, prot, file, index) = {
            let v = self.vma(vma);
            (v.flags, v.page_prot, v.file, v.pgoff_of(addr))
        };
        let idx =
            self.pte_alloc(pid, addr).map_err(|_| Error::errno(Errno::ENOMEM, call, "no memory for a page table"))?;
        let eexist = || Error::errno(Errno::EEXIST, call, format!("the PTE at {addr:#x} is not none"));
        // mfill_atomic_pte: a private mapping (anon, or MAP_PRIVATE of shmem) gets an anon page,
        // only a shared one the shmem page cache; CONTINUE always maps the page cache. Before
        // v4.20 (`Profile::uffd_private_shmem_anon`, 5b51072e97d5) __mcopy_atomic sent every
        // shmem VMA to shmem_mcopy_atomic_pte / shmem_mfill_zeropage_pte: "if
        // (!vma_is_shmem(dst_vma)) { ... mcopy_atomic_pte ... } else { ...
        // shmem_mcopy_atomic_pte ... }", so a MAP_PRIVATE shmem fill went to the page cache.
        let shared_file = file.filter(|_| {
            flags & vm::VM_SHARED != 0 || matches!(fill, Fill::Continue) || !self.profile.uffd_private_shmem_anon
        });
        if let Some(f) = shared_file {
            if index >= self.filex(f).size_pages {
                return Err(Error::errno(
                    Errno::EFAULT,
                    call,
                    format!("{addr:#x} is beyond the end of the shmem object"),
                ));
            }
            let pfn = match fill {
                // mfill_atomic_pte_continue: shmem_get_folio(SGP_NOALLOC) reads a swapped page
                // back in (a MINOR fault left it in swap); no page at all is -ENOENT → -EFAULT
                Fill::Continue => {
                    let p = match self.filex(f).pages.get(&index).copied() {
                        Some(CacheEntry::Page(p)) => {
                            self.get_page(p);
                            p
                        }
                        Some(CacheEntry::Swap(off)) => match self.shmem_swapin_folio(f, index, off, false) {
                            Ok((p, _)) => p,
                            Err(Fault::Oom) => {
                                return Err(Error::errno(
                                    Errno::ENOMEM,
                                    call,
                                    format!("no memory to swap in the page at {addr:#x}"),
                                ));
                            }
                            Err(_) => {
                                return Err(Error::errno(
                                    Errno::EAGAIN,
                                    call,
                                    format!("the swap entry at {addr:#x} changed meanwhile; retry"),
                                ));
                            }
                        },
                        None => {
                            return Err(Error::errno(Errno::EFAULT, call, format!("no page cache page at {addr:#x}")));
                        }
                    };
                    if !self.pte_none_mostly(self.mmx(pid).pt.pte(idx)) {
                        self.put_page(p);
                        return Err(eexist());
                    }
                    p
                }
                Fill::Copy(_) | Fill::Zero => {
                    let Some(p) = self.alloc_page(crate::mm::page_alloc::Gfp::User) else {
                        return Err(Error::errno(Errno::ENOMEM, call, "no memory for the page"));
                    };
                    if self.filex(f).pages.contains_key(&index) {
                        self.put_page(p);
                        return Err(eexist());
                    }
                    self.mem.set_content(p, if let Fill::Copy(v) = fill { v } else { 0 });
                    self.shmem_add_to_page_cache(f, index, p);
                    self.lru_cache_add(p);
                    if !self.pte_none_mostly(self.mmx(pid).pt.pte(idx)) {
                        self.shmem_delete_from_page_cache(f, index);
                        self.put_page(p);
                        return Err(eexist());
                    }
                    self.mem.frames[p as usize].set(pg::PG_DIRTY);
                    p
                }
            };
            let mut e = self.mk_pte(pfn, prot);
            if self.profile.mfill_pte_always_dirty {
                // mfill_atomic_install_pte (v6.0+): "_dst_pte = pte_mkdirty(_dst_pte); if
                // (page_in_cache && !vm_shared) writable = false; if (writable) _dst_pte =
                // pte_mkwrite(_dst_pte, dst_vma);"
                e = arch.pte_mkdirty(e);
                if flags & vm::VM_WRITE != 0 && flags & vm::VM_SHARED != 0 {
                    e = arch.pte_mkwrite(e);
                }
            } else if flags & vm::VM_WRITE != 0 {
                // 4.x shmem_mcopy_atomic_pte: "if (dst_vma->vm_flags & VM_WRITE) _dst_pte =
                // pte_mkwrite(pte_mkdirty(_dst_pte));" (VM_SHARED is not tested: a MAP_PRIVATE
                // fill is mapped writable onto the page cache page, the bug 5b51072e97d5 fixed)
                e = arch.pte_mkwrite(arch.pte_mkdirty(e));
            }
            self.add_rss(pid, MM_SHMEMPAGES, 1);
            self.page_add_rmap(pfn);
            self.set_pte_at(pid, idx, e);
            self.tick(self.cost.uffd_copy);
            return Ok(());
        }
        if matches!(fill, Fill::Continue) {
            return Err(einval(call, "UFFDIO_CONTINUE on an anonymous VMA"));
        }
        if matches!(fill, Fill::Zero) && !(self.profile.uffd_zeropage_checks_forbids && self.mm_forbids_zeropage(pid)) {
            // mfill_zeropage_pte: the shared zero page, even where faults may not map it
            if !self.pte_none_mostly(self.mmx(pid).pt.pte(idx)) {
                return Err(eexist());
            }
            let e = arch.pte_mkspecial(arch.mk_pte(ZERO_PFN, prot));
            self.set_pte_at(pid, idx, e);
            self.tick(self.cost.uffd_copy / 2);
            return Ok(());
        }
        // mcopy_atomic_pte / mfill_atomic_pte_zeroed_folio: a new anon page
        self.anon_vma_prepare(vma);
        let Some(p) = self.alloc_page(crate::mm::page_alloc::Gfp::User) else {
            return Err(Error::errno(Errno::ENOMEM, call, "no memory for the page"));
        };
        self.mem.set_content(p, if let Fill::Copy(v) = fill { v } else { 0 });
        let mut e = self.mk_pte(p, prot);
        if self.profile.mfill_pte_always_dirty {
            // mfill_atomic_install_pte (v6.0+): pte_mkdirty unconditionally, pte_mkwrite only
            // for VM_WRITE
            e = arch.pte_mkdirty(e);
            if flags & vm::VM_WRITE != 0 {
                e = arch.pte_mkwrite(e);
            }
        } else if flags & vm::VM_WRITE != 0 {
            // 4.x mcopy_atomic_pte: "if (dst_vma->vm_flags & VM_WRITE) _dst_pte =
            // pte_mkwrite(pte_mkdirty(_dst_pte));"
            e = arch.pte_mkwrite(arch.pte_mkdirty(e));
        }
        if !self.pte_none_mostly(self.mmx(pid).pt.pte(idx)) {
            self.put_page(p);
            return Err(eexist());
        }
        self.add_rss(pid, MM_ANONPAGES, 1);
        self.page_add_new_anon_rmap(p, vma, addr);
        self.lru_cache_add_vma(p, vma);
        self.set_pte_at(pid, idx, e);
        self.tick(self.cost.uffd_copy);
        Ok(())
    }
}

#[derive(Clone, Copy)]
enum Fill {
    Copy(u64),
    Zero,
    Continue,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::{Access, Fault, Vmf};
    use crate::mm::mmap::{MapKind, PROT_READ};
    use crate::testutil::kernel;

    #[test]
    fn uffdio_copy_into_map_private_shmem_goes_to_the_page_cache_before_v4_20() {
        // v4.13/v4.17/v4.18 mm/userfaultfd.c __mcopy_atomic: every shmem VMA goes to
        // shmem_mcopy_atomic_pte, which adds the page to the shmem page cache; 5b51072e97d5
        // (v4.20) "userfaultfd: shmem: allocate anonymous memory for MAP_PRIVATE shmem"
        for (profile, in_cache) in [("4.13", true), ("4.17", true), ("4.18", true), ("6.12", false)] {
            let mut k = kernel(profile);
            let pid = k.spawn("t", false).unwrap();
            let f = k.shmem_create("m", 4);
            let a = k.mmap(pid, 4 * 4096, MapKind::Shmem, false, Some((f, 0))).unwrap();
            let u = k.userfaultfd(pid).unwrap();
            k.uffdio_api(u, UFFD_API, 0).unwrap();
            k.uffdio_register(u, a, 4 * 4096, UFFDIO_REGISTER_MODE_MISSING).unwrap();
            k.uffdio_copy(u, a, &[42], 0).unwrap();
            k.uffdio_zeropage(u, a + 4096, 4096, 0).unwrap();
            let cached = k.file(f).unwrap().pages.len();
            assert_eq!(cached, if in_cache { 2 } else { 0 }, "{profile}");
            assert_eq!(k.access(pid, 0, a, false, 0).unwrap(), Access::Done { value: 42 }, "{profile}");
            k.check_invariants().unwrap();
        }
    }

    #[test]
    fn uffdio_api_refuses_sigbus_and_thread_id_before_v4_14() {
        // fs/userfaultfd.c v4.13 userfaultfd_api: "if (uffdio_api.api != UFFD_API || (features
        // & ~UFFD_API_FEATURES)) goto err_out;" (-EINVAL); UFFD_FEATURE_SIGBUS and
        // UFFD_FEATURE_THREAD_ID joined UFFD_API_FEATURES in v4.14.
        use crate::profile::uffd_features::{SIGBUS, THREAD_ID};
        for feature in [SIGBUS, THREAD_ID] {
            for (profile, offered) in [("4.13", false), ("4.17", true), ("6.12", true)] {
                let mut k = kernel(profile);
                let pid = k.spawn("t", false).unwrap();
                let u = k.userfaultfd(pid).unwrap();
                let r = k.uffdio_api(u, UFFD_API, feature);
                assert_eq!(r.is_ok(), offered, "{profile} {feature:#x}: {r:?}");
                if let Err(e) = r {
                    assert_eq!(e.errno_value(), Some(crate::error::Errno::EINVAL), "{profile}");
                }
            }
        }
    }

    #[test]
    fn uffdio_copy_into_a_read_only_vma_maps_a_dirty_pte_from_v6_0() {
        // mm/userfaultfd.c v6.12 mfill_atomic_install_pte: "_dst_pte = pte_mkdirty(_dst_pte);"
        // unconditionally; v4.18 mcopy_atomic_pte: "if (dst_vma->vm_flags & VM_WRITE) _dst_pte =
        // pte_mkwrite(pte_mkdirty(_dst_pte));"
        for (profile, dirty) in [("6.12", true), ("4.18", false)] {
            let mut k = kernel(profile);
            let pid = k.spawn("t", false).unwrap();
            let a = k.mmap_prot(pid, 4096, PROT_READ, MapKind::Anon, false, None).unwrap();
            let u = k.userfaultfd(pid).unwrap();
            k.uffdio_api(u, UFFD_API, 0).unwrap();
            k.uffdio_register(u, a, 4096, UFFDIO_REGISTER_MODE_MISSING).unwrap();
            k.uffdio_copy(u, a, &[5], 0).unwrap();
            let pte = k.pte_at(pid, a).unwrap();
            assert_eq!(k.arch().pte_dirty(pte), dirty, "{profile}: {pte:#x}");
            assert!(!k.arch().pte_write(pte), "{profile}: no VM_WRITE, no pte_mkwrite");
        }
    }

    #[test]
    fn a_fault_on_a_released_userfaultfd_is_retried_not_sigbus() {
        // fs/userfaultfd.c handle_userfault (v4.11+, 656710a60e36; v4.13..v6.12): "if
        // (unlikely(READ_ONCE(ctx->released))) { ... ret = VM_FAULT_NOPAGE; goto out; }"
        for profile in ["4.13", "4.17", "4.18", "6.12"] {
            let mut k = kernel(profile);
            let pid = k.spawn("t", false).unwrap();
            let a = k.mmap(pid, 4096, MapKind::Anon, false, None).unwrap();
            let u = k.userfaultfd(pid).unwrap();
            k.uffdio_api(u, UFFD_API, 0).unwrap();
            k.uffdio_register(u, a, 4096, UFFDIO_REGISTER_MODE_MISSING).unwrap();
            // the window between ctx->released and the VMAs being disarmed
            k.uffds[u as usize].released = true;
            let vma = k.vma_lookup(pid, a).unwrap();
            let idx = k.pte_alloc(pid, a).unwrap();
            let vmf = Vmf { pid, tid: 0, vma, addr: a, real_addr: a, write: false, idx, orig_pte: 0 };
            assert_eq!(k.handle_userfault(vmf, crate::uffd::REASON_MISSING), Fault::Retry, "{profile}");
        }
    }
}
