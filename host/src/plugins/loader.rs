//! Loading one plugin file.
//!
//! The order matters (see the design notes): read the plain `hermes_plugin_api_version`
//! symbol and check it with semver first, so that an incompatible plugin gets one line instead
//! of abi_stable's multi-kilobyte layout report; only then run abi_stable's own checks with
//! `lib_header_from_path` + `init_root_module` — never `RootModule::load_from_file`, which
//! caches one library per type and would hand back the first plugin for every later file.
//! Libraries are never unloaded.

use std::ffi::CStr;
use std::os::raw::c_char;
use std::path::{Path, PathBuf};

use abi_stable::library::{lib_header_from_path, LibraryError, RawLibrary};
use abi_stable::std_types::RResult;
use hermes_plugin_api::{PluginModRef, API_VERSION, API_VERSION_SYMBOL};

use super::descriptor::PluginDesc;

/// Why a plugin could not be loaded. `Display` is one line.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file is missing.
    #[error("{0} does not exist")]
    Missing(PathBuf),
    /// The file is not a loadable library.
    #[error("not a loadable library: {0}")]
    NotALibrary(String),
    /// The library is not a hermes plugin.
    #[error("not a hermes plugin (it exports no hermes_plugin_api_version)")]
    NotAPlugin,
    /// Its interface version is not usable.
    #[error("built for plugin-api {plugin}, this hermes speaks {host}: {advice}")]
    Incompatible {
        /// The plugin's interface version.
        plugin: String,
        /// The host's.
        host: String,
        /// What to do.
        advice: String,
    },
    /// abi_stable refused the layout.
    #[error("its ABI layout does not match this hermes ({summary}): rebuild it against hermes-plugin-api {API_VERSION}")]
    Layout {
        /// One line.
        summary: String,
        /// abi_stable's full report (shown with `-v`).
        full: String,
    },
    /// `describe()` failed or panicked.
    #[error("describe() failed: {0}")]
    Describe(String),
    /// The library or its folder is not safe to load (a link, a path outside the plugins
    /// folder, writable by others, owned by another user); never opened as a library.
    #[error("{0}")]
    Refused(String),
    /// The library's bytes are not the ones verified at install; never opened as a library.
    #[error("{0}")]
    Changed(String),
}

impl LoadError {
    /// The long report behind the one line, if any.
    pub fn detail(&self) -> Option<&str> {
        match self {
            LoadError::Layout { full, .. } => Some(full),
            _ => None,
        }
    }
    /// A short status word for listings.
    pub fn status(&self) -> &'static str {
        match self {
            LoadError::Incompatible { .. } | LoadError::Layout { .. } => "incompatible",
            LoadError::Refused(_) => "refused",
            LoadError::Changed(_) => "changed",
            _ => "failed to load",
        }
    }
}

#[derive(Clone)]
pub struct LoadedPlugin {
    /// Where it was loaded from.
    pub path: PathBuf,
    pub module: PluginModRef,
    pub api_version: String,
    pub desc: PluginDesc,
    /// What breaks the descriptor rules, checked on the descriptor as the plugin gave it.
    pub problems: Vec<String>,
}

/// Read the interface version without abi_stable's checks.
fn read_api_version(path: &Path) -> Result<String, LoadError> {
    // Loading runs the library's initialisers. That is the nature of plugins; the install step
    // trial-loads every library in a child process before it is used here. abi_stable's loader
    // is used so that only its `libloading` is linked.
    let lib = RawLibrary::load_at(path).map_err(|e| match e {
        LibraryError::OpenError { err, .. } => LoadError::NotALibrary(one_line(&err.to_string())),
        other => LoadError::NotALibrary(one_line(&other.to_string())),
    })?;
    let version = {
        // SAFETY: the symbol is declared by the SDK as `extern "C" fn() -> *const c_char`
        // returning a static NUL-terminated string.
        let sym = unsafe { lib.get::<extern "C" fn() -> *const c_char>(API_VERSION_SYMBOL) }
            .map_err(|_| LoadError::NotAPlugin)?;
        let ptr = sym();
        if ptr.is_null() {
            return Err(LoadError::NotAPlugin);
        }
        // SAFETY: non-null and NUL-terminated per the SDK contract; bounded below.
        let cstr = unsafe { CStr::from_ptr(ptr) };
        let bytes = cstr.to_bytes();
        if bytes.len() > 64 {
            return Err(LoadError::NotAPlugin);
        }
        String::from_utf8_lossy(bytes).into_owned()
    };
    // Plugins are never unloaded: their code may still be referenced by objects we hold.
    std::mem::forget(lib);
    Ok(version)
}

/// The root module's `api_version` must repeat the exported `hermes_plugin_api_version`
/// (the SDK's export macro writes both from one constant): a library whose two marks
/// disagree was not built as the contract says, and is not used.
fn same_version(exported: &str, module: &str) -> Result<(), LoadError> {
    if exported == module {
        return Ok(());
    }
    Err(LoadError::Incompatible {
        plugin: crate::text::line(module, 64),
        host: API_VERSION.to_string(),
        advice: format!(
            "its root module says {} but it exports {}; rebuild it",
            crate::text::line(module, 64),
            crate::text::line(exported, 64)
        ),
    })
}

/// Check a plugin's interface version against the host's.
pub fn check_api_version(plugin: &str) -> Result<(), LoadError> {
    let host = semver::Version::parse(API_VERSION).expect("API_VERSION is semver");
    let incompatible = |advice: &str| LoadError::Incompatible {
        plugin: plugin.to_string(),
        host: API_VERSION.to_string(),
        advice: advice.to_string(),
    };
    let v = semver::Version::parse(plugin)
        .map_err(|_| incompatible("its version is not semver; rebuild it"))?;
    if v.major != host.major {
        let advice = if v.major < host.major {
            "rebuild it against this hermes-plugin-api"
        } else {
            "upgrade hermes"
        };
        return Err(incompatible(advice));
    }
    Ok(())
}

/// The first non-empty line of `s`, made safe and clipped (library errors span lines).
fn one_line(s: &str) -> String {
    let first = s.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    crate::text::line(first, 240)
}

fn layout_error(e: LibraryError) -> LoadError {
    let full = e.to_string();
    let summary = match &e {
        LibraryError::InvalidAbiHeader(_) => "invalid abi_stable header".to_string(),
        LibraryError::IncompatibleVersionNumber {
            expected_version,
            actual_version,
            ..
        } => {
            format!("interface layout {actual_version}, expected {expected_version}")
        }
        LibraryError::AbiInstability(_) => "type layouts differ".to_string(),
        LibraryError::OpenError { .. } => "cannot open".to_string(),
        LibraryError::GetSymbolError { .. } => "no abi_stable root module".to_string(),
        _ => one_line(&full),
    };
    LoadError::Layout { summary, full }
}

/// Whether to run abi_stable's layout check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Check it (install, `plugins check`, a changed file).
    Check,
    /// The file was checked by a host of this interface and has not changed since
    /// ([`super::manifest::Record::unchanged_since_verified`]).
    AlreadyVerified,
}

/// Load a plugin file: version check, layout check, descriptor.
pub fn load(path: &Path) -> Result<LoadedPlugin, LoadError> {
    load_with(path, Layout::Check)
}

/// Load a plugin file, skipping the layout check only when told it was already done.
pub fn load_with(path: &Path, layout: Layout) -> Result<LoadedPlugin, LoadError> {
    let file = std::fs::File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => LoadError::Missing(path.to_path_buf()),
        _ => LoadError::NotALibrary(one_line(&format!("{}: {e}", path.display()))),
    })?;
    load_file(file, path, layout)
}

/// Load the library open as `file` (`shown` is its path for messages): the dynamic loader
/// maps exactly the file that was opened — and checked or hashed — through `/proc/self/fd`,
/// so a file swapped in at the same path in between is never the one that runs.
///
/// The descriptor is kept open for the life of the process: the loader remembers a library
/// by the name it was opened with, and a later `/proc/self/fd/N` with a reused number would
/// otherwise be answered with this library.
pub fn load_file(
    file: std::fs::File,
    shown: &Path,
    layout: Layout,
) -> Result<LoadedPlugin, LoadError> {
    use std::os::fd::IntoRawFd;
    let fd_dir = Path::new("/proc/self/fd");
    if !fd_dir.is_dir() {
        // Without /proc (a rare container setup) the path is the only handle left.
        return load_path(shown, layout);
    }
    let via = fd_dir.join(file.into_raw_fd().to_string());
    let from = via.display().to_string();
    let to = shown.display().to_string();
    load_path(&via, layout)
        .map(|mut p| {
            p.path = shown.to_path_buf();
            p
        })
        .map_err(|e| match e {
            LoadError::NotALibrary(m) => LoadError::NotALibrary(m.replace(&from, &to)),
            LoadError::Layout { summary, full } => LoadError::Layout {
                summary: summary.replace(&from, &to),
                full: full.replace(&from, &to),
            },
            LoadError::Missing(_) => LoadError::Missing(shown.to_path_buf()),
            e => e,
        })
}

fn load_path(path: &Path, layout: Layout) -> Result<LoadedPlugin, LoadError> {
    let api_version = read_api_version(path)?;
    check_api_version(&api_version)?;
    let header = lib_header_from_path(path).map_err(layout_error)?;
    let module = match layout {
        Layout::Check => header.init_root_module::<PluginModRef>(),
        // SAFETY: this exact file (same device, inode, size, mtime and ctime, opened without
        // following links) passed the full layout check against this exact interface (same
        // fingerprint) when it was installed.
        Layout::AlreadyVerified => unsafe {
            header.init_root_module_with_unchecked_layout::<PluginModRef>()
        },
    }
    .map_err(layout_error)?;
    same_version(&api_version, (module.api_version())().as_str())?;
    let described = (module.describe())();
    crate::output::restore_stdio();
    let info = match described {
        RResult::ROk(info) => info,
        RResult::RErr(e) => return Err(LoadError::Describe(one_line(&e.message))),
    };
    Ok(LoadedPlugin {
        path: path.to_path_buf(),
        module,
        api_version,
        problems: hermes_plugin_api::validate::plugin_info(&info),
        desc: PluginDesc::from(&info),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semver_check_is_by_major() {
        assert!(check_api_version("1.0.0").is_ok());
        assert!(check_api_version("1.7.2").is_ok());
        let e = check_api_version("0.3.0").unwrap_err().to_string();
        assert_eq!(e, "built for plugin-api 0.3.0, this hermes speaks 1.0.0: rebuild it against this hermes-plugin-api");
        assert!(check_api_version("2.0.0")
            .unwrap_err()
            .to_string()
            .contains("upgrade hermes"));
        assert!(check_api_version("banana").is_err());
        assert!(same_version("1.0.0", "1.0.0").is_ok());
        assert!(matches!(
            same_version("1.0.0", "1.1.0"),
            Err(LoadError::Incompatible { plugin, .. }) if plugin == "1.1.0"
        ));
    }

    #[test]
    fn garbage_file_is_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("libgarbage.so");
        std::fs::write(&p, b"this is not an ELF file at all").unwrap();
        let e = load(&p).err().unwrap().to_string();
        assert!(e.starts_with("not a loadable library"), "{e}");
        assert!(!e.contains('\n'));
    }
}
