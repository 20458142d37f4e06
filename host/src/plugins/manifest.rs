//! `plugins.json`: what is installed, where, with which checksum, and whether it is enabled.

use std::path::{Path, PathBuf};
use std::time::Duration;

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
        Manifest { version: 1, plugins: Vec::new() }
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
    let m: Manifest = serde_json::from_str(&text).map_err(|e| {
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

/// Change `plugins.json` under its lock: read, apply `f`, write atomically.
pub fn update<T>(paths: &Paths, f: impl FnOnce(&mut Manifest) -> Result<T>) -> Result<T> {
    paths.ensure_home()?;
    let _lock = FileLock::acquire(&paths.plugins_lock(), Duration::from_secs(30))
        .map_err(|e| Error::io("cannot lock plugins.json", e))?;
    let mut m = read(paths)?;
    let out = f(&mut m)?;
    let text = serde_json::to_string_pretty(&m).map_err(|e| Error::msg(e.to_string()))?;
    fsutil::write_atomic(&paths.plugins_json(), text.as_bytes(), 0o600)
        .map_err(|e| Error::io("cannot write plugins.json", e))?;
    Ok(out)
}
