//! Coverage-guided fuzzing of the trace readers: the first byte picks the format (binary,
//! CSV, libCacheSim oracleGeneral, DAMON records, perf mem samples), the rest is the file. Every input must be read to its end
//! or refused with a format error naming a place inside it (`reclaim::trace::check`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use reclaim::trace::Format;
use reclaim::trace::check::read_to_end;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, file)) = data.split_first() else { return };
    let format = Format::ALL[pick as usize % Format::ALL.len()];
    if let Err(broken) = read_to_end(format, file) {
        panic!("{format:?}: {broken}");
    }
});
