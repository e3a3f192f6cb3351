//! Memory-access samples of `perf mem record` as text, read as page accesses. The specification
//! is docs/trace-format.md, "perf mem samples". Two layouts:
//!
//! - `perf script -F comm,pid,tid,cpu,time,event,addr,data_src` (comm, pid/tid and cpu are
//!   optional, a period may follow the time):
//!   `dd 1234/1234 [002] 5678.123456: cpu/mem-loads,ldlat=30/P: 7ffd8b2c4e98 6a100142 |OP LOAD|...`
//!   The time (`seconds.fraction:`) is the first token ending in a colon that is a number; the
//!   event follows it; then the data address (hexadecimal, perf prints it without `0x`); then,
//!   optionally, `data_src` in hexadecimal followed by perf's decoding of it (`|OP LOAD|LVL ...`).
//! - `perf mem report -D` (`--dump-raw-samples`, any `-x` separator): the header
//!   `# PID, TID, IP, ADDR, ..., DSRC, SYMBOL` names the columns; no times.
//!
//! A store or a load: the `mem_op` bits of `data_src` (`union perf_mem_data_src`,
//! include/uapi/linux/perf_event.h: `PERF_MEM_OP_LOAD` 0x02, `PERF_MEM_OP_STORE` 0x04); samples
//! whose operation is a prefetch or an instruction fetch (`PERF_MEM_OP_PFETCH` 0x08,
//! `PERF_MEM_OP_EXEC` 0x10) are skipped. Without a `data_src` (or with `PERF_MEM_OP_NA`), the
//! event's name decides: a name containing `store` (`cpu/mem-stores/P`) is a store, one
//! containing `load` a load. A sample whose address is 0 (perf recorded none) is skipped.

use super::damon::{AGGREGATED_EVENT, parse_seconds};
use super::{Request, TextLines};
use crate::error::{Error, Result};
use std::io::BufRead;

/// `PERF_MEM_OP_*` of `union perf_mem_data_src` (mem_op, bits 0..4).
pub const PERF_MEM_OP_LOAD: u64 = 0x02;
pub const PERF_MEM_OP_STORE: u64 = 0x04;
pub const PERF_MEM_OP_PFETCH: u64 = 0x08;
pub const PERF_MEM_OP_EXEC: u64 = 0x10;
/// The header line of `perf mem report -D`.
pub const RAW_HEADER: &str = "# PID, TID, IP, ADDR";

fn bad(line: u64, detail: String) -> Error {
    Error::Format { what: "perf mem trace", at: format!("line {line}"), detail }
}

fn hex(s: &str) -> Option<u64> {
    let digits = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")).unwrap_or(s);
    if digits.is_empty() || digits.len() > 16 {
        return None;
    }
    u64::from_str_radix(digits, 16).ok()
}

/// Whether `head` (text) looks like perf mem samples.
pub fn looks_like(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(head);
    text.contains(RAW_HEADER) || text.contains("|OP ") || text.contains("mem-loads") || text.contains("mem-stores")
}

/// The columns of `perf mem report -D`.
#[derive(Clone, Copy, Debug)]
struct Raw {
    addr: usize,
    dsrc: usize,
}

/// A store (Some(true)), a load (Some(false)) or a sample to skip (None) from `data_src` and
/// the event's name.
fn store(line: u64, data_src: Option<u64>, event: &str) -> Result<Option<bool>> {
    let op = data_src.map_or(0, |d| d & 0x1f);
    if op & PERF_MEM_OP_STORE != 0 {
        return Ok(Some(true));
    }
    if op & PERF_MEM_OP_LOAD != 0 {
        return Ok(Some(false));
    }
    if op & (PERF_MEM_OP_PFETCH | PERF_MEM_OP_EXEC) != 0 {
        return Ok(None);
    }
    let name = event.to_ascii_lowercase();
    if name.contains("store") {
        return Ok(Some(true));
    }
    if name.contains("load") {
        return Ok(Some(false));
    }
    Err(bad(
        line,
        format!(
            "cannot tell a load from a store: no data_src operation and the event {event:?} names neither; \
             print data_src (perf script -F ...,addr,data_src)"
        ),
    ))
}

/// A streaming reader of perf mem samples.
pub struct Reader<R> {
    lines: TextLines<R>,
    raw: Option<Raw>,
    last_time: Option<u64>,
}

impl<R: BufRead> Reader<R> {
    pub fn new(r: R) -> Reader<R> {
        Reader { lines: TextLines::new(r, "perf mem trace", 200), raw: None, last_time: None }
    }

    /// The next sample with a data address.
    pub fn next_request(&mut self) -> Result<Option<Request>> {
        loop {
            let Some((line, text)) = self.lines.next_line()? else {
                return Ok(None);
            };
            if text.is_empty() {
                continue;
            }
            if let Some(cols) = text.strip_prefix('#') {
                if text.starts_with(RAW_HEADER) {
                    let names: Vec<&str> = cols.split(',').map(str::trim).collect();
                    let col = |n: &str| names.iter().position(|&c| c == n);
                    let (Some(addr), Some(dsrc)) = (col("ADDR"), col("DSRC")) else {
                        return Err(bad(line, "the perf mem report -D header names no ADDR or no DSRC column".into()));
                    };
                    self.raw = Some(Raw { addr, dsrc });
                }
                continue;
            }
            let q = match self.raw {
                Some(raw) => raw_sample(line, text, raw)?,
                None => script_sample(&mut self.last_time, line, text)?,
            };
            if let Some(q) = q {
                return Ok(Some(q));
            }
        }
    }
}

/// A line of `perf mem report -D`.
fn raw_sample(line: u64, text: &str, raw: Raw) -> Result<Option<Request>> {
    let fields: Vec<&str> = if text.contains(',') {
        text.split(',').map(str::trim).take(raw.addr.max(raw.dsrc) + 1).collect()
    } else {
        text.split_whitespace().take(raw.addr.max(raw.dsrc) + 1).collect()
    };
    let get = |i: usize, what: &str| -> Result<u64> {
        let f = fields.get(i).ok_or_else(|| bad(line, format!("{} fields: no {what} column", fields.len())))?;
        hex(f).ok_or_else(|| bad(line, format!("{what} {f:?} is not a hexadecimal number")))
    };
    let (addr, dsrc) = (get(raw.addr, "ADDR")?, get(raw.dsrc, "DSRC")?);
    let Some(write) = store(line, Some(dsrc), "")? else { return Ok(None) };
    Ok((addr != 0).then_some(Request { key: addr >> 12, write, time: 0 }))
}

/// A line of `perf script`; `last_time`, the previous sample's time, is updated.
fn script_sample(last_time: &mut Option<u64>, line: u64, text: &str) -> Result<Option<Request>> {
    let tokens: Vec<&str> = text.split_whitespace().take(32).collect();
    let Some((t, time)) =
        tokens.iter().enumerate().find_map(|(i, tok)| Some((i, parse_seconds(tok.strip_suffix(':')?)?)))
    else {
        return Err(bad(
            line,
            "no time: expected perf script's `comm pid/tid [cpu] seconds.fraction: event: addr data_src` \
                 (perf script -F comm,pid,tid,cpu,time,event,addr,data_src)"
                .into(),
        ));
    };
    let mut i = t + 1;
    if tokens.get(i).is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit())) {
        i += 1; // the period
    }
    let event = tokens
        .get(i)
        .and_then(|e| e.strip_suffix(':'))
        .ok_or_else(|| bad(line, "no event name (ending in a colon) after the time".into()))?;
    if tokens[i] == AGGREGATED_EVENT {
        return Err(bad(line, "a DAMON region, not a perf mem sample: read it with --format damon".into()));
    }
    let addr = tokens.get(i + 1).and_then(|a| hex(a)).ok_or_else(|| {
        bad(
            line,
            format!(
                "no data address after the event {event:?}: record with perf mem record and print addr \
                     (perf script -F ...,addr,data_src)"
            ),
        )
    })?;
    let data_src = match (tokens.get(i + 2), tokens.get(i + 3)) {
        (Some(d), Some(decoded)) if decoded.starts_with('|') => {
            Some(hex(d).ok_or_else(|| bad(line, format!("data_src {d:?} is not a hexadecimal number")))?)
        }
        _ => None,
    };
    if let Some(last) = last_time.filter(|&l| time < l) {
        return Err(bad(
            line,
            format!("time {time} ns is before the previous sample's {last} ns: times must not decrease"),
        ));
    }
    *last_time = Some(time);
    let Some(write) = store(line, data_src, event)? else { return Ok(None) };
    Ok((addr != 0).then_some(Request { key: addr >> 12, write, time }))
}

#[cfg(test)]
mod tests {
    use super::super::Format;
    use super::super::tests::read_all;
    use super::*;

    fn read(s: &str) -> Result<Vec<(u64, bool, u64)>> {
        Ok(read_all(Format::Perf, s.as_bytes())?.into_iter().map(|q| (q.key, q.write, q.time)).collect())
    }

    const SCRIPT: &str = "\
# perf script -F comm,pid,tid,cpu,time,event,addr,data_src
  memtest 4242/4242  [002]  5678.123456:  cpu/mem-loads,ldlat=30/P:      7ffd8b2c4e98         6a100142 |OP LOAD|LVL L1 hit|SNP None|TLB L1 or L2 hit|LCK No|BLK  N/A
  memtest 4242/4243  [003]  5678.123457:          cpu/mem-stores/P:      7ffd8b2c5000          5080144 |OP STORE|LVL L1 hit|SNP N/A|TLB N/A|LCK N/A|BLK  N/A
  memtest 4242/4243  [003]  5678.123458:          cpu/mem-stores/P:      55d0c0de1000
  memtest 4242/4243  [003]  5678.123459:          cpu/mem-loads/P:                 0         6a100142 |OP LOAD|LVL N/A
  memtest 4242/4243  [003]  5678.123460:               ibs_op//: 7f0000003000    8 |OP PFETCH|LVL N/A
";

    #[test]
    fn script_samples_are_loads_and_stores_by_data_src_then_by_event() {
        assert_eq!(
            read(SCRIPT).unwrap(),
            vec![
                (0x7ffd8b2c4, false, 5_678_123_456_000),
                (0x7ffd8b2c5, true, 5_678_123_457_000),
                (0x55d0c0de1, true, 5_678_123_458_000),
            ]
        );
        // a period between the time and the event; a comm with a space
        let t = "my app 1/1 [000] 1.5: 1 cpu/mem-loads/P: 1000\n";
        assert_eq!(read(t).unwrap(), vec![(1, false, 1_500_000_000)]);
    }

    #[test]
    fn raw_dump_columns_come_from_its_header() {
        let t = "# PID, TID, IP, ADDR, LOCAL WEIGHT, DSRC, SYMBOL\n\
                 381 381 0xffffffff8102a9e3 0xffff88021f50e2c0 0 0x5080144 /vmlinux:__switch_to\n\
                 381,381,0x4005d0,0x7f0000001000,30,0x68100142,/bin/x:main\n";
        assert_eq!(read(t).unwrap(), vec![(0xffff88021f50e, true, 0), (0x7f0000001, false, 0)]);
        let t = "# PID, TID, IP, ADDR, PHYS ADDR, LOCAL WEIGHT, DSRC, SYMBOL\n1 1 0x1 0x2000 0x9000 5 0x142 x:y\n";
        assert_eq!(read(t).unwrap(), vec![(2, false, 0)]);
    }

    #[test]
    fn malformed_samples_are_named_by_line() {
        let e = |s: &str| read(s).unwrap_err().to_string();
        assert_eq!(
            e("a 1/1 [000] 1.0: cpu/mem-loads/P: 1000\nb 1/1 [000] 0.5: cpu/mem-loads/P: 2000\n"),
            "malformed perf mem trace at line 2: time 500000000 ns is before the previous sample's 1000000000 ns: times must not decrease"
        );
        assert!(e("a 1/1 [000] 1.0: cycles: 1000\n").contains("at line 1: cannot tell a load from a store"));
        assert!(e("a 1/1 [000] 1.0: cpu/mem-loads/P: zz\n").contains("at line 1: no data address after the event"));
        assert!(e("\n\na b c\n").contains("at line 3: no time"));
        assert!(e("k 1 [000] 0.1: damon:damon_aggregated: target_id=0").contains("--format damon"));
        assert!(e("# PID, TID, IP, ADDR, SYMBOL\n").contains("at line 1: the perf mem report -D header names no"));
        assert!(
            e("# PID, TID, IP, ADDR, LOCAL WEIGHT, DSRC, SYMBOL\n1 1 0x1 0x2000 5 nothex x\n")
                .contains("DSRC \"nothex\"")
        );
    }
}
