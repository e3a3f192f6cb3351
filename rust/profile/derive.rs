//! Derived profiles: a built-in profile with some switches changed, under a name of the user's.
//!
//! Every release difference is a switch of [`Profile`]; [`SWITCHES`] names each one with its
//! values and the upstream change behind it, so a user can try a variant ("4.18 with a
//! userfaultfd guard in the CBRL path") without a rebuild: [`Profile::derive`]. A derived
//! profile is registered by name for the life of the process, so every entry point that takes a
//! profile name (the kernel, the studies, the explorer, replay, snapshots) accepts it.
//!
//! Names are interned as `&'static str` (a profile is `Copy`-cheap and its name is stored in
//! many model structs): at most [`MAX_DERIVED`] distinct derived names per process, each at most
//! [`MAX_NAME_LEN`] bytes, so the interned memory is bounded.

use super::fixes::{CbrlGuard, CmmaApply, CmmaSetUnused, Diag10Guard};
use super::{ForbidsZeropage, PROFILE_NAMES, Profile, UnusedGuard, ZeroPageRemoval};
use crate::arch::Arch;
use crate::arch::s390::pgste::PgsteLayout;
use crate::error::{Error, Result};
use std::fmt;
use std::sync::Mutex;

/// The most derived profile names one process can define.
pub const MAX_DERIVED: usize = 256;
/// The longest name of a derived profile, in bytes.
pub const MAX_NAME_LEN: usize = 64;

/// The value of one switch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SwitchValue {
    Bool(bool),
    Int(u64),
    /// One of the switch's named values ([`SwitchKind::Choice`]).
    Choice(&'static str),
}

impl fmt::Display for SwitchValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SwitchValue::Bool(b) => write!(f, "{b}"),
            SwitchValue::Int(i) => write!(f, "{i}"),
            SwitchValue::Choice(c) => write!(f, "{c}"),
        }
    }
}

/// What values a switch takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwitchKind {
    Bool,
    Int,
    Choice(&'static [&'static str]),
}

impl SwitchKind {
    /// The values, for an error message or a listing.
    pub fn describe(&self) -> String {
        match self {
            SwitchKind::Bool => "true, false".into(),
            SwitchKind::Int => "an integer".into(),
            SwitchKind::Choice(c) => c.join(", "),
        }
    }
}

/// One switch of [`Profile`]: its name (the field's), values, the change behind it, and access.
pub struct Switch {
    pub name: &'static str,
    pub kind: SwitchKind,
    /// The upstream change (release, commit or subject, author) that introduced the behaviour
    /// the switch's non-initial value stands for; "candidate" for the fixes not upstream.
    pub commit: &'static str,
    get: fn(&Profile) -> SwitchValue,
    set: fn(&mut Profile, SwitchValue) -> Option<()>,
}

impl Switch {
    pub fn get(&self, p: &Profile) -> SwitchValue {
        (self.get)(p)
    }

    /// Parse `text` as a value of this switch: `true`/`false` (or 1/0, yes/no, on/off), an
    /// integer (decimal or 0x hex), or a choice (case-insensitive).
    pub fn parse(&self, text: &str) -> Result<SwitchValue> {
        let t = text.trim();
        let v = match self.kind {
            SwitchKind::Bool => match t.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Some(SwitchValue::Bool(true)),
                "false" | "0" | "no" | "off" => Some(SwitchValue::Bool(false)),
                _ => None,
            },
            SwitchKind::Int => {
                let parsed = match t.strip_prefix("0x") {
                    Some(h) => u64::from_str_radix(h, 16),
                    None => t.parse(),
                };
                parsed.ok().map(SwitchValue::Int)
            }
            SwitchKind::Choice(c) => c.iter().find(|n| n.eq_ignore_ascii_case(t)).map(|n| SwitchValue::Choice(n)),
        };
        v.ok_or_else(|| self.bad_value(text))
    }

    /// Check `v` against the switch's kind (a choice is matched case-insensitively).
    pub fn check(&self, v: SwitchValue) -> Result<SwitchValue> {
        match (self.kind, v) {
            (SwitchKind::Bool, SwitchValue::Bool(_)) | (SwitchKind::Int, SwitchValue::Int(_)) => Ok(v),
            (SwitchKind::Choice(_), SwitchValue::Choice(c)) => self.parse(c),
            _ => Err(self.bad_value(&v.to_string())),
        }
    }

    fn bad_value(&self, text: &str) -> Error {
        Error::Profile(format!("switch {} cannot be {text:?}; its values are: {}", self.name, self.kind.describe()))
    }
}

fn choice_of<T: Copy + PartialEq>(table: &'static [(&'static str, T)], v: T) -> SwitchValue {
    SwitchValue::Choice(table.iter().find(|(_, x)| *x == v).map_or("?", |(n, _)| n))
}

fn from_choice<T: Copy>(table: &'static [(&'static str, T)], v: SwitchValue) -> Option<T> {
    match v {
        SwitchValue::Choice(c) => table.iter().find(|(n, _)| *n == c).map(|(_, x)| *x),
        _ => None,
    }
}

/// The named values of each enum switch (the variant names).
macro_rules! choices {
    ($($konst:ident, $names:ident: $ty:ty = [$($v:ident),+ $(,)?];)*) => {
        $(
            const $konst: &[(&str, $ty)] = &[$((stringify!($v), <$ty>::$v)),+];
            const $names: &[&str] = &[$(stringify!($v)),+];
        )*
    };
}

choices! {
    PGSTE_LAYOUT, PGSTE_LAYOUT_N: PgsteLayout = [Old, New];
    FORBIDS_ZEROPAGE, FORBIDS_ZEROPAGE_N: ForbidsZeropage = [UsesSkeys, HasPgste, NoCowSharing];
    ZERO_PAGE_REMOVAL, ZERO_PAGE_REMOVAL_N: ZeroPageRemoval = [ZapOnSkeyEnable, ZapOnSieEnable, UnshareOnCowDisable];
    UNUSED_GUARD, UNUSED_GUARD_N: UnusedGuard = [None, UffdArmed, PresentAndUffdArmed];
    CBRL_GUARD, CBRL_GUARD_N: CbrlGuard = [None, UffdArmed];
    DIAG10_GUARD, DIAG10_GUARD_N: Diag10Guard = [None, UffdArmed];
    CMMA_APPLY, CMMA_APPLY_N: CmmaApply = [AtStattrDone, AfterListen];
    CMMA_SET_UNUSED, CMMA_SET_UNUSED_N: CmmaSetUnused = [Apply, NonResidentOnly];
}

/// One [`Switch`] per field: `bool`, `int` or `choice(TABLE)`, with its commit.
macro_rules! switch {
    (bool $($f:ident).+, $commit:expr) => {
        Switch {
            name: last!($($f).+),
            kind: SwitchKind::Bool,
            commit: $commit,
            get: |p| SwitchValue::Bool(p.$($f).+),
            set: |p, v| match v {
                SwitchValue::Bool(b) => {
                    p.$($f).+ = b;
                    Some(())
                }
                _ => None,
            },
        }
    };
    (int $($f:ident).+, $commit:expr) => {
        Switch {
            name: last!($($f).+),
            kind: SwitchKind::Int,
            commit: $commit,
            get: |p| SwitchValue::Int(p.$($f).+),
            set: |p, v| match v {
                SwitchValue::Int(i) => {
                    p.$($f).+ = i;
                    Some(())
                }
                _ => None,
            },
        }
    };
    (choice $table:ident $names:ident $($f:ident).+, $commit:expr) => {
        Switch {
            name: last!($($f).+),
            kind: SwitchKind::Choice($names),
            commit: $commit,
            get: |p| choice_of($table, p.$($f).+),
            set: |p, v| {
                p.$($f).+ = from_choice($table, v)?;
                Some(())
            },
        }
    };
}

macro_rules! last {
    ($f:ident) => {
        stringify!($f)
    };
    ($g:ident . $($f:ident).+) => {
        last!($($f).+)
    };
}

/// Every switch of [`Profile`] (every field but `name`, `release` and `arch`), in field order.
pub static SWITCHES: &[Switch] = &[
    switch!(choice PGSTE_LAYOUT PGSTE_LAYOUT_N pgste_layout,
        "v6.14: C. Imbrenda, \"KVM: s390: move the softbits in the PGSTEs to the other usable area\" (lore 20250123144627.312456-15)"),
    switch!(bool swp_exclusive, "v6.0: D. Hildenbrand, \"s390/pgtable: support __HAVE_ARCH_PTE_SWP_EXCLUSIVE\""),
    switch!(bool x86_swp_offset_inverted,
        "v4.19: L. Torvalds, \"x86/speculation/l1tf: Protect swap entries against L1TF\" (after \"x86/speculation/l1tf: Change order of offset/type in swap entry\"; commit ids not found in the stored sources)"),
    switch!(bool pg_anon_exclusive, "v5.19: 6c287605fd56 \"mm: remember exclusively mapped anonymous pages with PG_anon_exclusive\""),
    switch!(bool zap_unused_reset_clears_nodat, "v6.7: \"KVM: s390/mm: Properly reset no-dat\" (commit id not found in the stored sources)"),
    switch!(choice FORBIDS_ZEROPAGE FORBIDS_ZEROPAGE_N forbids_zeropage,
        "v4.14: fa41ba0d08de \"s390/mm: avoid empty zero pages for KVM guests to avoid postcopy hangs\" (HasPgste); v6.11: D. Hildenbrand, \"s390/mm: re-enable the shared zeropage for !PV and !skeys KVM guests\" (NoCowSharing)"),
    switch!(choice ZERO_PAGE_REMOVAL ZERO_PAGE_REMOVAL_N zero_page_removal,
        "v4.14: fa41ba0d08de (ZapOnSieEnable); v6.11: D. Hildenbrand, \"s390/mm: re-enable the shared zeropage for !PV and !skeys KVM guests\" (UnshareOnCowDisable)"),
    switch!(bool ttu_young_check, "v5.11: S. Butt, \"mm/rmap: always do TTU_IGNORE_ACCESS\" (false)"),
    switch!(bool vma_has_recency, "v6.3: Yu Zhao, \"mm: add vma_has_recency()\""),
    switch!(choice UNUSED_GUARD UNUSED_GUARD_N unused_guard,
        "v4.18: bce73e484239 \"mm: do not drop unused pages when userfaultd is running\" (UffdArmed, the seed); 2025: D. Hildenbrand's device-exclusive series (PresentAndUffdArmed)"),
    switch!(bool try_to_migrate_split, "v5.14: A. Popple, \"mm/rmap: split migration into its own function\""),
    switch!(bool lazyfree_refcount_check,
        "v5.18: M. Faria de Oliveira, \"mm: fix race between MADV_FREE reclaim and blkdev direct IO read\""),
    switch!(bool new_anon_active, "v5.9: J. Kim, \"mm/vmscan: protect the workingset on anonymous LRU\" (false)"),
    switch!(bool swapin_exclusive_writable, "v5.19: c145e0b47c77 \"mm: streamline COW logic in do_swap_page()\""),
    switch!(bool swapin_activates, "v5.9: J. Kim, \"mm/swap: implement workingset detection for anonymous LRU\" (false)"),
    switch!(bool workingset_anon, "v5.9: J. Kim, \"mm/swap: implement workingset detection for anonymous LRU\""),
    switch!(bool references_two_strikes, "v5.9: J. Kim, \"mm/vmscan: protect the workingset on anonymous LRU\""),
    switch!(bool referenced_mlocks, "v5.18: cea86fe246b6 \"mm/munlock: rmap call mlock_vma_page() munlock_vma_page()\""),
    switch!(bool remove_rmap_clears_mlock,
        "v5.18: H. Dickins, \"mm/munlock: replace clear_page_mlock() by final clearance\" (false; commit id not found in the stored sources)"),
    switch!(bool lru_add_culls_unevictable, "v4.16: 9c4e6b1a7027 \"mm, mlock, vmscan: no more skipping pagevecs\""),
    switch!(bool scan_balance_by_cost,
        "v5.8: 1431d4d11abb \"mm: base LRU balancing on an explicit cost model\", b91ac374346b \"mm: vmscan: enforce inactive:active ratio at the reclaim root\", 53138cea7f39 \"mm: vmscan: move file exhaustion detection to the node level\"; v5.9: 170b04b7ae49 \"mm/workingset: prepare the workingset detection infrastructure for anon LRU\" (anon refaults)"),
    switch!(bool madv_cold_pageout, "v5.4: M. Kim, \"mm: introduce MADV_COLD\" and \"mm: introduce MADV_PAGEOUT\""),
    switch!(int min_free_kbytes_max, "v5.8: init_per_zone_wmark_min's upper bound raised from 65536 to 262144 (subject unverified)"),
    switch!(bool consider_reclaim_throttle,
        "v5.16: 69392a403f49 \"mm/vmscan: throttle reclaim when no progress is being made\", 1b4e3f26f9f7 \"mm: vmscan: Reduce throttling due to a failure to make progress\" (skip_throttle_noprogress, the one-jiffy timeout)"),
    switch!(bool uffd_minor,
        "v5.13: A. Rasmussen, \"userfaultfd: add minor fault registration mode\" (shmem: v5.14, \"userfaultfd/shmem: support minor fault registration for shmem\")"),
    switch!(bool uffd_wp, "v5.7: P. Xu, \"userfaultfd: wp: add UFFDIO_COPY_MODE_WP\" series"),
    switch!(bool uffd_zeropage_checks_forbids,
        "v6.10: D. Hildenbrand, \"mm/userfaultfd: don't place zeropages when zeropages are disallowed\""),
    switch!(bool uffd_register_vma_find, "v6.1: L. Howlett, \"userfaultfd: use maple tree iterator to iterate VMAs\""),
    switch!(bool mfill_pte_always_dirty, "v6.0: 9ae0f87d009c \"mm/shmem: unconditionally set pte dirty in mfill_atomic_install_pte\""),
    switch!(bool uffd_private_shmem_anon, "v4.20: 5b51072e97d5 \"userfaultfd: shmem: allocate anonymous memory for MAP_PRIVATE shmem\""),
    switch!(bool mprotect_write_upgrade,
        "v6.0: 64fe24a3e05e \"mm/mprotect: try avoiding write faults for exclusive anonymous pages when changing protection\""),
    switch!(bool mlock_fixup_mlocks_pages, "v5.18: 34b6792380ce \"mm/munlock: mlock_pte_range() when mlocking or munlocking\""),
    switch!(bool uffd_remap_clears_unfeatured, "v5.0: P. Xu, \"userfaultfd: clear flag if remap event not enabled\" (patch of Dec 2018; id and release unverified)"),
    switch!(bool proactive_reclaim_quarter_batch, "v6.9: 287d5fedb377 \"mm: memcg: use larger batches for proactive reclaim\""),
    switch!(bool hwpoison_ttu_flag, "v6.3 (backported to 6.1.y/6.2.y stable): 6da6b1d4a7df \"mm/hwpoison: convert TTU_IGNORE_HWPOISON to TTU_HWPOISON\""),
    switch!(bool migration_entry_ad, "v6.1: 2e3468778dbe \"mm/swap: remember young/dirty bit for page migrations\""),
    switch!(int swp_device_types,
        "v4.14: 5042db43cc26 \"mm/ZONE_DEVICE: new type of ZONE_DEVICE for unaddressable memory\" (2); v5.14: b756a3b5e7ea \"mm: device exclusive memory access\" (4)"),
    switch!(bool pte_markers, "v5.19: 5c041f5d1f23 \"mm: teach core mm about pte markers\""),
    switch!(bool uffd_wp_markers,
        "v5.19: 1db9dbc2ef05 \"mm/uffd: PTE_MARKER_UFFD_WP\", 999dad824c39 \"mm/shmem: persist uffd-wp bit across zapping for file-backed\", b1f9e876862d \"mm/uffd: enable write protection for shmem & hugetlbfs\""),
    switch!(bool uffd_unregister_resets_wp, "v6.0: f369b07c8614 \"mm/uffd: reset write protection when unregister with wp-mode\""),
    switch!(bool uffd_close_resets_wp, "v6.9: c88033efe9a3 \"mm/userfaultfd: reset ptes when close() for wr-protected ones\""),
    switch!(bool uffd_wp_writenotify,
        "v6.2 (release unverified): 51d3d5eb74ff \"mm/userfaultfd: enable writenotify while userfaultfd-wp is enabled for a VMA\""),
    switch!(bool vmscan_write_folio_tracepoint, "v5.18: e0cd5e7ffa54 \"mm/vmscan: Convert pageout() to take a folio\""),
    switch!(int uffd_api_features,
        "UFFD_API_FEATURES of the release (v4.14: 2d6d6f5a09a9 SIGBUS, 9d4ac934829a THREAD_ID, ids unverified; v6.12 adds MINOR, WP, EXACT_ADDRESS, POISON, MOVE)"),
    switch!(bool lru_gen,
        "v6.1: ec1c86b25f4b \"mm: multi-gen LRU: groundwork\", ac35a4902374 \"minimal implementation\", 018ee47f1489 \"exploit locality in rmap\", bd74fdaea146 \"support page table walks\", 354ed5974429 \"kill switch\" (CONFIG_LRU_GEN_ENABLED, the caps), 1332a809d95a \"thrashing prevention\" (min_ttl_ms)"),
    switch!(bool lru_gen_activate_resets_refs,
        "v6.13 (id unverified; Debian 6.12 from stable 6.12.114): W. Xu, \"mm/mglru: reset page lru tier bits when activating\""),
    switch!(bool lru_gen_writeback_reactivates,
        "mainline release and id unverified; Debian 6.12 from stable 6.12.114: \"mm/mglru: use the common routine for dirty/writeback reactivation\""),
    switch!(bool lru_gen_sort_lets_unevictable_through,
        "mainline release and id unverified; Debian 6.12 from stable 6.12.114: \"mm/mglru: fix and remove redundant unevictable folio handling\""),
    switch!(choice CBRL_GUARD CBRL_GUARD_N fixes.cbrl_guard, "candidate (not upstream): userfaultfd_armed check before ptep_zap_unused in __gmap_zap"),
    switch!(choice DIAG10_GUARD DIAG10_GUARD_N fixes.diag10_guard, "candidate (not upstream): gmap_discard skips userfaultfd-armed VMAs"),
    switch!(choice CMMA_APPLY CMMA_APPLY_N fixes.cmma_apply, "candidate QEMU change (not upstream): apply storage attributes after postcopy_ram_enable_notify"),
    switch!(choice CMMA_SET_UNUSED CMMA_SET_UNUSED_N fixes.cmma_set_unused,
        "candidate (not upstream): KVM_S390_SET_CMMA_BITS keeps a resident page STABLE"),
];

/// A named variant of a built-in profile as distributions ship it: (name, base, switches,
/// who ships it). [`Profile::get`] derives one the first time its name is asked for.
pub struct Variant {
    pub name: &'static str,
    pub base: &'static str,
    pub switches: &'static [(&'static str, SwitchValue)],
    pub stands_for: &'static str,
}

/// The distribution-like variants: 6.12 as Debian (amd64, s390x), Fedora and Arch build it, with
/// `CONFIG_LRU_GEN_ENABLED=y` (upstream's default, the built-in "6.12", is `n`); and the same
/// at an earlier stable update, 6.12.107, the s390x replay guests' kernel, which the three MGLRU
/// backports of the stable update 6.12.114 have changed since (`lru_gen_activate_resets_refs`,
/// `lru_gen_writeback_reactivates`, `lru_gen_sort_lets_unevictable_through`; the audit of
/// 6.12.107's source against 6.12.117's in FINDINGS.md section 8 found no other difference the
/// model's decisions depend on).
pub static VARIANTS: &[Variant] = &[
    Variant {
        name: "6.12-debian",
        base: "6.12",
        switches: &[("lru_gen", SwitchValue::Bool(true))],
        stands_for: "6.12 with CONFIG_LRU_GEN_ENABLED=y, as Debian, Fedora and Arch build it (lru_gen/enabled 0x0001 on s390x, 0x0007 on x86_64)",
    },
    Variant {
        name: "6.12.107-debian",
        base: "6.12",
        switches: &[
            ("lru_gen", SwitchValue::Bool(true)),
            ("lru_gen_activate_resets_refs", SwitchValue::Bool(false)),
            ("lru_gen_writeback_reactivates", SwitchValue::Bool(false)),
            ("lru_gen_sort_lets_unevictable_through", SwitchValue::Bool(false)),
        ],
        stands_for: "Debian's 6.12.107-1 (lru_gen on), before the stable update 6.12.114 brought \"mm/mglru: reset page lru tier bits when activating\", \"mm/mglru: use the common routine for dirty/writeback reactivation\" and \"mm/mglru: fix and remove redundant unevictable folio handling\": the s390x replay guests' kernel",
    },
];

/// The variant named `name`, derived (and registered) on `arch`.
pub(super) fn variant(name: &str, arch: Arch) -> Option<Result<Profile>> {
    let v = VARIANTS.iter().find(|v| v.name == name)?;
    Some(Profile::derive(v.base, arch, v.name, v.switches))
}

/// The switch named `name`, or an error listing every switch.
pub fn switch(name: &str) -> Result<&'static Switch> {
    SWITCHES.iter().find(|s| s.name == name).ok_or_else(|| {
        let all: Vec<&str> = SWITCHES.iter().map(|s| s.name).collect();
        Error::Profile(format!("unknown switch {name:?}; the switches are: {}", all.join(", ")))
    })
}

/// The derived profiles defined in this process, by name.
static DERIVED: Mutex<Vec<Profile>> = Mutex::new(Vec::new());

fn derived() -> std::sync::MutexGuard<'static, Vec<Profile>> {
    // a panic while holding the lock leaves the Vec whole (pushes only): keep using it
    DERIVED.lock().unwrap_or_else(|e| e.into_inner())
}

/// Check a derived profile's name: 1..=64 bytes of letters, digits and `. + - _ =`, not a
/// built-in name.
fn check_name(name: &str) -> Result<()> {
    if PROFILE_NAMES.contains(&name) {
        return Err(Error::Profile(format!(
            "{name:?} is a built-in profile; give the derived profile a name of its own, e.g. \"{name}+fix\""
        )));
    }
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.chars().all(|c| c.is_ascii_alphanumeric() || ".+-_=,".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::Profile(format!("profile name {name:?} must be 1 to {MAX_NAME_LEN} letters, digits or . + - _ = ,")))
    }
}

/// Register `p` (a derived profile) under its name; the same name with the same switches again
/// is fine, with other switches an error.
fn register(p: Profile) -> Result<Profile> {
    let mut reg = derived();
    if let Some(old) = reg.iter().find(|o| o.name == p.name && o.arch == p.arch) {
        if *old == p {
            return Ok(p);
        }
        let diff: Vec<String> = old.diff(&p).iter().map(|(s, a, b)| format!("{s} ({a} there, {b} here)")).collect();
        return Err(Error::Profile(format!(
            "profile {:?} is already defined with other switches: {}; choose another name",
            p.name,
            diff.join(", ")
        )));
    }
    // bounded: the name was interned (at most MAX_DERIVED), one entry per name and arch
    reg.push(p.clone());
    Ok(p)
}

/// The derived names interned in this process.
static NAMES: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());

/// `name` as a `&'static str`: a built-in name, or a derived name interned before, or a new
/// one leaked once (at most [`MAX_DERIVED`] of them, so the memory is bounded).
fn intern(name: &str) -> Result<&'static str> {
    if let Some(&n) = PROFILE_NAMES.iter().find(|n| **n == name) {
        return Ok(n);
    }
    check_name(name)?;
    let mut names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(&n) = names.iter().find(|n| **n == name) {
        return Ok(n);
    }
    if names.len() >= MAX_DERIVED {
        return Err(Error::Profile(format!(
            "this process already named {MAX_DERIVED} derived profiles, the most it can hold; reuse a name"
        )));
    }
    let n: &'static str = Box::leak(name.to_owned().into_boxed_str());
    names.push(n);
    Ok(n)
}

/// The registered derived profile `name` on `arch`.
pub(super) fn lookup(name: &str, arch: Arch) -> Option<Profile> {
    derived().iter().find(|p| p.name == name).map(|p| Profile { arch, ..p.clone() })
}

/// The names of the derived profiles defined in this process, in order of definition.
pub fn derived_names() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for p in derived().iter() {
        if !out.contains(&p.name) {
            out.push(p.name);
        }
    }
    out
}

impl Profile {
    /// The built-in profile `base` (or a derived one) on `arch` with `switches` changed, named
    /// `name`, and registered so that [`Profile::get`] finds it by name. Errors
    /// ([`Error::Profile`]): an unknown base, switch or value (each lists the choices), a name
    /// that is built-in or malformed, or taken by a profile with other switches.
    pub fn derive(base: &str, arch: Arch, name: &str, switches: &[(&str, SwitchValue)]) -> Result<Profile> {
        let mut p = Profile::get(base, arch).map_err(|e| Error::Profile(e.to_string()))?;
        for (s, v) in switches {
            let sw = switch(s)?;
            let v = sw.check(*v)?;
            (sw.set)(&mut p, v).ok_or_else(|| sw.bad_value(&v.to_string()))?;
        }
        p.check_switches()?;
        check_name(name)?;
        p.name = intern(name)?;
        register(p)
    }

    /// [`Profile::derive`] with values as text (`--set name=value`, a TOML file's strings).
    pub fn derive_text(base: &str, arch: Arch, name: &str, switches: &[(&str, &str)]) -> Result<Profile> {
        let mut vals = Vec::with_capacity(switches.len());
        for (s, t) in switches {
            vals.push((*s, switch(s)?.parse(t)?));
        }
        Profile::derive(base, arch, name, &vals)
    }

    /// Whether this is a built-in profile (by name; its switches are the release's).
    pub fn is_builtin(&self) -> bool {
        PROFILE_NAMES.contains(&self.name)
    }

    /// The built-in profile this one derives from: the one of the same release (each built-in
    /// profile is a different release).
    pub fn base(&self) -> Profile {
        PROFILE_NAMES
            .iter()
            .filter_map(|n| Profile::get(n, self.arch).ok())
            .find(|b| b.release == self.release)
            .unwrap_or_else(|| self.clone())
    }

    /// The value of the switch `name`.
    pub fn switch(&self, name: &str) -> Result<SwitchValue> {
        Ok(switch(name)?.get(self))
    }

    /// Every switch whose value differs between `self` and `other`: (switch, self's, other's).
    pub fn diff(&self, other: &Profile) -> Vec<(&'static str, SwitchValue, SwitchValue)> {
        SWITCHES
            .iter()
            .filter_map(|s| {
                let (a, b) = (s.get(self), s.get(other));
                (a != b).then_some((s.name, a, b))
            })
            .collect()
    }

    /// `self` with the switches of `names` taken from `other` (the test of a bisection step),
    /// named `name` (interned like a derived name) but not registered: the many steps of one
    /// bisection share one name.
    pub fn with_switches_of(&self, other: &Profile, names: &[&str], name: &str) -> Result<Profile> {
        let mut p = self.clone();
        for n in names {
            let sw = switch(n)?;
            (sw.set)(&mut p, sw.get(other)).ok_or_else(|| sw.bad_value(&sw.get(other).to_string()))?;
        }
        p.name = intern(name)?;
        Ok(p)
    }

    /// The name of a profile read from a snapshot, as stored (built-in or derived, interned).
    /// The snapshot's kernel keeps the stored switches whatever this process defined under
    /// the name.
    pub(super) fn restore_name(name: &str) -> Result<&'static str> {
        intern(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_profile_field_but_name_release_arch_is_a_switch() {
        // the pretty Debug output has one top-level field a line; a switch added to Profile
        // must be added to SWITCHES, with its commit
        let dbg = format!("{:#?}", Profile::get("4.18", Arch::S390x).unwrap());
        let top = |l: &str| l.strip_prefix("    ").filter(|r| !r.starts_with(' ')).map(str::to_owned);
        let inner = |l: &str| l.strip_prefix("        ").filter(|r| !r.starts_with(' ')).map(str::to_owned);
        let mut fields = Vec::new();
        let mut in_fixes = false;
        for l in dbg.lines() {
            if let Some(r) = top(l) {
                in_fixes = r.starts_with("fixes:");
                let f = r.split(':').next().unwrap().to_string();
                let ident = f.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if ident && !["name", "release", "arch", "fixes"].contains(&f.as_str()) {
                    fields.push(f);
                }
            } else if let Some(r) = inner(l).filter(|_| in_fixes) {
                fields.push(r.split(':').next().unwrap().to_string());
            }
        }
        let switches: Vec<String> = SWITCHES.iter().map(|s| s.name.to_string()).collect();
        assert_eq!(fields, switches, "every Profile field needs a Switch with its commit");
    }

    #[test]
    fn derive_changes_only_the_named_switches_and_is_found_by_name() {
        let p = Profile::derive_text("4.18", Arch::S390x, "4.18+test-cbrl", &[("cbrl_guard", "uffdarmed")]).unwrap();
        assert_eq!(p.fixes.cbrl_guard, CbrlGuard::UffdArmed);
        let base = Profile::get("4.18", Arch::S390x).unwrap();
        assert_eq!(base.diff(&p), vec![("cbrl_guard", SwitchValue::Choice("None"), SwitchValue::Choice("UffdArmed"))]);
        assert_eq!(Profile::get("4.18+test-cbrl", Arch::S390x).unwrap(), p);
        assert_eq!(p.base(), base);
    }

    #[test]
    fn an_unknown_switch_or_value_lists_the_choices() {
        let e = Profile::derive_text("4.18", Arch::S390x, "x1", &[("cbrl_gaurd", "UffdArmed")]).unwrap_err();
        assert!(matches!(e, Error::Profile(_)) && e.to_string().contains("cbrl_guard"), "{e}");
        let e = Profile::derive_text("4.18", Arch::S390x, "x1", &[("unused_guard", "Sometimes")]).unwrap_err();
        assert!(e.to_string().contains("None, UffdArmed, PresentAndUffdArmed"), "{e}");
        let e = Profile::derive_text("4.18", Arch::S390x, "x1", &[("swp_exclusive", "maybe")]).unwrap_err();
        assert!(e.to_string().contains("true, false"), "{e}");
        let e = Profile::derive_text("4.19", Arch::S390x, "x1", &[]).unwrap_err();
        assert!(e.to_string().contains("4.17"), "{e}");
    }

    #[test]
    fn a_name_is_not_redefined_with_other_switches() {
        Profile::derive_text("4.17", Arch::S390x, "x-redef", &[("unused_guard", "UffdArmed")]).unwrap();
        Profile::derive_text("4.17", Arch::S390x, "x-redef", &[("unused_guard", "UffdArmed")]).unwrap();
        let e = Profile::derive_text("4.17", Arch::S390x, "x-redef", &[]).unwrap_err();
        assert!(e.to_string().contains("already defined") && e.to_string().contains("unused_guard"), "{e}");
        assert!(Profile::derive_text("4.17", Arch::S390x, "4.18", &[]).is_err(), "a built-in name");
        assert!(Profile::derive_text("4.17", Arch::S390x, "a b", &[]).is_err(), "a space");
    }
}
