//! libCacheSim's oracleGeneral binary traces
//! (libCacheSim/traceReader/customizedReader/oracle/oracleGeneralBin.h): no header, packed
//! little-endian 24-byte records
//!
//! ```text
//!  0  clock_time          u32  seconds
//!  4  obj_id              u64
//! 12  obj_size            u32  bytes
//! 16  next_access_vtime   i64  1-based position of the next request of obj_id, -1 (or
//!                              INT64_MAX) if none (traceConvOracleGeneral.cpp)
//! ```
//!
//! Every request is a read: the format has no operation. Like libCacheSim's reader with its
//! default `ignore_size_zero_req`, records of size 0 are skipped. `obj_size` is otherwise
//! ignored: an object is one page.

use super::{Columns, Request, read_error, read_full};
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::io::{BufRead, Write};

pub const RECORD_LEN: usize = 24;

fn bad(at: u64, detail: String) -> Error {
    Error::Format { what: "oracleGeneral trace", at: format!("offset {at}"), detail }
}

/// A streaming reader of oracleGeneral records.
pub struct Reader<R> {
    r: R,
    /// Records read (with those skipped).
    index: u64,
}

impl<R: BufRead> Reader<R> {
    pub fn new(r: R) -> Reader<R> {
        Reader { r, index: 0 }
    }

    /// The next request (records of size 0 skipped).
    #[inline]
    pub fn next_request(&mut self) -> Result<Option<Request>> {
        loop {
            let at = self.index * RECORD_LEN as u64;
            let mut b = [0u8; RECORD_LEN];
            // the whole record from the buffer when it holds one (nearly always: one fixed-size
            // copy instead of a read call per request), else the read loop across the refill
            let n = match self.r.fill_buf() {
                Ok(buf) if buf.len() >= RECORD_LEN => {
                    b.copy_from_slice(&buf[..RECORD_LEN]);
                    self.r.consume(RECORD_LEN);
                    RECORD_LEN
                }
                _ => read_full(&mut self.r, &mut b).map_err(|e| read_error(format_args!("offset {at}"), e))?,
            };
            if n == 0 {
                return Ok(None);
            }
            if n < RECORD_LEN {
                return Err(bad(
                    at,
                    format!("record {} is cut short: the file ends after {n} of its {RECORD_LEN} bytes", self.index),
                ));
            }
            let clock_time = u32::from_le_bytes(b[0..4].try_into().expect("4 bytes"));
            let obj_id = u64::from_le_bytes(b[4..12].try_into().expect("8 bytes"));
            let obj_size = u32::from_le_bytes(b[12..16].try_into().expect("4 bytes"));
            let next = i64::from_le_bytes(b[16..24].try_into().expect("8 bytes"));
            // a next access lies after the request itself, whether positions count from 0 or 1
            if next != -1 && next <= self.index as i64 {
                return Err(bad(
                    at + 16,
                    format!(
                        "record {}: next_access_vtime {next} is neither -1 nor the position of a later request",
                        self.index
                    ),
                ));
            }
            self.index += 1;
            if obj_size != 0 {
                return Ok(Some(Request { key: obj_id, write: false, time: clock_time as u64 }));
            }
        }
    }
}

impl<R: BufRead> Reader<R> {
    /// Append up to `max` requests to `out` (fewer only at the end of the trace): what
    /// [`Reader::next_request`] gives one at a time, decoded straight from the buffer a whole
    /// buffer of records at a time. A record the fast loop cannot take (cut by the buffer's
    /// end, malformed) goes through `next_request`, which reads it or names what is wrong.
    pub fn read_batch(&mut self, out: &mut Vec<Request>, max: usize) -> Result<()> {
        let end = out.len().saturating_add(max);
        while out.len() < end {
            let (taken, stopped) = match self.r.fill_buf() {
                Ok(buf) if buf.len() >= RECORD_LEN => {
                    let mut taken = 0;
                    let mut stopped = false;
                    for b in buf.chunks_exact(RECORD_LEN) {
                        if out.len() == end {
                            break;
                        }
                        let next = i64::from_le_bytes(b[16..24].try_into().expect("8 bytes"));
                        if next != -1 && next <= (self.index + taken) as i64 {
                            stopped = true;
                            break;
                        }
                        taken += 1;
                        if u32::from_le_bytes(b[12..16].try_into().expect("4 bytes")) != 0 {
                            out.push(Request {
                                key: u64::from_le_bytes(b[4..12].try_into().expect("8 bytes")),
                                write: false,
                                time: u32::from_le_bytes(b[0..4].try_into().expect("4 bytes")) as u64,
                            });
                        }
                    }
                    (taken, stopped)
                }
                _ => (0, true),
            };
            if taken > 0 {
                self.r.consume(taken as usize * RECORD_LEN);
                self.index += taken;
            }
            if stopped || taken == 0 {
                match self.next_request()? {
                    Some(q) => out.push(q),
                    None => break,
                }
            }
        }
        Ok(())
    }
}

/// Write `cols` as oracleGeneral records: objects of 4096 bytes, `next_access_vtime` computed
/// as libCacheSim's traceConv does, `clock_time` from `cols.times` (seconds; 0 without).
/// Stores cannot be written: the format has no operation.
pub fn write(w: &mut impl Write, cols: Columns<'_>) -> Result<()> {
    cols.check()?;
    if let Some(i) = (0..cols.keys.len()).find(|&i| cols.write(i)) {
        return Err(Error::invalid(format!(
            "request {i} is a store, and the oracleGeneral format has none (every request is a read): \
             write the trace as binary or csv to keep its stores"
        )));
    }
    if let Some(i) = cols.times.and_then(|t| t.iter().position(|&x| x > u32::MAX as u64)) {
        return Err(Error::invalid(format!("time of request {i} does not fit the 32-bit clock_time of oracleGeneral")));
    }
    // next_access_vtime: the 1-based position of the next request of the same object
    let mut next = vec![-1i64; cols.keys.len()];
    let mut seen: HashMap<u64, i64> = HashMap::with_capacity(cols.keys.len() / 8);
    for (i, &k) in cols.keys.iter().enumerate().rev() {
        if let Some(j) = seen.insert(k, i as i64 + 1) {
            next[i] = j;
        }
    }
    for (i, &k) in cols.keys.iter().enumerate() {
        let mut b = [0u8; RECORD_LEN];
        b[0..4].copy_from_slice(&(cols.time(i) as u32).to_le_bytes());
        b[4..12].copy_from_slice(&k.to_le_bytes());
        b[12..16].copy_from_slice(&4096u32.to_le_bytes());
        b[16..24].copy_from_slice(&next[i].to_le_bytes());
        w.write_all(&b)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::Format;
    use super::super::tests::{read_all, written};
    use super::*;

    fn record(t: u32, id: u64, size: u32, next: i64) -> Vec<u8> {
        [&t.to_le_bytes()[..], &id.to_le_bytes(), &size.to_le_bytes(), &next.to_le_bytes()].concat()
    }

    #[test]
    fn records_are_libcachesim_s_layout_with_its_next_access_vtime() {
        let b =
            written(Format::Oracle, Columns { keys: &[7, 9, 7, 7], writes: None, times: Some(&[1, 2, 3, 3]) }).unwrap();
        assert_eq!(b.len(), 4 * 24);
        assert_eq!(&b[..24], &record(1, 7, 4096, 3)[..]);
        assert_eq!(&b[24..48], &record(2, 9, 4096, -1)[..]);
        assert_eq!(&b[48..72], &record(3, 7, 4096, 4)[..]);
        assert_eq!(&b[72..], &record(3, 7, 4096, -1)[..]);
    }

    #[test]
    fn size_zero_is_skipped_and_bad_records_are_named() {
        let mut b = record(0, 1, 0, -1);
        b.extend(record(0, 2, 10, i64::MAX));
        let r = read_all(Format::Oracle, &b).unwrap();
        assert_eq!(r, vec![Request { key: 2, write: false, time: 0 }]);
        let e = read_all(Format::Oracle, &b[..40]).unwrap_err().to_string();
        assert_eq!(
            e,
            "malformed oracleGeneral trace at offset 24: record 1 is cut short: the file ends after 16 of its 24 bytes"
        );
        let mut b = record(0, 1, 8, 5);
        b.extend(record(0, 2, 8, 1));
        let e = read_all(Format::Oracle, &b).unwrap_err().to_string();
        assert!(e.contains("at offset 40: record 1: next_access_vtime 1 is neither -1"), "{e}");
    }

    #[test]
    fn a_batch_is_what_next_request_gives_one_at_a_time_errors_included() {
        use std::io::{BufReader, Cursor};
        let mut b = Vec::new();
        for i in 0..1000u64 {
            b.extend(record(i as u32, i * 3, if i % 7 == 0 { 0 } else { 8 }, -1));
        }
        let good = read_all(Format::Oracle, &b).unwrap();
        // a small read buffer cuts records across refills
        for (cap, max) in [(100, 1), (100, 13), (1 << 16, 256), (24, 1000)] {
            let mut r = Reader::new(BufReader::with_capacity(cap, Cursor::new(&b)));
            let mut out = Vec::new();
            loop {
                let before = out.len();
                r.read_batch(&mut out, max).unwrap();
                assert!(out.len() - before <= max);
                if out.len() - before < max {
                    break;
                }
            }
            assert_eq!(out, good, "buffer {cap}, batch {max}");
        }
        // a bad next_access_vtime at record 500: the requests before it, then its error
        b[500 * 24 + 16..500 * 24 + 24].copy_from_slice(&3i64.to_le_bytes());
        let mut r = Reader::new(BufReader::with_capacity(1 << 16, Cursor::new(&b)));
        let mut out = Vec::new();
        let e = r.read_batch(&mut out, 2000).unwrap_err().to_string();
        assert!(e.contains("at offset 12016: record 500: next_access_vtime 3"), "{e}");
        assert_eq!(out[..], good[..good.iter().position(|q| q.key == 1500).unwrap()]);
    }

    #[test]
    fn stores_and_long_times_do_not_fit_the_format() {
        let e = written(Format::Oracle, Columns { keys: &[1], writes: Some(&[true]), times: None }).unwrap_err();
        assert!(e.to_string().contains("oracleGeneral format has none"), "{e}");
        let e = written(Format::Oracle, Columns { keys: &[1], writes: None, times: Some(&[1 << 32]) }).unwrap_err();
        assert!(e.to_string().contains("32-bit clock_time"), "{e}");
    }
}
