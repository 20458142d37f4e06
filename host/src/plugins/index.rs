//! Where `hermes plugins install <name>` finds plugins: an index of names. The default index
//! is the plugin libraries built beside the `hermes` binary, so a fresh build can install its
//! own plugins offline; `HERMES_PLUGIN_INDEX` names a JSON index instead, whose entries may
//! carry a URL and must then carry a sha256.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

/// One installable plugin.
#[derive(Clone, Debug, Deserialize)]
pub struct IndexEntry {
    /// Name users type (`minimax-oauth`).
    pub name: String,
    /// A local library.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// A download URL.
    #[serde(default)]
    pub url: Option<String>,
    /// Expected SHA-256 (hex).
    #[serde(default)]
    pub sha256: Option<String>,
}

#[derive(Deserialize)]
struct IndexFile {
    plugins: Vec<IndexEntry>,
}

/// `lib<name>.so` → `name` with `_` as `-`.
pub fn name_of_library(path: &Path) -> Option<String> {
    let file = path.file_name()?.to_str()?;
    let stem = file
        .strip_prefix("lib")?
        .strip_suffix(std::env::consts::DLL_SUFFIX)?;
    Some(stem.replace('_', "-"))
}

fn normalize(name: &str) -> String {
    name.trim().to_ascii_lowercase().replace('_', "-")
}

/// The libraries beside the running binary.
pub fn beside_binary() -> Vec<IndexEntry> {
    let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
    else {
        return Vec::new();
    };
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<IndexEntry> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter_map(|p| {
            let name = name_of_library(&p)?;
            Some(IndexEntry {
                name,
                path: Some(p),
                url: None,
                sha256: None,
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Read a JSON index file.
pub fn from_file(path: &Path) -> Result<Vec<IndexEntry>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::io(
            format!("cannot read the plugin index {}", path.display()),
            e,
        )
    })?;
    let idx: IndexFile = serde_json::from_str(&text).map_err(|e| {
        Error::msg(format!(
            "the plugin index {} is not valid: {e}",
            path.display()
        ))
    })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    Ok(idx
        .plugins
        .into_iter()
        .map(|mut e| {
            e.path = e
                .path
                .map(|p| if p.is_relative() { dir.join(p) } else { p });
            e
        })
        .collect())
}

/// Find `name` in `index`.
pub fn lookup<'a>(index: &'a [IndexEntry], name: &str) -> Option<&'a IndexEntry> {
    let n = normalize(name);
    index.iter().find(|e| normalize(&e.name) == n)
}
