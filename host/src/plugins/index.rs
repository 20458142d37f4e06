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

/// Libraries whose name starts with this are the project's own test fixtures: plugins that
/// misbehave on purpose. They are built beside the binary in a development tree, but the
/// default index never offers them; tests install them by path.
const FIXTURE_PREFIX: &str = "fixture-";

/// The folders the default index searches, in order: the running binary's own folder (a
/// development build, `target/<profile>/`) and `<prefix>/lib/hermes/plugins` for a binary
/// installed as `<prefix>/bin/hermes` (what `scripts/install` lays out).
pub fn default_dirs() -> Vec<PathBuf> {
    let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
    else {
        return Vec::new();
    };
    let mut dirs = vec![dir.clone()];
    if let Some(prefix) = dir.parent() {
        dirs.push(prefix.join("lib").join("hermes").join("plugins"));
    }
    dirs
}

/// The default index: the plugin libraries in [`default_dirs`], test fixtures left out. A
/// name found in more than one folder is taken from the first.
pub fn beside_binary() -> Vec<IndexEntry> {
    from_dirs(&default_dirs())
}

fn from_dirs(dirs: &[PathBuf]) -> Vec<IndexEntry> {
    let mut out: Vec<IndexEntry> = Vec::new();
    for dir in dirs {
        let Ok(rd) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut found: Vec<IndexEntry> = rd
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter_map(|p| {
                let name = name_of_library(&p)?;
                if name.starts_with(FIXTURE_PREFIX) || out.iter().any(|e| e.name == name) {
                    return None;
                }
                Some(IndexEntry {
                    name,
                    path: Some(p),
                    url: None,
                    sha256: None,
                })
            })
            .collect();
        out.append(&mut found);
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The names `hermes plugins install <name>` would find in `index` (a JSON index file), else
/// in the default index; empty when the index cannot be read.
pub fn available(index: Option<&Path>) -> Vec<String> {
    let entries = match index {
        Some(p) => from_file(p).unwrap_or_default(),
        None => beside_binary(),
    };
    entries.into_iter().map(|e| e.name).collect()
}

/// The command to suggest where no plugin is installed, from what the index offers: the plugin
/// itself when it offers one, `<name>` and the list when it offers several, a library path when
/// it offers none. `index` is as for [`available`].
pub fn install_hint(index: Option<&Path>) -> String {
    hint_for(&available(index))
}

fn hint_for(names: &[String]) -> String {
    match names {
        [] => "hermes plugins install <path to a plugin library>".to_string(),
        [one] => format!("hermes plugins install {one}"),
        many => format!(
            "hermes plugins install <name> (available: {})",
            many.join(", ")
        ),
    }
}

/// Read a JSON index file.
pub fn from_file(path: &Path) -> Result<Vec<IndexEntry>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::io(
            format!("cannot read the plugin index {}", path.display()),
            e,
        )
    })?;
    let idx: IndexFile =
        serde_json::from_str(&text).map_err(|e| super::PluginsError::InvalidIndex {
            path: path.to_path_buf(),
            why: e.to_string(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_install_hint_names_what_the_index_offers() {
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(hint_for(&names(&["acme"])), "hermes plugins install acme");
        assert_eq!(
            hint_for(&names(&["a", "b"])),
            "hermes plugins install <name> (available: a, b)"
        );
        assert_eq!(
            hint_for(&[]),
            "hermes plugins install <path to a plugin library>"
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("index.json");
        std::fs::write(
            &file,
            r#"{"plugins": [{"name": "acme-llm", "path": "x.so"}]}"#,
        )
        .unwrap();
        assert_eq!(install_hint(Some(&file)), "hermes plugins install acme-llm");
    }

    fn touch(dir: &Path, file: &str) {
        std::fs::write(dir.join(file), b"").unwrap();
    }

    #[test]
    fn fixtures_are_never_offered_and_the_first_folder_wins() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let so = std::env::consts::DLL_SUFFIX;
        touch(a.path(), &format!("libminimax_oauth{so}"));
        touch(a.path(), &format!("libfixture_crash_on_load{so}"));
        touch(a.path(), "hermes");
        touch(b.path(), &format!("libminimax_oauth{so}"));
        touch(b.path(), &format!("libminimax_apikey{so}"));
        let idx = from_dirs(&[
            a.path().to_path_buf(),
            b.path().to_path_buf(),
            "/nonexistent".into(),
        ]);
        let names: Vec<&str> = idx.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["minimax-apikey", "minimax-oauth"]);
        let oauth = lookup(&idx, "minimax_oauth").unwrap();
        assert!(oauth.path.as_ref().unwrap().starts_with(a.path()));
    }
}
