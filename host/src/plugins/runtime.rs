//! The plugins of one `hermes` run: loaded from `plugins.json`, validated, and put in the
//! registry. A plugin that fails to load is recorded with its reason and skipped; it never
//! stops the others.

use std::path::Path;

use abi_stable::std_types::RResult;
use hermes_plugin_api::{HostBox, ProviderHandle};

use super::confine;
use super::descriptor::{self, ProviderDesc};
use super::loader::{self, LoadError, LoadedPlugin};
use super::manifest::{self, Record};
use super::registry::{Entry, PluginProviders, Registry};
use crate::config::Paths;
use crate::error::{Error, Result};

/// One installed plugin and what became of loading it.
pub struct Installed {
    /// Its `plugins.json` record.
    pub record: Record,
    /// The loaded plugin, or why it could not be loaded; `None` when disabled.
    pub loaded: Option<Result<LoadedPlugin, LoadError>>,
    /// Descriptor problems (a plugin with any is not registered).
    pub problems: Vec<String>,
}

impl Installed {
    /// The loaded plugin if it loaded and its descriptor is valid.
    pub fn usable(&self) -> Option<&LoadedPlugin> {
        match &self.loaded {
            Some(Ok(p)) if self.problems.is_empty() => Some(p),
            _ => None,
        }
    }
    /// `ok`, `disabled`, `invalid`, `incompatible` or `failed to load`.
    pub fn status(&self) -> &'static str {
        match &self.loaded {
            None => "disabled",
            Some(Err(e)) => e.status(),
            Some(Ok(_)) if !self.problems.is_empty() => "invalid",
            Some(Ok(_)) => "ok",
        }
    }
    /// The reason behind a status other than `ok`.
    pub fn reason(&self) -> Option<String> {
        match &self.loaded {
            Some(Err(e)) => Some(e.to_string()),
            Some(Ok(_)) if !self.problems.is_empty() => Some(self.problems.join("; ")),
            _ => None,
        }
    }
}

/// The installed plugins and the registry built from the usable ones.
pub struct PluginSet {
    /// Every installed plugin, in install order.
    pub installed: Vec<Installed>,
    /// Providers and aliases.
    pub registry: Registry,
    /// Later `plugins.json` records for an id already recorded (ignored).
    pub ignored: Vec<Record>,
}

/// Which installed plugins to load.
#[derive(Clone, Copy, Debug)]
pub enum Scope<'a> {
    /// Every enabled plugin.
    All,
    /// Only what is needed to resolve this provider name.
    Provider(&'a str),
}

impl PluginSet {
    /// Load the enabled plugins in `scope`.
    pub fn load(paths: &Paths, scope: Scope<'_>) -> Result<PluginSet> {
        let manifest = manifest::read(paths)?;
        let records = in_scope(&manifest, scope);
        let mut set = PluginSet::from_records(paths, records, &Default::default());
        set.ignored = manifest.ignored;
        Ok(set)
    }

    /// Load `records`, except those in `failed` (plugin id → why it was not loaded), which are
    /// recorded as failing to describe themselves.
    pub fn from_records(
        paths: &Paths,
        records: Vec<Record>,
        failed: &std::collections::BTreeMap<String, String>,
    ) -> PluginSet {
        let installed = records
            .into_iter()
            .map(|r| match failed.get(&r.id) {
                Some(why) if r.enabled => Installed {
                    record: r,
                    loaded: Some(Err(LoadError::Describe(why.clone()))),
                    problems: Vec::new(),
                },
                _ => load_record(&paths.home, r),
            })
            .collect();
        PluginSet::from_installed(installed)
    }

    /// Build the registry over already loaded plugins.
    pub fn from_installed(installed: Vec<Installed>) -> PluginSet {
        let registry = Registry::build(installed.iter().filter_map(|i| {
            i.usable().map(|p| PluginProviders {
                plugin_id: &p.desc.id,
                providers: &p.desc.providers,
            })
        }));
        PluginSet {
            installed,
            registry,
            ignored: Vec::new(),
        }
    }

    /// The provider called `name`, or an error that lists what is installed.
    pub fn resolve(&self, name: &str) -> Result<&Entry> {
        // A provider whose plugin is installed but failed to load: say so, not "unknown".
        let failed = self.installed.iter().find(|i| {
            i.record
                .providers
                .iter()
                .any(|p| p.eq_ignore_ascii_case(name))
                && matches!(i.loaded, Some(Err(_)))
        });
        if let (None, Some(i)) = (self.registry.resolve(name), failed) {
            return Err(Error::msg(format!(
                "provider {:?} is unavailable: plugin {} {} {}: {}",
                descriptor::clip(name),
                i.record.id,
                i.record.version,
                i.status(),
                i.reason().unwrap_or_default()
            ))
            .with_help(format!(
                "`hermes doctor` shows the details; `hermes plugins disable {}` takes it out of the way",
                i.record.id
            )));
        }
        self.registry.resolve(name).ok_or_else(|| {
            // A provider whose plugin is installed but was not loaded: say why, not "unknown".
            if let Some(i) = self.installed.iter().find(|i| {
                i.loaded.as_ref().is_some_and(|l| l.is_err())
                    && i.record
                        .providers
                        .iter()
                        .any(|p| p.eq_ignore_ascii_case(name))
            }) {
                return Error::msg(format!(
                    "plugin {} was not loaded: {}",
                    i.record.id,
                    i.reason().unwrap_or_default()
                ))
                .with_help("run `hermes doctor` for the fix");
            }
            let known: Vec<&str> = self
                .registry
                .entries()
                .iter()
                .map(|e| e.provider.id.as_str())
                .collect();
            let list = if known.is_empty() {
                "no provider is installed".to_string()
            } else {
                format!("installed providers: {}", known.join(", "))
            };
            // A name that names nothing is a usage error (exit 2), as an unknown region is.
            Error::usage(
                format!("unknown provider {:?} ({list})", descriptor::clip(name)),
                if known.is_empty() {
                    "install one, e.g. `hermes plugins install minimax-oauth`".to_string()
                } else {
                    "run `hermes plugins list` to see providers and their aliases".to_string()
                },
            )
        })
    }

    /// The loaded plugin that provides `entry`.
    pub fn plugin_of(&self, entry: &Entry) -> Option<&LoadedPlugin> {
        self.installed
            .iter()
            .filter_map(Installed::usable)
            .find(|p| p.desc.id == entry.plugin_id)
    }

    /// Open provider `entry` with the host's services.
    pub fn open(&self, entry: &Entry, host: HostBox) -> Result<Provider> {
        let plugin = self
            .plugin_of(entry)
            .ok_or_else(|| Error::msg(format!("plugin {} is not loaded", entry.plugin_id)))?;
        let module = plugin.module;
        let id = entry.provider.id.clone();
        let opened = super::deadline::call(
            super::deadline::of(super::deadline::LOCAL),
            None,
            move || (module.provider())(id.as_str().into(), host),
        )
        .map_err(|s| s.error(&entry.plugin_id, "provider()"))?;
        match opened {
            RResult::ROk(handle) => Ok(Provider {
                desc: entry.provider.clone(),
                plugin_id: entry.plugin_id.clone(),
                handle,
                policy: crate::services::Policy::of(&entry.provider),
            }),
            RResult::RErr(e) => Err(Error::msg(format!(
                "plugin {} could not open provider {}: {}",
                entry.plugin_id, entry.provider.id, e.message
            ))),
        }
    }
}

/// The records a command in `scope` loads.
pub fn in_scope(manifest: &manifest::Manifest, scope: Scope<'_>) -> Vec<Record> {
    let only: Option<&str> = match scope {
        // A canonical id recorded at install time needs only its own plugin; an alias
        // needs every plugin, since conflicts decide who owns it.
        Scope::Provider(name) => manifest
            .plugins
            .iter()
            .find(|r| r.enabled && r.providers.iter().any(|p| p.eq_ignore_ascii_case(name)))
            .map(|r| r.id.as_str()),
        Scope::All => None,
    };
    manifest
        .plugins
        .iter()
        .filter(|r| only.is_none_or(|id| r.id == id))
        .cloned()
        .collect()
}

/// Load what is needed and open the provider called `name` with the host's services.
pub fn open_provider(
    env: &crate::config::Env,
    name: &str,
    out: &crate::output::Output,
) -> Result<std::sync::Arc<Provider>> {
    let set = PluginSet::load(&env.paths(), Scope::Provider(name))?;
    let entry = set.resolve(name)?;
    let settings = crate::config::Settings::load(&env.paths())?;
    open_entry(env, &settings, &set, entry, out)
}

/// Open a registry entry with the host's services (its allow-list, URL overrides from the
/// environment and `settings`, logging).
pub fn open_entry(
    env: &crate::config::Env,
    settings: &crate::config::Settings,
    set: &PluginSet,
    entry: &Entry,
    out: &crate::output::Output,
) -> Result<std::sync::Arc<Provider>> {
    open_entry_with(
        env,
        settings,
        set,
        entry,
        out,
        crate::timefmt::system_clock(),
    )
}

/// [`open_entry`] with a given clock.
pub fn open_entry_with(
    env: &crate::config::Env,
    settings: &crate::config::Settings,
    set: &PluginSet,
    entry: &Entry,
    out: &crate::output::Output,
    clock: crate::timefmt::Clock,
) -> Result<std::sync::Arc<Provider>> {
    let overrides: Vec<(String, String)> = entry
        .provider
        .url_overrides
        .iter()
        .map(|o| (o.env.clone(), o.target.clone()))
        .collect();
    let values = settings.values_for(&entry.provider.id, &overrides);
    let services =
        crate::services::ProviderServices::new(&entry.provider, env, values, out.clone())
            .with_clock(clock);
    // The host's own requests (chat) follow the same rules as the plugin's, configured base
    // URLs included.
    let policy = services.policy().clone();
    let mut provider = set.open(entry, services.into_box())?;
    provider.policy = policy;
    Ok(std::sync::Arc::new(provider))
}

/// A provider's live capabilities.
pub struct Provider {
    /// Its descriptor.
    pub desc: ProviderDesc,
    /// Its plugin.
    pub plugin_id: String,
    /// The capability objects.
    pub handle: ProviderHandle,
    /// The rules its requests are held to (its allow-list plus the hosts of base URLs the
    /// user configured).
    pub policy: crate::services::Policy,
}

/// Open a record's library through the confined walk and decide how far it can be trusted,
/// before any of its code runs: the very file verified at install (same identity) skips the
/// layout check; any other file is re-hashed first and refused unless its bytes are the ones
/// recorded, so no constructor of a replaced library ever runs.
pub fn open_verified(
    home: &Path,
    record: &Record,
) -> Result<(confine::Library, loader::Layout), LoadError> {
    let refused = |r: confine::Refused| match r {
        confine::Refused::Missing(p) => LoadError::Missing(p),
        confine::Refused::Unsafe(m) => LoadError::Refused(m),
    };
    // Lexical first: a path leading out of the plugins folder is refused by its text.
    confine::split(&record.path).map_err(LoadError::Refused)?;
    let dir = confine::PluginsDir::open(home).map_err(refused)?;
    let lib = dir.open_library(&record.path).map_err(refused)?;
    if record
        .verified
        .as_ref()
        .is_some_and(|v| v.matches(&lib.identity))
    {
        return Ok((lib, loader::Layout::AlreadyVerified));
    }
    let sum = super::install::sha256_reader(&lib.file)
        .map_err(|e| LoadError::Refused(format!("cannot read {}: {e}", lib.path.display())))?;
    if !sum.eq_ignore_ascii_case(&record.sha256) {
        return Err(LoadError::Changed(format!(
            "{} {} changed since it was installed (its checksum no longer matches); it was not loaded: reinstall it with `{}`",
            record.id,
            descriptor::clip(&record.version),
            record.reinstall_command()
        )));
    }
    Ok((lib, loader::Layout::Check))
}

/// Load one installed plugin (nothing for a disabled one).
pub fn load_record(home: &Path, record: Record) -> Installed {
    if !record.enabled {
        return Installed {
            record,
            loaded: None,
            problems: Vec::new(),
        };
    }
    let timeout = super::deadline::of(super::deadline::LOCAL);
    let loaded = open_verified(home, &record).and_then(|(lib, layout)| {
        super::deadline::call(timeout, None, move || {
            loader::load_file(lib.file, &lib.path, layout)
        })
        .unwrap_or_else(|s| {
            Err(LoadError::Describe(format!(
                "{}; disable it with `hermes plugins disable {}`",
                match s {
                    super::deadline::Stopped::TimedOut(d) =>
                        format!("it did not answer within {}", super::supervise::seconds(d)),
                    _ => "it ended without an answer".into(),
                },
                record.id
            )))
        })
    });
    let problems = match &loaded {
        Ok(p) => {
            let mut problems = p.problems.clone();
            if p.desc.id != record.id {
                problems.push(format!(
                    "the library now says it is plugin {}, but it was installed as {}",
                    descriptor::clip(&p.desc.id),
                    record.id
                ));
            }
            problems
        }
        Err(_) => Vec::new(),
    };
    Installed {
        record,
        loaded: Some(loaded),
        problems,
    }
}
