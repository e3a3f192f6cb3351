//! The trace readers' contract on untrusted input, as one function that both the mutation
//! loop of the tests (`trace::fuzz`) and the coverage-guided cargo-fuzz target
//! (`fuzz/fuzz_targets/trace.rs`) hold every input to.

use super::{Format, Reader, detect};
use crate::error::Error;
use std::io::Cursor;
use std::path::Path;

/// Detect `data` and read it to its end as `format`: requests, then the end or an
/// [`Error::Format`] naming a place inside the input (`offset N` within it, `line N` of it;
/// DAMON's JSON: `decompressed line N` of a compressed one, `record R snapshot S [region G]`).
/// Returns (requests read, whether the input was refused), or what broke the contract. The
/// caller treats a panic as a break too.
pub fn read_to_end(format: Format, data: &[u8]) -> Result<(usize, bool), String> {
    let _ = detect(&data[..data.len().min(4096)], Path::new("fuzz"));
    let lines = data.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
    let placed = |e: Error| -> Result<(), String> {
        let Error::Format { at, .. } = &e else { return Err(format!("not a format error: {e}")) };
        let ok = match at.split_once(' ') {
            Some(("offset", n)) => n.parse::<u64>().is_ok_and(|n| n <= data.len() as u64),
            Some(("line", n)) => n.parse::<u64>().is_ok_and(|n| (1..=lines).contains(&n)),
            Some(("decompressed", rest)) => {
                format == Format::Damon
                    && rest.strip_prefix("line ").is_some_and(|n| n.parse::<u64>().is_ok_and(|n| n >= 1))
            }
            Some(("record", _)) => format == Format::Damon && at.contains(" snapshot "),
            _ => false,
        };
        if ok { Ok(()) } else { Err(format!("the error names no place inside the input: {e}")) }
    };
    let mut r = match Reader::new(format, Cursor::new(data)) {
        Ok(r) => r,
        Err(e) => return placed(e).map(|_| (0, true)),
    };
    let mut n = 0;
    loop {
        match r.next_request() {
            Ok(Some(_)) if n as u64 >= (data.len() as u64).saturating_mul(format.max_requests_per_byte()) => {
                return Err("more requests than bytes: the reader does not advance".into());
            }
            Ok(Some(_)) => n += 1,
            Ok(None) => return Ok((n, false)),
            Err(e) => return placed(e).map(|_| (n, true)),
        }
    }
}
