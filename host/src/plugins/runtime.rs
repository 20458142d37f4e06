//! The plugins of one `hermes` run: loaded from `plugins.json`, validated, and put in the
//! registry. A plugin that fails to load is recorded with its reason and skipped; it never
//! stops the others.

use std::path::{Path, PathBuf};

use abi_stable::std_types::RResult;
use hermes_plugin_api::ProviderHandle;

use super::confine;
use super::descriptor::{PluginDesc, ProviderDesc};
use super::loader::{self, LoadError, LoadedPlugin};
use super::manifest::{self, Record};
use super::registry::{Entry, PluginProviders, Registry};
use super::PluginsError;
use crate::config::Paths;
use crate::error::{Error, Result};

/// One installed plugin and what became of loading it.
pub struct Installed {
    /// Its `plugins.json` record.
    pub record: Record,
    /// The loaded plugin, or why it could not be loaded; `None` when disabled or not loaded
    /// (then `recorded` describes it).
    pub loaded: Option<Result<LoadedPlugin, LoadError>>,
    /// Descriptor problems (a plugin with any is not registered).
    pub problems: Vec<String>,
    /// The descriptor recorded at install, for a plugin that was not loaded because its
    /// library is still the very file that descriptor was read from.
    pub recorded: Option<PluginDesc>,
    /// Loaded from the very file recorded as verified (so its descriptor may be recorded).
    from_verified: bool,
}

impl Installed {
    /// A plugin in this state, with no problems and no recorded descriptor.
    pub fn new(record: Record, loaded: Option<Result<LoadedPlugin, LoadError>>) -> Installed {
        Installed {
            record,
            loaded,
            problems: Vec::new(),
            recorded: None,
            from_verified: false,
        }
    }
    /// The loaded plugin if it loaded and its descriptor is valid.
    pub fn usable(&self) -> Option<&LoadedPlugin> {
        match &self.loaded {
            Some(Ok(p)) if self.problems.is_empty() => Some(p),
            _ => None,
        }
    }
    /// Its descriptor: the loaded plugin's, or the one recorded at install for a plugin that
    /// was not loaded; `None` when disabled, failed or invalid.
    pub fn desc(&self) -> Option<&PluginDesc> {
        match &self.loaded {
            None if self.record.enabled => self.recorded.as_ref(),
            _ => self.usable().map(|p| &p.desc),
        }
    }
    /// Whether its library was loaded into this process.
    pub fn is_loaded(&self) -> bool {
        self.loaded.is_some()
    }
    /// The interface version it was built against.
    pub fn api_version(&self) -> &str {
        match &self.loaded {
            Some(Ok(p)) => &p.api_version,
            _ => &self.record.api_version,
        }
    }
    /// `ok`, `disabled`, `invalid`, `incompatible` or `failed to load`.
    pub fn status(&self) -> &'static str {
        match &self.loaded {
            None if !self.record.enabled => "disabled",
            None if self.recorded.is_some() => "ok",
            None => "not loaded",
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
    /// The plugin index hints name plugins from ([`super::index::install_hint`]).
    pub plugin_index: Option<PathBuf>,
}

/// Which installed plugins to load.
#[derive(Clone, Copy, Debug)]
pub enum Scope<'a> {
    /// Every enabled plugin.
    All,
    /// Only the plugin that provides this provider name (id or alias).
    Provider(&'a str),
}

impl PluginSet {
    /// Every installed plugin described and registered, then the enabled plugins in `scope`
    /// loaded (none of the others' code runs).
    pub fn load(paths: &Paths, scope: Scope<'_>) -> Result<PluginSet> {
        let mut set = PluginSet::described(paths)?;
        match scope {
            Scope::All => {
                let ids: Vec<String> = set.installed.iter().map(|i| i.record.id.clone()).collect();
                for id in ids {
                    set.load_plugin(&paths.home, &id);
                }
            }
            Scope::Provider(name) => {
                if let Some(id) = set.registry.resolve(name).map(|e| e.plugin_id.clone()) {
                    set.load_plugin(&paths.home, &id);
                }
            }
        }
        Ok(set)
    }

    /// Every installed plugin from the descriptor recorded at install, loading none whose
    /// library is still the file that descriptor was read from. A record without one (written
    /// by an older version) or whose library changed is loaded as before; a descriptor so
    /// obtained from the verified file is recorded when the plugins lock is free.
    pub fn described(paths: &Paths) -> Result<PluginSet> {
        let manifest = manifest::read(paths)?;
        let set = PluginSet::from_manifest(&paths.home, &manifest);
        let fills = set.fills();
        if !fills.is_empty() {
            // Best effort: the descriptor is only a shortcut for later runs.
            let _ = manifest::try_update(paths, |m| {
                apply_fills(m, &fills);
                Ok(())
            });
        }
        Ok(set)
    }

    /// [`PluginSet::described`] over a manifest already read (under the plugins lock, the
    /// caller records [`PluginSet::fills`] itself).
    pub fn from_manifest(home: &Path, manifest: &manifest::Manifest) -> PluginSet {
        let installed = manifest
            .plugins
            .iter()
            .map(|r| describe_record(home, r.clone()))
            .collect();
        let mut set = PluginSet::from_installed(installed);
        set.ignored = manifest.ignored.clone();
        set
    }

    /// Descriptors read from loads of verified files, for records that have none.
    pub fn fills(&self) -> Vec<(Record, PluginDesc)> {
        self.installed
            .iter()
            .filter(|i| i.from_verified && i.record.desc.is_none())
            .filter_map(|i| {
                let p = i.usable()?;
                (p.desc.id == i.record.id).then(|| (i.record.clone(), p.desc.clone()))
            })
            .collect()
    }

    /// Load plugin `id` into this process if it is enabled and not loaded yet. The registry
    /// is left as it is: names keep the meaning the descriptors gave them, and a plugin that
    /// fails to load here makes its providers unavailable rather than freeing their names.
    pub fn load_plugin(&mut self, home: &Path, id: &str) {
        let Some(pos) = self.installed.iter().position(|i| i.record.id == id) else {
            return;
        };
        let i = &self.installed[pos];
        if i.is_loaded() || !i.record.enabled {
            return;
        }
        let mut loaded = load_record(home, i.record.clone());
        loaded.recorded = None;
        self.installed[pos] = loaded;
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
                Some(why) if r.enabled => {
                    Installed::new(r, Some(Err(LoadError::Describe(why.clone()))))
                }
                _ => load_record(&paths.home, r),
            })
            .collect();
        PluginSet {
            plugin_index: paths.plugin_index.clone(),
            ..PluginSet::from_installed(installed)
        }
    }

    /// Build the registry over plugins already loaded or described.
    pub fn from_installed(installed: Vec<Installed>) -> PluginSet {
        let registry = Registry::build(installed.iter().filter_map(|i| {
            i.desc().map(|d| PluginProviders {
                plugin_id: &d.id,
                providers: &d.providers,
            })
        }));
        PluginSet {
            installed,
            registry,
            ignored: Vec::new(),
            plugin_index: None,
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
        // A provider named by its descriptor whose plugin then failed to load here.
        if let Some(e) = self.registry.resolve(name) {
            if let Some(i) = self
                .installed
                .iter()
                .find(|i| i.record.id == e.plugin_id && i.is_loaded() && i.usable().is_none())
            {
                return Err(unavailable(name, i));
            }
        }
        if let (None, Some(i)) = (self.registry.resolve(name), failed) {
            return Err(unavailable(name, i));
        }
        self.registry.resolve(name).ok_or_else(|| {
            PluginsError::UnknownProvider {
                name: name.to_string(),
                known: (self.registry.entries().iter())
                    .map(|e| e.provider.id.clone())
                    .collect(),
                install: super::index::install_hint(self.plugin_index.as_deref()),
            }
            .into()
        })
    }

    /// The loaded plugin that provides `entry`.
    pub fn plugin_of(&self, entry: &Entry) -> Option<&LoadedPlugin> {
        self.installed
            .iter()
            .filter_map(Installed::usable)
            .find(|p| p.desc.id == entry.plugin_id)
    }

    /// Open provider `entry` wired to the host's services: its allow-list, URL overrides from
    /// the environment and `settings`, logging, and `time` (its clock is the plugin's `now_ms`,
    /// and the sign-in driver and the token source read it and sleep by it: the system's
    /// unless a test moves it).
    pub fn open(
        &self,
        entry: &Entry,
        env: &crate::config::Env,
        settings: &crate::config::Settings,
        out: &crate::output::Output,
        time: crate::timefmt::Time,
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
                .with_clock(time.clock.clone());
        // The host's own requests (chat) follow the same rules as the plugin's, configured
        // base URLs included.
        let policy = services.policy().clone();
        let host = services.into_box();
        let plugin = self.plugin_of(entry).ok_or_else(|| {
            match self
                .installed
                .iter()
                .find(|i| i.record.id == entry.plugin_id && i.is_loaded())
            {
                Some(i) => unavailable(&entry.provider.id, i),
                None => PluginsError::NotLoaded {
                    plugin: entry.plugin_id.clone(),
                }
                .into(),
            }
        })?;
        let module = plugin.module;
        let id = entry.provider.id.clone();
        let opened = super::deadline::call(
            super::deadline::of(super::deadline::LOCAL),
            None,
            move || (module.provider())(id.as_str().into(), host),
        )
        .map_err(|s| s.error(&entry.plugin_id, "provider()"))?;
        match opened {
            RResult::ROk(handle) => Ok(std::sync::Arc::new(Provider {
                desc: entry.provider.clone(),
                plugin_id: entry.plugin_id.clone(),
                handle,
                policy,
                time,
            })),
            RResult::RErr(e) => Err(PluginsError::OpenFailed {
                plugin: entry.plugin_id.clone(),
                provider: entry.provider.id.clone(),
                message: e.message.to_string(),
            }
            .into()),
        }
    }
}

/// "provider X is unavailable: plugin P V failed to load: why".
fn unavailable(name: &str, i: &Installed) -> Error {
    PluginsError::Unavailable {
        name: name.to_string(),
        plugin: i.record.id.clone(),
        state: format!(
            "{} {}: {}",
            i.record.version,
            i.status(),
            i.reason().unwrap_or_default()
        ),
    }
    .into()
}

/// Record each descriptor in `fills` in its record, if the record still names the very
/// file it was read from (same path, checksum and verified identity) and has none yet.
pub fn apply_fills(m: &mut manifest::Manifest, fills: &[(Record, PluginDesc)]) {
    for (seen, desc) in fills {
        if let Some(r) = m.get_mut(&seen.id) {
            if r.desc.is_none()
                && r.path == seen.path
                && r.sha256 == seen.sha256
                && r.verified.is_some()
                && r.verified == seen.verified
            {
                r.desc = Some(desc.clone());
            }
        }
    }
}

/// The records a command in `scope` involves: all, or the one plugin that provides the
/// provider `name` in `set`'s registry (none when no plugin does).
pub fn in_scope(set: &PluginSet, scope: Scope<'_>) -> Vec<Record> {
    let only: Option<&str> = match scope {
        Scope::Provider(name) => match set.registry.resolve(name) {
            Some(e) => Some(e.plugin_id.as_str()),
            // A name no descriptor gives: the plugin that recorded it as a provider id at
            // install (it may have failed to load), so its failure is what gets reported.
            None => set
                .installed
                .iter()
                .find(|i| {
                    i.record.enabled
                        && i.record
                            .providers
                            .iter()
                            .any(|p| p.eq_ignore_ascii_case(name))
                })
                .map(|i| i.record.id.as_str())
                .or(Some("")),
        },
        Scope::All => None,
    };
    set.installed
        .iter()
        .map(|i| &i.record)
        .filter(|r| only.is_none_or(|id| r.id == id))
        .cloned()
        .collect()
}

/// A record's plugin from its recorded descriptor, without running any of its code, when
/// its library is still the file that descriptor was read from (the confined open, then the
/// same identity check as [`open_verified`]); otherwise loaded as before ([`load_record`]).
pub fn describe_record(home: &Path, record: Record) -> Installed {
    try_describe(home, record).unwrap_or_else(|r| load_record(home, *r))
}

/// [`describe_record`] without the fallback: `Err` gives the record back when only loading
/// the library can tell what it provides.
pub fn try_describe(home: &Path, record: Record) -> Result<Installed, Box<Record>> {
    if !record.enabled {
        return Ok(Installed::new(record, None));
    }
    let (Some(desc), Some(verified)) = (&record.desc, &record.verified) else {
        return Err(Box::new(record));
    };
    match open_confined(home, &record) {
        Ok(lib) if verified.matches(&lib.identity) && desc.id == record.id => {
            let desc = desc.clone();
            let mut i = Installed::new(record, None);
            i.recorded = Some(desc);
            Ok(i)
        }
        // A missing or unsafe library is reported as loading would report it.
        Err(e) => Ok(Installed::new(record, Some(Err(e)))),
        // Another file: its descriptor is not trusted; it is re-hashed and loaded.
        Ok(_) => Err(Box::new(record)),
    }
}

/// Open a record's library through the confined walk (no code of it runs).
fn open_confined(home: &Path, record: &Record) -> Result<confine::Library, LoadError> {
    let refused = |r: confine::Refused| match r {
        confine::Refused::Missing(p) => LoadError::Missing(p),
        confine::Refused::Unsafe(m) => LoadError::Refused(m),
    };
    // Lexical first: a path leading out of the plugins folder is refused by its text.
    confine::split(&record.path).map_err(LoadError::Refused)?;
    let dir = confine::PluginsDir::open(home).map_err(refused)?;
    dir.open_library(&record.path).map_err(refused)
}

/// A provider's live capabilities.
pub struct Provider {
    pub desc: ProviderDesc,
    pub plugin_id: String,
    /// The capability objects.
    pub handle: ProviderHandle,
    /// The rules its requests are held to (its allow-list plus the hosts of base URLs the
    /// user configured).
    pub policy: crate::net::Policy,
    /// The clock its services give the plugin, and the sleeper that goes with it: the sign-in
    /// driver and the token source read the same time as the plugin that made the deadlines.
    pub time: crate::timefmt::Time,
}

/// Open a record's library through the confined walk and decide how far it can be trusted,
/// before any of its code runs: the very file verified at install (same identity) skips the
/// layout check; any other file is re-hashed first and refused unless its bytes are the ones
/// recorded, so no constructor of a replaced library ever runs.
pub fn open_verified(
    home: &Path,
    record: &Record,
) -> Result<(confine::Library, loader::Layout), LoadError> {
    let lib = open_confined(home, record)?;
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
            crate::text::line(&record.version, 64),
            record.reinstall_command()
        )));
    }
    Ok((lib, loader::Layout::Check))
}

/// Load one installed plugin (nothing for a disabled one).
pub fn load_record(home: &Path, record: Record) -> Installed {
    if !record.enabled {
        return Installed::new(record, None);
    }
    let timeout = super::deadline::of(super::deadline::LOCAL);
    let mut rechecked = None;
    let mut from_verified = false;
    let loaded = open_verified(home, &record).and_then(|(lib, layout)| {
        rechecked = (layout == loader::Layout::Check).then_some(lib.identity);
        from_verified = layout == loader::Layout::AlreadyVerified;
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
                    crate::text::line(&p.desc.id, 64),
                    record.id
                ));
            }
            problems
        }
        Err(_) => Vec::new(),
    };
    if let (Some(identity), Ok(_), true) = (rechecked, &loaded, problems.is_empty()) {
        super::install::remember_verified(home, &record, identity);
    }
    Installed {
        record,
        loaded: Some(loaded),
        problems,
        recorded: None,
        from_verified,
    }
}
