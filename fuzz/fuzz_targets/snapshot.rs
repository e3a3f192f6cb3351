//! Coverage-guided fuzzing of the snapshot decoder. The first byte says whether to reseal the
//! rest with the header of a kernel (1) or of a postcopy run (2) snapshot, with a length and
//! CRC-32 that agree, so that mutations reach the payload decoder and the state checks; any
//! other value leaves the input as it is. Whatever restores must pass its invariants and keep
//! running (`fuzz/property.rs`).
#![no_main]

#[path = "../property.rs"]
mod property;

use libfuzzer_sys::fuzz_target;
use reclaim::snapshot::{FORMAT_VERSION, Kind, MAGIC};

/// The first 16 bytes of a snapshot of `kind`: magic, format version, kind.
fn head(kind: Kind) -> Vec<u8> {
    [&MAGIC[..], &FORMAT_VERSION.to_le_bytes(), &(kind as u32).to_le_bytes()].concat()
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    let input = match pick % 4 {
        1 => property::reseal(rest.to_vec(), &head(Kind::Kernel)),
        2 => property::reseal(rest.to_vec(), &head(Kind::PostcopyRun)),
        _ => rest.to_vec(),
    };
    property::exercise(&input);
});
