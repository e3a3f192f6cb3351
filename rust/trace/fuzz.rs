//! A mutation fuzzer of the trace readers that runs within cargo test (the coverage-guided one
//! is the cargo-fuzz target `fuzz/fuzz_targets/trace.rs`, `make fuzz-cov`). Inputs
//! come from the corpus in `fuzz/corpus/trace-{binary,csv,oracle,damon,perf}/` and are mutated (bit flips,
//! interesting bytes and words, truncations, splices with other inputs, insertions, deletions,
//! duplicated ranges, random bytes); each is detected and read to its end. A reader must give
//! requests, then either the end or an [`Error::Format`] naming a place inside the input. A
//! panic fails the test and leaves the input that caused it in the temporary directory.
//!
//! The normal test run makes a short campaign; `RECLAIM_FUZZ_ITERS` (inputs per format) and
//! `RECLAIM_FUZZ_SEED` make a longer or another one (`make fuzz-traces`).

use super::Format;
use super::check::read_to_end;
use crate::sim::rng::Rng;
use std::path::{Path, PathBuf};

fn corpus(format: Format) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(format!("trace-{}", format.name()));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let inputs: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    assert!(!inputs.is_empty(), "no corpus in {}", dir.display());
    inputs
}

const BYTES: [u8; 12] = [0, 1, 0x7f, 0x80, 0xff, b',', b'\n', b'\r', b'#', b'0', b'x', b' '];
const WORDS: [u64; 8] = [0, 1, u64::MAX, 1 << 63, i64::MAX as u64, (1 << 52) - 1, 1 << 52, 4096];

fn mutate(rng: &mut Rng, input: &[u8], pool: &[Vec<u8>]) -> Vec<u8> {
    if rng.below(64) == 0 {
        return (0..rng.below(200)).map(|_| rng.next_u64() as u8).collect();
    }
    let mut v = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = v.len() as u64;
        let at = |rng: &mut Rng| rng.below(len + 1) as usize;
        match rng.below(8) {
            0 if len > 0 => {
                let i = rng.below(len) as usize;
                v[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len) as usize;
                v[i] = BYTES[rng.below(BYTES.len() as u64) as usize];
            }
            2 => v.truncate(at(rng)),
            3 => {
                let other = &pool[rng.below(pool.len() as u64) as usize];
                let cut = rng.below(other.len() as u64 + 1) as usize;
                v.truncate(at(rng));
                v.extend_from_slice(&other[cut..]);
            }
            4 => {
                let bytes: Vec<u8> = (0..1 + rng.below(16)).map(|_| rng.next_u64() as u8).collect();
                let i = at(rng);
                v.splice(i..i, bytes);
            }
            5 => {
                let (a, b) = (at(rng), at(rng));
                v.drain(a.min(b)..a.max(b));
            }
            6 => {
                let (a, b) = (at(rng), at(rng));
                let chunk = v[a.min(b)..a.max(b)].to_vec();
                let i = at(rng);
                v.splice(i..i, chunk);
            }
            _ if len >= 8 => {
                let i = rng.below(len - 7) as usize;
                v[i..i + 8].copy_from_slice(&WORDS[rng.below(WORDS.len() as u64) as usize].to_le_bytes());
            }
            _ => {}
        }
    }
    v
}

/// Read `data` as `format` to its end: (requests read, whether it was refused), or what is
/// wrong with the reader.
/// Fuzz `format` with `iters` inputs; (inputs read to their end, inputs that were errors).
fn campaign(format: Format, iters: u64, seed: u64) -> (u64, u64) {
    let pool = corpus(format);
    let mut rng = Rng::new(seed ^ format as u64);
    let (mut clean, mut errors) = (0, 0);
    for (i, input) in pool.iter().enumerate() {
        assert_eq!(
            read_to_end(format, input).map(|(n, refused)| n > 0 && !refused),
            Ok(true),
            "corpus input {i} of {format:?}"
        );
    }
    for i in 0..iters {
        let base = &pool[rng.below(pool.len() as u64) as usize];
        let data = mutate(&mut rng, base, &pool);
        let outcome = std::panic::catch_unwind(|| read_to_end(format, &data));
        let failure = match outcome {
            Ok(Ok((_, false))) => {
                clean += 1;
                None
            }
            Ok(Ok((_, true))) => {
                errors += 1;
                None
            }
            Ok(Err(why)) => Some(why),
            Err(_) => Some("panic".to_string()),
        };
        if let Some(why) = failure {
            let keep = std::env::temp_dir().join(format!("reclaim-fuzz-{}-{seed}-{i}", format.name()));
            std::fs::write(&keep, &data).unwrap();
            panic!("{format:?} input {i} (seed {seed}): {why}; the input is in {}", keep.display());
        }
    }
    (clean, errors)
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[test]
fn mutated_traces_are_read_or_refused_with_a_place_never_a_panic() {
    let iters = env_u64("RECLAIM_FUZZ_ITERS", 100_000);
    let seed = env_u64("RECLAIM_FUZZ_SEED", 1);
    for format in Format::ALL {
        let t0 = std::time::Instant::now();
        let (clean, errors) = campaign(format, iters, seed);
        eprintln!(
            "fuzz {:<6} {iters} inputs in {:.1}s: {clean} read, {errors} refused",
            format.name(),
            t0.elapsed().as_secs_f64()
        );
        // the mutations reach both sides of the parser
        assert!(clean > iters / 100 && errors > iters / 100, "{format:?}: {clean} read, {errors} refused");
    }
}
