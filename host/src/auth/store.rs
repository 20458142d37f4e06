//! `auth.json`, in the layout the Python hermes writes (version 1: `active_provider`,
//! `providers`, `credential_pool`, `suppressed_sources`), so an existing login keeps working.
//!
//! This module is the only one that reads, locks or writes the file. Writes are atomic (temp
//! 0600, fsync, rename, fsync dir) and happen under an exclusive lock on `auth.lock`. Keys this
//! version does not know are kept as they are.
//!
//! A file that cannot be parsed is never overwritten: every operation stops with an error
//! naming the file and the way out, and a copy is kept beside it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::config::Paths;
use crate::error::Result;
use crate::fsutil::{self, FileLock, ReadError};

/// What can go wrong with the credential store. Each says which file, and [`StoreError::help`]
/// the way out; none of them ever overwrites the file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `auth.json` is a symbolic link whose target cannot be resolved.
    #[error("{} is a symbolic link to {to}, which cannot be followed: {why}", path.display())]
    BrokenLink {
        path: PathBuf,
        to: String,
        why: String,
    },
    /// The file exists but cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not a regular file of a credential store's size.
    #[error("refusing to read {}: {why}", path.display())]
    Refused { path: PathBuf, why: String },
    /// The file does not parse; `copy` is where a copy of it was kept.
    #[error("{} is corrupt ({why}); hermes left it untouched{}", path.display(),
        copy.as_ref().map(|c| format!("; a copy is kept at {}", c.display())).unwrap_or_default())]
    Corrupt {
        path: PathBuf,
        why: String,
        copy: Option<PathBuf>,
    },
    /// Another process held the lock for longer than the lock timeout.
    #[error("cannot lock the credential store: {source}")]
    Locked {
        lock: PathBuf,
        source: std::io::Error,
    },
    /// The lock file cannot be made.
    #[error("cannot lock the credential store: {source}")]
    CannotLock {
        lock: PathBuf,
        source: std::io::Error,
    },
    /// The folder of the store is not writable.
    #[error("cannot write in {}: {why}", dir.display())]
    NotWritable { dir: PathBuf, why: String },
    /// A write failed; the previous file is unchanged.
    #[error("cannot write {}: {why}", path.display())]
    Write { path: PathBuf, why: String },
    /// The file could not be encoded.
    #[error("cannot encode auth.json: {0}")]
    Encode(serde_json::Error),
    /// The write a killed process left complete could not be renamed in.
    #[error("cannot finish an interrupted write of {} from {}: {source}", target.display(), from.display())]
    Recover {
        target: PathBuf,
        from: PathBuf,
        source: std::io::Error,
    },
}

impl StoreError {
    /// The `help:` line.
    pub fn help(&self) -> Option<String> {
        let move_away = |p: &Path| {
            format!(
                "move it away (mv {0} {0}.bak) and sign in again with `hermes auth add <provider>`",
                p.display()
            )
        };
        let writable = |dir: &Path| {
            format!(
                "make it writable (chmod u+w {}) or point HERMES_HOME at a writable folder",
                dir.display()
            )
        };
        Some(match self {
            StoreError::BrokenLink { path, .. } => format!(
                "restore the file it points to, or remove the link (rm {}) and sign in again",
                path.display()
            ),
            StoreError::Unreadable { path, .. } => {
                format!("check the permissions of {}", path.display())
            }
            StoreError::Refused { path, .. } => move_away(path),
            StoreError::Corrupt { path, .. } => format!("repair the file, or {}", move_away(path)),
            StoreError::Locked { lock, .. } => format!(
                "if no other hermes is running, a stuck process holds {}; find it with `fuser {}`",
                lock.display(),
                lock.display()
            ),
            StoreError::CannotLock { lock, .. } => {
                let dir = lock.parent().unwrap_or(Path::new("."));
                format!(
                    "hermes needs to write in {}: {}",
                    dir.display(),
                    writable(dir)
                )
            }
            StoreError::NotWritable { dir, .. } => writable(dir),
            StoreError::Write { .. } => {
                "the previous auth.json is unchanged; free some space or fix permissions and retry"
                    .into()
            }
            StoreError::Encode(_) | StoreError::Recover { .. } => return None,
        })
    }
}

/// The largest `auth.json` hermes reads. A real one is a few KiB; anything this large is not
/// a credential store (a link to a device, a runaway file) and is refused, not read.
pub const MAX_AUTH_JSON: u64 = 8 * 1024 * 1024;

/// The credential store.
#[derive(Clone, Debug)]
pub struct Store {
    path: PathBuf,
    home: Paths,
}

/// The parsed file. Unknown keys are preserved.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AuthFile {
    pub(crate) root: Map<String, Value>,
}

/// The exclusive lock on the store; reads and writes under it are consistent.
pub struct Locked<'a> {
    store: &'a Store,
    /// The file written: `auth.json`, or the file it links to.
    target: PathBuf,
    _lock: FileLock,
}

/// The single-flight lock of one provider's token refresh (see [`Store::refresh_lock`]).
pub struct RefreshLock {
    lock: FileLock,
}

impl RefreshLock {
    /// Tell waiting processes what this one is doing.
    pub fn note(&self, text: &str) {
        self.lock.note(text);
    }
}

/// A write prepared outside the lock: a private temp file beside the store, made (and
/// locked with `flock`) before a refresh request is sent, so that the rotated pair reaches a
/// file the moment the answer arrives, before any lock or re-read. Its name carries a digest
/// of the store it was built from (`.<name>.<12 random>.<16 hex>.pending`). Recovery rolls a
/// complete, unlocked journal forward only while the store still holds exactly that base;
/// a journal whose owner is alive (it holds the `flock`) is never touched.
pub struct Journal {
    tmp: tempfile::NamedTempFile,
    base: String,
    recorded: Option<AuthFile>,
}

impl Journal {
    /// Write `file` (the base with the change applied) into the journal: the first and only
    /// write. Returns whether the bytes reached the file.
    pub fn record(&mut self, mut file: AuthFile) -> bool {
        use std::os::unix::fs::FileExt;
        if self.recorded.is_some() {
            return false;
        }
        let Ok(text) = encode(&mut file) else {
            return false;
        };
        if self.tmp.as_file().write_all_at(text.as_bytes(), 0).is_err() {
            return false;
        }
        self.recorded = Some(file);
        true
    }
}

/// The first 16 hex digits of the SHA-256 of a store's bytes (absent: of nothing).
fn digest(bytes: Option<&[u8]>) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes.unwrap_or_default())
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Take `flock(LOCK_EX|LOCK_NB)` on `f`: false when another open file holds it.
fn try_flock(f: &std::fs::File) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a descriptor this function borrows; no memory is involved.
    unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

/// Version and time stamp set, the file as written.
fn encode(file: &mut AuthFile) -> Result<String> {
    file.root.insert("version".into(), json!(1));
    let now = crate::timefmt::iso_from_ms(crate::timefmt::now_ms()).unwrap_or_default();
    file.root.insert("updated_at".into(), Value::String(now));
    serde_json::to_string_pretty(&Value::Object(file.root.clone()))
        .map_err(|e| StoreError::Encode(e).into())
}

impl Store {
    /// The store under `HERMES_HOME`.
    pub fn new(paths: &Paths) -> Store {
        Store {
            path: paths.auth_json(),
            home: paths.clone(),
        }
    }

    /// The paths (and lock timeout) it was made with.
    pub fn paths(&self) -> &Paths {
        &self.home
    }

    /// Where the file lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file hermes writes: `auth.json` itself or, when it is a symbolic link, the file it
    /// points to. Writes go *through* a link (an atomic replace in the target's folder, under
    /// a lock beside the target), so a store shared by a link stays shared.
    fn target(&self) -> Result<PathBuf> {
        match std::fs::symlink_metadata(&self.path) {
            Ok(m) if m.file_type().is_symlink() => std::fs::canonicalize(&self.path).map_err(|e| {
                let to = std::fs::read_link(&self.path)
                    .map(|t| t.display().to_string())
                    .unwrap_or_else(|_| "?".into());
                StoreError::BrokenLink {
                    path: self.path.clone(),
                    to,
                    why: fsutil::describe_io(&e),
                }
                .into()
            }),
            _ => Ok(self.path.clone()),
        }
    }

    /// Read without the lock. Safe because writers replace the file atomically.
    pub fn read(&self) -> Result<AuthFile> {
        let bytes = match fsutil::read_regular(&self.path, MAX_AUTH_JSON) {
            Ok(Some(b)) => b,
            Ok(None) => return Ok(AuthFile::empty()),
            Err(ReadError::Io(source)) => {
                return Err(StoreError::Unreadable {
                    path: self.path.clone(),
                    source,
                }
                .into())
            }
            Err(e) => {
                return Err(StoreError::Refused {
                    path: self.path.clone(),
                    why: e.to_string(),
                }
                .into())
            }
        };
        Ok(AuthFile::parse(&bytes).map_err(|why| self.corrupt(&bytes, &why))?)
    }

    fn corrupt(&self, bytes: &[u8], why: &str) -> StoreError {
        // Keep a copy so that whatever the user does next cannot lose the original.
        let copy = self.path.with_file_name("auth.json.corrupt");
        let kept = match std::fs::read(&copy) {
            Ok(existing) if existing == bytes => true,
            _ => fsutil::write_atomic(&copy, bytes, 0o600).is_ok(),
        };
        StoreError::Corrupt {
            path: self.path.clone(),
            why: why.to_string(),
            copy: kept.then_some(copy),
        }
    }

    fn lock_error(&self, lock_path: &Path, source: std::io::Error) -> StoreError {
        let lock = lock_path.to_path_buf();
        if source.kind() == std::io::ErrorKind::TimedOut {
            StoreError::Locked { lock, source }
        } else {
            StoreError::CannotLock { lock, source }
        }
    }

    /// Take the exclusive lock, then finish any write a killed process left half done.
    pub fn lock(&self) -> Result<Locked<'_>> {
        self.home.ensure_home()?;
        let target = self.target()?;
        let lock_path = target.parent().unwrap_or(Path::new(".")).join("auth.lock");
        let lock = FileLock::acquire(&lock_path, self.home.lock_timeout)
            .map_err(|e| self.lock_error(&lock_path, e))?;
        let locked = Locked {
            store: self,
            target,
            _lock: lock,
        };
        locked.recover()?;
        Ok(locked)
    }

    /// Take the single-flight lock of `provider`'s token refresh: one process at a time sends
    /// that provider's refresh request, and the others wait for its answer. It is separate
    /// from the store's lock, which is held only around a read-modify-write, so a slow
    /// refresh of one provider never holds up another provider's token.
    ///
    /// Waiting processes wait as long as the holder may still be waiting for its answer (its
    /// request deadline) plus the store lock's timeout; if the holder dies, the kernel
    /// releases the lock at once. `waiting` is called once with what the holder is doing.
    pub fn refresh_lock(&self, provider: &str, waiting: impl FnMut(&str)) -> Result<RefreshLock> {
        self.home.ensure_home()?;
        let target = self.target()?;
        let safe: String = provider
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let lock_path = target
            .parent()
            .unwrap_or(Path::new("."))
            .join(format!("auth.refresh.{safe}.lock"));
        let limit = crate::services::REFRESH_DEADLINE + self.home.lock_timeout;
        let lock = FileLock::acquire_with(&lock_path, limit, waiting)
            .map_err(|e| self.lock_error(&lock_path, e))?;
        Ok(RefreshLock { lock })
    }

    /// Read, change and write under the lock. `f` returns whether it changed anything.
    pub fn update<T>(&self, f: impl FnOnce(&mut AuthFile) -> Result<T>) -> Result<T> {
        let locked = self.lock()?;
        let mut file = locked.read()?;
        let before = file.clone();
        let out = f(&mut file)?;
        if file != before {
            locked.write(&mut file)?;
        }
        Ok(out)
    }

    /// Check, before anything irreversible (such as a sign-in), that the store can be read
    /// and written: the lock can be taken, the file parses, and a temp file can be made
    /// beside it.
    pub fn check_writable(&self) -> Result<()> {
        let locked = self.lock()?;
        locked.read()?;
        let dir = locked.target.parent().unwrap_or(Path::new("."));
        fsutil::write_temp(&locked.target, b"{}", 0o600).map_err(|e| StoreError::NotWritable {
            dir: dir.to_path_buf(),
            why: fsutil::describe_io(&e),
        })?;
        Ok(())
    }
}

/// A temp file of an interrupted write: `.<name>.<12 random alphanumerics>.tmp` (this
/// version) or `.<name>.tmp.<pid>` (earlier versions).
fn is_leftover(target_name: &str, candidate: &str) -> bool {
    let Some(rest) = candidate
        .strip_prefix('.')
        .and_then(|r| r.strip_prefix(target_name))
        .and_then(|r| r.strip_prefix('.'))
    else {
        return false;
    };
    if let Some(pid) = rest.strip_prefix("tmp.") {
        return !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit());
    }
    rest.strip_suffix(".tmp")
        .is_some_and(|r| r.len() == 12 && r.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// The base digest of a journal's name, `.<name>.<12 alphanumerics>.<16 hex>.pending`.
fn journal_base<'a>(target_name: &str, candidate: &'a str) -> Option<&'a str> {
    let rest = candidate
        .strip_prefix('.')?
        .strip_prefix(target_name)?
        .strip_prefix('.')?
        .strip_suffix(".pending")?;
    let (random, base) = rest.split_once('.')?;
    (random.len() == 12
        && random.bytes().all(|b| b.is_ascii_alphanumeric())
        && base.len() == 16
        && base.bytes().all(|b| b.is_ascii_hexdigit()))
    .then_some(base)
}

impl Locked<'_> {
    /// Read under the lock.
    pub fn read(&self) -> Result<AuthFile> {
        self.store.read()
    }

    /// Finish a write that a killed process left half done. A complete temp file newer than
    /// the store is the last write, interrupted between its fsync and its rename: it is
    /// renamed in (it may hold the only copy of a rotated refresh token). Any other leftover
    /// (incomplete, older, not a regular file) is removed. A journal ([`Journal`]) whose owner
    /// died is rolled forward when it is complete and the store still holds its base, and
    /// removed otherwise; a journal whose owner is alive is left alone.
    fn recover(&self) -> Result<()> {
        let dir = self.target.parent().unwrap_or(Path::new("."));
        let Some(name) = self.target.file_name().and_then(|n| n.to_str()) else {
            return Ok(());
        };
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Ok(());
        };
        let current = std::fs::metadata(&self.target)
            .and_then(|m| m.modified())
            .ok();
        let mut complete: Vec<(std::time::SystemTime, PathBuf)> = Vec::new();
        let mut stale: Vec<PathBuf> = Vec::new();
        let mut current_digest = None;
        for entry in entries.flatten() {
            let file_name = entry.file_name();
            let Some(fname) = file_name.to_str() else {
                continue;
            };
            let path = entry.path();
            if let Some(base) = journal_base(name, fname) {
                match self.journal_state(&path, base, &mut current_digest) {
                    JournalState::Live => {}
                    JournalState::Current(t) => complete.push((t, path)),
                    JournalState::Dead => stale.push(path),
                }
                continue;
            }
            if !is_leftover(name, fname) {
                continue;
            }
            let usable = std::fs::symlink_metadata(&path)
                .ok()
                .filter(|m| m.file_type().is_file() && m.len() <= MAX_AUTH_JSON)
                .and_then(|m| m.modified().ok())
                .filter(|t| current.is_none_or(|c| *t > c))
                .filter(|_| {
                    fsutil::read_regular(&path, MAX_AUTH_JSON)
                        .ok()
                        .flatten()
                        .is_some_and(|b| AuthFile::parse(&b).is_ok())
                });
            match usable {
                Some(t) => complete.push((t, path)),
                None => stale.push(path),
            }
        }
        complete.sort();
        let mut changed = !stale.is_empty();
        if let Some((_, newest)) = complete.pop() {
            changed = true;
            std::fs::rename(&newest, &self.target).map_err(|source| StoreError::Recover {
                target: self.target.clone(),
                from: newest.clone(),
                source,
            })?;
            stale.extend(complete.into_iter().map(|(_, p)| p));
        }
        for p in stale {
            let _ = std::fs::remove_file(p);
        }
        if changed {
            let _ = fsutil::sync_dir(dir);
        }
        Ok(())
    }

    fn journal_state(&self, path: &Path, base: &str, current: &mut Option<String>) -> JournalState {
        use std::os::unix::fs::OpenOptionsExt;
        let Ok(f) = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(path)
        else {
            return JournalState::Dead;
        };
        if !try_flock(&f) {
            return JournalState::Live;
        }
        let Some(t) = f
            .metadata()
            .ok()
            .filter(|m| m.file_type().is_file() && m.len() <= MAX_AUTH_JSON)
            .and_then(|m| m.modified().ok())
        else {
            return JournalState::Dead;
        };
        let digest = current.get_or_insert_with(|| self.current_digest());
        if digest != base {
            return JournalState::Dead;
        }
        let complete = fsutil::read_regular(path, MAX_AUTH_JSON)
            .ok()
            .flatten()
            .is_some_and(|b| AuthFile::parse(&b).is_ok());
        if complete {
            JournalState::Current(t)
        } else {
            JournalState::Dead
        }
    }

    /// The digest of the store's bytes as they are now ("" when they cannot be read).
    fn current_digest(&self) -> String {
        match fsutil::read_regular(&self.target, MAX_AUTH_JSON) {
            Ok(b) => digest(b.as_deref()),
            Err(_) => String::new(),
        }
    }

    /// Read under the lock, and open a [`Journal`] built on what was read (None when no
    /// journal can be made here: the caller then saves through [`Locked::write`] only).
    pub fn read_with_journal(&self) -> Result<(AuthFile, Option<Journal>)> {
        let bytes = match fsutil::read_regular(&self.target, MAX_AUTH_JSON) {
            Ok(b) => b,
            Err(_) => return Ok((self.read()?, None)),
        };
        let file = match &bytes {
            Some(b) => AuthFile::parse(b).map_err(|why| self.store.corrupt(b, &why))?,
            None => AuthFile::empty(),
        };
        let base = digest(bytes.as_deref());
        let journal = fsutil::make_temp(&self.target, &format!(".{base}.pending"), 0o600)
            .ok()
            .filter(|tmp| try_flock(tmp.as_file()))
            .map(|tmp| Journal {
                tmp,
                base,
                recorded: None,
            });
        Ok((file, journal))
    }

    /// Make a recorded journal the store: synced and renamed in, if the store still holds
    /// the journal's base. Otherwise (nothing recorded, or the store changed meanwhile) the
    /// journal is removed and `Ok(None)` says that the caller must write the change itself.
    pub fn commit(&self, journal: Journal) -> Result<Option<AuthFile>> {
        if journal.recorded.is_none() || self.current_digest() != journal.base {
            return Ok(None);
        }
        let failed = |e: std::io::Error| StoreError::Write {
            path: self.target.clone(),
            why: fsutil::describe_io(&e),
        };
        journal.tmp.as_file().sync_all().map_err(failed)?;
        if let Some(pause) = self.store.home.test_pause_before_rename {
            pause_before_rename(journal.tmp.path(), pause);
        }
        fsutil::persist(journal.tmp, &self.target).map_err(failed)?;
        Ok(journal.recorded)
    }

    /// Write under the lock (atomic, 0600): the whole file goes to a new temp file, is
    /// synced, and is renamed over the target.
    pub fn write(&self, file: &mut AuthFile) -> Result<()> {
        let text = encode(file)?;
        let failed = |e: std::io::Error| StoreError::Write {
            path: self.target.clone(),
            why: fsutil::describe_io(&e),
        };
        let tmp = fsutil::write_temp(&self.target, text.as_bytes(), 0o600).map_err(failed)?;
        if let Some(pause) = self.store.home.test_pause_before_rename {
            pause_before_rename(tmp.path(), pause);
        }
        Ok(fsutil::persist(tmp, &self.target).map_err(failed)?)
    }
}

/// What recovery does with a journal.
enum JournalState {
    /// Its owner holds it: leave it.
    Live,
    /// Complete and built on the store as it is: roll it forward.
    Current(std::time::SystemTime),
    /// Anything else: remove it.
    Dead,
}

/// The test hook of `HERMES_TEST_PAUSE_BEFORE_RENAME_MS`.
fn pause_before_rename(tmp: &Path, pause: Duration) {
    fsutil::test_pause(&format!("{} written, renaming", tmp.display()), pause);
}

impl AuthFile {
    /// An empty store.
    pub fn empty() -> AuthFile {
        let mut root = Map::new();
        root.insert("version".into(), json!(1));
        root.insert("providers".into(), json!({}));
        AuthFile { root }
    }

    /// Parse the file's bytes. The error is one clause for a message.
    pub fn parse(bytes: &[u8]) -> std::result::Result<AuthFile, String> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err("the file is empty".into());
        }
        let v: Value = serde_json::from_slice(bytes)
            .map_err(|e| format!("invalid JSON at line {} column {}", e.line(), e.column()))?;
        let Value::Object(root) = v else {
            return Err("the top level is not a JSON object".into());
        };
        match root.get("version") {
            None => {}
            Some(Value::Number(n)) if n.as_u64() == Some(1) => {}
            Some(other) => {
                return Err(format!(
                    "unsupported version {other}; this hermes reads version 1"
                ))
            }
        }
        for key in ["providers", "credential_pool", "suppressed_sources"] {
            match root.get(key) {
                None | Some(Value::Object(_)) => {}
                Some(_) => return Err(format!("\"{key}\" is not an object")),
            }
        }
        Ok(AuthFile { root })
    }

    fn section(&self, key: &str) -> Option<&Map<String, Value>> {
        self.root.get(key).and_then(Value::as_object)
    }

    fn section_mut(&mut self, key: &str) -> &mut Map<String, Value> {
        let v = self
            .root
            .entry(key.to_string())
            .or_insert_with(|| json!({}));
        if !v.is_object() {
            *v = json!({});
        }
        v.as_object_mut().expect("just made an object")
    }

    /// `providers.<id>`.
    pub fn provider_state(&self, provider: &str) -> Option<&Map<String, Value>> {
        self.section("providers")?.get(provider)?.as_object()
    }

    /// Replace `providers.<id>`.
    pub fn set_provider_state(&mut self, provider: &str, state: Map<String, Value>) {
        self.section_mut("providers")
            .insert(provider.to_string(), Value::Object(state));
    }

    /// `providers.<id>`, mutable.
    pub fn provider_state_mut(&mut self, provider: &str) -> Option<&mut Map<String, Value>> {
        self.section_mut("providers")
            .get_mut(provider)?
            .as_object_mut()
    }

    /// Remove `providers.<id>`.
    pub fn remove_provider_state(&mut self, provider: &str) -> bool {
        self.section_mut("providers").remove(provider).is_some()
    }

    /// The raw pool entries of a provider (objects only).
    pub fn pool(&self, provider: &str) -> Vec<&Map<String, Value>> {
        self.section("credential_pool")
            .and_then(|p| p.get(provider))
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_object).collect())
            .unwrap_or_default()
    }

    /// The pool array of a provider, created if absent.
    pub fn pool_mut(&mut self, provider: &str) -> &mut Vec<Value> {
        let v = self
            .section_mut("credential_pool")
            .entry(provider.to_string())
            .or_insert_with(|| json!([]));
        if !v.is_array() {
            *v = json!([]);
        }
        v.as_array_mut().expect("just made an array")
    }

    /// Remove a provider's whole pool.
    pub fn remove_pool(&mut self, provider: &str) {
        self.section_mut("credential_pool").remove(provider);
    }

    /// `suppressed_sources.<id>`.
    pub fn suppressed(&self, provider: &str) -> Vec<String> {
        self.section("suppressed_sources")
            .and_then(|s| s.get(provider))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Add or remove a source from `suppressed_sources.<id>`.
    pub fn set_suppressed(&mut self, provider: &str, source: &str, suppressed: bool) {
        let section = self.section_mut("suppressed_sources");
        let list = section
            .entry(provider.to_string())
            .or_insert_with(|| json!([]));
        if !list.is_array() {
            *list = json!([]);
        }
        let arr = list.as_array_mut().expect("just made an array");
        arr.retain(|v| v.as_str() != Some(source));
        if suppressed {
            arr.push(Value::String(source.to_string()));
        }
        if arr.is_empty() {
            section.remove(provider);
        }
    }

    pub fn active_provider(&self) -> Option<&str> {
        self.root.get("active_provider").and_then(Value::as_str)
    }

    /// Set or clear `active_provider`.
    pub fn set_active_provider(&mut self, provider: Option<&str>) {
        match provider {
            Some(p) => {
                self.root
                    .insert("active_provider".into(), Value::String(p.into()));
            }
            None => {
                self.root.insert("active_provider".into(), Value::Null);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::new(&Paths::new(dir.path()));
        (dir, s)
    }

    #[test]
    fn missing_file_is_empty_and_unknown_keys_survive_a_write() {
        let (_d, s) = store();
        assert_eq!(s.read().unwrap().provider_state("x"), None);
        std::fs::write(
            s.path(),
            r#"{"version":1,"providers":{},"something_else":{"keep":true}}"#,
        )
        .unwrap();
        s.update(|f| {
            f.set_provider_state("x", Map::new());
            Ok(())
        })
        .unwrap();
        let text = std::fs::read_to_string(s.path()).unwrap();
        assert!(text.contains("\"something_else\""), "{text}");
        assert_eq!(crate::fsutil::mode_of(s.path()), Some(0o600));
    }

    #[test]
    fn corrupt_file_is_reported_kept_and_never_overwritten() {
        let (_d, s) = store();
        std::fs::write(s.path(), b"{\"version\":1,\"providers\":{").unwrap();
        let err = s.update(|f| {
            f.set_provider_state("x", Map::new());
            Ok(())
        });
        let e = err.unwrap_err();
        assert!(
            matches!(&e, crate::Error::Store(StoreError::Corrupt { why, copy: Some(_), .. })
                if why.starts_with("invalid JSON at line 1")),
            "{e:?}"
        );
        assert!(e.help().unwrap().contains("mv "), "{:?}", e.help());
        assert_eq!(
            std::fs::read(s.path()).unwrap(),
            b"{\"version\":1,\"providers\":{"
        );
        let copy = s.path().with_file_name("auth.json.corrupt");
        assert_eq!(
            std::fs::read(copy).unwrap(),
            b"{\"version\":1,\"providers\":{"
        );
    }

    #[test]
    fn wrong_shapes_are_errors_not_panics() {
        for bad in [
            &b"[]"[..],
            b"{\"version\":2}",
            b"{\"providers\":[]}",
            b"",
            b"  \n",
            b"\xff\xfe",
        ] {
            assert!(
                AuthFile::parse(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn only_the_store_s_own_temp_names_are_leftovers() {
        assert!(is_leftover("auth.json", ".auth.json.Ab3dE6gH9jK1.tmp"));
        assert!(is_leftover("auth.json", ".auth.json.tmp.4242"));
        for other in [
            "auth.json",
            ".auth.json.corrupt.Ab3dE6gH9jK1.tmp",
            ".auth.json.tmp.",
            ".auth.json.tmp.12x",
            ".auth.json.short.tmp",
            ".plugins.json.Ab3dE6gH9jK1.tmp",
            "auth.json.corrupt",
        ] {
            assert!(!is_leftover("auth.json", other), "{other}");
        }
    }

    #[test]
    fn a_complete_newer_temp_file_is_rolled_forward_under_the_lock() {
        let (_d, s) = store();
        s.update(|f| {
            f.set_provider_state("x", Map::new());
            Ok(())
        })
        .unwrap();
        let mut newer = s.read().unwrap();
        newer.set_provider_state("y", Map::new());
        let text = serde_json::to_string(&Value::Object(newer.root.clone())).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let tmp = fsutil::write_temp(s.path(), text.as_bytes(), 0o600).unwrap();
        // What a process killed before the rename leaves behind.
        let (_f, _kept) = tmp.keep().unwrap();
        drop(s.lock().unwrap());
        assert!(s.read().unwrap().provider_state("y").is_some());
        let names: Vec<_> = std::fs::read_dir(s.path().parent().unwrap())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().into_string().unwrap())
            .filter(|n| n.starts_with(".auth.json"))
            .collect();
        assert!(names.is_empty(), "{names:?}");
    }

    fn temp_names(s: &Store) -> Vec<String> {
        std::fs::read_dir(s.path().parent().unwrap())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().into_string().unwrap())
            .filter(|n| n.starts_with(".auth.json"))
            .collect()
    }

    #[test]
    fn a_journal_is_left_to_its_owner_and_rolled_forward_only_onto_its_base() {
        let (_d, s) = store();
        s.update(|f| {
            f.set_provider_state("x", Map::new());
            Ok(())
        })
        .unwrap();
        // Live: another lock holder leaves it alone.
        let (mut base, journal) = s.lock().unwrap().read_with_journal().unwrap();
        let mut journal = journal.expect("a journal");
        base.set_provider_state("y", Map::new());
        assert!(journal.record(base.clone()));
        drop(s.lock().unwrap());
        assert_eq!(temp_names(&s).len(), 1);
        assert!(s.read().unwrap().provider_state("y").is_none());
        // Its owner dies (the lock goes with it): rolled forward, the store held its base.
        let (_f, kept) = journal.tmp.keep().unwrap();
        drop(_f);
        drop(s.lock().unwrap());
        assert!(s.read().unwrap().provider_state("y").is_some());
        assert!(temp_names(&s).is_empty(), "{:?}", temp_names(&s));
        assert!(!kept.exists());

        // A dead journal whose base is no longer the store is removed, never rolled forward
        // (it would undo the write made meanwhile).
        let (mut base, journal) = s.lock().unwrap().read_with_journal().unwrap();
        let mut journal = journal.unwrap();
        base.set_provider_state("z", Map::new());
        assert!(journal.record(base));
        s.update(|f| {
            f.set_provider_state("w", Map::new());
            Ok(())
        })
        .unwrap();
        drop(journal.tmp.keep().unwrap());
        drop(s.lock().unwrap());
        let now = s.read().unwrap();
        assert!(now.provider_state("w").is_some() && now.provider_state("z").is_none());
        assert!(temp_names(&s).is_empty(), "{:?}", temp_names(&s));
    }

    #[test]
    fn journal_names() {
        assert_eq!(
            journal_base(
                "auth.json",
                ".auth.json.Ab3dE6gH9jK1.0123456789abcdef.pending"
            ),
            Some("0123456789abcdef")
        );
        for other in [
            ".auth.json.Ab3dE6gH9jK1.tmp",
            ".auth.json.Ab3dE6gH9jK1.0123.pending",
            ".auth.json.Ab3dE6gH9jK.0123456789abcdef.pending",
            ".plugins.json.Ab3dE6gH9jK1.0123456789abcdef.pending",
        ] {
            assert_eq!(journal_base("auth.json", other), None, "{other}");
        }
    }

    #[test]
    fn suppression_round_trip() {
        let mut f = AuthFile::empty();
        f.set_suppressed("p", "oauth", true);
        f.set_suppressed("p", "oauth", true);
        assert_eq!(f.suppressed("p"), vec!["oauth"]);
        f.set_suppressed("p", "oauth", false);
        assert!(f.suppressed("p").is_empty());
    }
}
