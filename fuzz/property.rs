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
        operate(&mut k);
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

/// A run of operations on an accepted kernel, each followed by `check_invariants`: every
/// process touches (loads and stores) the first pages of each of its VMAs, reclaim runs, each
/// process forks and the child exits, then every process exits. Errors are fine (a parked
/// thread, a protection fault); a panic or a broken invariant is not: restore must have refused
/// any state on which an operation can break the model.
pub fn operate(k: &mut Kernel) {
    let check = |k: &Kernel, what: &str| {
        if let Err(e) = k.check_invariants() {
            panic!("after {what} on a restored kernel: {e}");
        }
    };
    for pid in k.pids() {
        for id in k.vmas_in(pid, 0, u64::MAX) {
            let (start, end) = (k.vma(id).start, k.vma(id).end);
            for (i, addr) in (start..end).step_by(4096).take(16).enumerate() {
                let _ = k.access(pid, 0, addr, i % 2 == 0, i as u64);
            }
        }
        check(k, "accesses");
    }
    k.reclaim(64);
    check(k, "reclaim");
    for pid in k.pids() {
        if let Ok(child) = k.fork(pid) {
            check(k, "fork");
            let _ = k.exit_mm(child);
            check(k, "the child's exit");
        }
    }
    for pid in k.pids() {
        let _ = k.exit_mm(pid);
        check(k, "exit");
    }
}
