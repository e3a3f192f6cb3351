//! Sparse multi-level page tables in flat, index-addressed storage.
//!
//! One structure serves every arch; the arch supplies the [`Geometry`] (how many upper levels,
//! their shifts and sizes, the page-table size). Upper-level tables ("CRSTs" on s390: region
//! and segment tables; PGD/PUD/PMD on x86) hold the index of the child table (0 = empty) and the
//! arch renders them as kernel entry values (`pgd_val` and friends) when asked. The last level
//! holds the PTE values themselves, in the arch's format, in one flat `Vec<u64>`; a PGSTE mm
//! keeps its PGSTEs in a parallel vector at the same index (the kernel puts them in the second
//! half of the page-table page, `ptep + PTRS_PER_PTE`).
//!
//! Only touched ranges cost tables: a 1 TiB range that nobody touched has none.
//!
//! A clone is cheap where the explorer needs it (a clone per step): the upper tables are
//! shared copy-on-write between a `PageTables` and its clones (`Arc`, copied by the first write
//! to a shared table), and the state hash reads fingerprints of the upper tables and of the PTEs
//! and PGSTEs, cached until a write ([`crate::sim::fingerprint`]), instead of walking 2048-entry
//! tables that are nearly empty.

use crate::sim::fingerprint;
use crate::sim::hint::{Hint, Memo};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The shape of an arch's page tables.
#[derive(Debug)]
pub struct Geometry {
    /// Shifts of the upper levels, top-most possible level first (s390: region-first 53,
    /// region-second 42, region-third 31, segment 20; x86_64: PGD 39, PUD 30, PMD 21).
    pub upper_shifts: &'static [u32],
    /// Entries of an upper table (`_CRST_ENTRIES` 2048 on s390, 512 on x86_64).
    pub upper_entries: usize,
    /// Entries of a page table (`PTRS_PER_PTE`: 256 on s390, 512 on x86_64).
    pub pt_entries: usize,
    /// Index into `upper_shifts` of the level a new address space starts with.
    pub initial_top: usize,
    /// The value of an empty PTE (`_PAGE_INVALID` on s390, 0 on x86_64).
    pub pte_none: u64,
    /// Derived by [`Geometry::new`] once, read by every walk instead of computed again: the
    /// shift of `va` that keys the page table covering it (12 + log2 of `pt_entries`), ...
    pt_key_shift: u32,
    /// ... the shift that keys the lowest-level upper table covering it (the last level's shift
    /// + log2 of `upper_entries`), ...
    seg_key_shift: u32,
    /// ... and the last upper level's index into `upper_shifts` and its shift.
    last: usize,
    last_shift: u32,
}

impl Geometry {
    /// The geometry of `upper_shifts` (top-most level first, at least one level), tables of
    /// `upper_entries` and `pt_entries` entries (powers of two).
    pub const fn new(
        upper_shifts: &'static [u32],
        upper_entries: usize,
        pt_entries: usize,
        initial_top: usize,
        pte_none: u64,
    ) -> Self {
        assert!(!upper_shifts.is_empty() && upper_entries.is_power_of_two() && pt_entries.is_power_of_two());
        let last = upper_shifts.len() - 1;
        Geometry {
            upper_shifts,
            upper_entries,
            pt_entries,
            initial_top,
            pte_none,
            pt_key_shift: 12 + pt_entries.trailing_zeros(),
            seg_key_shift: upper_shifts[last] + upper_entries.trailing_zeros(),
            last,
            last_shift: upper_shifts[last],
        }
    }

    fn pt_shift(&self) -> u32 {
        12
    }

    /// The bytes one entry of `level` maps.
    pub fn level_span(&self, level: usize) -> u64 {
        1u64 << self.upper_shifts[level]
    }

    /// The first address the tables topped at `level` cannot map.
    pub fn reach(&self, top: usize) -> u64 {
        let bits = self.upper_shifts[top] + (self.upper_entries as u64).trailing_zeros();
        if bits >= 64 { u64::MAX } else { 1u64 << bits }
    }

    /// The bytes one page table maps.
    pub fn pt_span(&self) -> u64 {
        (self.pt_entries as u64) << self.pt_shift()
    }
}

/// One process's page tables.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageTables {
    /// Stored in a snapshot as the arch it belongs to.
    #[serde(with = "geometry_by_arch")]
    geom: &'static GeometryRef,
    /// Index of the current top level into `geom.upper_shifts`.
    top_level: usize,
    /// The top table (index into `upper`).
    top: u32,
    /// Upper tables: entry = child index + 1, 0 = empty. The level of each table is implied by
    /// the walk. Shared copy-on-write with clones: write through [`PageTables::set_upper`].
    #[serde(with = "upper_tables")]
    upper: Vec<Arc<[u32]>>,
    upper_free: Vec<u32>,
    /// PTE values: page table `i` is `ptes[i * pt_entries..(i + 1) * pt_entries]`.
    ptes: Vec<u64>,
    /// PGSTEs at the same index as `ptes` (empty unless the mm has PGSTEs).
    pgstes: Vec<u64>,
    pt_free: Vec<u32>,
    has_pgste: bool,
    /// Live page tables (for accounting: `nr_ptes`).
    nr_pts: usize,
    /// The last walk that reached a page table: (va / pt_span, page table + 1). Cleared when a
    /// page table is freed (its index may then map another range).
    #[serde(skip)]
    last_pt: Hint<(u64, u32)>,
    /// The last table of the lowest upper level (s390's segment table, x86's PMD) a walk went
    /// through: (va / the span of such a table, table + 1). A walk that misses `last_pt` but
    /// falls in the same table reads one entry instead of walking from the top (upper tables
    /// are never freed while the tables live; cleared with `last_pt` all the same).
    #[serde(skip)]
    last_seg: Hint<(u64, u32)>,
    /// The fingerprint of the upper tables and free list, until one is written (a memo: the
    /// state hash reads it).
    #[serde(skip)]
    upper_fp: Hint<Option<u64>>,
    /// The sum of [`PageTables::entry_fp`] over every PTE and its PGSTE, kept up to date by
    /// each write through [`PageTables::set_pte`], [`PageTables::set_pgste`] and
    /// [`PageTables::slot_mut`] (None after a table is allocated: summed again when read).
    #[serde(skip)]
    pte_fp: Hint<Option<u64>>,
    /// The entry [`PageTables::slot_mut`] handed out last, with its values before: not added
    /// to `pte_fp` yet (the caller writes through the references it got).
    #[serde(skip)]
    pte_pending: Hint<Option<(usize, u64, u64)>>,
    /// Every page table (its first address and flat index) and whether [`PageTables::check`]
    /// passed, until a table is allocated, freed or linked (a memo: the explorer checks the
    /// invariants after every step, which rarely changes the tree).
    #[serde(skip)]
    tree: Memo<[(u64, usize)]>,
    #[serde(skip)]
    checked: Hint<bool>,
    /// Bumped whenever a table is allocated, freed or linked: a PTE slot found for an address
    /// ([`PageTables::peek_index`]) is still that address's slot while it has not moved.
    #[serde(skip)]
    tree_gen: Hint<u64>,
}

crate::sim::clone_fields::clone_fields!(PageTables {
    geom,
    top_level,
    top,
    upper,
    upper_free,
    ptes,
    pgstes,
    pt_free,
    has_pgste,
    nr_pts,
    last_pt,
    last_seg,
    upper_fp,
    pte_fp,
    pte_pending,
    tree,
    checked,
    tree_gen
});

/// The state hash of the tables: what a walk of them reads, through the fingerprints (a table
/// is hashed once per write, not once per state).
impl std::hash::Hash for PageTables {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.geom.hash(h);
        self.top_level.hash(h);
        self.top.hash(h);
        h.write_u64(self.upper_fingerprint());
        h.write_u64(self.pte_fingerprint());
        self.pt_free.hash(h);
        self.has_pgste.hash(h);
        self.nr_pts.hash(h);
    }
}

/// Serde of the shared upper tables: as the tables themselves (the format of a
/// `Vec<Box<[u32]>>`, which snapshots have always stored).
mod upper_tables {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::sync::Arc;

    pub fn serialize<S: Serializer>(v: &[Arc<[u32]>], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|t| &**t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Arc<[u32]>>, D::Error> {
        Ok(Vec::<Box<[u32]>>::deserialize(d)?.into_iter().map(Arc::from).collect())
    }
}

/// A `'static` geometry that hashes and compares by identity (there is one per arch).
#[derive(Debug)]
pub struct GeometryRef(pub Geometry);

impl std::hash::Hash for GeometryRef {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (self as *const GeometryRef as usize).hash(state)
    }
}

impl PartialEq for GeometryRef {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

impl Eq for GeometryRef {}

/// Serde of a page-table geometry: by the arch whose geometry it is (there is one per arch).
mod geometry_by_arch {
    use super::GeometryRef;
    use crate::arch::types::Arch;
    use serde::{Deserialize, Deserializer, Serialize, Serializer, ser::Error};

    pub fn serialize<S: Serializer>(g: &&'static GeometryRef, s: S) -> Result<S::Ok, S::Error> {
        let arch = Arch::ALL.into_iter().find(|a| std::ptr::eq(a.geometry(), *g));
        arch.ok_or_else(|| S::Error::custom("page tables of a geometry no arch has"))?.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<&'static GeometryRef, D::Error> {
        Ok(Arch::deserialize(d)?.geometry())
    }
}

/// Call `f(index, entry)` for the non-empty entries of an upper table in `[lo, hi)`, in order,
/// until it returns an error: a 2048-entry table of a few entries is skipped 16 entries (a
/// cache line) at a time, in a loop the compiler vectorises.
fn occupied<E>(t: &[u32], lo: usize, hi: usize, mut f: impl FnMut(usize, u32) -> Result<(), E>) -> Result<(), E> {
    const RUN: usize = 16;
    let hi = hi.min(t.len());
    let mut base = lo - lo % RUN;
    while base < hi {
        let end = (base + RUN).min(hi);
        let c = &t[base..end];
        if c.iter().fold(0, |a, &e| a | e) != 0 {
            for (j, &e) in c.iter().enumerate() {
                let i = base + j;
                if e != 0 && i >= lo {
                    f(i, e)?;
                }
            }
        }
        base = end;
    }
    Ok(())
}

/// The result of walking the upper levels for one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Walk {
    /// The address is beyond what the current top level maps.
    BeyondTop,
    /// The entry at this upper level (index into `upper_shifts`) is empty.
    EmptyAt(usize),
    /// The page table index; the PTE is at `pt * pt_entries + pte_index`.
    Pt(u32),
}

impl PageTables {
    pub fn new(geom: &'static GeometryRef, has_pgste: bool) -> Self {
        let g = &geom.0;
        let mut t = PageTables {
            geom,
            top_level: g.initial_top,
            top: 0,
            upper: Vec::new(),
            upper_free: Vec::new(),
            ptes: Vec::new(),
            pgstes: Vec::new(),
            pt_free: Vec::new(),
            has_pgste,
            nr_pts: 0,
            last_pt: Hint::default(),
            last_seg: Hint::default(),
            upper_fp: Hint::default(),
            pte_fp: Hint::default(),
            pte_pending: Hint::default(),
            tree: Memo::default(),
            checked: Hint::default(),
            tree_gen: Hint::default(),
        };
        t.top = t.alloc_upper();
        t
    }

    pub fn geometry(&self) -> &'static Geometry {
        &self.geom.0
    }

    pub fn has_pgste(&self) -> bool {
        self.has_pgste
    }

    /// Index into `upper_shifts` of the current top level.
    pub fn top_level(&self) -> usize {
        self.top_level
    }

    /// The first address the current top level cannot map.
    pub fn reach(&self) -> u64 {
        self.geom.0.reach(self.top_level)
    }

    pub fn nr_page_tables(&self) -> usize {
        self.nr_pts
    }

    pub fn nr_upper_tables(&self) -> usize {
        self.upper.len() - self.upper_free.len()
    }

    /// Bytes the kernel would spend on these tables (`NR_PAGETABLE`): upper tables of
    /// `upper_entries` 8-byte entries, page tables of `pt_entries` PTEs, doubled by the PGSTEs
    /// behind them in a PGSTE mm (s390: a 2 KiB page table becomes 4 KiB).
    pub fn table_bytes(&self) -> u64 {
        let g = &self.geom.0;
        let pt = (g.pt_entries * 8 * if self.has_pgste { 2 } else { 1 }) as u64;
        self.nr_upper_tables() as u64 * (g.upper_entries * 8) as u64 + self.nr_pts as u64 * pt
    }

    /// Forget what was computed from the shape of the tree (a table was allocated, freed or
    /// linked).
    #[inline]
    fn tree_changed(&self) {
        self.upper_fp.set(None);
        self.tree.set(None);
        self.checked.set(false);
        self.tree_gen.set(self.tree_gen.get().wrapping_add(1));
    }

    /// The tree's generation: unchanged since a [`PageTables::peek_index`] of these tables, the
    /// slot it found is the one a walk of the same address finds now.
    #[inline]
    pub fn tree_gen(&self) -> u64 {
        self.tree_gen.get()
    }

    fn alloc_upper(&mut self) -> u32 {
        let n = self.geom.0.upper_entries;
        self.tree_changed();
        let empty: Arc<[u32]> = vec![0u32; n].into();
        if let Some(i) = self.upper_free.pop() {
            self.upper[i as usize] = empty;
            i
        } else {
            self.upper.push(empty);
            (self.upper.len() - 1) as u32
        }
    }

    /// Write entry `idx` of upper table `table` (copying the table first if a clone shares it).
    fn set_upper(&mut self, table: u32, idx: usize, e: u32) {
        self.tree_changed();
        Arc::make_mut(&mut self.upper[table as usize])[idx] = e;
    }

    /// The fingerprint of the upper tables and their free list (cached until a write).
    fn upper_fingerprint(&self) -> u64 {
        if let Some(fp) = self.upper_fp.get() {
            return fp;
        }
        let mut h = fingerprint::mix(fingerprint::SEED, self.upper.len() as u64);
        for t in &self.upper {
            h = fingerprint::words(h, t, 0);
        }
        h = fingerprint::mix(h, self.upper_free.len() as u64);
        for &i in &self.upper_free {
            h = fingerprint::mix(h, i as u64);
        }
        self.upper_fp.set(Some(h));
        h
    }

    /// The fingerprint of the PTEs and PGSTEs: the sum of [`PageTables::entry_fp`] over the
    /// entries (kept per write, so a state hash after a step that wrote one PTE costs two
    /// entry hashes, not a pass over every table), with the number of entries.
    fn pte_fingerprint(&self) -> u64 {
        self.settle_pending();
        let sum = match self.pte_fp.get() {
            Some(sum) => sum,
            None => {
                let none = self.geom.0.pte_none;
                let mut sum = 0u64;
                for (i, &pte) in self.ptes.iter().enumerate() {
                    let pgste = self.pgste(i);
                    if pte != none || pgste != 0 {
                        sum = sum.wrapping_add(self.entry_fp(i, pte, pgste));
                    }
                }
                self.pte_fp.set(Some(sum));
                sum
            }
        };
        fingerprint::mix(sum, self.ptes.len() as u64)
    }

    /// What entry `idx` with `pte` and `pgste` adds to the fingerprint: 0 for an empty entry
    /// (`pte_none`, PGSTE 0), else a hash of the three. A sum of such hashes differs between
    /// two tables (any entry different) except with probability 2^-64, as a hash of the words
    /// in order would ([`fingerprint`]), and is updated by one subtraction and one addition
    /// per write.
    #[inline]
    fn entry_fp(&self, idx: usize, pte: u64, pgste: u64) -> u64 {
        if pte == self.geom.0.pte_none && pgste == 0 {
            return 0;
        }
        let h = fingerprint::mix(fingerprint::mix(fingerprint::SEED, idx as u64), pte);
        fingerprint::mix(fingerprint::mix(h, pgste), 0x6a09_e667_f3bc_c909)
    }

    /// Entry `idx` changes from (`pte`, `pgste`) to its current values: update the sum.
    #[inline]
    fn refresh_fp(&self, idx: usize, pte: u64, pgste: u64) {
        if let Some(sum) = self.pte_fp.get() {
            let now = self.entry_fp(idx, self.ptes[idx], self.pgste(idx));
            self.pte_fp.set(Some(sum.wrapping_sub(self.entry_fp(idx, pte, pgste)).wrapping_add(now)));
        }
    }

    /// Add the write through the last [`PageTables::slot_mut`] to the sum.
    #[inline]
    fn settle_pending(&self) {
        if let Some((idx, pte, pgste)) = self.pte_pending.get() {
            self.pte_pending.set(None);
            self.refresh_fp(idx, pte, pgste);
        }
    }

    fn alloc_pt(&mut self) -> u32 {
        let g = &self.geom.0;
        let n = g.pt_entries;
        self.nr_pts += 1;
        self.pte_pending.set(None);
        self.pte_fp.set(None);
        self.tree_changed();
        if let Some(i) = self.pt_free.pop() {
            let base = i as usize * n;
            self.ptes[base..base + n].iter_mut().for_each(|e| *e = g.pte_none);
            if self.has_pgste {
                self.pgstes[base..base + n].iter_mut().for_each(|e| *e = 0);
            }
            i
        } else {
            let i = self.ptes.len() / n;
            // small address spaces double as Vec does (a sparse mm keeps only the tables it
            // touched); past 64 tables grow by an eighth, so the slack of a big address space's
            // tables stays at 12.5% (a 256 GiB guest's tables are 1 GiB with PGSTEs). The
            // growth is a whole number of tables: a capacity between two tables would leave
            // `resize` to grow the vector itself, and Vec doubles (a 1M-page mm had 60% slack)
            if self.ptes.capacity() - self.ptes.len() < n {
                let len = self.ptes.len();
                let extra = if len < 64 * n { len.max(n) } else { (len / 8).div_ceil(n) * n };
                self.ptes.reserve_exact(extra);
                if self.has_pgste {
                    self.pgstes.reserve_exact(extra);
                }
            }
            self.ptes.resize(self.ptes.len() + n, g.pte_none);
            if self.has_pgste {
                self.pgstes.resize(self.pgstes.len() + n, 0);
            }
            i as u32
        }
    }

    #[inline]
    fn index_at(&self, level: usize, va: u64) -> usize {
        ((va >> self.geom.0.upper_shifts[level]) as usize) & (self.geom.0.upper_entries - 1)
    }

    /// The key of the page table covering `va` in `last_pt`.
    #[inline]
    fn pt_key(&self, va: u64) -> u64 {
        va >> self.geom.0.pt_key_shift
    }

    /// The key of the lowest-level upper table covering `va` in `last_seg`.
    #[inline]
    fn seg_key(&self, va: u64) -> u64 {
        va >> self.geom.0.seg_key_shift
    }

    /// The entry of `va` in a table of the last upper level.
    #[inline]
    fn index_at_last(&self, va: u64) -> usize {
        ((va >> self.geom.0.last_shift) as usize) & (self.geom.0.upper_entries - 1)
    }

    /// Walk the upper levels for `va` without allocating.
    #[inline]
    pub fn walk(&self, va: u64) -> Walk {
        let (key, pt) = self.last_pt.get();
        if pt != 0 && key == self.pt_key(va) {
            return Walk::Pt(pt - 1);
        }
        let g = &self.geom.0;
        let last = g.last;
        // the same lowest-level table as the last walk: one entry to read
        let (skey, seg) = self.last_seg.get();
        if seg != 0 && skey == self.seg_key(va) {
            let e = self.upper[seg as usize - 1][self.index_at_last(va)];
            if e == 0 {
                return Walk::EmptyAt(last);
            }
            self.last_pt.set((self.pt_key(va), e));
            return Walk::Pt(e - 1);
        }
        if va >= g.reach(self.top_level) {
            return Walk::BeyondTop;
        }
        let mut table = self.top;
        let mut level = self.top_level;
        loop {
            let e = self.upper[table as usize][self.index_at(level, va)];
            if level == last {
                self.last_seg.set((self.seg_key(va), table + 1));
            }
            if e == 0 {
                return Walk::EmptyAt(level);
            }
            if level == last {
                self.last_pt.set((self.pt_key(va), e));
                return Walk::Pt(e - 1);
            }
            table = e - 1;
            level += 1;
        }
    }

    /// The PTE slot of `va` as [`PageTables::pte_index`] finds it, without moving the walk
    /// hints: a look ahead (a prefetch of a later access's PTE) must not displace the hint of
    /// the walk in progress. The upper tables are few and stay in the cache; the slot itself is
    /// what a prefetch is for.
    #[inline]
    pub fn peek_index(&self, va: u64) -> Option<usize> {
        let g = &self.geom.0;
        let (key, pt) = self.last_pt.get();
        if pt != 0 && key == self.pt_key(va) {
            return Some((pt - 1) as usize * g.pt_entries + self.pte_offset(va));
        }
        let last = g.last;
        let (skey, seg) = self.last_seg.get();
        let e = if seg != 0 && skey == self.seg_key(va) {
            self.upper[seg as usize - 1][self.index_at_last(va)]
        } else {
            if va >= g.reach(self.top_level) {
                return None;
            }
            let mut table = self.top;
            let mut level = self.top_level;
            loop {
                let e = self.upper[table as usize][self.index_at(level, va)];
                if e == 0 || level == last {
                    break e;
                }
                table = e - 1;
                level += 1;
            }
        };
        (e != 0).then(|| (e - 1) as usize * g.pt_entries + self.pte_offset(va))
    }

    /// The PTE in slot `idx`, if there is such a slot: for a look ahead that found the slot
    /// a few accesses earlier ([`PageTables::peek_index`]) and may hold one the tables no
    /// longer have.
    #[inline]
    pub fn peek_pte(&self, idx: usize) -> Option<u64> {
        self.ptes.get(idx).copied()
    }

    /// Start loading the PTE (and PGSTE) slot `idx` into the cache ([`crate::sim::prefetch`]).
    #[inline]
    pub fn prefetch_slot(&self, idx: usize) {
        if let Some(p) = self.ptes.get(idx) {
            crate::sim::prefetch::value(p);
        }
        if let Some(p) = self.pgstes.get(idx) {
            crate::sim::prefetch::value(p);
        }
    }

    /// The first address at or after `va` that a page table covers, below `end`, with its PTE
    /// slot: untouched ranges (empty upper entries) are skipped a whole entry at a time.
    pub fn next_slot(&self, mut va: u64, end: u64) -> Option<(u64, usize)> {
        while va < end {
            match self.walk(va) {
                Walk::Pt(pt) => return Some((va, pt as usize * self.geom.0.pt_entries + self.pte_offset(va))),
                Walk::EmptyAt(level) => {
                    let span = self.geom.0.level_span(level);
                    va = (va & !(span - 1)).checked_add(span)?;
                }
                Walk::BeyondTop => return None,
            }
        }
        None
    }

    /// The flat index of the PTE slot for `va`, if its page table exists.
    #[inline]
    pub fn pte_index(&self, va: u64) -> Option<usize> {
        match self.walk(va) {
            Walk::Pt(pt) => Some(pt as usize * self.geom.0.pt_entries + self.pte_offset(va)),
            _ => None,
        }
    }

    #[inline]
    fn pte_offset(&self, va: u64) -> usize {
        ((va >> 12) as usize) & (self.geom.0.pt_entries - 1)
    }

    /// Grow the top level until it maps `va` (arch/s390/mm/pgalloc.c `crst_table_upgrade`, 4.17
    /// one level per pass, 6.12 3→4 or 3→5 levels at once: the same tables result). Returns false
    /// if the arch cannot map `va` at all.
    pub fn upgrade_for(&mut self, va: u64) -> bool {
        while va >= self.reach() {
            if self.top_level == 0 {
                return false;
            }
            let new_top = self.alloc_upper();
            self.set_upper(new_top, 0, self.top + 1);
            self.top = new_top;
            self.top_level -= 1;
        }
        true
    }

    /// The flat index of the PTE slot for `va`, allocating tables on the way (mm/memory.c
    /// `__pte_alloc` and `__p?d_alloc`, 4.17 and 6.12). Returns `None` if `va` is beyond what the
    /// arch can map.
    pub fn pte_alloc(&mut self, va: u64) -> Option<usize> {
        if !self.upgrade_for(va) {
            return None;
        }
        let last = self.geom.0.last;
        let mut table = self.top;
        let mut level = self.top_level;
        loop {
            let idx = self.index_at(level, va);
            let e = self.upper[table as usize][idx];
            let child = if e != 0 {
                e - 1
            } else {
                let c = if level == last { self.alloc_pt() } else { self.alloc_upper() };
                self.set_upper(table, idx, c + 1);
                c
            };
            if level == last {
                return Some(child as usize * self.geom.0.pt_entries + self.pte_offset(va));
            }
            table = child;
            level += 1;
        }
    }

    #[inline]
    pub fn pte(&self, idx: usize) -> u64 {
        self.ptes[idx]
    }

    /// The PTEs `idx..idx + n` (a page table's, from `page_tables`).
    #[inline]
    pub fn ptes(&self, idx: usize, n: usize) -> &[u64] {
        &self.ptes[idx..idx + n]
    }

    #[inline]
    pub fn set_pte(&mut self, idx: usize, v: u64) {
        self.settle_pending();
        let (pte, pgste) = (self.ptes[idx], self.pgste(idx));
        self.ptes[idx] = v;
        self.refresh_fp(idx, pte, pgste);
    }

    #[inline]
    pub fn pgste(&self, idx: usize) -> u64 {
        if self.has_pgste { self.pgstes[idx] } else { 0 }
    }

    #[inline]
    pub fn set_pgste(&mut self, idx: usize, v: u64) {
        if self.has_pgste {
            self.settle_pending();
            let (pte, pgste) = (self.ptes[idx], self.pgstes[idx]);
            self.pgstes[idx] = v;
            self.refresh_fp(idx, pte, pgste);
        }
    }

    /// Both the PTE and (for a PGSTE mm) its PGSTE, mutably, for the s390 exchange primitives.
    #[inline]
    pub fn slot_mut(&mut self, idx: usize) -> (&mut u64, Option<&mut u64>) {
        self.settle_pending();
        self.pte_pending.set(Some((idx, self.ptes[idx], self.pgste(idx))));
        let pte = &mut self.ptes[idx];
        let pgste = if self.has_pgste { Some(&mut self.pgstes[idx]) } else { None };
        (pte, pgste)
    }

    /// Visit every existing page table that overlaps `[start, end)`: `f(va of the table's first
    /// entry, flat index of that entry)`. In address order. A descent of the tree that reads, in
    /// each table on the way, only the entries whose range overlaps `[start, end)`.
    pub fn for_each_pt(&self, start: u64, end: u64, mut f: impl FnMut(u64, usize)) {
        let start = start & !(self.geom.0.pt_span() - 1);
        if start >= end || start >= self.reach() {
            return;
        }
        self.visit_pts(self.top, self.top_level, 0, start, end, &mut f);
    }

    /// Every page table, in address order: its first address and the flat index of its first
    /// entry (`for_each_pt` over the whole address space, kept until the tree changes).
    pub fn page_tables(&self) -> Arc<[(u64, usize)]> {
        if let Some(t) = self.tree.get() {
            return t;
        }
        let mut v = Vec::with_capacity(self.nr_pts);
        self.for_each_pt(0, u64::MAX, |va, base| v.push((va, base)));
        let t: Arc<[(u64, usize)]> = v.into();
        self.tree.set(Some(t.clone()));
        t
    }

    /// [`PageTables::for_each_pt`] below upper table `table` at `level`, which maps from `base`.
    fn visit_pts(&self, table: u32, level: usize, base: u64, start: u64, end: u64, f: &mut impl FnMut(u64, usize)) {
        let g = &self.geom.0;
        let shift = g.upper_shifts[level];
        let last = g.upper_shifts.len() - 1;
        let lo = if start > base { ((start - base) >> shift) as usize } else { 0 };
        let hi = (((end - 1).saturating_sub(base) >> shift) as usize).min(g.upper_entries - 1);
        let _ = occupied::<()>(&self.upper[table as usize], lo, hi + 1, |i, e| {
            let va = base + ((i as u64) << shift);
            if level == last {
                f(va, (e - 1) as usize * g.pt_entries);
            } else {
                self.visit_pts(e - 1, level + 1, va, start, end, f);
            }
            Ok(())
        });
    }

    /// Free the page tables entirely inside `[start, end)` whose PTEs are all none (mm/memory.c
    /// `free_pgd_range`, 4.17 and 6.12, for a range no VMA covers any more; the kernel also frees a
    /// partly covered table no other VMA uses, via `floor`/`ceiling`). Their PGSTEs go with them, as in
    /// the kernel. Upper tables are kept (a simplification: they cost 8 KiB per 2 GiB).
    pub fn free_empty_pts(&mut self, start: u64, end: u64) {
        let g = &self.geom.0;
        let span = g.pt_span();
        let n = g.pt_entries;
        let last = g.upper_shifts.len() - 1;
        let mut victims = Vec::new();
        self.for_each_pt(start, end, |va, base| {
            if va >= start && va + span <= end {
                victims.push((va, base));
            }
        });
        for (va, base) in victims {
            if self.ptes[base..base + n].iter().all(|&p| p == g.pte_none) {
                // find the segment-level entry that points to it and clear it
                let mut table = self.top;
                let mut level = self.top_level;
                loop {
                    let idx = self.index_at(level, va);
                    let e = self.upper[table as usize][idx];
                    if level == last {
                        self.set_upper(table, idx, 0);
                        self.pt_free.push(e - 1);
                        self.nr_pts -= 1;
                        self.last_pt.set((0, 0));
                        self.last_seg.set((0, 0));
                        break;
                    }
                    table = e - 1;
                    level += 1;
                }
            }
        }
    }

    /// The child index stored in the upper-level entry for `va` at `level`, following the walk
    /// (for rendering entries in the arch's format). `None` if the walk stops above `level`.
    pub fn upper_entry(&self, va: u64, level: usize) -> Option<u32> {
        if level < self.top_level || va >= self.reach() {
            return None;
        }
        let mut table = self.top;
        let mut l = self.top_level;
        loop {
            let e = self.upper[table as usize][self.index_at(l, va)];
            if l == level {
                return Some(e);
            }
            if e == 0 {
                return None;
            }
            table = e - 1;
            l += 1;
        }
    }

    /// The index of the top table (for rendering the ASCE / CR3).
    pub fn top_table(&self) -> u32 {
        self.top
    }

    /// Check the tables are one tree of `geom`: from the top table down, each entry points to
    /// a table of the next level (a page table at the last) that exists and no other entry
    /// points to; the free lists hold only tables outside the tree; `nr_pts` counts the page
    /// tables in it; PGSTEs sit beside the PTEs when the mm has them.
    pub fn check(&self, geom: &'static GeometryRef) -> Result<(), String> {
        let g = &geom.0;
        if !std::ptr::eq(self.geom, geom) {
            return Err("page tables of another arch's geometry".into());
        }
        if self.checked.get() {
            return Ok(());
        }
        self.check_tree(g)?;
        self.checked.set(true);
        Ok(())
    }

    /// [`PageTables::check`] of tables not checked since their tree last changed.
    fn check_tree(&self, g: &Geometry) -> Result<(), String> {
        let n = g.pt_entries;
        if self.ptes.len() % n != 0 || self.pgstes.len() != if self.has_pgste { self.ptes.len() } else { 0 } {
            return Err(format!(
                "{} PTEs and {} PGSTEs do not make page tables of {n}",
                self.ptes.len(),
                self.pgstes.len()
            ));
        }
        if self.top_level >= g.upper_shifts.len() || self.top as usize >= self.upper.len() {
            return Err(format!("top table {} at level {} does not exist", self.top, self.top_level));
        }
        if let Some(t) = self.upper.iter().position(|t| t.len() != g.upper_entries) {
            return Err(format!("upper table {t} has {} entries, not {}", self.upper[t].len(), g.upper_entries));
        }
        let last = g.upper_shifts.len() - 1;
        let mut in_tree = vec![false; self.upper.len()];
        let mut pt_in_tree = vec![false; self.ptes.len() / n];
        in_tree[self.top as usize] = true;
        let mut stack = vec![(self.top, self.top_level)];
        while let Some((t, level)) = stack.pop() {
            occupied(&self.upper[t as usize], 0, g.upper_entries, |_, e| {
                let child = (e - 1) as usize;
                let slot = if level == last { pt_in_tree.get_mut(child) } else { in_tree.get_mut(child) };
                match slot {
                    Some(s) if !*s => *s = true,
                    _ => {
                        return Err(format!(
                            "upper table {t} (level {level}) points to table {child}, which is missing or shared"
                        ));
                    }
                }
                if level != last {
                    stack.push((child as u32, level + 1));
                }
                Ok(())
            })?;
        }
        let reached = pt_in_tree.iter().filter(|x| **x).count();
        if reached != self.nr_pts || reached + self.pt_free.len() != pt_in_tree.len() {
            return Err(format!(
                "nr_pts {} but {reached} page tables are in use and {} of {} free",
                self.nr_pts,
                self.pt_free.len(),
                pt_in_tree.len()
            ));
        }
        for (free, tree, what) in [(&self.upper_free, &mut in_tree, "upper"), (&self.pt_free, &mut pt_in_tree, "page")]
        {
            for &i in free {
                match tree.get_mut(i as usize) {
                    Some(s) if !*s => *s = true,
                    _ => return Err(format!("free {what} table {i} is missing, in use or free twice")),
                }
            }
        }
        Ok(())
    }

    /// Bytes of heap the tables use (for memory accounting).
    pub fn heap_bytes(&self) -> usize {
        self.upper.len() * self.geom.0.upper_entries * 4 + (self.ptes.capacity() + self.pgstes.capacity()) * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::types::Arch;
    use std::hash::{DefaultHasher, Hash, Hasher};

    fn key(t: &PageTables) -> u64 {
        let mut h = DefaultHasher::new();
        t.hash(&mut h);
        h.finish()
    }

    /// The PTE/PGSTE fingerprint kept per write (set_pte, set_pgste, slot_mut, with clones
    /// taken in between) equals the one summed again over every entry, and a write that puts
    /// an entry back restores the fingerprint: the state hash does not depend on the path.
    #[test]
    fn the_fingerprint_kept_per_write_is_the_one_summed_over_the_tables() {
        let g = Arch::S390x.geometry();
        let from_scratch = |t: &PageTables| {
            let c = t.clone();
            c.pte_pending.set(None);
            c.pte_fp.set(None);
            c.pte_fingerprint()
        };
        let mut t = PageTables::new(g, true);
        let a = t.pte_alloc(0x1000_0000).unwrap_or(0);
        let b = t.pte_alloc(0x2000_0000).unwrap_or(0);
        let empty = t.pte_fingerprint();
        let mut seen = vec![empty];
        for round in 0..50u64 {
            let idx = if round % 3 == 0 { a + (round as usize % 7) } else { b + (round as usize % 5) };
            match round % 4 {
                0 => t.set_pte(idx, 0x1000 * (round + 1)),
                1 => t.set_pgste(idx, round << 48),
                2 => {
                    let (pte, pgste) = t.slot_mut(idx);
                    *pte ^= 0x400;
                    if let Some(p) = pgste {
                        *p += 1;
                    }
                }
                _ => {
                    let c = t.clone();
                    t = c;
                }
            }
            assert_eq!(t.pte_fingerprint(), from_scratch(&t), "round {round}");
            seen.push(t.pte_fingerprint());
        }
        // undo every write: the empty tables' fingerprint again
        for i in (a..a + g.0.pt_entries).chain(b..b + g.0.pt_entries) {
            t.set_pte(i, g.0.pte_none);
            t.set_pgste(i, 0);
        }
        assert_eq!(t.pte_fingerprint(), empty);
        seen.sort_unstable();
        seen.dedup();
        assert!(seen.len() > 30, "writes change the fingerprint ({} distinct)", seen.len());
    }

    /// A clone shares its upper tables with the original (copy-on-write); what the clone then
    /// writes — a page table in another segment, a new top level, a PTE, a PGSTE, a freed page
    /// table — is invisible to the original, whose entries and state hash stay as they were.
    #[test]
    fn a_clones_writes_are_invisible_to_the_original() {
        let g = Arch::S390x.geometry();
        let none = g.0.pte_none;
        let mut parent = PageTables::new(g, true);
        let i = parent.pte_alloc(0x1000_0000).unwrap_or(0);
        parent.set_pte(i, 0x1234_5000);
        let (before, k0) = (parent.clone(), key(&parent));
        let mut child = parent.clone();
        assert!(
            parent.upper.iter().zip(&child.upper).all(|(a, b)| Arc::ptr_eq(a, b)),
            "a clone shares the upper tables"
        );
        let j = child.pte_alloc(0x1010_0000).unwrap_or(0);
        child.set_pte(j, 0x5678_9000);
        let far = child.pte_alloc(1 << 45).unwrap_or(0);
        child.set_pte(far, 0x9abc_d000);
        child.set_pte(i, none);
        child.set_pgste(i, 1 << 40);
        child.set_pgste(i, 0);
        child.free_empty_pts(0x1000_0000, 0x1010_0000);
        assert_eq!(parent, before);
        assert_eq!(key(&parent), k0);
        assert_eq!((parent.pte_index(0x1010_0000), parent.pte_index(1 << 45)), (None, None));
        assert_eq!(parent.pte_index(0x1000_0000).map(|x| parent.pte(x)), Some(0x1234_5000));
        assert_eq!((parent.top_level(), parent.nr_page_tables()), (before.top_level(), 1));
        assert_eq!(child.pte_index(0x1000_0000), None, "the child freed its copy of the page table");
        assert_ne!(key(&child), k0);
        assert_eq!(parent.check(g), Ok(()));
        assert_eq!(child.check(g), Ok(()));
    }

    /// The state hash depends on the contents only: a write that is undone gives the hash of
    /// the tables before it (the cached fingerprints are recomputed, not patched), and tables
    /// that differ in one PTE or one upper entry hash apart.
    #[test]
    fn the_state_hash_follows_the_contents_through_the_cache() {
        let g = Arch::S390x.geometry();
        let mut t = PageTables::new(g, true);
        let i = t.pte_alloc(0x2000_0000).unwrap_or(0);
        let k0 = key(&t);
        t.set_pte(i + 1, 0x4000);
        let k1 = key(&t);
        t.set_pte(i + 1, g.0.pte_none);
        assert_eq!(key(&t), k0);
        let mut u = t.clone();
        u.set_pte(i + 2, 0x4000);
        assert!(k1 != k0 && key(&u) != k1 && key(&u) != k0, "the same value in another slot hashes apart");
        let _ = u.pte_alloc(0x2010_0000);
        let mut v = t.clone();
        let _ = v.pte_alloc(0x2020_0000);
        assert_ne!(key(&u), key(&v), "a page table under another segment entry hashes apart");
    }

    /// `for_each_pt` visits exactly the page tables a walk of every page-table span finds, in
    /// address order, over ranges that start and end inside tables and across top levels.
    #[test]
    fn for_each_pt_finds_what_walks_find() {
        let g = Arch::S390x.geometry();
        let mut t = PageTables::new(g, false);
        let span = g.0.pt_span();
        let mapped = [0x1000u64, 0x3f_f000, 0x40_0000, 0x7fff_f000, 0x8000_0000, 3 << 40, (1 << 53) + 0x1000];
        for va in mapped {
            assert!(t.pte_alloc(va).is_some(), "{va:#x}");
        }
        for (start, end) in [(0, u64::MAX), (0x2000, 0x8000_1000), (0x40_1000, 0x40_2000), (2 << 40, 4 << 40)] {
            let mut seen = Vec::new();
            t.for_each_pt(start, end, |va, base| seen.push((va, base)));
            let mut want = Vec::new();
            for va in mapped {
                let first = va & !(span - 1);
                if first < end && first + span > start {
                    want.push((first, t.pte_index(first).unwrap_or(usize::MAX)));
                }
            }
            assert_eq!(seen, want, "[{start:#x}, {end:#x})");
        }
    }

    /// `peek_index` (the replay's and reclaim's look ahead) finds the slot `pte_index` finds,
    /// on every arch, for mapped and unmapped addresses and beyond the top level, and leaves
    /// the walk hints as they were: the walk after it takes the same path as without it.
    #[test]
    fn a_peek_finds_what_a_walk_finds_and_moves_no_hint() {
        for arch in [Arch::S390x, Arch::X86_64] {
            let g = arch.geometry();
            let mut t = PageTables::new(g, arch == Arch::S390x);
            let mapped = [0x1000u64, 0x3f_f000, 0x40_0000, 0x7fff_f000, 0x8000_0000, 3 << 40];
            for va in mapped {
                assert!(t.pte_alloc(va).is_some(), "{va:#x}");
            }
            let probes = mapped.iter().flat_map(|&va| [va, va + 0x1000, va + (1 << 30)]).chain([1 << 56, u64::MAX]);
            for warm in mapped {
                let _ = t.pte_index(warm);
                for va in probes.clone() {
                    let hints = (t.last_pt.get(), t.last_seg.get());
                    let peek = t.peek_index(va);
                    assert_eq!((t.last_pt.get(), t.last_seg.get()), hints, "{arch:?} {va:#x}");
                    assert_eq!(peek, t.pte_index(va), "{arch:?} {va:#x} after a walk of {warm:#x}");
                    t.prefetch_slot(peek.unwrap_or(usize::MAX));
                }
            }
        }
    }
}
