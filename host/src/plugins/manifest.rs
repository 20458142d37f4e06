//! `plugins.json`: what is installed, where, with which checksum, and whether it is enabled.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::Paths;
use crate::error::{Error, Result};
use crate::fsutil::{self, FileLock};

/// One installed plugin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Plugin id.
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
}

/// What a library file looked like when it was verified (checksum and full layout check),
/// and against which interface. While all of it still holds, the file has not changed — the
/// inode change time cannot be set back from user space — and repeating the checks would
/// give the same answer, so ordinary loads skip them. `hermes doctor --deep` repeats them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verified {
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
    /// The current state of `path`.
    pub fn of(path: &Path) -> std::io::Result<Verified> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path)?;
        Ok(Verified {
            size: m.size(),
            ino: m.ino(),
            mtime_ns: m
                .mtime()
                .saturating_mul(1_000_000_000)
                .saturating_add(m.mtime_nsec()),
            ctime_ns: m
                .ctime()
                .saturating_mul(1_000_000_000)
                .saturating_add(m.ctime_nsec()),
            interface: format!("{:016x}", hermes_plugin_api::INTERFACE_FINGERPRINT),
        })
    }
}

impl Record {
    /// Whether the library is unchanged since it was verified by a host of this interface.
    pub fn unchanged_since_verified(&self, home: &Path) -> bool {
        match (&self.verified, Verified::of(&self.library(home))) {
            (Some(v), Ok(now)) => *v == now,
            _ => false,
        }
    }
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
}

fn one() -> u32 {
    1
}

impl Default for Manifest {
    fn default() -> Self {
        Manifest {
            version: 1,
            plugins: Vec::new(),
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
        let m: Manifest = serde_json::from_str(text).map_err(|e| {
            Error::msg(format!("{} is not valid: {e}", path.display())).with_help(format!(
                "move it away (mv {0} {0}.bak) and reinstall your plugins with `hermes plugins install`",
                path.display()
            ))
        })?;
        if m.version != 1 {
            return Err(Error::msg(format!(
                "{} has format version {}, this hermes reads version 1",
                path.display(),
                m.version
            ))
            .with_help("upgrade hermes"));
        }
        Ok(m)
    }
}

/// Change `plugins.json` under its lock: read, apply `f`, write atomically.
pub fn update<T>(paths: &Paths, f: impl FnOnce(&mut Manifest) -> Result<T>) -> Result<T> {
    paths.ensure_home()?;
    let _lock = FileLock::acquire(&paths.plugins_lock(), paths.lock_timeout)
        .map_err(|e| Error::io("cannot lock plugins.json", e))?;
    let mut m = read(paths)?;
    let out = f(&mut m)?;
    let text = serde_json::to_string_pretty(&m).map_err(|e| Error::msg(e.to_string()))?;
    fsutil::write_atomic(&paths.plugins_json(), text.as_bytes(), 0o600)
        .map_err(|e| Error::io("cannot write plugins.json", e))?;
    Ok(out)
}
