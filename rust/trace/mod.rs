//! Memory-access traces: a reader and a writer per format, and their replay against a kernel.
//!
//! - [`binary`]: reclaim's own format (docs/trace-format.md): a header, then fixed-size records
//!   of a page number, a store bit and an optional timestamp.
//! - [`csv`]: `addr,write` or `page,write` text.
//! - [`oracle`]: libCacheSim's oracleGeneral binary records (every request a read).
//! - [`damon`]: DAMON's access records as `damo record` writes them (read only): regions and
//!   their sampled access counts, spread into page accesses.
//! - [`perf`]: `perf mem` samples as `perf script` or `perf mem report -D` print them (read
//!   only).
//!
//! Any of them may be zstd-compressed (libCacheSim's public traces ship as `.zst`): [`open`]
//! decompresses as it reads.
//!
//! Readers stream (they hold one record, never the trace) and report malformed input as
//! [`Error::Format`] naming the byte offset (binary formats) or the line (CSV); they never
//! panic. Writers take the requests as columns ([`Columns`]), as numpy hands them over.

pub mod binary;
pub mod check;
pub mod csv;
pub mod damon;
pub mod oracle;
pub mod perf;
pub mod replay;

#[cfg(test)]
mod fuzz;

use crate::error::{Error, Result};
use crate::sim::workload::{AccessStream, Pattern};
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::Path;

/// One request of a trace.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Request {
    /// What is accessed: a page number (binary, CSV `page`), the page of an address (CSV
    /// `addr`: the address >> 12) or an object id (oracle).
    pub key: u64,
    /// A store (oracle: never).
    pub write: bool,
    /// The format's timestamp (binary: nanoseconds, where the file has them; oracle:
    /// `clock_time`, seconds; CSV: the `time` column), else 0.
    pub time: u64,
}

/// A trace file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    Binary,
    Csv,
    Oracle,
    /// DAMON records (`damo record`): read only.
    Damon,
    /// `perf mem` samples as text: read only.
    Perf,
}

impl Format {
    pub const ALL: [Format; 5] = [Format::Binary, Format::Csv, Format::Oracle, Format::Damon, Format::Perf];
    /// The formats [`write()`] writes (DAMON records and perf samples are only read).
    pub const WRITABLE: [Format; 3] = [Format::Binary, Format::Csv, Format::Oracle];

    pub fn name(self) -> &'static str {
        match self {
            Format::Binary => "binary",
            Format::Csv => "csv",
            Format::Oracle => "oracle",
            Format::Damon => "damon",
            Format::Perf => "perf",
        }
    }

    /// The most requests one byte of input may give: a DAMON region's few bytes give up to
    /// [`damon::MAX_NR_ACCESSES`] page accesses (the fuzzers' bound on a reader that advances).
    pub fn max_requests_per_byte(self) -> u64 {
        match self {
            Format::Damon => damon::MAX_NR_ACCESSES,
            _ => 1,
        }
    }

    /// `"binary"`, `"csv"`, `"oracle"` (or libCacheSim's own name, `"oracleGeneral"`),
    /// `"damon"`, `"perf"`, or
    /// `"auto"` (None: [`detect`] it).
    pub fn parse(s: &str) -> Result<Option<Format>> {
        if s == "auto" {
            return Ok(None);
        }
        if s == "oracleGeneral" {
            return Ok(Some(Format::Oracle));
        }
        Format::ALL.into_iter().find(|f| f.name() == s).map(Some).ok_or_else(|| {
            Error::invalid(format!(
                "unknown trace format {s:?}; known: auto, binary, csv, oracle (or oracleGeneral), damon, perf"
            ))
        })
    }
}

/// zstd's frame magic: libCacheSim ships its traces compressed.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// The format of (decompressed) data from its first bytes `head` and its file name: the binary
/// magic, damo's record magic, or a zlib stream with "damon" in the name; text that holds
/// `damon:damon_aggregated` events or damo's JSON is DAMON, text with perf mem samples is perf;
/// else a `.csv` or `.txt` name, or text without NUL bytes and below 0x80, is CSV; anything else
/// is oracleGeneral. zstd data inside zstd data is an error that says so.
pub fn detect(head: &[u8], path: &Path) -> Result<Format> {
    if head.starts_with(binary::MAGIC) {
        return Ok(Format::Binary);
    }
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("").to_ascii_lowercase();
    if head.starts_with(damon::RECORD_MAGIC) || (damon::is_zlib(head) && name.contains("damon")) {
        return Ok(Format::Damon);
    }
    let text = head.iter().all(|&b| b != 0 && b < 0x80);
    if text && damon::looks_like(head) {
        return Ok(Format::Damon);
    }
    if text && perf::looks_like(head) {
        return Ok(Format::Perf);
    }
    if head.starts_with(&ZSTD_MAGIC) {
        return Err(Error::invalid(format!(
            "{} is compressed with zstd twice: decompress it once (zstd -d) and read the result",
            path.display()
        )));
    }
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    if ext == "csv" || ext == "txt" || text {
        return Ok(Format::Csv);
    }
    Ok(Format::Oracle)
}

/// A streaming reader of one format.
pub enum Reader<R> {
    Binary(binary::Reader<R>),
    Csv(csv::Reader<R>),
    Oracle(oracle::Reader<R>),
    Damon(damon::Reader<R>),
    Perf(perf::Reader<R>),
}

impl<R: BufRead> Reader<R> {
    /// A reader of `format` over `r` (the binary header is read and checked here).
    pub fn new(format: Format, r: R) -> Result<Reader<R>> {
        Ok(match format {
            Format::Binary => Reader::Binary(binary::Reader::new(r)?),
            Format::Csv => Reader::Csv(csv::Reader::new(r)),
            Format::Oracle => Reader::Oracle(oracle::Reader::new(r)),
            Format::Damon => Reader::Damon(damon::Reader::new(r)?),
            Format::Perf => Reader::Perf(perf::Reader::new(r)),
        })
    }

    /// The next request, None at the end of the trace.
    #[inline]
    pub fn next_request(&mut self) -> Result<Option<Request>> {
        match self {
            Reader::Binary(r) => r.next_request(),
            Reader::Csv(r) => r.next_request(),
            Reader::Oracle(r) => r.next_request(),
            Reader::Damon(r) => r.next_request(),
            Reader::Perf(r) => r.next_request(),
        }
    }
}

impl<R: BufRead> Reader<R> {
    /// Append up to `max` requests to `out`, fewer only at the end of the trace: the requests
    /// `max` calls of [`Reader::next_request`] give (the same errors, at the same record), in
    /// one call. oracleGeneral decodes its records straight from the read buffer.
    pub fn read_batch(&mut self, out: &mut Vec<Request>, max: usize) -> Result<()> {
        if let Reader::Oracle(r) = self {
            return r.read_batch(out, max);
        }
        for _ in 0..max {
            match self.next_request()? {
                Some(q) => out.push(q),
                None => break,
            }
        }
        Ok(())
    }
}

fn io_error(path: &Path, e: std::io::Error) -> Error {
    Error::Io(format!("{}: {e}", path.display()))
}

/// What [`open`] reads from: the file, or a zstd decoder over it.
pub type Input = BufReader<Box<dyn Read + Send>>;

/// A zstd decoder whose errors say that the compressed stream, not the trace, is damaged.
struct Zstd<R: BufRead>(zstd::stream::read::Decoder<'static, R>);

impl<R: BufRead> Read for Zstd<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf).map_err(|e| match e.kind() {
            std::io::ErrorKind::Interrupted => e,
            _ => std::io::Error::new(ZSTD_ERROR, format!("the zstd stream is damaged or cut short: {e}")),
        })
    }
}

/// The I/O error kind of a damaged zstd stream ([`read_error`] makes it a format error).
const ZSTD_ERROR: std::io::ErrorKind = std::io::ErrorKind::InvalidData;

/// Open the trace at `path` in `format` (None: [`detect`] it). A zstd-compressed file (by its
/// magic, whatever its name) is decompressed as it is read; the format is detected from the
/// decompressed bytes and the name without its `.zst`.
pub fn open(path: &Path, format: Option<Format>) -> Result<(Format, Reader<Input>)> {
    let (file, len) = crate::files::open_regular(path, "trace")?;
    let mut raw = BufReader::with_capacity(1 << 16, file);
    let compressed = raw.fill_buf().map_err(|e| io_error(path, e))?.starts_with(&ZSTD_MAGIC);
    let src: Box<dyn Read + Send> = if compressed {
        let d = zstd::stream::read::Decoder::with_buffer(raw).map_err(|e| io_error(path, e))?;
        Box::new(Zstd(d))
    } else {
        Box::new(raw)
    };
    let mut r = BufReader::with_capacity(1 << 16, src);
    let format = match format {
        Some(f) => f,
        None => {
            let name = if compressed { path.with_extension("") } else { path.to_path_buf() };
            let head = r.fill_buf().map_err(|e| read_error(format_args!("{} byte 0", path.display()), e))?;
            detect(head, &name)?
        }
    };
    let reader = Reader::new(format, r)?;
    // the header's record count against the file's size (a compressed file's size says nothing)
    if let (false, Reader::Binary(b)) = (compressed, &reader) {
        b.check_file_len(len)?;
    }
    Ok((format, reader))
}

/// Read into `buf` until it is full or the input ends; the bytes read.
pub(crate) fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The lines of a text trace (CSV, perf mem, damo's perf_script), numbered from 1: a read
/// error names the line, a line that is not UTF-8 is a format error of `what` at that line.
pub(crate) struct TextLines<R> {
    r: R,
    line: u64,
    buf: Vec<u8>,
    what: &'static str,
}

impl<R: BufRead> TextLines<R> {
    pub(crate) fn new(r: R, what: &'static str, capacity: usize) -> TextLines<R> {
        TextLines { r, line: 0, buf: Vec::with_capacity(capacity), what }
    }

    /// The next line, trimmed, with its number; `None` at the end of the input.
    pub(crate) fn next_line(&mut self) -> Result<Option<(u64, &str)>> {
        self.buf.clear();
        let line = self.line + 1;
        let n = self.r.read_until(b'\n', &mut self.buf).map_err(|e| read_error(format_args!("line {line}"), e))?;
        if n == 0 {
            return Ok(None);
        }
        self.line = line;
        let text = std::str::from_utf8(&self.buf).map_err(|e| Error::Format {
            what: self.what,
            at: format!("line {line}"),
            detail: format!("not UTF-8 text: {e}"),
        })?;
        Ok(Some((line, text.trim())))
    }
}

/// An I/O error while reading at `at` (a byte offset or a line); a damaged zstd stream is a
/// format error.
pub(crate) fn read_error(at: impl std::fmt::Display, e: std::io::Error) -> Error {
    if e.kind() == ZSTD_ERROR {
        return Error::Format { what: "zstd-compressed trace", at: at.to_string(), detail: e.to_string() };
    }
    Error::Io(format!("reading the trace at {at}: {e}"))
}

/// Requests as owned columns: what [`read_columns`] gives.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trace {
    pub keys: Vec<u64>,
    pub writes: Vec<bool>,
    pub times: Vec<u64>,
}

/// The first `limit` requests of `r` as columns.
pub fn read_columns<R: BufRead>(r: &mut Reader<R>, limit: u64) -> Result<Trace> {
    let mut t = Trace::default();
    while (t.keys.len() as u64) < limit {
        let Some(q) = r.next_request()? else { break };
        t.keys.push(q.key);
        t.writes.push(q.write);
        t.times.push(q.time);
    }
    Ok(t)
}

/// Requests as columns: what the writers take.
#[derive(Clone, Copy, Debug)]
pub struct Columns<'a> {
    pub keys: &'a [u64],
    /// Stores (None: every request a read).
    pub writes: Option<&'a [bool]>,
    /// Timestamps in the format's unit (None: none).
    pub times: Option<&'a [u64]>,
}

impl Columns<'_> {
    /// Check that the columns have one length.
    pub fn check(&self) -> Result<()> {
        let n = self.keys.len();
        for (what, len) in [("writes", self.writes.map(<[bool]>::len)), ("times", self.times.map(<[u64]>::len))] {
            if let Some(len) = len {
                if len != n {
                    return Err(Error::invalid(format!("{what} has {len} elements but keys has {n}")));
                }
            }
        }
        Ok(())
    }

    #[inline]
    pub fn write(&self, i: usize) -> bool {
        self.writes.is_some_and(|w| w[i])
    }

    #[inline]
    pub fn time(&self, i: usize) -> u64 {
        self.times.map_or(0, |t| t[i])
    }
}

/// Write `cols` to `path` in `format`, atomically ([`crate::files::write_atomic`]): a failed
/// write leaves an existing file as it was, and its error names `path`.
pub fn write(path: &Path, format: Format, cols: Columns<'_>) -> Result<()> {
    cols.check()?;
    if !Format::WRITABLE.contains(&format) {
        return Err(read_only(format));
    }
    crate::files::write_atomic(path, "trace", |w| {
        let mut w = BufWriter::with_capacity(1 << 16, w);
        match format {
            Format::Binary => binary::write(&mut w, cols),
            Format::Csv => csv::write(&mut w, cols),
            Format::Oracle => oracle::write(&mut w, cols),
            Format::Damon | Format::Perf => Err(read_only(format)),
        }?;
        Ok(w.flush()?)
    })
}

/// The error of writing a format that is only read.
fn read_only(format: Format) -> Error {
    Error::invalid(format!(
        "reclaim reads {} traces but does not write them: write the trace as binary, csv or oracle",
        format.name()
    ))
}

/// `requests` page numbers drawn from a Zipf distribution of exponent `s` over `pages` pages
/// (page k has weight 1/(k+1)^s, page 0 is the hottest: [`Pattern::Zipf`]), each a store with
/// probability `write_fraction`; seeded.
pub fn zipf(requests: u64, pages: u64, s: f64, write_fraction: f64, seed: u64) -> Result<(Vec<u64>, Vec<bool>)> {
    let pattern = Pattern::parse(&format!("zipf:{s}"))?;
    let n = usize::try_from(requests).map_err(|_| Error::invalid(format!("{requests} requests is too many")))?;
    let (mut keys, mut writes) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for (addr, write, _) in AccessStream::new(pattern, 0, pages, write_fraction, seed)?.take(n) {
        keys.push(addr >> 12);
        writes.push(write);
    }
    Ok((keys, writes))
}

/// Write a [`zipf`] trace to `path` in `format`.
pub fn write_zipf(
    path: &Path,
    format: Format,
    requests: u64,
    pages: u64,
    s: f64,
    write_fraction: f64,
    seed: u64,
) -> Result<()> {
    let (keys, writes) = zipf(requests, pages, s, write_fraction, seed)?;
    write(path, format, Columns { keys: &keys, writes: Some(&writes), times: None })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Cursor;

    /// Every request of `bytes` read as `format`.
    pub fn read_all(format: Format, bytes: &[u8]) -> Result<Vec<Request>> {
        let mut r = Reader::new(format, Cursor::new(bytes))?;
        let mut out = Vec::new();
        while let Some(q) = r.next_request()? {
            out.push(q);
        }
        Ok(out)
    }

    /// `cols` written as `format` into memory.
    pub fn written(format: Format, cols: Columns<'_>) -> Result<Vec<u8>> {
        let mut v = Vec::new();
        match format {
            Format::Binary => binary::write(&mut v, cols)?,
            Format::Csv => csv::write(&mut v, cols)?,
            Format::Oracle => oracle::write(&mut v, cols)?,
            Format::Damon | Format::Perf => return Err(read_only(format)),
        }
        Ok(v)
    }

    #[test]
    fn every_format_round_trips_a_zipf_trace() {
        let (keys, writes) = zipf(5000, 300, 0.9, 0.3, 7).unwrap();
        let times: Vec<u64> = (0..5000u64).map(|i| i * 3).collect();
        for format in Format::WRITABLE {
            let writes = (format != Format::Oracle).then_some(&writes[..]);
            let cols = Columns { keys: &keys, writes, times: Some(&times) };
            let back = read_all(format, &written(format, cols).unwrap()).unwrap();
            assert_eq!(back.len(), keys.len(), "{format:?}");
            for (i, q) in back.iter().enumerate() {
                assert_eq!((q.key, q.write, q.time), (keys[i], cols.write(i), times[i]), "{format:?} request {i}");
            }
        }
        // zipf: page 0 is the hottest, every key is a page of the 300
        assert!(keys.iter().all(|&k| k < 300));
        let hot = keys.iter().filter(|&&k| k == 0).count();
        assert!(hot > keys.iter().filter(|&&k| k == 299).count() * 20, "{hot}");
    }

    #[test]
    fn detect_by_magic_name_and_content() {
        let p = Path::new("t");
        assert_eq!(detect(b"RCLMTRC\0\x01\x00", p).unwrap(), Format::Binary);
        assert_eq!(detect(b"page,write\n1,0\n", p).unwrap(), Format::Csv);
        assert_eq!(detect(b"\x01\x00\x00\x00\x05", p).unwrap(), Format::Oracle);
        assert_eq!(detect(b"\x01\x00", Path::new("t.csv")).unwrap(), Format::Csv);
        // DAMON: damo's record magic, its perf_script events, its JSON, its zlib'd damon.data
        assert_eq!(detect(b"damon_recfmt_ver\x02\x00\x00\x00", p).unwrap(), Format::Damon);
        let script = b"kdamond.0 4452 [000] 1.5: damon:damon_aggregated: target_id=0 nr_regions=1 0-4096: 1 3\n";
        assert_eq!(detect(script, p).unwrap(), Format::Damon);
        assert_eq!(detect(b"[\n    {\n \"snapshots\": []}]", p).unwrap(), Format::Damon);
        assert_eq!(detect(&[0x78, 0x9c, 0x8b], Path::new("damon.data")).unwrap(), Format::Damon);
        // perf mem samples: perf script's data_src decoding, perf mem report -D's header
        assert_eq!(detect(b"x 1/1 [000] 1.0: cpu/mem-loads/P: 7f00 142 |OP LOAD|LVL N/A\n", p).unwrap(), Format::Perf);
        assert_eq!(detect(b"# PID, TID, IP, ADDR, LOCAL WEIGHT, DSRC, SYMBOL\n", p).unwrap(), Format::Perf);
        assert_eq!(Format::parse("damon").unwrap(), Some(Format::Damon));
        assert_eq!(Format::parse("perf").unwrap(), Some(Format::Perf));
        let e = written(Format::Perf, Columns { keys: &[1], writes: None, times: None }).unwrap_err();
        assert!(e.to_string().contains("reads perf traces but does not write them"), "{e}");
        assert!(detect(&ZSTD_MAGIC, Path::new("t.oracleGeneral")).unwrap_err().to_string().contains("twice"));
        assert_eq!(Format::parse("auto").unwrap(), None);
        assert_eq!(Format::parse("oracle").unwrap(), Some(Format::Oracle));
        assert_eq!(Format::parse("oracleGeneral").unwrap(), Some(Format::Oracle));
        assert!(Format::parse("parquet").unwrap_err().to_string().contains("binary, csv, oracle"));
    }

    #[test]
    fn zstd_compressed_traces_are_read_as_they_decompress() {
        let dir = std::env::temp_dir().join(format!("reclaim-zst-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (keys, writes) = zipf(3000, 200, 0.9, 0.3, 11).unwrap();
        for format in Format::WRITABLE {
            let writes = (format != Format::Oracle).then_some(&writes[..]);
            let plain = written(format, Columns { keys: &keys, writes, times: None }).unwrap();
            // named as libCacheSim names them, and with a name that says nothing
            for name in [format!("t.{}.zst", format.name()), "t.data".to_string()] {
                let path = dir.join(&name);
                std::fs::write(&path, zstd::encode_all(&plain[..], 3).unwrap()).unwrap();
                let (f, mut r) = open(&path, None).unwrap();
                assert_eq!(f, format, "{name}");
                let t = read_columns(&mut r, u64::MAX).unwrap();
                assert_eq!(t.keys, keys, "{name}");
            }
        }
        // a damaged stream is a format error naming zstd, not a panic or a hang
        let mut bad =
            zstd::encode_all(&written(Format::Csv, Columns { keys: &keys, writes: None, times: None }).unwrap()[..], 3)
                .unwrap();
        let n = bad.len();
        bad.truncate(n / 2);
        let path = dir.join("cut.csv.zst");
        std::fs::write(&path, &bad).unwrap();
        // (refused when the format is detected, or at the first record past the cut)
        let e = open(&path, None).and_then(|(_, mut r)| read_columns(&mut r, u64::MAX)).unwrap_err();
        assert!(matches!(e, Error::Format { .. }), "{e}");
        assert!(e.to_string().contains("zstd"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn columns_of_different_lengths_are_refused() {
        let cols = Columns { keys: &[1, 2], writes: Some(&[true]), times: None };
        for format in Format::WRITABLE {
            let e = written(format, cols).unwrap_err().to_string();
            assert!(e.contains("writes has 1 elements but keys has 2"), "{e}");
        }
    }
}
