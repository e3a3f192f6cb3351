//! Snapshots: the whole state of a [`Kernel`] (or of a postcopy run, see
//! `study::postcopy::snapshot`) in a file, so that a run restored from it continues exactly as
//! the run that was never interrupted: the same events, bit for bit.
//!
//! # Format (version 4)
//!
//! | offset | bytes | field |
//! |---|---|---|
//! | 0 | 8 | magic `RCLMSNAP` |
//! | 8 | 4 | format version, u32 little-endian |
//! | 12 | 4 | what the payload holds: 1 a kernel, 2 a postcopy run (u32 LE) |
//! | 16 | 8 | payload length in bytes (u64 LE) |
//! | 24 | 4 | CRC-32 (IEEE) of the payload (u32 LE) |
//! | 28 | n | payload |
//!
//! The payload is the model's own structs through serde, in postcard's encoding (varints, no
//! field names, platform-independent). A profile is stored with every switch and its name
//! (built-in or derived: its base is the built-in profile of its release); the page tables' geometry by its arch; scratch buffers of one call are not stored.
//! Any change to a serialized struct changes the payload's layout: bump [`FORMAT_VERSION`].
//! Version 2: profiles gained the `vma_has_recency` switch. Version 3: the candidate-fix
//! switches (`profile/fixes.rs`) and derived profile names. Version 6: profiles gained the
//! `lru_gen` switch and the lruvec MGLRU's generations (`vmscan/lru_gen.rs`); the
//! `uffd_wp_markers` and `uffd_unregister_resets_wp` switches (PTE markers, issue 16).
//! Version 7: the `mlock_fixup_mlocks_pages` (the mlock audit), `x86_swp_offset_inverted`,
//! `uffd_close_resets_wp`, `uffd_wp_writenotify`, `referenced_mlocks`, `remove_rmap_clears_mlock` and
//! `lru_add_culls_unevictable` switches and the `unevictable_pgs_cleared` counter (issue 16).
//! Version 8: the swap device's completion model and the writes in flight
//! (`mm/page_io.rs`), and kswapd's PGDAT_WRITEBACK (issue 18).
//! Also in version 8: the lruvec's MGLRU walk state (`lrugen.mm_state`: the mm list's tail, the Bloom
//! filters, the mm stats; `vmscan/lru_gen_walk.rs`) and the `mm_lru_insertion` event kind,
//! whose tracepoint is off (muted) in a new log.
//! Version 9: the `lru_gen_activate_resets_refs` switch and its copy in the lruvec
//! (`lrugen.activate_resets_refs`; 6.12.107 against 6.12.114+, FINDINGS.md section 8).
//! Version 10: the `lru_gen_writeback_reactivates` and `lru_gen_sort_lets_unevictable_through`
//! switches (the other two MGLRU backports of 6.12.114; FINDINGS.md section 8).
//! Version 11: the generation sizes (`lrugen.nr_pages`), kept apart from the generations'
//! lists since a page promoted in place stays on its old list (issue 19).
//! Version 12: the `consider_reclaim_throttle` switch (direct reclaim's NOPROGRESS throttle,
//! v5.16; issue 18).
//!
//! Reading refuses, with [`Error::Format`] naming the offset and what was expected: a file
//! shorter than the header, another magic, another format version or kind, a payload length
//! that disagrees with the file, a checksum mismatch, a payload that does not decode (the
//! offset where decoding stopped) or that has trailing bytes; and a decoded state that fails
//! the model's structure and invariant checks (`Kernel::check_invariants`,
//! `World::check_invariants`), so that a restored model is never inconsistent. Nothing panics on
//! any input: `fuzz/snapshot.rs` (a mutation loop on stable Rust, see there) mutates the valid
//! snapshots of `fuzz/corpus/snapshot/`.
//!
//! Writing is atomic: the bytes go to a temporary file in the target's directory, which is
//! synced and renamed over the target (and the directory synced), so a crash leaves either the
//! old file or the new one.

use crate::error::{Error, Result};
use crate::kernel::Kernel;
use crate::named::Named;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::io::Read;
use std::path::Path;

/// The first bytes of every snapshot.
pub const MAGIC: [u8; 8] = *b"RCLMSNAP";
/// The version of the format this build writes and reads.
pub const FORMAT_VERSION: u32 = 12;
/// Bytes of the header before the payload.
pub const HEADER_LEN: usize = 28;

/// What a snapshot holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// One [`Kernel`].
    Kernel = 1,
    /// A postcopy study in progress: its configuration and its `World`.
    PostcopyRun = 2,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Kernel => "a kernel",
            Kind::PostcopyRun => "a postcopy run",
        }
    }

    fn from_u32(v: u32) -> Option<Kind> {
        [Kind::Kernel, Kind::PostcopyRun].into_iter().find(|k| *k as u32 == v)
    }
}

fn malformed(at: usize, detail: impl Into<String>) -> Error {
    Error::Format { what: "snapshot", at: format!("offset {at}"), detail: detail.into() }
}

/// The CRC-32 (IEEE) the header carries for `payload`.
pub fn checksum(payload: &[u8]) -> u32 {
    crc32fast::hash(payload)
}

/// The bytes of a snapshot of `kind` holding `state` (allocated fallibly: a state too large
/// for the host's memory is an error naming the size).
pub fn encode<T: Serialize>(kind: Kind, state: &T) -> Result<Vec<u8>> {
    let (len, crc) = measure(kind, state)?;
    let mut out = crate::files::try_buffer(HEADER_LEN as u64 + len, "the snapshot")?;
    write_sealed(kind, state, (len, crc), &mut out)?;
    Ok(out)
}

/// A writer that only counts and checksums what goes through it.
struct Measure {
    len: u64,
    crc: crc32fast::Hasher,
}

impl std::io::Write for Measure {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.len += b.len() as u64;
        self.crc.update(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A writer that keeps the I/O error postcard's writer flavour drops.
struct KeepError<'a> {
    w: &'a mut dyn std::io::Write,
    err: Option<std::io::Error>,
}

impl std::io::Write for KeepError<'_> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.w.write(b).inspect_err(|e| self.err = Some(std::io::Error::new(e.kind(), e.to_string())))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        // postcard flushes at the end: a buffered write that fails there is an I/O error too
        self.w.flush().inspect_err(|e| self.err = Some(std::io::Error::new(e.kind(), e.to_string())))
    }
}

fn cannot(kind: Kind, e: postcard::Error) -> Error {
    Error::invalid(format!("cannot snapshot {}: {e}", kind.name()))
}

/// The payload length and checksum of a snapshot of `state`, without building the payload.
fn measure<T: Serialize>(kind: Kind, state: &T) -> Result<(u64, u32)> {
    let m = postcard::to_io(state, Measure { len: 0, crc: crc32fast::Hasher::new() }).map_err(|e| cannot(kind, e))?;
    Ok((m.len, m.crc.finalize()))
}

/// The header for a payload of `(len, crc)`, then the payload, to `w`.
fn write_sealed<T: Serialize>(kind: Kind, state: &T, (len, crc): (u64, u32), w: &mut dyn std::io::Write) -> Result<()> {
    w.write_all(&MAGIC)?;
    w.write_all(&FORMAT_VERSION.to_le_bytes())?;
    w.write_all(&(kind as u32).to_le_bytes())?;
    w.write_all(&len.to_le_bytes())?;
    w.write_all(&crc.to_le_bytes())?;
    let mut k = KeepError { w, err: None };
    if let Err(e) = postcard::to_io(state, &mut k) {
        return Err(match k.err {
            Some(io) => Error::from(io),
            None => cannot(kind, e),
        });
    }
    Ok(())
}

/// Write a snapshot of `kind` holding `state` to `w`, streamed: the state is encoded twice,
/// once to measure the payload's length and checksum for the header and once into `w`, so
/// that a snapshot costs no memory of its size (a kernel with 1 TiB of swap has a payload of
/// gigabytes).
pub fn encode_to<T: Serialize>(kind: Kind, state: &T, w: &mut dyn std::io::Write) -> Result<()> {
    let sealed = measure(kind, state)?;
    write_sealed(kind, state, sealed, w)
}

/// Write a snapshot of `kind` holding `state` to `path` atomically (see [`write_file`]).
pub fn write_state<T: Serialize>(path: &Path, kind: Kind, state: &T) -> Result<()> {
    crate::files::write_atomic(path, "snapshot", |w| encode_to(kind, state, w))
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Check a snapshot header of `kind`: `header` the first bytes of the file (all of them if it
/// is shorter than [`HEADER_LEN`]), `file_len` the length of the whole file.
pub fn check_header(kind: Kind, header: &[u8], file_len: u64) -> Result<()> {
    let bytes = header;
    if bytes.len() < HEADER_LEN {
        return Err(malformed(
            bytes.len(),
            format!("truncated: the header needs {HEADER_LEN} bytes, the file has {}", bytes.len()),
        ));
    }
    if bytes[..8] != MAGIC {
        return Err(malformed(
            0,
            format!(
                "not a reclaim snapshot: magic {:?}, expected {:?}",
                bytes[..8].escape_ascii().to_string(),
                "RCLMSNAP"
            ),
        ));
    }
    let version = le_u32(bytes, 8);
    if version != FORMAT_VERSION {
        return Err(malformed(
            8,
            format!("format version {version}; this reclaim reads version {FORMAT_VERSION} only"),
        ));
    }
    let found = le_u32(bytes, 12);
    if found != kind as u32 {
        let what = Kind::from_u32(found).map_or_else(|| format!("an unknown kind {found}"), |k| k.name().to_string());
        return Err(malformed(12, format!("the snapshot holds {what}, expected {}", kind.name())));
    }
    let len = u64::from_le_bytes(bytes[16..24].try_into().expect("8 bytes"));
    let have = file_len.saturating_sub(HEADER_LEN as u64);
    if len != have {
        let how = if len > have { "truncated" } else { "trailing data" };
        return Err(malformed(16, format!("{how}: the header says {len} payload bytes, the file has {have}")));
    }
    Ok(())
}

/// Check the header of `bytes` (a snapshot of `kind`) and return the payload.
pub fn payload(kind: Kind, bytes: &[u8]) -> Result<&[u8]> {
    check_header(kind, bytes, bytes.len() as u64)?;
    let payload = &bytes[HEADER_LEN..];
    let (want, got) = (le_u32(bytes, 24), checksum(payload));
    if want != got {
        return Err(malformed(
            24,
            format!("checksum mismatch: the header says {want:#010x}, the payload has {got:#010x}"),
        ));
    }
    Ok(payload)
}

/// Decode a snapshot of `kind` (header checks, then the payload). The caller checks the state.
pub fn decode<T: DeserializeOwned>(kind: Kind, bytes: &[u8]) -> Result<T> {
    let payload = payload(kind, bytes)?;
    let mut de = postcard::Deserializer::from_bytes(payload);
    let decoded = T::deserialize(&mut de);
    let rest = de.finalize().map_or(0, |r| r.len());
    let at = HEADER_LEN + payload.len() - rest;
    let state = decoded.map_err(|e| malformed(at, format!("the payload does not decode as {}: {e}", kind.name())))?;
    if rest != 0 {
        return Err(malformed(at, format!("{rest} bytes left over after {}", kind.name())));
    }
    Ok(state)
}

/// Refuse a decoded state that fails its checks.
pub fn inconsistent(detail: String) -> Error {
    Error::Format {
        what: "snapshot",
        at: "payload".into(),
        detail: format!("the state it holds is inconsistent: {detail}"),
    }
}

/// Write `bytes` to `path` atomically ([`crate::files::write_atomic`]): a temporary file of its
/// own in the same directory, synced, renamed over `path`, and the directory synced; a target
/// that is not a regular file is refused.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::files::write_bytes(path, "snapshot", bytes)
}

/// The bytes of the snapshot file `path`, which must hold `kind`. The header is read and
/// checked against the file's length before the payload is read, so that a file that is not a
/// snapshot (a large sparse file, a device) costs nothing; a FIFO or device is refused unopened.
pub fn read_file(path: &Path, kind: Kind) -> Result<Vec<u8>> {
    let io = |e: std::io::Error| Error::Io(format!("cannot read snapshot {}: {e}", path.display()));
    let (mut f, len) = crate::files::open_regular(path, "snapshot")?;
    let mut header = [0u8; HEADER_LEN];
    let n = crate::trace::read_full(&mut f, &mut header).map_err(io)?;
    check_header(kind, &header[..n], len)?;
    let mut bytes = crate::files::try_buffer(len, "the snapshot")?;
    bytes.extend_from_slice(&header);
    f.read_to_end(&mut bytes).map_err(io)?;
    Ok(bytes)
}

impl Kernel {
    /// A snapshot holds the kernel's state but not these options of a replay or an oracle run:
    /// a derived profile without a name, the x86 TLB model's cached translations, the memcg
    /// statistics as last flushed, the guest clock, the guest zones, the page tables' pages. A kernel with one refuses
    /// to be saved, naming it, rather than continue differently after a restore.
    fn check_storable(&self) -> Result<()> {
        self.profile.check_storable()?;
        let unsaved = if let Some(name) = self.x86_tlb() {
            format!("the x86_tlb={name:?} model's cached translations; set_x86_tlb(None) before saving")
        } else if self.memcg.is_some() {
            format!(
                "the memcg_stats={:?} flushed statistics; set memcg_stats to \"live\" before saving",
                self.memcg_stats().name()
            )
        } else if self.guest_clock.is_some() {
            "the guest clock (guest_clock=...); replay without it to save".into()
        } else if self.zones.is_some() {
            "the guest zones (set_guest_zones); save a kernel without them".into()
        } else if self.pcp.is_some() {
            "the per-cpu page lists (set_pcp_lists); save a kernel without them".into()
        } else if self.pgtable_pages.is_some() {
            "the page tables' pages (set_pgtable_pages); save a kernel without them".into()
        } else if self.swap_cache_slab.is_some() {
            "the swap cache's nodes' slab (set_swap_cache_nodes); save a kernel without them".into()
        } else {
            return Ok(());
        };
        Err(Error::invalid(format!("a snapshot does not hold {unsaved}")))
    }

    /// The bytes of a snapshot of this kernel (what [`Kernel::snapshot`] writes).
    pub fn snapshot_bytes(&self) -> Result<Vec<u8>> {
        self.check_storable()?;
        encode(Kind::Kernel, self)
    }

    /// A kernel from snapshot bytes: refused with [`Error::Format`] unless the bytes are a
    /// well-formed kernel snapshot of this format version whose state passes
    /// [`Kernel::check_invariants`].
    pub fn from_snapshot_bytes(bytes: &[u8]) -> Result<Kernel> {
        let k: Kernel = decode(Kind::Kernel, bytes)?;
        k.check_invariants().map_err(inconsistent)?;
        Ok(k)
    }

    /// Write a snapshot of this kernel to `path` (atomically).
    pub fn snapshot(&self, path: impl AsRef<Path>) -> Result<()> {
        self.check_storable()?;
        write_state(path.as_ref(), Kind::Kernel, self)
    }

    /// The kernel of the snapshot file `path`; it continues exactly as the kernel that wrote it.
    pub fn restore(path: impl AsRef<Path>) -> Result<Kernel> {
        Kernel::from_snapshot_bytes(&read_file(path.as_ref(), Kind::Kernel)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mm::mmap::MapKind;
    use crate::testutil::{kernel, proc_with_pages};

    /// A kernel with a KVM process, swap in use, a userfaultfd with a parked thread; its
    /// process and the address of 64 pages thread 0 uses.
    fn busy_kernel(profile: &str) -> (Kernel, u32, u64) {
        let mut k = kernel(profile);
        let (pid, a) = proc_with_pages(&mut k, true, 64);
        k.reclaim(16);
        let b = k.mmap(pid, 16 << 12, MapKind::Anon, false, None).unwrap();
        let u = k.userfaultfd(pid).unwrap();
        k.uffdio_api(u, crate::uffd::ioctl::UFFD_API, 0).unwrap();
        k.uffdio_register(u, b, 16 << 12, crate::uffd::ioctl::UFFDIO_REGISTER_MODE_MISSING).unwrap();
        let r = k.access(pid, 1, b, false, 0).unwrap();
        assert!(matches!(r, crate::fault::Access::Blocked { .. }), "{r:?}");
        for i in 0..64 {
            k.access(pid, 0, a + i * 4096, i % 3 == 0, i).unwrap();
        }
        k.check_invariants().unwrap();
        (k, pid, a)
    }

    /// Drive `k` on: accesses of thread 0 of `pid` over 64 pages at `a`, and reclaim.
    fn drive(k: &mut Kernel, pid: u32, a: u64, rounds: u64) {
        for r in 0..rounds {
            for i in 0..64 {
                let page = (i * 7 + r * 13) % 64;
                k.access(pid, 0, a + page * 4096, (i + r) % 4 == 0, r * 1000 + i).unwrap();
            }
            k.reclaim(8);
        }
    }

    #[test]
    fn a_restored_kernel_continues_bit_for_bit() {
        for profile in ["4.17", "4.18", "6.12"] {
            let (mut k, pid, a) = busy_kernel(profile);
            let bytes = k.snapshot_bytes().unwrap();
            let mut r = Kernel::from_snapshot_bytes(&bytes).unwrap();
            assert_eq!(r.snapshot_bytes().unwrap(), bytes, "{profile}: a restored kernel re-encodes the same");
            drive(&mut k, pid, a, 20);
            drive(&mut r, pid, a, 20);
            assert_eq!(r.log.hash(), k.log.hash(), "{profile}");
            assert_eq!(r.log.events(), k.log.events(), "{profile}");
            assert_eq!(r.snapshot_bytes().unwrap(), k.snapshot_bytes().unwrap(), "{profile}: the whole state");
            r.check_invariants().unwrap();
        }
    }

    #[test]
    fn files_are_written_atomically_and_read_back() {
        let dir = std::env::temp_dir().join(format!("reclaim-snap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("k.snap");
        let (k, _, _) = busy_kernel("4.18");
        k.snapshot(&path).unwrap();
        k.snapshot(&path).unwrap();
        let names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("k.snap")], "no temporary file is left");
        let r = Kernel::restore(&path).unwrap();
        let mut h1 = std::collections::hash_map::DefaultHasher::new();
        let mut h2 = std::collections::hash_map::DefaultHasher::new();
        k.state_hash(&mut h1);
        r.state_hash(&mut h2);
        assert_eq!(std::hash::Hasher::finish(&h1), std::hash::Hasher::finish(&h2));
        let e = Kernel::restore(dir.join("missing.snap")).unwrap_err();
        assert!(matches!(e, Error::Io(_)) && e.to_string().contains("missing.snap"), "{e}");
        let e = k.snapshot(dir.join("no-such-dir").join("k.snap")).unwrap_err();
        assert!(matches!(e, Error::Io(_)), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn format_error(bytes: &[u8]) -> String {
        match Kernel::from_snapshot_bytes(bytes) {
            Err(e @ Error::Format { .. }) => e.to_string(),
            other => panic!("expected a format error, got {other:?}"),
        }
    }

    /// A kernel snapshot of `payload` with a header that agrees with it (to get past the
    /// header checks to the decoder).
    fn seal(payload: &[u8]) -> Vec<u8> {
        let mut b = encode(Kind::Kernel, &()).unwrap();
        b[16..24].copy_from_slice(&(payload.len() as u64).to_le_bytes());
        b[24..28].copy_from_slice(&checksum(payload).to_le_bytes());
        b.extend_from_slice(payload);
        b
    }

    #[test]
    fn bad_files_are_refused_with_what_is_wrong() {
        let good = busy_kernel("4.18").0.snapshot_bytes().unwrap();
        assert!(format_error(&good[..10]).contains("at offset 10: truncated: the header needs 28 bytes"));
        let mut b = good.clone();
        b[0] = b'X';
        assert!(format_error(&b).contains("at offset 0: not a reclaim snapshot"));
        let mut b = good.clone();
        b[8..12].copy_from_slice(&99u32.to_le_bytes());
        let want = format!("at offset 8: format version 99; this reclaim reads version {FORMAT_VERSION} only");
        assert!(format_error(&b).contains(&want));
        let mut b = good.clone();
        b[12..16].copy_from_slice(&2u32.to_le_bytes());
        assert!(format_error(&b).contains("holds a postcopy run, expected a kernel"));
        assert!(format_error(&good[..good.len() - 5]).contains("at offset 16: truncated"));
        let mut b = good.clone();
        let mid = HEADER_LEN + (good.len() - HEADER_LEN) / 2;
        b[mid] ^= 0x10;
        assert!(format_error(&b).contains("at offset 24: checksum mismatch"));
        // a payload cut short, with a header that agrees: the decoder stops at the end
        let payload = &good[HEADER_LEN..];
        let e = format_error(&seal(&payload[..payload.len() - 3]));
        assert!(e.contains("does not decode as a kernel"), "{e}");
        // trailing bytes after a whole kernel
        let e = format_error(&seal(&[payload, &[0, 0]].concat()));
        assert!(e.contains(&format!("at offset {}: 2 bytes left over", good.len())), "{e}");
    }

    #[test]
    fn a_state_that_breaks_an_invariant_is_refused() {
        let (mut k, _, _) = busy_kernel("4.18");
        let pfn = k.mem.frames.iter().position(|f| f.mapped()).unwrap() as u32;
        k.mem.inc_mapcount(pfn);
        let e = format_error(&k.snapshot_bytes().unwrap());
        assert!(e.contains("inconsistent") && e.contains("mapcount"), "{e}");
    }

    #[test]
    fn derived_profiles_are_stored_with_their_switches_and_malformed_names_refused() {
        let mut k = kernel("4.18");
        k.profile.name = "not a name";
        let e = k.snapshot_bytes().unwrap_err().to_string();
        assert!(e.contains("\"not a name\"") && e.contains("letters, digits"), "{e}");
        let mut k = kernel("4.18");
        k.profile = crate::profile::Profile::derive_text(
            "4.18",
            crate::arch::Arch::S390x,
            "4.18+snap-cbrl",
            &[("cbrl_guard", "UffdArmed")],
        )
        .unwrap();
        let r = Kernel::from_snapshot_bytes(&k.snapshot_bytes().unwrap()).unwrap();
        assert_eq!(r.profile, k.profile, "the derived name and every switch come back");
        // a built-in name with changed switches round-trips as it is
        let mut k = kernel("4.18");
        k.profile.unused_guard = crate::profile::UnusedGuard::None;
        let r = Kernel::from_snapshot_bytes(&k.snapshot_bytes().unwrap()).unwrap();
        assert_eq!(r.profile, k.profile);
    }
}
