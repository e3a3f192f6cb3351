//! DAMON's access records as `damo record` writes them (damo, `_damo_records.py`), read as page
//! accesses. The specification of what is read and how regions become accesses is
//! docs/trace-format.md, "DAMON records".
//!
//! DAMON checks one sampled page per region each sampling interval; a region's `nr_accesses`
//! is how many of the samples of one aggregation interval found it accessed (`struct
//! damon_region`, include/linux/damon.h). A region `[start, end)` with `nr_accesses = n`
//! becomes `n` loads at the snapshot's end time, one to the page in the middle of each of `n`
//! equal slices of the region: page `start/4096 + (2j+1)·pages/(2n)` for `j < n`. Bounded (no
//! more requests than samples) and deterministic.
//!
//! Four containers, told apart by their first bytes:
//!
//! - `record` (damo's own binary, versions 0-2): `"damon_recfmt_ver"` and an i32 version (none
//!   for version 0), then snapshots: i64 seconds and i64 nanoseconds of the end time, u32
//!   targets, each a target id (i32 in version 1, u64 otherwise), u32 regions, each u64 start,
//!   u64 end, u32 nr_accesses; little-endian, as damo writes it on a 64-bit machine.
//! - `perf_script`: `perf script` text of `damon:damon_aggregated` events, one region a line:
//!   `kdamond.0 4452 [000] 82877.315633: damon:damon_aggregated: target_id=0 nr_regions=17
//!   140731667070976-140731668037632: 3 7` (the last field, the age, is optional).
//! - `json`: the list of records damo writes (`[{"target_id": ..., "snapshots": [{"end_time":
//!   ..., "regions": [{"start": ..., "end": ..., "nr_accesses": {"samples": n}}]}]}]`),
//!   numbers as JSON numbers or decimal strings.
//! - `json_compressed` (damo's default, `damon.data`): the same JSON, zlib-compressed.

use super::{Request, TextLines, read_error, read_full};
use crate::error::{Error, Result};
use serde::Deserialize;
use std::collections::HashMap;
use std::io::{BufRead, Read};

/// damo's binary record magic.
pub const RECORD_MAGIC: &[u8; 16] = b"damon_recfmt_ver";
/// The event of damo's perf_script records.
pub const AGGREGATED_EVENT: &str = "damon:damon_aggregated:";
/// The most samples one region may count in one aggregation interval: DAMON counts at most
/// `aggr_interval / sample_interval` (20 with damo's defaults).
pub const MAX_NR_ACCESSES: u64 = 1 << 16;
/// The largest (decompressed) JSON record read: it is read whole.
pub const MAX_JSON_BYTES: u64 = 256 << 20;

fn bad(at: String, detail: String) -> Error {
    Error::Format { what: "DAMON record", at, detail }
}

/// Whether `head` starts a zlib stream (RFC 1950: deflate, a header checksum divisible by 31).
pub fn is_zlib(head: &[u8]) -> bool {
    head.len() >= 2
        && head[0] & 0x0f == 8
        && head[0] >> 4 <= 7
        && (u16::from(head[0]) << 8 | u16::from(head[1])) % 31 == 0
}

/// Whether (decompressed, or plain) text `head` looks like damo JSON or perf_script output.
pub fn looks_like(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(head);
    text.contains("damon:damon_aggregated") || (text.trim_start().starts_with('[') && text.contains("\"snapshots\""))
}

/// Seconds with an optional fraction of up to 9 digits (`82877.315633`) as nanoseconds.
pub fn parse_seconds(s: &str) -> Option<u64> {
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    if secs.is_empty() || frac.len() > 9 || !secs.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let ns = frac.parse::<u64>().unwrap_or(0) * 10u64.pow(9 - frac.len() as u32);
    secs.parse::<u64>().ok()?.checked_mul(1_000_000_000)?.checked_add(ns)
}

/// One region of one snapshot, checked.
#[derive(Clone, Copy, Debug)]
struct Region {
    time: u64,
    start: u64,
    end: u64,
    nr_accesses: u64,
}

/// The requests of a region: `nr_accesses` pages spread over it.
#[derive(Clone, Copy, Debug, Default)]
struct Spread {
    first: u64,
    pages: u64,
    n: u64,
    j: u64,
    time: u64,
}

impl Spread {
    fn of(r: Region) -> Spread {
        let first = r.start >> 12;
        Spread { first, pages: ((r.end - 1) >> 12) - first + 1, n: r.nr_accesses, j: 0, time: r.time }
    }

    fn next(&mut self) -> Option<Request> {
        if self.j == self.n {
            return None;
        }
        let slice = (2 * self.j as u128 + 1) * self.pages as u128 / (2 * self.n as u128);
        self.j += 1;
        Some(Request { key: self.first + slice as u64, write: false, time: self.time })
    }
}

/// Check a region: damo's placeholder region (0-0, written when a target has one snapshot) is
/// None, an empty or reversed range or an impossible count an error.
fn region(at: impl Fn() -> String, time: u64, start: u64, end: u64, nr_accesses: i128) -> Result<Option<Region>> {
    if start == 0 && end == 0 {
        return Ok(None);
    }
    if end <= start {
        return Err(bad(
            at(),
            format!("region {start:#x}-{end:#x} is empty or reversed: the end must be above the start"),
        ));
    }
    if !(0..=MAX_NR_ACCESSES as i128).contains(&nr_accesses) {
        return Err(bad(
            at(),
            format!(
                "region {start:#x}-{end:#x}: nr_accesses {nr_accesses} is not a count of samples (0 to {MAX_NR_ACCESSES})"
            ),
        ));
    }
    Ok(Some(Region { time, start, end, nr_accesses: nr_accesses as u64 }))
}

/// The last time of each target: a target's snapshots never go back in time.
#[derive(Default)]
struct Clock(HashMap<u64, u64>);

impl Clock {
    fn check(&mut self, target: u64, time: u64, at: impl Fn() -> String) -> Result<()> {
        let last = self.0.entry(target).or_insert(time);
        if time < *last {
            return Err(bad(
                at(),
                format!(
                    "target {target}: snapshot time {time} ns is before the previous one's {last} ns: times must not decrease"
                ),
            ));
        }
        *last = time;
        Ok(())
    }
}

/// damo's binary `record` format.
struct RecordReader<R> {
    r: R,
    version: i32,
    offset: u64,
    tasks_left: u32,
    regions_left: u32,
    time: u64,
    clock: Clock,
}

impl<R: BufRead> RecordReader<R> {
    /// A reader at offset 0 of a record file, of the headerless version 0 until a header says
    /// otherwise.
    fn new(r: R) -> RecordReader<R> {
        RecordReader { r, version: 0, offset: 0, tasks_left: 0, regions_left: 0, time: 0, clock: Clock::default() }
    }

    /// Read exactly `N` bytes at the current offset: None at a clean end (`eof_ok`), an error
    /// naming `what` if the file ends inside them.
    fn take<const N: usize>(&mut self, what: &str, eof_ok: bool) -> Result<Option<[u8; N]>> {
        let at = self.offset;
        let mut b = [0u8; N];
        let n = read_full(&mut self.r, &mut b).map_err(|e| read_error(format_args!("offset {at}"), e))?;
        if n == 0 && eof_ok {
            return Ok(None);
        }
        if n < N {
            return Err(bad(
                format!("offset {at}"),
                format!("{what} is cut short: the file ends after {n} of its {N} bytes"),
            ));
        }
        self.offset += N as u64;
        Ok(Some(b))
    }

    fn next_region(&mut self) -> Result<Option<Region>> {
        loop {
            if self.regions_left > 0 {
                let at = self.offset;
                let b: [u8; 20] = self.take("a region", false)?.expect("not at a clean end");
                self.regions_left -= 1;
                let start = u64::from_le_bytes(b[0..8].try_into().expect("8 bytes"));
                let end = u64::from_le_bytes(b[8..16].try_into().expect("8 bytes"));
                let n = u32::from_le_bytes(b[16..20].try_into().expect("4 bytes"));
                if let Some(r) = region(|| format!("offset {at}"), self.time, start, end, n.into())? {
                    return Ok(Some(r));
                }
            } else if self.tasks_left > 0 {
                let at = self.offset;
                let target = if self.version == 1 {
                    i32::from_le_bytes(self.take::<4>("a target id", false)?.expect("not at a clean end")) as u64
                } else {
                    u64::from_le_bytes(self.take::<8>("a target id", false)?.expect("not at a clean end"))
                };
                self.regions_left =
                    u32::from_le_bytes(self.take::<4>("nr_regions", false)?.expect("not at a clean end"));
                self.tasks_left -= 1;
                self.clock.check(target, self.time, || format!("offset {at}"))?;
            } else {
                let at = self.offset;
                let Some(t) = self.take::<16>("a snapshot's time", true)? else { return Ok(None) };
                let sec = i64::from_le_bytes(t[0..8].try_into().expect("8 bytes"));
                let nsec = i64::from_le_bytes(t[8..16].try_into().expect("8 bytes"));
                if !(0..1_000_000_000).contains(&nsec) || sec < 0 {
                    return Err(bad(
                        format!("offset {at}"),
                        format!("snapshot time {sec} s {nsec} ns is not a time (seconds >= 0, 0 <= ns < 10^9)"),
                    ));
                }
                self.time = (sec as u64).checked_mul(1_000_000_000).map(|s| s + nsec as u64).ok_or_else(|| {
                    bad(format!("offset {at}"), format!("snapshot time {sec} s does not fit 64-bit nanoseconds"))
                })?;
                self.tasks_left = u32::from_le_bytes(self.take::<4>("nr_tasks", false)?.expect("not at a clean end"));
            }
        }
    }
}

/// damo's `perf_script` format: `damon:damon_aggregated` events, one region a line.
struct ScriptReader<R> {
    lines: TextLines<R>,
    clock: Clock,
}

impl<R: BufRead> ScriptReader<R> {
    fn next_region(&mut self) -> Result<Option<Region>> {
        loop {
            let Some((line, text)) = self.lines.next_line()? else {
                return Ok(None);
            };
            let at = || format!("line {line}");
            if text.is_empty() || text.starts_with('#') {
                continue;
            }
            let tokens: Vec<&str> = text.split_whitespace().take(16).collect();
            let Some(i) = tokens.iter().position(|&t| t == AGGREGATED_EVENT) else {
                return Err(bad(
                    at(),
                    format!(
                        "not a {AGGREGATED_EVENT} event: damo's perf_script records hold one region a line \
                         (perf mem samples are --format perf)"
                    ),
                ));
            };
            let time = i
                .checked_sub(1)
                .and_then(|j| tokens[j].strip_suffix(':'))
                .and_then(parse_seconds)
                .ok_or_else(|| bad(at(), "no time (seconds.fraction:) before the event name".into()))?;
            let rest = &tokens[i + 1..];
            if rest.len() != 4 && rest.len() != 5 {
                return Err(bad(
                    at(),
                    format!(
                        "{} fields after the event: expected target_id=N nr_regions=N START-END: NR_ACCESSES [AGE]",
                        rest.len()
                    ),
                ));
            }
            let field = |tok: &str, name: &str| -> Result<u64> {
                tok.strip_prefix(name)
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| bad(at(), format!("{tok:?} is not {name}N with a decimal N")))
            };
            let target = field(rest[0], "target_id=")?;
            field(rest[1], "nr_regions=")?;
            let (start, end) = rest[2]
                .strip_suffix(':')
                .and_then(|r| r.split_once('-'))
                .and_then(|(s, e)| Some((s.parse::<u64>().ok()?, e.parse::<u64>().ok()?)))
                .ok_or_else(|| bad(at(), format!("{:?} is not a region START-END: in decimal", rest[2])))?;
            let n: i128 =
                rest[3].parse().map_err(|_| bad(at(), format!("nr_accesses {:?} is not a decimal number", rest[3])))?;
            self.clock.check(target, time, at)?;
            if let Some(r) = region(at, time, start, end, n)? {
                return Ok(Some(r));
            }
        }
    }
}

/// A number of damo's JSON: a JSON number, or a decimal string (damo writes both).
#[derive(Deserialize)]
#[serde(untagged)]
enum Num {
    U(u64),
    I(i64),
    S(String),
}

impl Num {
    fn value(&self) -> Option<i128> {
        match self {
            Num::U(v) => Some(*v as i128),
            Num::I(v) => Some(*v as i128),
            Num::S(s) => s.trim().parse().ok(),
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum NrAccesses {
    Plain(Num),
    Units { samples: Option<Num> },
}

#[derive(Deserialize)]
struct JRegion {
    start: Num,
    end: Num,
    nr_accesses: Option<NrAccesses>,
}

#[derive(Deserialize)]
struct JSnapshot {
    end_time: Num,
    regions: Vec<JRegion>,
}

#[derive(Deserialize)]
struct JRecord {
    snapshots: Vec<JSnapshot>,
}

/// Parse damo's JSON (`compressed`: it came out of zlib, so lines are the decompressed text's).
fn json_regions(text: &[u8], compressed: bool) -> Result<Vec<Region>> {
    let records: Vec<JRecord> = serde_json::from_slice(text).map_err(|e| {
        let line = e.line().max(1);
        bad(
            if compressed { format!("decompressed line {line}") } else { format!("line {line}") },
            format!("not damo's JSON record: {e}"),
        )
    })?;
    let mut out = Vec::new();
    for (r, rec) in records.iter().enumerate() {
        let mut last = 0;
        for (s, snap) in rec.snapshots.iter().enumerate() {
            let place = |what: String| format!("record {r} snapshot {s}{what}");
            let time = snap
                .end_time
                .value()
                .and_then(|t| u64::try_from(t).ok())
                .ok_or_else(|| bad(place(String::new()), "end_time is not a number of nanoseconds".into()))?;
            if time < last {
                return Err(bad(
                    place(String::new()),
                    format!("end_time {time} ns is before the previous snapshot's {last} ns: times must not decrease"),
                ));
            }
            last = time;
            for (g, reg) in snap.regions.iter().enumerate() {
                let at = || place(format!(" region {g}"));
                let addr = |n: &Num, what: &str| {
                    n.value()
                        .and_then(|v| u64::try_from(v).ok())
                        .ok_or_else(|| bad(at(), format!("{what} is not an address")))
                };
                let (start, end) = (addr(&reg.start, "start")?, addr(&reg.end, "end")?);
                let n = match &reg.nr_accesses {
                    Some(NrAccesses::Plain(n)) | Some(NrAccesses::Units { samples: Some(n) }) => n.value(),
                    _ => None,
                }
                .ok_or_else(|| bad(at(), "no nr_accesses samples: the region has no access count".into()))?;
                if let Some(region) = region(at, time, start, end, n)? {
                    out.push(region);
                }
            }
        }
    }
    Ok(out)
}

/// Read all of `r`, at most [`MAX_JSON_BYTES`].
fn read_json(mut r: impl Read, what: &str) -> Result<Vec<u8>> {
    let mut text = Vec::new();
    (&mut r)
        .take(MAX_JSON_BYTES + 1)
        .read_to_end(&mut text)
        .map_err(|e| bad("offset 0".into(), format!("reading the {what}: {e}")))?;
    if text.len() as u64 > MAX_JSON_BYTES {
        return Err(bad(
            "offset 0".into(),
            format!("the {what} is larger than {} MiB, which is read whole", MAX_JSON_BYTES >> 20),
        ));
    }
    Ok(text)
}

enum Source<R> {
    Record(RecordReader<R>),
    Script(ScriptReader<R>),
    Json(std::vec::IntoIter<Region>),
}

/// A reader of any of damo's record containers (told apart by their first bytes).
pub struct Reader<R> {
    src: Source<R>,
    spread: Spread,
}

impl<R: BufRead> Reader<R> {
    pub fn new(mut r: R) -> Result<Reader<R>> {
        let head = r.fill_buf().map_err(|e| read_error("offset 0", e))?;
        let src = if head.starts_with(RECORD_MAGIC) {
            let mut rr = RecordReader::new(r);
            rr.take::<16>("the magic", false)?;
            let v = i32::from_le_bytes(rr.take::<4>("the version", false)?.expect("not at a clean end"));
            if !(1..=2).contains(&v) {
                return Err(bad(
                    "offset 16".into(),
                    format!("record format version {v} is unknown: damo writes 1 and 2"),
                ));
            }
            rr.version = v;
            Source::Record(rr)
        } else if is_zlib(head) {
            let text = read_json(flate2::bufread::ZlibDecoder::new(r), "zlib-compressed JSON (json_compressed)")?;
            Source::Json(json_regions(&text, true)?.into_iter())
        } else if head.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
            Source::Json(json_regions(&read_json(r, "JSON record")?, false)?.into_iter())
        } else if head.iter().take(4096).all(|&b| b != 0 && b < 0x80) {
            Source::Script(ScriptReader { lines: TextLines::new(r, "DAMON record", 160), clock: Clock::default() })
        } else {
            Source::Record(RecordReader::new(r))
        };
        Ok(Reader { src, spread: Spread::default() })
    }

    /// The next page access.
    pub fn next_request(&mut self) -> Result<Option<Request>> {
        loop {
            if let Some(q) = self.spread.next() {
                return Ok(Some(q));
            }
            let region = match &mut self.src {
                Source::Record(r) => r.next_region()?,
                Source::Script(r) => r.next_region()?,
                Source::Json(it) => it.next(),
            };
            match region {
                Some(r) => self.spread = Spread::of(r),
                None => return Ok(None),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Format;
    use super::super::tests::read_all;
    use super::*;
    use std::io::Write;

    /// A region as a test writes it: (start, end, nr_accesses).
    type TestRegion = (u64, u64, u32);

    /// damo's binary record (version 2) of `snapshots`: (end time ns, regions).
    pub fn record(snapshots: &[(u64, &[TestRegion])]) -> Vec<u8> {
        let mut b = RECORD_MAGIC.to_vec();
        b.extend(2i32.to_le_bytes());
        for (t, regions) in snapshots {
            b.extend(((t / 1_000_000_000) as i64).to_le_bytes());
            b.extend(((t % 1_000_000_000) as i64).to_le_bytes());
            b.extend(1u32.to_le_bytes());
            b.extend(42u64.to_le_bytes());
            b.extend((regions.len() as u32).to_le_bytes());
            for (s, e, n) in regions.iter() {
                b.extend(s.to_le_bytes());
                b.extend(e.to_le_bytes());
                b.extend(n.to_le_bytes());
            }
        }
        b
    }

    fn keys(bytes: &[u8]) -> Result<Vec<(u64, u64)>> {
        Ok(read_all(Format::Damon, bytes)?.into_iter().map(|q| (q.key, q.time)).collect())
    }

    const JSON: &str = r#"[{"kdamond_idx": 0, "target_id": 0, "snapshots": [
        {"start_time": "0", "end_time": "100000000", "regions": [
            {"start": "4096", "end": "20480", "nr_accesses": {"samples": 2, "percent": null},
             "age": {"usec": null, "aggr_intervals": 3}}]},
        {"start_time": "100000000", "end_time": 200000000, "regions": [
            {"start": 4096, "end": 8192, "nr_accesses": 1}]}]}]"#;

    #[test]
    fn every_container_spreads_a_region_s_samples_over_its_pages() {
        // region of pages 1..=4, 2 samples: the middles of [1,3) and [3,5): pages 2 and 4
        let want = vec![(2, 100_000_000), (4, 100_000_000), (1, 200_000_000)];
        let rec = record(&[(100_000_000, &[(4096, 20480, 2)]), (200_000_000, &[(4096, 8192, 1)])]);
        assert_eq!(keys(&rec).unwrap(), want);
        // version 0: no magic
        assert_eq!(keys(&rec[20..]).unwrap(), want);
        let script = "kdamond.0  4452 [000] 0.100000: damon:damon_aggregated: target_id=0 nr_regions=1 4096-20480: 2 3\n\
                      kdamond.0  4452 [000] 0.2: damon:damon_aggregated: target_id=0 nr_regions=1 4096-8192: 1\n";
        assert_eq!(keys(script.as_bytes()).unwrap(), want);
        assert_eq!(keys(JSON.as_bytes()).unwrap(), want);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(JSON.as_bytes()).unwrap();
        assert_eq!(keys(&z.finish().unwrap()).unwrap(), want);
        // every request a load; damo's placeholder region (0-0) gives none
        assert!(read_all(Format::Damon, JSON.as_bytes()).unwrap().iter().all(|q| !q.write));
        assert_eq!(keys(&record(&[(5, &[(0, 0, 0)])])).unwrap(), vec![]);
    }

    #[test]
    fn malformed_records_are_named_by_place() {
        let e = |b: &[u8]| keys(b).unwrap_err().to_string();
        let rec = record(&[(1, &[(8192, 4096, 1)])]);
        assert_eq!(
            e(&rec),
            "malformed DAMON record at offset 52: region 0x2000-0x1000 is empty or reversed: the end must be above the start"
        );
        let rec = record(&[(1, &[(4096, 8192, 1)])]);
        assert!(
            e(&rec[..rec.len() - 3]).contains("at offset 52: a region is cut short"),
            "{}",
            e(&rec[..rec.len() - 3])
        );
        let rec = record(&[(1, &[(4096, 8192, u32::MAX)])]);
        assert!(e(&rec).contains("nr_accesses 4294967295 is not a count of samples"));
        let two = record(&[(2_000_000_000, &[(4096, 8192, 1)]), (1_000_000_000, &[(4096, 8192, 1)])]);
        assert!(e(&two).contains("target 42: snapshot time 1000000000 ns is before"), "{}", e(&two));
        let script = "k 1 [000] 0.1: damon:damon_aggregated: target_id=0 nr_regions=1 4096-8192: 1\n\
                      k 1 [000] 0.2: damon:damon_aggregated: target_id=0 nr_regions=1 4096-8192 1\n";
        assert_eq!(
            e(script.as_bytes()),
            "malformed DAMON record at line 2: \"4096-8192\" is not a region START-END: in decimal"
        );
        assert!(
            e(b"k 1 [000] 0.1: cpu/mem-loads/P: 7f00\n").contains("at line 1: not a damon:damon_aggregated: event")
        );
        assert!(e(b"[{\"snapshots\": [}]").contains("at line 1: not damo's JSON record"));
        let j = r#"[{"snapshots": [{"end_time": 1, "regions": [{"start": 1, "end": 9}]}]}]"#;
        assert!(e(j.as_bytes()).contains("at record 0 snapshot 0 region 0: no nr_accesses"), "{}", e(j.as_bytes()));
        assert!(e(&RECORD_MAGIC.iter().copied().chain(7i32.to_le_bytes()).collect::<Vec<u8>>()).contains("version 7"));
    }

    #[test]
    fn seconds_read_exactly() {
        assert_eq!(parse_seconds("82877.315633"), Some(82_877_315_633_000));
        assert_eq!(parse_seconds("1.000000001"), Some(1_000_000_001));
        assert_eq!(parse_seconds("7"), Some(7_000_000_000));
        for bad in ["", ".5", "1.0000000001", "-1.0", "1e3", "99999999999999999999.0"] {
            assert_eq!(parse_seconds(bad), None, "{bad}");
        }
    }
}
