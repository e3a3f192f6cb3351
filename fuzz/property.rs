//! The snapshot decoder's property on untrusted input, shared by the stable mutation loop of
//! `fuzz/snapshot.rs` (a test of the main crate) and the coverage-guided cargo-fuzz target
//! `fuzz/fuzz_targets/snapshot.rs`.

use reclaim::kernel::Kernel;
use reclaim::snapshot::{HEADER_LEN, checksum};
use reclaim::study::postcopy;

/// `b` with the header of `like` and a payload length and checksum that agree with it.
pub fn reseal(mut b: Vec<u8>, like: &[u8]) -> Vec<u8> {
    if b.len() < HEADER_LEN {
        b.resize(HEADER_LEN, 0);
    }
    b[..16].copy_from_slice(&like[..16]);
    let n = (b.len() - HEADER_LEN) as u64;
    b[16..24].copy_from_slice(&n.to_le_bytes());
    let c = checksum(&b[HEADER_LEN..]);
    b[24..28].copy_from_slice(&c.to_le_bytes());
    b
}

/// Restore `input` as each kind; whatever restores must pass its invariants and keep running.
/// Returns whether something restored.
pub fn exercise(input: &[u8]) -> bool {
    let mut restored = false;
    if let Ok(mut k) = Kernel::from_snapshot_bytes(input) {
        k.check_invariants().unwrap();
        k.reclaim(32);
        k.kswapd_step();
        k.check_invariants().unwrap();
        restored = true;
    }
    if let Ok((mut w, _)) = postcopy::from_snapshot_bytes(input) {
        w.check_invariants().unwrap();
        w.run(w.now + 20_000_000);
        w.check_invariants().unwrap();
        restored = true;
    }
    restored
}
