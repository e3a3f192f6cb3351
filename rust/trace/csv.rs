//! CSV traces: one access a line, `addr[,write[,time]]` (docs/trace-format.md).
//!
//! - An optional header names the columns: the first is `addr` (or `address`: byte
//!   addresses, the model takes the page, `addr >> 12`) or `page` (page numbers); then
//!   optionally `write` (or `op`, `rw`) and `time` (or `timestamp`), in that order. Without a
//!   header, the columns are `addr,write,time`, the last two optional on every line.
//! - Numbers are decimal or `0x` hexadecimal. The write column is `0`/`1`, `r`/`w`,
//!   `read`/`write` or `false`/`true` (any case); a missing one is a read.
//! - Blank lines and lines starting with `#` are skipped; fields may be padded with spaces;
//!   lines may end in CRLF.

use super::{Columns, Request, TextLines};
use crate::error::{Error, Result};
use std::io::{BufRead, Write};

fn bad(line: u64, detail: String) -> Error {
    Error::Format { what: "CSV trace", at: format!("line {line}"), detail }
}

/// What the columns hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Cols {
    /// Keys are page numbers (else byte addresses).
    pages: bool,
    /// Number of columns a line must have (None: 1 to 3, no header).
    exact: Option<usize>,
    write: bool,
    time: bool,
}

/// A streaming reader of CSV traces.
pub struct Reader<R> {
    lines: TextLines<R>,
    cols: Option<Cols>,
    /// The time of the last line that had one: times must not decrease (as in the binary
    /// format), so a replay's order is the trace's.
    last_time: Option<u64>,
}

/// A number in decimal or `0x` hexadecimal.
fn number(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) if !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()) => u64::from_str_radix(h, 16).ok(),
        Some(_) => None,
        None if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s.parse().ok(),
        None => None,
    }
}

fn write_flag(s: &str) -> Option<bool> {
    const READ: [&str; 4] = ["0", "r", "read", "false"];
    const WRITE: [&str; 4] = ["1", "w", "write", "true"];
    if READ.iter().any(|x| x.eq_ignore_ascii_case(s)) {
        Some(false)
    } else if WRITE.iter().any(|x| x.eq_ignore_ascii_case(s)) {
        Some(true)
    } else {
        None
    }
}

/// The columns a header line names.
fn header(line: u64, fields: &[&str]) -> Result<Cols> {
    let name = |i: usize| fields[i].to_ascii_lowercase();
    let pages = match name(0).as_str() {
        "page" => true,
        "addr" | "address" => false,
        other => {
            return Err(bad(
                line,
                format!("the first column is {other:?}: expected a number, or a header addr or page"),
            ));
        }
    };
    let mut cols = Cols { pages, exact: Some(fields.len()), write: false, time: false };
    for i in 1..fields.len() {
        match name(i).as_str() {
            "write" | "op" | "rw" if !cols.write && !cols.time => cols.write = true,
            "time" | "timestamp" if !cols.time => cols.time = true,
            other => {
                return Err(bad(
                    line,
                    format!("header column {} is {other:?}: expected write (or op, rw), then time", i + 1),
                ));
            }
        }
    }
    Ok(cols)
}

impl<R: BufRead> Reader<R> {
    pub fn new(r: R) -> Reader<R> {
        Reader { lines: TextLines::new(r, "CSV trace", 128), cols: None, last_time: None }
    }

    /// The next request.
    pub fn next_request(&mut self) -> Result<Option<Request>> {
        loop {
            let Some((line, text)) = self.lines.next_line()? else {
                return Ok(None);
            };
            if text.is_empty() || text.starts_with('#') {
                continue;
            }
            let mut fields = [""; 3];
            let mut nf = 0;
            for f in text.split(',') {
                if nf == 3 {
                    return Err(bad(line, "more than 3 fields: expected addr or page, write, time".into()));
                }
                fields[nf] = f.trim();
                nf += 1;
            }
            let fields = &fields[..nf];
            let cols = match self.cols {
                Some(c) => c,
                None if number(fields[0]).is_none() => {
                    self.cols = Some(header(line, fields)?);
                    continue;
                }
                None => *self.cols.insert(Cols { pages: false, exact: None, write: true, time: true }),
            };
            if let Some(e) = cols.exact {
                if nf != e {
                    return Err(bad(line, format!("{nf} fields where the header names {e}")));
                }
            }
            let key = number(fields[0])
                .ok_or_else(|| bad(line, format!("{:?} is not a number (decimal or 0x hexadecimal)", fields[0])))?;
            let mut q = Request { key: if cols.pages { key } else { key >> 12 }, write: false, time: 0 };
            let mut i = 1;
            if cols.write && i < nf {
                q.write = write_flag(fields[i]).ok_or_else(|| {
                    bad(line, format!("write flag {:?} is none of 0/1, r/w, read/write, false/true", fields[i]))
                })?;
                i += 1;
            }
            if cols.time && i < nf {
                q.time = number(fields[i]).ok_or_else(|| bad(line, format!("time {:?} is not a number", fields[i])))?;
                if let Some(last) = self.last_time.filter(|&l| q.time < l) {
                    return Err(bad(
                        line,
                        format!("time {} is before the previous request's {last}: times must not decrease", q.time),
                    ));
                }
                self.last_time = Some(q.time);
            }
            return Ok(Some(q));
        }
    }
}

/// Write `cols` as CSV with the header `page,write` (and `,time` if `cols.times` is given).
pub fn write(w: &mut impl Write, cols: Columns<'_>) -> Result<()> {
    cols.check()?;
    w.write_all(if cols.times.is_some() { b"page,write,time\n" } else { b"page,write\n" })?;
    for (i, k) in cols.keys.iter().enumerate() {
        let flag = if cols.write(i) { 1 } else { 0 };
        match cols.times {
            Some(t) => writeln!(w, "{k},{flag},{}", t[i])?,
            None => writeln!(w, "{k},{flag}")?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::Format;
    use super::super::tests::read_all;
    use super::*;

    fn read(s: &str) -> Result<Vec<(u64, bool, u64)>> {
        Ok(read_all(Format::Csv, s.as_bytes())?.into_iter().map(|q| (q.key, q.write, q.time)).collect())
    }

    #[test]
    fn headers_numbers_flags_and_comments() {
        let t = "# a trace\naddr,write\n0x7f0000001000,1\n 8192 , r \r\n\n0X2fff,W\n";
        assert_eq!(read(t).unwrap(), vec![(0x7f0000001, true, 0), (2, false, 0), (2, true, 0)]);
        assert_eq!(read("page\n7\n0x10\n").unwrap(), vec![(7, false, 0), (16, false, 0)]);
        assert_eq!(read("page,op,timestamp\n7,read,5\n8,TRUE,6").unwrap(), vec![(7, false, 5), (8, true, 6)]);
        // no header: addr[,write[,time]]
        assert_eq!(read("4096\n8192,1\n12288,0,9\n").unwrap(), vec![(1, false, 0), (2, true, 0), (3, false, 9)]);
        assert_eq!(read("").unwrap(), vec![]);
    }

    #[test]
    fn malformed_lines_are_named() {
        let e = |s: &str| read(s).unwrap_err().to_string();
        assert_eq!(
            e("page,write\n1,0\n2,maybe\n"),
            "malformed CSV trace at line 3: write flag \"maybe\" is none of 0/1, r/w, read/write, false/true"
        );
        assert!(e("page,write\n1\n").contains("at line 2: 1 fields where the header names 2"));
        assert!(e("1,0\n0x,1\n").contains("at line 2: \"0x\" is not a number"));
        assert!(e("1,0\n-5,1\n").contains("at line 2: \"-5\" is not a number"));
        assert!(e("1,0,3,4\n").contains("at line 1: more than 3 fields"));
        assert!(e("pages,write\n").contains("at line 1: the first column is \"pages\""));
        assert!(e("page,time,write\n").contains("at line 1: header column 3 is \"write\""));
        assert!(e("1\n99999999999999999999\n").contains("at line 2"));
        // times never decrease, as in the binary format (equal times are fine)
        assert_eq!(
            e("page,write,time\n1,0,5\n2,0,5\n3,0,4\n"),
            "malformed CSV trace at line 4: time 4 is before the previous request's 5: times must not decrease"
        );
        assert!(e("4096,0,9\n8192\n12288,0,8\n").contains("at line 3: time 8 is before"));
        let mut bytes = b"1\n2\n".to_vec();
        bytes.extend_from_slice(&[0xff, b'\n']);
        let err = read_all(Format::Csv, &bytes).unwrap_err().to_string();
        assert!(err.contains("at line 3: not UTF-8 text"), "{err}");
    }
}
