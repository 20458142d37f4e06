//! `plugins.json`: what is installed, where, with which checksum, and whether it is enabled.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::confine::Identity;
use crate::config::Paths;
use crate::error::{Error, Result};
use crate::fsutil::{self, FileLock};

/// One installed plugin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    /// Installed version.
    pub version: String,
    /// Interface version it was built against.
    pub api_version: String,
    /// Library path, relative to `HERMES_HOME`.
    pub path: String,
    /// SHA-256 of the library, lower-case hex.
    pub sha256: String,
    /// Whether the host loads it.
    pub enabled: bool,
    /// Provider ids it declared when installed.
    #[serde(default)]
    pub providers: Vec<String>,
    /// Where it came from (a path, URL or index name).
    #[serde(default)]
    pub source: String,
    /// When it was installed, ISO-8601.
    #[serde(default)]
    pub installed_at: String,
    /// The file as it was when its checksum and ABI layout were verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<Verified>,
    /// The descriptor the plugin gave when the file recorded in `verified` was loaded (at
    /// install, in the trial load of the verified staging copy). While the library is still
    /// that file, commands that need only descriptor data (names, aliases, lists, models)
    /// read it here instead of loading the library; absent in records written by older
    /// versions, which load the library instead (and fill it in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desc: Option<super::descriptor::PluginDesc>,
}

/// What a library file looked like when it was verified (checksum and full layout check),
/// and against which interface. While all of it still holds, the file has not changed — the
/// inode change time cannot be set back from user space — and repeating the checks would
/// give the same answer, so ordinary loads skip them. `hermes doctor --deep` repeats them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verified {
    /// Device (absent in records written by older versions: they never match).
    #[serde(default)]
    pub dev: u64,
    /// Size in bytes.
    pub size: u64,
    /// Inode number.
    pub ino: u64,
    /// Modification time, ns.
    pub mtime_ns: i64,
    /// Inode change time, ns.
    pub ctime_ns: i64,
    /// `hermes_plugin_api::INTERFACE_FINGERPRINT` of the verifying host, hex.
    pub interface: String,
}

impl Verified {
    /// The record of a file verified by this host.
    pub fn new(id: &Identity) -> Verified {
        Verified {
            dev: id.dev,
            size: id.size,
            ino: id.ino,
            mtime_ns: id.mtime_ns,
            ctime_ns: id.ctime_ns,
            interface: format!("{:016x}", hermes_plugin_api::INTERFACE_FINGERPRINT),
        }
    }
    /// Whether a file with identity `id` is the very file that was verified, by a host of
    /// this interface.
    pub fn matches(&self, id: &Identity) -> bool {
        *self == Verified::new(id)
    }
}

impl Record {
    /// The command that reinstalls this plugin from where it came from, safe to paste into a
    /// shell (a URL carries the recorded checksum, so only the same bytes are accepted).
    pub fn reinstall_command(&self) -> String {
        let src = self.source.as_str();
        if let Some(name) = src.strip_prefix("index:") {
            return format!("hermes plugins install {}", shell_word(name));
        }
        if src.is_empty() {
            return format!("hermes plugins install {}", shell_word(&self.id));
        }
        if src.starts_with("https://") || src.starts_with("http://") {
            return format!(
                "hermes plugins install {} --sha256 {}",
                shell_word(src),
                shell_word(&self.sha256)
            );
        }
        format!("hermes plugins install {}", shell_word(src))
    }
}

/// One shell word: as is when plainly safe, else single-quoted (clipped to one line first).
pub fn shell_word(s: &str) -> String {
    let s = crate::text::line(s, 400);
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@+,".contains(c))
    {
        return s;
    }
    format!("'{}'", s.replace('\'', "'\\''"))
}

impl Record {
    /// The absolute library path.
    pub fn library(&self, home: &Path) -> PathBuf {
        home.join(&self.path)
    }
}

/// The whole file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Format version (1).
    #[serde(default = "one")]
    pub version: u32,
    /// Installed plugins, in install order (which decides alias conflicts).
    #[serde(default)]
    pub plugins: Vec<Record>,
    /// Later records for an id already recorded: ignored, and dropped by the next write.
    #[serde(skip)]
    pub ignored: Vec<Record>,
}

fn one() -> u32 {
    1
}

impl Default for Manifest {
    fn default() -> Self {
        Manifest {
            version: 1,
            plugins: Vec::new(),
            ignored: Vec::new(),
        }
    }
}

impl Manifest {
    /// The record for `id`.
    pub fn get(&self, id: &str) -> Option<&Record> {
        self.plugins.iter().find(|r| r.id == id)
    }
    /// The record for `id`, mutable.
    pub fn get_mut(&mut self, id: &str) -> Option<&mut Record> {
        self.plugins.iter_mut().find(|r| r.id == id)
    }
}

/// Read `plugins.json` (an absent file is an empty manifest).
pub fn read(paths: &Paths) -> Result<Manifest> {
    let path = paths.plugins_json();
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Manifest::default()),
        Err(e) => return Err(Error::io(format!("cannot read {}", path.display()), e)),
    };
    Manifest::parse(&path, &text)
}

impl Manifest {
    /// Parse the text of `plugins.json` at `path` (for messages).
    pub fn parse(path: &Path, text: &str) -> Result<Manifest> {
        let mut m: Manifest =
            serde_json::from_str(text).map_err(|e| super::PluginsError::InvalidManifest {
                path: path.to_path_buf(),
                why: e.to_string(),
            })?;
        if m.version != 1 {
            return Err(super::PluginsError::ManifestVersion {
                path: path.to_path_buf(),
                version: m.version.into(),
            }
            .into());
        }
        // One record per id: the first wins (the order install keeps), later ones are ignored
        // so that no command acts on one copy while another reads the other.
        let mut seen = std::collections::BTreeSet::new();
        let (keep, ignored): (Vec<Record>, Vec<Record>) = std::mem::take(&mut m.plugins)
            .into_iter()
            .partition(|r| seen.insert(r.id.clone()));
        m.plugins = keep;
        m.ignored = ignored;
        Ok(m)
    }
}

/// Like [`update`], but only if the lock is free right now (`Ok(None)` when it is held):
/// for changes a read-only command makes on the side, which must never make it wait.
pub fn try_update<T>(
    paths: &Paths,
    f: impl FnOnce(&mut Manifest) -> Result<T>,
) -> Result<Option<T>> {
    let lock = match FileLock::acquire(&paths.plugins_lock(), std::time::Duration::ZERO) {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return Ok(None),
        Err(e) => return Err(Error::io("cannot lock plugins.json", e)),
    };
    let mut m = read(paths)?;
    let out = f(&mut m)?;
    let text = serde_json::to_string_pretty(&m).map_err(super::PluginsError::EncodeManifest)?;
    fsutil::write_atomic(&paths.plugins_json(), text.as_bytes(), 0o600)
        .map_err(|e| Error::io("cannot write plugins.json", e))?;
    drop(lock);
    Ok(Some(out))
}

/// Change `plugins.json` under its lock: read, apply `f`, write atomically. Every change to
/// the plugin set (install, remove, enable, disable) runs inside `f`, so that the lock covers
/// it from the read to the write and concurrent commands never act on a stale copy.
pub fn update<T>(paths: &Paths, f: impl FnOnce(&mut Manifest) -> Result<T>) -> Result<T> {
    paths.ensure_home()?;
    let _lock = FileLock::acquire(&paths.plugins_lock(), paths.lock_timeout)
        .map_err(|e| Error::io("cannot lock plugins.json", e))?;
    // Installs stage outside this lock but hold their staging folder's own lock while they
    // live: a staging folder nobody holds was left by a killed install.
    super::confine::clean_staging(&paths.home);
    let mut m = read(paths)?;
    let out = f(&mut m)?;
    let text = serde_json::to_string_pretty(&m).map_err(super::PluginsError::EncodeManifest)?;
    let failed = |e| Error::io("cannot write plugins.json", e);
    let tmp = fsutil::write_temp(&paths.plugins_json(), text.as_bytes(), 0o600).map_err(failed)?;
    if let Some(pause) = paths.test_pause_before_rename {
        fsutil::test_pause("plugins.json written, renaming", pause);
    }
    fsutil::persist(tmp, &paths.plugins_json()).map_err(failed)?;
    Ok(out)
}
