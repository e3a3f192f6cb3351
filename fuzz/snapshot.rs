//! Fuzzing of the snapshot decoder on stable Rust: a mutation loop over the valid snapshots of
//! `fuzz/corpus/snapshot/` (bit flips, interesting bytes, truncations, insertions, deletions,
//! duplicated chunks, splices of two files). Half of the inputs get their header resealed
//! (magic, version, kind, payload length and CRC-32 made to agree with the mutated payload) so
//! that they reach the payload decoder and the state checks instead of stopping at the
//! checksum.
//!
//! Property: restoring never panics; it either refuses the input with an error, or yields a
//! state that passes its invariants and on which the model keeps running without a panic
//! (a kernel reclaims and runs kswapd, a postcopy run steps on). A failing input is written to
//! `target/fuzz-crashes/` to replay.
//!
//! This loop is blind (no coverage feedback) but needs nothing beyond cargo test; the
//! coverage-guided target `fuzz/fuzz_targets/snapshot.rs` (cargo-fuzz, `make fuzz-cov`) holds
//! its inputs to the same property (`fuzz/property.rs`).
//!
//! `cargo test --release --test fuzz_snapshot` runs a short, fixed loop (seconds, part of
//! `make test`); `make fuzz` runs `fuzz_long` for `FUZZ_SECONDS` (default 300) with a seed
//! from the clock; `cargo test --release --test fuzz_snapshot -- --ignored write_corpus`
//! rewrites the corpus (after a change of the format).

mod property;

use property::{exercise, reseal};
use reclaim::arch::Arch;
use reclaim::kernel::Kernel;
use reclaim::mm::mmap::MapKind;
use reclaim::profile::Profile;
use reclaim::sim::rng::Rng;
use reclaim::study::postcopy::{self, PostcopyConfig};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/snapshot")
}

fn corpus() -> Vec<Vec<u8>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir()).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let out: Vec<Vec<u8>> = files.iter().map(|p| std::fs::read(p).unwrap()).collect();
    assert!(out.len() >= 3, "the corpus has {} files", out.len());
    out
}

/// A small kernel that went through swap-out, a parked userfault, fork, madvise and shmem.
fn small_kernel(profile: &str) -> Kernel {
    let mut k = Kernel::new(Profile::get(profile, Arch::S390x).unwrap(), 512 << 10, 512 << 10, 3).unwrap();
    let pid = k.spawn("qemu-system-s390x", true).unwrap();
    let a = k.mmap(pid, 64 << 12, MapKind::Anon, false, None).unwrap();
    for i in 0..64 {
        k.access(pid, 0, a + (i << 12), true, i + 1).unwrap();
    }
    let s = k.mmap(pid, 8 << 12, MapKind::Shmem, true, None).unwrap();
    for i in 0..8 {
        k.access(pid, 0, s + (i << 12), true, 100 + i).unwrap();
    }
    let child = k.fork(pid).unwrap();
    k.access(child, 0, a, true, 7).unwrap();
    k.essa(pid, 0, a + (3 << 12), reclaim::arch::s390::essa::ESSA_SET_UNUSED).unwrap();
    k.reclaim(48);
    k.madvise(pid, a + (10 << 12), 4 << 12, reclaim::mm::madvise::Advice::Dontneed).unwrap();
    let b = k.mmap(pid, 4 << 12, MapKind::Anon, false, None).unwrap();
    let u = k.userfaultfd(pid).unwrap();
    k.uffdio_api(u, reclaim::uffd::ioctl::UFFD_API, 0).unwrap();
    k.uffdio_register(u, b, 4 << 12, reclaim::uffd::ioctl::UFFDIO_REGISTER_MODE_MISSING).unwrap();
    k.access(pid, 1, b, false, 0).unwrap();
    k.check_invariants().unwrap();
    k
}

/// A tiny postcopy study stopped in the middle.
fn small_run() -> (reclaim::study::world::World, PostcopyConfig) {
    let mut c = PostcopyConfig::new(Profile::get("4.17", Arch::S390x).unwrap());
    c.guest.pages = 64;
    c.guest.turnover = 0.2;
    c.source_memory = 5 << 20;
    c.source_swap = 256 << 10;
    c.dest_memory = 512 << 10;
    c.dest_swap = 1 << 20;
    c.other_load = 64 << 10;
    c.link.bandwidth = 2_000_000;
    let mut w = postcopy::build(&c).unwrap();
    w.start();
    w.run(100_000_000);
    assert!(!w.finished());
    (w, c)
}

#[test]
#[ignore = "rewrites fuzz/corpus/snapshot after a change of the format"]
fn write_corpus() {
    let dir = corpus_dir();
    std::fs::create_dir_all(&dir).unwrap();
    for p in ["4.17", "6.12", "6.12-debian"] {
        small_kernel(p).snapshot(dir.join(format!("kernel-{p}.snap"))).unwrap();
    }
    let (w, c) = small_run();
    postcopy::snapshot(&w, &c, &dir.join("postcopy-run-4.17.snap")).unwrap();
}

#[test]
fn the_corpus_restores() {
    for bytes in corpus() {
        let ok = Kernel::from_snapshot_bytes(&bytes).is_ok() || postcopy::from_snapshot_bytes(&bytes).is_ok();
        assert!(ok, "a corpus file does not restore: rewrite the corpus (see the module doc)");
    }
}

/// One mutation of `input` (`other` for splices).
fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut b = input.to_vec();
    let len = b.len().max(1) as u64;
    let at = |rng: &mut Rng| rng.below(len) as usize;
    for _ in 0..=rng.below(3) {
        match rng.below(7) {
            0 => {
                for _ in 0..=rng.below(8) {
                    let i = at(rng).min(b.len().saturating_sub(1));
                    if let Some(x) = b.get_mut(i) {
                        *x ^= 1 << rng.below(8);
                    }
                }
            }
            1 => {
                let i = at(rng).min(b.len().saturating_sub(1));
                if let Some(x) = b.get_mut(i) {
                    *x = [0, 0xff, 0x7f, 0x80, 1][rng.below(5) as usize];
                }
            }
            2 => b.truncate(at(rng)),
            3 => {
                let i = at(rng).min(b.len());
                let n = rng.below(16) as usize;
                let bytes: Vec<u8> = (0..n).map(|_| rng.below(256) as u8).collect();
                b.splice(i..i, bytes);
            }
            4 => {
                let i = at(rng).min(b.len());
                let j = (i + rng.below(64) as usize).min(b.len());
                b.drain(i..j);
            }
            5 => {
                let i = at(rng).min(b.len());
                let j = (i + rng.below(64) as usize).min(b.len());
                let chunk = b[i..j].to_vec();
                let k = at(rng).min(b.len());
                b.splice(k..k, chunk);
            }
            _ => {
                let i = at(rng).min(b.len());
                let j = rng.below(other.len().max(1) as u64) as usize;
                b.truncate(i);
                b.extend_from_slice(&other[j.min(other.len())..]);
            }
        }
    }
    b
}

/// Run the mutation loop until `until` or `iterations` inputs; panics (after saving the input)
/// on the first input that breaks the property. Returns (inputs, restored).
fn fuzz(seed: u64, iterations: u64, until: Instant) -> (u64, u64) {
    let corpus = corpus();
    let mut rng = Rng::new(seed);
    let (mut n, mut restored) = (0, 0);
    while n < iterations && Instant::now() < until {
        let a = &corpus[rng.below(corpus.len() as u64) as usize];
        let b = &corpus[rng.below(corpus.len() as u64) as usize];
        let mut input = mutate(&mut rng, a, b);
        if rng.chance(0.5) {
            input = reseal(input, a);
        }
        match catch_unwind(AssertUnwindSafe(|| exercise(&input))) {
            Ok(r) => restored += r as u64,
            Err(_) => {
                let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-crashes");
                std::fs::create_dir_all(&dir).unwrap();
                let path = dir.join(format!("crash-{seed}-{n}.snap"));
                std::fs::write(&path, &input).unwrap();
                panic!("input {n} of seed {seed} panicked; saved to {}", path.display());
            }
        }
        n += 1;
    }
    (n, restored)
}

#[test]
fn fuzz_short() {
    let (n, restored) = fuzz(1, 20_000, Instant::now() + Duration::from_secs(60));
    assert!(n >= 2_000 && restored > 0, "{n} inputs ran, {restored} restored");
}

#[test]
#[ignore = "the long run: make fuzz (FUZZ_SECONDS, default 300)"]
fn fuzz_long() {
    let secs: u64 = std::env::var("FUZZ_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(300);
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let (n, restored) = fuzz(seed, u64::MAX, Instant::now() + Duration::from_secs(secs));
    eprintln!("fuzz_snapshot: seed {seed}: {n} inputs in {secs} s, {restored} restored, none panicked");
}

/// Every one-byte change of a kernel snapshot's payload (a flipped low bit, +1, a flipped high
/// bit, zero), with the header resealed so that the change reaches the decoder: restore
/// either refuses it or gives a kernel that survives a run of operations with its invariants
/// checked after each ([`property::operate`]). A crafted frame record, a cache index beyond its
/// file, a stale link, a VMA missing from its anon_vma's list or a `vm_page_prot` its flags do
/// not give must be refused at restore, not break a later check. (About 10 s.)
#[test]
fn every_one_byte_change_is_refused_at_restore_or_survives_operations() {
    let good = std::fs::read(corpus_dir().join("kernel-4.17.snap")).unwrap();
    let mut restored = 0;
    for at in reclaim::snapshot::HEADER_LEN..good.len() {
        for change in [|b: u8| b ^ 1, |b: u8| b.wrapping_add(1), |b: u8| b ^ 0x80, |_| 0] {
            let mut b = good.clone();
            b[at] = change(b[at]);
            if b == good {
                continue;
            }
            let input = reseal(b, &good);
            if catch_unwind(AssertUnwindSafe(|| restored += exercise(&input) as u32)).is_err() {
                let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-crashes");
                std::fs::create_dir_all(&dir).unwrap();
                let path = dir.join(format!("byte-{at}.snap"));
                std::fs::write(&path, &input).unwrap();
                panic!("a change of payload byte {at} broke the model; saved to {}", path.display());
            }
        }
    }
    assert!(restored > 0);
}
