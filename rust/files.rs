//! Files the model writes and reads: every output (snapshots, traces, and through the binding
//! every Python writer: exports, plots, sweep tables) goes through [`write_atomic`], every input
//! file is opened with [`open_regular`].
//!
//! Writing: the bytes go to a temporary file of a name no other call uses (the process id and
//! a per-process sequence number, created with `O_EXCL`) in the target's directory; it is
//! synced and renamed over the target, and the directory is synced. So a crash or a full file
//! system leaves the old file or the new one, never a cut-off mix; two threads writing one path
//! each write a whole file of their own (the last rename wins). A target that exists and is not
//! a regular file (a symbolic link, a character or block device, a FIFO, a socket, a directory)
//! is refused: the rename would replace it (as root, `/dev/null`) with a regular file.
//!
//! Reading: the file type is checked before the file is opened, so that a FIFO (whose `open`
//! blocks until a writer comes) or a device such as `/dev/zero` (which never ends) is refused
//! instead of waited on or read without bound, and the length of the file is known before its
//! body is read.

use crate::error::{Error, Result};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// What a file that is not a regular file is, for an error message.
fn describe(ft: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_symlink() {
        "a symbolic link"
    } else if ft.is_dir() {
        "a directory"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Refuse to write `what` to `path` unless `path` is absent or a regular file.
pub fn check_output_target(path: &Path, what: &str) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if !m.file_type().is_file() => Err(Error::Io(format!(
            "refusing to write {what} {}: it is {}, not a regular file (writing replaces the file)",
            path.display(),
            describe(m.file_type())
        ))),
        _ => Ok(()),
    }
}

static SEQ: AtomicU64 = AtomicU64::new(0);

/// A temporary file next to `path` that no other call of this process (nor, by the process id,
/// of another process) uses.
fn create_temporary(dir: &Path, name: &std::ffi::OsStr) -> std::io::Result<(PathBuf, File)> {
    loop {
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".{}.{}.tmp", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed)));
        let tmp = dir.join(tmp_name);
        match OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(f) => return Ok((tmp, f)),
            // a file left by a process of the same id that died: take the next number
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
}

/// Write `what` (e.g. "snapshot", "trace") to `path` atomically: `body` writes the contents to
/// a buffered temporary file, which is synced and renamed over `path`. An error names `path`;
/// on any error `path` is untouched and the temporary file removed.
pub fn write_atomic(path: &Path, what: &str, body: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    let io = |e: &dyn std::fmt::Display| Error::Io(format!("cannot write {what} {}: {e}", path.display()));
    let name = path
        .file_name()
        .ok_or_else(|| Error::invalid(format!("cannot write {what} {}: not a file name", path.display())))?;
    check_output_target(path, what)?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let (tmp, file) = create_temporary(dir, name).map_err(|e| io(&e))?;
    let written = (|| -> Result<()> {
        let mut w = BufWriter::with_capacity(1 << 16, file);
        body(&mut w)?;
        let file = w.into_inner().map_err(|e| Error::Io(e.error().to_string()))?;
        file.sync_all()?;
        Ok(())
    })();
    let renamed = written.and_then(|()| {
        // the target may have become a special file while we wrote
        check_output_target(path, what)?;
        std::fs::rename(&tmp, path).map_err(Error::from)
    });
    if let Err(e) = renamed {
        let _ = std::fs::remove_file(&tmp);
        return Err(match e {
            Error::Io(m) if !m.contains(&path.display().to_string()) => io(&m),
            e => e,
        });
    }
    // the rename is durable once the directory is synced (not every platform can open one)
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// [`write_atomic`] of `bytes`.
pub fn write_bytes(path: &Path, what: &str, bytes: &[u8]) -> Result<()> {
    write_atomic(path, what, |w| Ok(w.write_all(bytes)?))
}

/// Open the input file `what` at `path` for reading, and its length: refused with
/// [`Error::Io`] unless it is a regular file (symbolic links are followed), checked before it
/// is opened, so that a FIFO or a device is never waited on or read without end.
pub fn open_regular(path: &Path, what: &str) -> Result<(File, u64)> {
    let io = |e: &dyn std::fmt::Display| Error::Io(format!("cannot read {what} {}: {e}", path.display()));
    let not_regular = |ft: std::fs::FileType| {
        Error::Io(format!("cannot read {what} {}: it is {}, not a regular file", path.display(), describe(ft)))
    };
    let m = std::fs::metadata(path).map_err(|e| io(&e))?;
    if !m.file_type().is_file() {
        return Err(not_regular(m.file_type()));
    }
    let f = File::open(path).map_err(|e| io(&e))?;
    let m = f.metadata().map_err(|e| io(&e))?;
    if !m.file_type().is_file() {
        return Err(not_regular(m.file_type()));
    }
    Ok((f, m.len()))
}

/// A buffer of `len` bytes for `what`, allocated fallibly: a request the host cannot hold is an
/// error naming the size, not an abort.
pub fn try_buffer(len: u64, what: &str) -> Result<Vec<u8>> {
    let mut v = Vec::new();
    let n = usize::try_from(len).map_err(|_| Error::invalid(format!("{what} of {len} bytes is too large")))?;
    v.try_reserve_exact(n).map_err(|_| {
        Error::invalid(format!("{what} needs {len} bytes of host memory, which could not be allocated"))
    })?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("reclaim-files-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn special_targets_are_refused_and_left_alone() {
        let d = dir("special");
        let link = d.join("link");
        std::os::unix::fs::symlink(d.join("elsewhere"), &link).unwrap();
        let e = write_bytes(&link, "trace", b"x").unwrap_err().to_string();
        assert!(e.contains("symbolic link") && e.contains("link"), "{e}");
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        let e = write_bytes(Path::new("/dev/null"), "snapshot", b"x").unwrap_err().to_string();
        assert!(e.contains("/dev/null: it is a character device"), "{e}");
        let e = open_regular(Path::new("/dev/zero"), "snapshot").unwrap_err().to_string();
        assert!(e.contains("character device"), "{e}");
        let e = open_regular(&d, "trace").unwrap_err().to_string();
        assert!(e.contains("a directory"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary() {
        let d = dir("fail");
        let p = d.join("out");
        write_bytes(&p, "trace", b"old").unwrap();
        let e = write_atomic(&p, "trace", |w| {
            w.write_all(b"new but cut off")?;
            Err(Error::Io("No space left on device (os error 28)".into()))
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains(&p.display().to_string()) && e.contains("No space"), "{e}");
        assert_eq!(std::fs::read(&p).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 1, "the temporary file is removed");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn threads_writing_one_path_each_write_a_whole_file() {
        let d = dir("threads");
        let p = d.join("out");
        let bodies: Vec<Vec<u8>> = (0..8u8).map(|i| vec![i; 100_000 + i as usize]).collect();
        std::thread::scope(|s| {
            for b in &bodies {
                let p = &p;
                s.spawn(move || {
                    for _ in 0..10 {
                        write_bytes(p, "trace", b).unwrap();
                    }
                });
            }
        });
        let got = std::fs::read(&p).unwrap();
        assert!(bodies.contains(&got), "the file is one writer's whole output");
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 1, "no temporary file is left");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
