//! File-system primitives shared by the stores: private directories, atomic writes and
//! advisory locks with a timeout.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::doctor;

/// Create `dir` and its parents; the leaf is 0700.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
}

/// Write `bytes` to `path` atomically with `mode`: a temp file in the same directory, created
/// with a random name and `O_EXCL` (a file or link planted at a guessable name is never written
/// through), fsync, rename over `path`, fsync the directory. A crash at any point leaves
/// either the old file or the new one, never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let tmp = write_temp(path, bytes, mode)?;
    persist(tmp, path)
}

/// The prefix and suffix of the temp files [`write_temp`] makes for `path`.
pub fn temp_affixes(path: &Path) -> (String, &'static str) {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    (format!(".{name}."), ".tmp")
}

/// The first half of [`write_atomic`]: `bytes` in a new temp file beside `path`, with `mode`,
/// synced to disk. The name is random and the file is created with `O_EXCL|O_NOFOLLOW`, so a
/// planted file or symlink cannot redirect the write. Dropping the result removes the file;
/// a process killed before [`persist`] leaves it behind, complete.
pub fn write_temp(path: &Path, bytes: &[u8], mode: u32) -> io::Result<tempfile::NamedTempFile> {
    let (_, suffix) = temp_affixes(path);
    let mut tmp = make_temp(path, suffix, mode)?;
    tmp.as_file_mut().write_all(bytes)?;
    tmp.as_file().sync_all()?;
    Ok(tmp)
}

/// A new empty file beside `path`, named `.<name>.<12 random alphanumerics><suffix>`, created
/// with `O_EXCL|O_NOFOLLOW` and exactly `mode`. Dropping the result removes the file.
pub fn make_temp(path: &Path, suffix: &str, mode: u32) -> io::Result<tempfile::NamedTempFile> {
    // A plugin may have closed fd 1 or 2: the temp file must not take that number.
    crate::output::restore_stdio();
    let dir = parent_dir(path);
    let (prefix, _) = temp_affixes(path);
    let tmp = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(suffix)
        .rand_bytes(12)
        .make_in(dir, |p| {
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(p)
        })?;
    // The mode given to open() is filtered by the umask; secrets must be exact.
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(mode))?;
    Ok(tmp)
}

/// The second half of [`write_atomic`]: rename the temp file over `path`, then sync the
/// directory so the rename itself survives a power cut.
pub fn persist(tmp: tempfile::NamedTempFile, path: &Path) -> io::Result<()> {
    tmp.persist(path).map_err(|e| e.error)?;
    sync_dir(parent_dir(path))
}

/// A test hook's pause: say on stderr where hermes stops and which process stops there
/// (`hermes: test pause: <what> in N ms (process P)`), then sleep, so a test can act (kill,
/// race) at exactly that point.
pub fn test_pause(what: &str, pause: Duration) {
    let mut err = io::stderr().lock();
    let _ = writeln!(
        err,
        "hermes: test pause: {what} in {} ms (process {})",
        pause.as_millis(),
        std::process::id()
    );
    let _ = err.flush();
    drop(err);
    std::thread::sleep(pause);
}

/// The binary of this process, to start a child of hermes from (the refresh worker, the
/// diagnostics worker, the install probe): `/proc/self/exe`, which names the very binary that
/// runs even when an upgrade has replaced the file on disk since; the path it was started from
/// where there is no `/proc`.
pub fn own_binary() -> io::Result<PathBuf> {
    let this = Path::new("/proc/self/exe");
    if this.exists() {
        Ok(this.to_path_buf())
    } else {
        std::env::current_exe()
    }
}

/// fsync a directory (after a rename or an unlink in it).
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Why [`read_regular`] refused a file.
#[derive(Debug)]
pub enum ReadError {
    /// Opening or reading failed.
    Io(io::Error),
    /// Not a regular file (a FIFO, a device, a directory, a socket): reading it could block
    /// forever or never end.
    NotRegular(&'static str),
    /// Larger than the cap.
    TooLarge(u64),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Io(e) => write!(f, "{e}"),
            ReadError::NotRegular(what) => write!(f, "it is {what}, not a regular file"),
            ReadError::TooLarge(cap) => write!(f, "it is larger than {cap} bytes"),
        }
    }
}

/// Read `path` if it is a regular file of at most `cap` bytes (following symlinks).
/// `Ok(None)` when it does not exist. Never blocks on a FIFO and never reads an endless
/// device: the file is opened non-blocking and checked with `fstat` before any read.
pub fn read_regular(path: &Path, cap: u64) -> Result<Option<Vec<u8>>, ReadError> {
    use std::io::Read;
    use std::os::unix::fs::FileTypeExt;
    let f = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ReadError::Io(e)),
    };
    let meta = f.metadata().map_err(ReadError::Io)?;
    let ft = meta.file_type();
    if !ft.is_file() {
        let what = if ft.is_fifo() {
            "a FIFO (named pipe)"
        } else if ft.is_dir() {
            "a directory"
        } else if ft.is_char_device() {
            "a character device"
        } else if ft.is_block_device() {
            "a block device"
        } else if ft.is_socket() {
            "a socket"
        } else {
            "a special file"
        };
        return Err(ReadError::NotRegular(what));
    }
    if meta.len() > cap {
        return Err(ReadError::TooLarge(cap));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // The size may change under us: never read past the cap whatever fstat said.
    f.take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > cap {
        return Err(ReadError::TooLarge(cap));
    }
    Ok(Some(bytes))
}

/// An exclusive advisory lock on a file, released on drop.
#[derive(Debug)]
pub struct FileLock {
    file: File,
}

/// How long a waiter waits before it says what it is waiting for.
pub const WAIT_NOTICE_AFTER: Duration = Duration::from_millis(500);

impl FileLock {
    /// Take the lock on `path` (created 0600), waiting at most `timeout`.
    pub fn acquire(path: &Path, timeout: Duration) -> io::Result<FileLock> {
        Self::acquire_with(path, timeout, |_| {})
    }

    /// Like [`FileLock::acquire`]; after [`WAIT_NOTICE_AFTER`] of waiting, `waiting` is
    /// called once with what the holder wrote with [`FileLock::note`] (empty if nothing).
    /// The lock is released by the kernel when its holder dies, so a waiter never waits for
    /// a process that is gone.
    pub fn acquire_with(
        path: &Path,
        timeout: Duration,
        mut waiting: impl FnMut(&str),
    ) -> io::Result<FileLock> {
        crate::output::restore_stdio();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "cannot open the lock file {}: {}",
                        path.display(),
                        describe_io(&e)
                    ),
                )
            })?;
        let start = Instant::now();
        let mut pause = Duration::from_micros(200);
        let mut told = false;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(FileLock { file }),
                Err(fs::TryLockError::WouldBlock) => {
                    if start.elapsed() >= timeout {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!(
                                "{} is held by another process (waited {:.1} s)",
                                path.display(),
                                timeout.as_secs_f64()
                            ),
                        ));
                    }
                    if !told && start.elapsed() >= WAIT_NOTICE_AFTER {
                        told = true;
                        waiting(&read_note(&file));
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(5));
                }
                Err(fs::TryLockError::Error(e)) => return Err(e),
            }
        }
    }

    /// Say what the holder is doing, for processes waiting on this lock (best effort).
    pub fn note(&self, text: &str) {
        use std::os::unix::fs::FileExt;
        let _ = self.file.set_len(0);
        let _ = self.file.write_all_at(text.as_bytes(), 0);
    }
}

fn read_note(file: &File) -> String {
    use std::os::unix::fs::FileExt;
    let mut buf = [0u8; 512];
    let n = file.read_at(&mut buf, 0).unwrap_or(0);
    crate::text::line(&String::from_utf8_lossy(&buf[..n]), 200)
}

/// An I/O error in words, with the usual causes of a read-only or foreign home spelt out.
pub fn describe_io(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EROFS) => format!("{e} (the file system is mounted read-only)"),
        Some(libc::EACCES) | Some(libc::EPERM) => {
            format!("{e} (the folder is not writable by this user)")
        }
        Some(libc::ELOOP) => {
            format!("{e} (it is a symbolic link, which hermes does not follow here)")
        }
        Some(libc::ENOSPC) => format!("{e} (the disk is full)"),
        _ => e.to_string(),
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

/// The permission bits of `path`, if it exists.
pub fn mode_of(path: &Path) -> Option<u32> {
    fs::metadata(path)
        .ok()
        .map(|m| m.permissions().mode() & 0o777)
}

/// Doctor's permission check: `HERMES_HOME` must be private to its user, and so must the
/// files holding secrets or what may be loaded (`auth.json`, `plugins.json`).
fn doctor_permissions(ctx: &doctor::Context<'_>) -> Vec<doctor::Finding> {
    let mut out = Vec::new();
    let home = &ctx.paths.home;
    match mode_of(home) {
        None => out.push(doctor::finding(
            "home",
            doctor::Severity::Info,
            "hermes",
            format!("{} does not exist yet", home.display()),
            None,
        )),
        Some(m) if m & 0o077 != 0 => out.push(doctor::finding(
            "home",
            doctor::Severity::Warning,
            "hermes",
            format!(
                "{} is accessible by other users (mode {m:o})",
                home.display()
            ),
            Some(format!("chmod 700 {}", home.display())),
        )),
        Some(_) => {}
    }
    for f in [ctx.paths.auth_json(), ctx.paths.plugins_json()] {
        if let Some(m) = mode_of(&f) {
            if m & 0o077 != 0 {
                out.push(doctor::finding(
                    "home",
                    doctor::Severity::Warning,
                    "hermes",
                    format!("{} is readable by other users (mode {m:o})", f.display()),
                    Some(format!("chmod 600 {}", f.display())),
                ));
            }
        }
    }
    out
}

inventory::submit! { doctor::Check { name: "permissions", order: 10, run: doctor_permissions } }

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_is_exact_mode_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.json");
        write_atomic(&p, b"one", 0o600).unwrap();
        write_atomic(&p, b"two", 0o600).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(mode_of(&p), Some(0o600));
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "temp files left behind");
    }

    #[test]
    fn lock_times_out_while_held() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.lock");
        let held = FileLock::acquire(&p, Duration::from_secs(1)).unwrap();
        let err = FileLock::acquire(&p, Duration::from_millis(30)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        drop(held);
        FileLock::acquire(&p, Duration::from_millis(30)).unwrap();
    }
}
