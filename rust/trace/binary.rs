//! reclaim's binary trace format, version 1 (the specification is docs/trace-format.md).
//!
//! A 32-byte header, then `count` fixed-size records, all little-endian:
//!
//! ```text
//! header   0  magic      8 bytes  "RCLMTRC\0"
//!          8  version    u16      1
//!         10  flags      u16      bit 0: every record carries a timestamp
//!         12  page_size  u32      4096
//!         16  count      u64      number of records
//!         24  reserved   u64      0
//! record   0  page       u64      bits 0..51 the page number, bit 63 a store, bits 52..62 zero
//!          8  time       u64      nanoseconds, non-decreasing (only with flag bit 0)
//! ```

use super::{Columns, Request, read_error, read_full};
use crate::error::{Error, Result};
use std::io::{BufRead, Write};

pub const MAGIC: &[u8; 8] = b"RCLMTRC\0";
pub const VERSION: u16 = 1;
pub const HEADER_LEN: usize = 32;
/// The page size of version 1 (the model's).
pub const PAGE_SIZE: u32 = 4096;
/// Header flag: every record is followed by a u64 timestamp in nanoseconds.
pub const FLAG_TIMESTAMPS: u16 = 1;
/// Record bit 63: the access is a store.
pub const WRITE: u64 = 1 << 63;
/// Record bits 0..51: the page number (a 64-bit address space of 4 KiB pages). Not the
/// kernel's `PAGE_MASK`, which keeps the address bits above the page offset.
pub const PAGE_NUMBER_MASK: u64 = (1 << 52) - 1;

fn bad(at: u64, detail: String) -> Error {
    Error::Format { what: "binary trace", at: format!("offset {at}"), detail }
}

/// A streaming reader of the binary format.
pub struct Reader<R> {
    r: R,
    count: u64,
    /// Records read.
    index: u64,
    /// Byte offset of the next record.
    offset: u64,
    timestamps: bool,
    last_time: u64,
}

impl<R: BufRead> Reader<R> {
    /// Read and check the header.
    pub fn new(mut r: R) -> Result<Reader<R>> {
        let mut h = [0u8; HEADER_LEN];
        let n = read_full(&mut r, &mut h).map_err(|e| read_error("offset 0", e))?;
        if n < HEADER_LEN {
            return Err(bad(n as u64, format!("the file ends inside the {HEADER_LEN}-byte header")));
        }
        let u16_at = |o: usize| u16::from_le_bytes([h[o], h[o + 1]]);
        let u32_at = |o: usize| u32::from_le_bytes(h[o..o + 4].try_into().expect("4 bytes"));
        let u64_at = |o: usize| u64::from_le_bytes(h[o..o + 8].try_into().expect("8 bytes"));
        if &h[..8] != MAGIC {
            return Err(bad(0, format!("not a reclaim binary trace: the magic is {:?}, not \"RCLMTRC\\0\"", &h[..8])));
        }
        if u16_at(8) != VERSION {
            return Err(bad(8, format!("version {} is unknown; this reader knows version {VERSION}", u16_at(8))));
        }
        let flags = u16_at(10);
        if flags & !FLAG_TIMESTAMPS != 0 {
            return Err(bad(10, format!("unknown flags {flags:#x}: version 1 defines bit 0 (timestamps) only")));
        }
        if u32_at(12) != PAGE_SIZE {
            return Err(bad(12, format!("page size {} is not {PAGE_SIZE}, the only one of version 1", u32_at(12))));
        }
        if u64_at(24) != 0 {
            return Err(bad(24, format!("the reserved field is {:#x}, not 0", u64_at(24))));
        }
        Ok(Reader {
            r,
            count: u64_at(16),
            index: 0,
            offset: HEADER_LEN as u64,
            timestamps: flags & FLAG_TIMESTAMPS != 0,
            last_time: 0,
        })
    }

    /// Refuse a header whose record count disagrees with the length of the file (`file_len`
    /// bytes): a count of 2^60 is an error at offset 16 before any record is read.
    pub fn check_file_len(&self, file_len: u64) -> Result<()> {
        let record = if self.timestamps { 16 } else { 8 };
        let have = file_len.saturating_sub(HEADER_LEN as u64) / record;
        let exact = file_len >= HEADER_LEN as u64 && (file_len - HEADER_LEN as u64) % record == 0;
        if self.count != have || !exact {
            return Err(bad(
                16,
                format!(
                    "the header announces {} records of {record} bytes, the file has room for {have} ({file_len} bytes)",
                    self.count
                ),
            ));
        }
        Ok(())
    }

    /// Records the header announces.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The next request; after the last one, the file must end.
    #[inline]
    pub fn next_request(&mut self) -> Result<Option<Request>> {
        let at = self.offset;
        if self.index == self.count {
            let rest = self.r.fill_buf().map_err(|e| read_error(format_args!("offset {at}"), e))?;
            if !rest.is_empty() {
                return Err(bad(at, format!("data follows the {} records the header announces", self.count)));
            }
            return Ok(None);
        }
        let len = if self.timestamps { 16 } else { 8 };
        let mut b = [0u8; 16];
        let n = read_full(&mut self.r, &mut b[..len]).map_err(|e| read_error(format_args!("offset {at}"), e))?;
        if n < len {
            return Err(bad(
                at,
                format!(
                    "record {} of the {} the header announces is cut short: the file ends after {n} of its {len} bytes",
                    self.index, self.count
                ),
            ));
        }
        let v = u64::from_le_bytes(b[..8].try_into().expect("8 bytes"));
        if v & !(WRITE | PAGE_NUMBER_MASK) != 0 {
            return Err(bad(at, format!("record {}: bits 52..62 must be 0, the record is {v:#018x}", self.index)));
        }
        let mut time = 0;
        if self.timestamps {
            time = u64::from_le_bytes(b[8..].try_into().expect("8 bytes"));
            if time < self.last_time {
                return Err(bad(
                    at + 8,
                    format!(
                        "record {}: timestamp {time} is before the one of the record before ({})",
                        self.index, self.last_time
                    ),
                ));
            }
            self.last_time = time;
        }
        self.index += 1;
        self.offset += len as u64;
        Ok(Some(Request { key: v & PAGE_NUMBER_MASK, write: v & WRITE != 0, time }))
    }
}

/// Write `cols` in the binary format: with timestamps if `cols.times` is given.
pub fn write(w: &mut impl Write, cols: Columns<'_>) -> Result<()> {
    cols.check()?;
    if let Some(i) = cols.keys.iter().position(|&k| k > PAGE_NUMBER_MASK) {
        return Err(Error::invalid(format!(
            "key {} ({:#x}) of request {i} is not a page number: the binary format holds pages below 2^52",
            cols.keys[i], cols.keys[i]
        )));
    }
    if let Some(t) = cols.times {
        if let Some(i) = t.windows(2).position(|p| p[1] < p[0]) {
            return Err(Error::invalid(format!(
                "times must not decrease: request {} has {} after {}",
                i + 1,
                t[i + 1],
                t[i]
            )));
        }
    }
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(MAGIC);
    h[8..10].copy_from_slice(&VERSION.to_le_bytes());
    let flags = if cols.times.is_some() { FLAG_TIMESTAMPS } else { 0 };
    h[10..12].copy_from_slice(&flags.to_le_bytes());
    h[12..16].copy_from_slice(&PAGE_SIZE.to_le_bytes());
    h[16..24].copy_from_slice(&(cols.keys.len() as u64).to_le_bytes());
    w.write_all(&h)?;
    for (i, &k) in cols.keys.iter().enumerate() {
        let v = k | if cols.write(i) { WRITE } else { 0 };
        w.write_all(&v.to_le_bytes())?;
        if cols.times.is_some() {
            w.write_all(&cols.time(i).to_le_bytes())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::Format;
    use super::super::tests::{read_all, written};
    use super::*;

    fn trace(times: bool) -> Vec<u8> {
        let cols = Columns { keys: &[5, 1 << 40, 0], writes: Some(&[true, false, true]), times: None };
        let t = [10, 10, 20];
        written(Format::Binary, Columns { times: times.then_some(&t[..]), ..cols }).unwrap()
    }

    fn err(bytes: &[u8]) -> String {
        read_all(Format::Binary, bytes).unwrap_err().to_string()
    }

    #[test]
    fn header_and_records_are_the_documented_bytes() {
        let b = trace(false);
        assert_eq!(b.len(), 32 + 3 * 8);
        assert_eq!(&b[..8], b"RCLMTRC\0");
        assert_eq!(&b[8..16], &[1, 0, 0, 0, 0, 0x10, 0, 0]);
        assert_eq!(&b[16..24], &3u64.to_le_bytes());
        assert_eq!(&b[32..40], &(5u64 | 1 << 63).to_le_bytes());
        assert_eq!(trace(true).len(), 32 + 3 * 16);
        let r = read_all(Format::Binary, &trace(true)).unwrap();
        assert_eq!(r[1], Request { key: 1 << 40, write: false, time: 10 });
    }

    #[test]
    fn malformed_files_name_the_offset() {
        let good = trace(true);
        assert!(err(&good[..20]).contains("at offset 20: the file ends inside the 32-byte header"));
        let mut m = good.clone();
        m[0] = b'X';
        assert!(err(&m).contains("at offset 0: not a reclaim binary trace"));
        let mut m = good.clone();
        m[8] = 2;
        assert!(err(&m).contains("at offset 8: version 2 is unknown"));
        let mut m = good.clone();
        m[10] = 6;
        assert!(err(&m).contains("at offset 10: unknown flags 0x6"));
        let mut m = good.clone();
        m[13] = 0x20;
        assert!(err(&m).contains("at offset 12: page size 8192"));
        let mut m = good.clone();
        m[30] = 1;
        assert!(err(&m).contains("at offset 24: the reserved field"));
        assert!(err(&good[..good.len() - 3]).contains(
            "at offset 64: record 2 of the 3 the header announces is cut short: the file ends after 13 of its 16 bytes"
        ));
        let mut m = good.clone();
        m.push(0);
        assert!(err(&m).contains("at offset 80: data follows the 3 records"));
        let mut m = good.clone();
        m[32 + 16 + 7] = 0x10;
        assert!(err(&m).contains("at offset 48: record 1: bits 52..62 must be 0"));
        let mut m = good.clone();
        m[32 + 8] = 11;
        assert!(err(&m).contains("at offset 56: record 1: timestamp 10 is before the one of the record before (11)"));
    }

    #[test]
    fn what_the_format_cannot_hold_is_refused_by_the_writer() {
        let e = written(Format::Binary, Columns { keys: &[1 << 52], writes: None, times: None }).unwrap_err();
        assert!(e.to_string().contains("not a page number"), "{e}");
        let e = written(Format::Binary, Columns { keys: &[1, 2], writes: None, times: Some(&[5, 4]) }).unwrap_err();
        assert!(e.to_string().contains("times must not decrease"), "{e}");
    }
}
