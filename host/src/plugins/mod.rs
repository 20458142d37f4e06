//! Plugins: loading through the stable ABI, the provider registry and aliases, and the
//! installed set under `HERMES_HOME/plugins`.

pub mod boundary;
pub mod check;
pub mod confine;
pub mod deadline;
pub mod descriptor;
mod doctor;
pub mod index;
pub mod install;
pub mod loader;
pub mod manifest;
pub mod probe;
pub mod registry;
pub mod runtime;
pub mod supervise;

pub use descriptor::{PluginDesc, ProviderDesc};
pub use loader::{LoadError, LoadedPlugin};
pub use registry::Registry;
pub use runtime::{Installed, PluginSet};

use std::path::PathBuf;

/// What can go wrong with plugins: finding a provider, opening it, calling it, installing a
/// plugin, and the files that record what is installed.
#[derive(Debug, thiserror::Error)]
pub enum PluginsError {
    /// No installed plugin provides `name` (`known`: the providers that are installed;
    /// `install`: what to install, from the plugin index).
    #[error("unknown provider {:?} ({})", crate::text::line(name, 64),
        if known.is_empty() { "no provider is installed".to_string() }
        else { format!("installed providers: {}", known.join(", ")) })]
    UnknownProvider {
        name: String,
        known: Vec<String>,
        install: String,
    },
    /// The plugin that provides `name` is installed but cannot be used (changed since
    /// install, incompatible, disabled, ...).
    /// `state` is the version, the status and why.
    #[error(
        "provider {:?} is unavailable: plugin {plugin} {state}",
        crate::text::line(name, 64)
    )]
    Unavailable {
        name: String,
        plugin: String,
        state: String,
    },
    /// No plugin with this id is installed.
    #[error("plugin {id} is not installed")]
    NotInstalled { id: String },
    /// The plugin is not among those loaded in this process.
    #[error("plugin {plugin} is not loaded")]
    NotLoaded { plugin: String },
    /// The plugin refused to open one of its providers.
    #[error("plugin {plugin} could not open provider {provider}: {message}")]
    OpenFailed {
        plugin: String,
        provider: String,
        message: String,
    },
    /// A call into the plugin timed out, was cancelled, or ended without an answer.
    #[error("{message}")]
    NoAnswer { plugin: String, message: String },
    /// The name is not in the plugin index.
    #[error("no plugin called {name:?} in the plugin index ({})",
        if names.is_empty() { "it is empty".to_string() } else { format!("it has {}", names.join(", ")) })]
    NotInIndex { name: String, names: Vec<String> },
    /// The plugin index cannot be parsed.
    #[error("the plugin index {} is not valid: {why}", path.display())]
    InvalidIndex { path: PathBuf, why: String },
    /// An index entry says neither where the library is nor where to get it.
    #[error("index entry {0} has neither a path nor a URL")]
    EmptyIndexEntry(String),
    /// A path given to install is not a regular file.
    #[error("{0} is not a file")]
    NotAFile(String),
    /// A download without a checksum to check it against (exit 2).
    #[error("refusing to install from {url} without a checksum")]
    NoChecksum { url: String },
    /// The URL does not parse.
    #[error("not a URL: {0}")]
    InvalidUrl(String),
    /// A download over plain http to a host other than this machine.
    #[error("plugins are downloaded over https only")]
    NotHttps,
    /// The download failed.
    #[error("cannot download {url}: {why}")]
    Download { url: String, why: String },
    /// The download is larger than [`install::MAX_DOWNLOAD`].
    #[error("{url} is larger than {} MiB", install::MAX_DOWNLOAD >> 20)]
    TooLarge { url: String },
    /// The library is not where it may be loaded from.
    #[error("{0}")]
    Refused(confine::Refused),
    /// The bytes are not the ones the checksum names.
    #[error(
        "checksum mismatch for {source_}: expected {expected}, got {got}; nothing was installed"
    )]
    ChecksumMismatch {
        source_: String,
        expected: String,
        got: String,
    },
    /// The library failed its trial load; `detail` is shown with `-v`.
    #[error("cannot install {shown}: {why}")]
    TrialFailed {
        shown: String,
        why: String,
        detail: Option<String>,
    },
    /// The library was changed between its check and its use.
    #[error("cannot install {shown}: the {what} changed {when}")]
    Changed {
        shown: String,
        what: &'static str,
        when: &'static str,
    },
    /// The trial load returned no descriptor.
    #[error("cannot install {shown}: the trial load returned no descriptor")]
    NoDescriptor { shown: String },
    /// The descriptor breaks the contract's rules.
    #[error("cannot install {shown}: its descriptor is invalid: {}", problems.join("; "))]
    InvalidDescriptor {
        shown: String,
        problems: Vec<String>,
    },
    /// The library fails the plugin checks.
    #[error("cannot install {shown}: it fails the plugin checks: {first}{}",
        if *more == 0 { String::new() } else { format!(" (and {more} more)") })]
    FailsChecks {
        shown: String,
        first: String,
        more: usize,
    },
    /// Another installed plugin already provides the same provider.
    #[error("cannot install {id}: {message}")]
    Conflict {
        id: String,
        message: String,
        holder: String,
    },
    /// A newer version is installed.
    #[error("{id} {installed} is installed; refusing to downgrade to {version}")]
    Downgrade {
        id: String,
        installed: String,
        version: String,
    },
    /// `plugins.json` cannot be parsed.
    #[error("{} is not valid: {why}", path.display())]
    InvalidManifest { path: PathBuf, why: String },
    /// `plugins.json` is of a later format.
    #[error("{} has format version {version}, this hermes reads version 1", path.display())]
    ManifestVersion { path: PathBuf, version: u64 },
    /// `plugins.json` could not be encoded.
    #[error("{0}")]
    EncodeManifest(serde_json::Error),
}

impl PluginsError {
    /// The `help:` line.
    pub fn help(&self) -> Option<String> {
        Some(match self {
            PluginsError::UnknownProvider { known, install, .. } => {
                if known.is_empty() {
                    format!("install one: {install}")
                } else {
                    "run `hermes plugins list` to see providers and their aliases".to_string()
                }
            }
            PluginsError::Unavailable { plugin, .. } => format!(
                "`hermes doctor` shows the details; `hermes plugins disable {plugin}` takes it out of the way"
            ),
            PluginsError::NotInstalled { .. } => "see `hermes plugins list`".into(),
            PluginsError::NoAnswer { plugin, .. } => format!(
                "if it keeps happening, disable it with `hermes plugins disable {plugin}`"
            ),
            PluginsError::NotInIndex { .. } => {
                "give a path to a .so file, or a URL with --sha256".into()
            }
            PluginsError::NoChecksum { .. } => {
                "pass --sha256 <hex> (or use an index entry that carries one)".into()
            }
            PluginsError::FailsChecks { shown, .. } => {
                format!("see every finding with `hermes plugins check {shown}`")
            }
            PluginsError::Conflict { holder, .. } => {
                format!("remove the other plugin first: `hermes plugins remove {holder}`")
            }
            PluginsError::Downgrade { .. } => "pass --force to downgrade".into(),
            PluginsError::InvalidManifest { path, .. } => format!(
                "move it away (mv {0} {0}.bak) and reinstall your plugins with `hermes plugins install`",
                path.display()
            ),
            PluginsError::ManifestVersion { .. } => "upgrade hermes".into(),
            _ => return None,
        })
    }

    /// What the trial load reported, shown with `-v`.
    pub fn detail(&self) -> Option<&str> {
        match self {
            PluginsError::TrialFailed { detail, .. } => detail.as_deref(),
            _ => None,
        }
    }

    /// Whether the command line asked for it (exit 2).
    pub fn is_usage(&self) -> bool {
        // A name that names nothing is a usage error (exit 2), as an unknown region is.
        matches!(
            self,
            PluginsError::NoChecksum { .. } | PluginsError::UnknownProvider { .. }
        )
    }
}
