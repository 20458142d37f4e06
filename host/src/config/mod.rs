//! Configuration: where hermes keeps its files, what the environment says, and
//! `config.yaml`. The only module that reads environment variables or the configuration file:
//! everything else receives an [`Env`] or a [`Settings`].

mod doctor;
mod file;
pub mod yaml;

pub use file::{parse_value, Settings};

use crate::plugins::ProviderDesc;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::Result;

/// What can go wrong with the home folder, the environment or `config.yaml`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Neither `HERMES_HOME` nor `HOME` is set (exit 2).
    #[error("cannot find a home directory: neither HERMES_HOME nor HOME is set")]
    NoHome,
    /// A relative `HERMES_HOME` cannot be made absolute.
    #[error("cannot resolve the relative HERMES_HOME: {0}")]
    RelativeHome(std::io::Error),
    /// A folder hermes keeps its files in cannot be made.
    #[error("cannot create {}: {source}", dir.display())]
    CreateDir {
        dir: PathBuf,
        source: std::io::Error,
    },
    /// `config.yaml` exists but cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    /// `config.yaml` is not YAML; `at` is ` at line L column C` when known.
    #[error("{} is not valid YAML{at}: {why}", path.display())]
    InvalidYaml {
        path: PathBuf,
        at: String,
        why: String,
    },
    /// `config.yaml` is YAML but not a mapping.
    #[error("{} must be a mapping of keys to values", path.display())]
    NotMapping { path: PathBuf },
    /// A key given to `config set` has an empty part (exit 2).
    #[error("{key:?} is not a valid key")]
    InvalidKey { key: String },
    /// A key given to `config set` is deeper than [`MAX_KEY_DEPTH`](file::MAX_KEY_DEPTH) (exit 2).
    #[error(
        "the key has {levels} levels; hermes keys have at most {}",
        file::MAX_KEY_DEPTH
    )]
    KeyTooDeep { levels: usize },
    /// A key would go below a value that is not a mapping.
    #[error("{key} is not a mapping in {}", path.display())]
    NotAMappingAt { key: String, path: PathBuf },
    /// A value could not be written as YAML.
    #[error("cannot encode config.yaml: {0}")]
    Encode(String),
    /// `config.yaml` cannot be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl ConfigError {
    /// The `help:` line.
    pub fn help(&self) -> Option<String> {
        Some(match self {
            ConfigError::NoHome => "set HERMES_HOME to the directory hermes should use".into(),
            ConfigError::InvalidYaml { .. } => {
                "fix the file (`hermes config path` shows where it is); hermes will not overwrite it"
                    .into()
            }
            ConfigError::InvalidKey { .. } => "use dotted keys such as model.default".into(),
            ConfigError::KeyTooDeep { .. } => {
                "use keys such as model.default or providers.<id>.region".into()
            }
            _ => return None,
        })
    }

    /// Whether the command line asked for it (exit 2).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            ConfigError::NoHome | ConfigError::InvalidKey { .. } | ConfigError::KeyTooDeep { .. }
        )
    }
}

/// How long a plugin's status call (no network) may take in a diagnostics worker.
pub const DIAGNOSTIC_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The environment hermes runs in, read once at start-up.
#[derive(Clone, Debug)]
pub struct Env {
    /// `HERMES_HOME`, or `~/.hermes`.
    pub home: PathBuf,
    /// `NO_COLOR` is set and not empty (no-color.org): no colour, progress still shown.
    pub no_color: bool,
    /// An SSH session (`SSH_CONNECTION`, `SSH_TTY` or `SSH_CLIENT`).
    pub ssh: bool,
    /// `HERMES_PLUGIN_INDEX`: a JSON plugin index replacing the built-in one.
    pub plugin_index: Option<PathBuf>,
    /// `HERMES_ACCOUNT`: the pool entry to use when none is given on the command line.
    pub account: Option<String>,
    /// `HERMES_LOCK_TIMEOUT_MS`: how long to wait for another process holding a store lock.
    pub lock_timeout: Option<std::time::Duration>,
    /// `HERMES_CHAT_IDLE_TIMEOUT_MS`: how long a chat answer may send nothing before it is
    /// given up (default 300 s).
    pub chat_idle_timeout: Option<std::time::Duration>,
    /// `HERMES_HTTP_TIMEOUT_MS`: the deadline of a plugin's interactive requests (sign-in,
    /// polls), at most the 15 s default. A token refresh is never held to it: it has its own
    /// deadline ([`crate::services::REFRESH_DEADLINE`]).
    pub http_timeout: Option<std::time::Duration>,
    /// `HERMES_TEST_PAUSE_BEFORE_RENAME_MS`: a test hook. The credential store and
    /// `plugins.json` pause this long between writing their temp file and renaming it in
    /// (and say so on stderr), so a test can kill hermes, or race another command, inside
    /// that window. Unset in normal use.
    pub test_pause_before_rename: Option<std::time::Duration>,
    /// `HERMES_TEST_PAUSE_INSTALL_STAGED_MS`: a test hook. `plugins install` pauses this long
    /// once its staging copy is written and verified, before it takes the plugins lock (and
    /// says so on stderr), so a test can kill an install that left its staging copy behind.
    pub test_pause_staged: Option<std::time::Duration>,
    /// `HERMES_TEST_DASHBOARD_REFRESH_MS`: a test hook. How often the dashboard's page re-reads
    /// every provider's state (30 s otherwise), so a browser test sees a periodic re-read
    /// without waiting half a minute. Unset in normal use.
    pub test_dashboard_refresh: Option<std::time::Duration>,
    /// `HERMES_TEST_CLOCK`: a test hook. A file holding an offset in ms from the system clock:
    /// hermes reads its time from it, and a wait (the sign-in driver's poll interval) moves
    /// the offset instead of sleeping, so a test shares one clock with hermes and the emulator
    /// and never waits in real time. Unset in normal use.
    pub test_clock: Option<PathBuf>,
    /// `HERMES_PLUGIN_TIMEOUT_MS`: how long a plugin call may take before hermes gives up on
    /// it (default: [`DIAGNOSTIC_TIMEOUT`] for status calls in diagnostics).
    pub plugin_timeout: Option<std::time::Duration>,
    /// Proxy settings as they were when hermes started (a plugin's `setenv` cannot change
    /// where another provider's traffic goes).
    pub proxies: Proxies,
    /// Every variable, for plugin URL overrides (only the names a plugin declares are read).
    vars: BTreeMap<String, String>,
}

impl Env {
    /// Read the process environment.
    pub fn from_process() -> Result<Env> {
        let vars: BTreeMap<String, String> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        Env::from_vars(vars)
    }

    /// Build from a map (tests).
    pub fn from_vars(vars: BTreeMap<String, String>) -> Result<Env> {
        let get = |k: &str| vars.get(k).filter(|v| !v.is_empty()).cloned();
        let home = match get("HERMES_HOME") {
            // Made absolute once, so that nothing depends on the working directory later.
            Some(h) if Path::new(&h).is_relative() => std::env::current_dir()
                .map_err(ConfigError::RelativeHome)?
                .join(h),
            Some(h) => PathBuf::from(h),
            None => match get("HOME") {
                Some(h) => Path::new(&h).join(".hermes"),
                None => return Err(ConfigError::NoHome.into()),
            },
        };
        Ok(Env {
            home,
            // no-color.org: set and not empty.
            no_color: vars.get("NO_COLOR").is_some_and(|v| !v.is_empty()),
            ssh: ["SSH_CONNECTION", "SSH_TTY", "SSH_CLIENT"]
                .iter()
                .any(|k| get(k).is_some()),
            plugin_index: get("HERMES_PLUGIN_INDEX").map(PathBuf::from),
            account: get("HERMES_ACCOUNT"),
            lock_timeout: get("HERMES_LOCK_TIMEOUT_MS")
                .and_then(|v| v.parse::<u64>().ok())
                .map(std::time::Duration::from_millis),
            chat_idle_timeout: get("HERMES_CHAT_IDLE_TIMEOUT_MS")
                .and_then(|v| v.parse::<u64>().ok())
                .filter(|ms| *ms > 0)
                .map(std::time::Duration::from_millis),
            http_timeout: get("HERMES_HTTP_TIMEOUT_MS")
                .and_then(|v| v.parse::<u64>().ok())
                .filter(|ms| *ms > 0)
                .map(std::time::Duration::from_millis),
            test_pause_before_rename: get("HERMES_TEST_PAUSE_BEFORE_RENAME_MS")
                .and_then(|v| v.parse::<u64>().ok())
                .map(std::time::Duration::from_millis),
            test_pause_staged: get("HERMES_TEST_PAUSE_INSTALL_STAGED_MS")
                .and_then(|v| v.parse::<u64>().ok())
                .map(std::time::Duration::from_millis),
            test_dashboard_refresh: get("HERMES_TEST_DASHBOARD_REFRESH_MS")
                .and_then(|v| v.parse::<u64>().ok())
                .filter(|&ms| ms > 0)
                .map(std::time::Duration::from_millis),
            test_clock: get("HERMES_TEST_CLOCK").map(PathBuf::from),
            plugin_timeout: get("HERMES_PLUGIN_TIMEOUT_MS")
                .and_then(|v| v.parse::<u64>().ok())
                .filter(|&ms| ms > 0)
                .map(std::time::Duration::from_millis),
            proxies: Proxies::from_vars(&get),
            vars,
        })
    }

    /// A variable a plugin declared as a URL override.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The deadline of one status call in diagnostics.
    pub fn diagnostic_timeout(&self) -> std::time::Duration {
        self.plugin_timeout.unwrap_or(DIAGNOSTIC_TIMEOUT)
    }

    /// The clock and the sleeper of this process: the system's, or the test clock of
    /// `HERMES_TEST_CLOCK`.
    pub fn time(&self) -> crate::timefmt::Time {
        match &self.test_clock {
            Some(path) => crate::timefmt::Time::test_file(path.clone()),
            None => crate::timefmt::Time::system(),
        }
    }

    /// The paths under `HERMES_HOME`.
    pub fn paths(&self) -> Paths {
        let mut p = Paths::new(&self.home);
        if let Some(t) = self.lock_timeout {
            p.lock_timeout = t;
        }
        p.test_pause_before_rename = self.test_pause_before_rename;
        p.plugin_index = self.plugin_index.clone();
        p
    }
}

/// The proxy variables (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`, upper or lower
/// case, upper first).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Proxies {
    /// For https URLs.
    pub https: Option<String>,
    /// For http URLs.
    pub http: Option<String>,
    /// For both.
    pub all: Option<String>,
    /// Hosts that bypass the proxy.
    pub no_proxy: Option<String>,
}

impl Proxies {
    fn from_vars(get: &dyn Fn(&str) -> Option<String>) -> Proxies {
        let either = |k: &str| get(k).or_else(|| get(&k.to_ascii_lowercase()));
        Proxies {
            https: either("HTTPS_PROXY"),
            http: either("HTTP_PROXY"),
            all: either("ALL_PROXY"),
            no_proxy: either("NO_PROXY"),
        }
    }
}

/// The files under `HERMES_HOME`.
#[derive(Clone, Debug)]
pub struct Paths {
    /// `HERMES_HOME` itself.
    pub home: PathBuf,
    /// How long to wait for the store's lock, which is held only around a read-modify-write.
    pub lock_timeout: std::time::Duration,
    /// See [`Env::test_pause_before_rename`].
    pub test_pause_before_rename: Option<std::time::Duration>,
    /// See [`Env::plugin_index`]: hints that name a plugin to install read it.
    pub plugin_index: Option<PathBuf>,
}

impl Paths {
    /// Paths under `home`.
    pub fn new(home: &Path) -> Paths {
        Paths {
            home: home.to_path_buf(),
            // The lock is held for a read-modify-write of a small file (milliseconds); a
            // process that holds it for this long is stuck.
            lock_timeout: std::time::Duration::from_secs(40),
            test_pause_before_rename: None,
            plugin_index: None,
        }
    }
    pub fn auth_json(&self) -> PathBuf {
        self.home.join("auth.json")
    }
    pub fn auth_lock(&self) -> PathBuf {
        self.home.join("auth.lock")
    }
    pub fn plugins_json(&self) -> PathBuf {
        self.home.join("plugins.json")
    }
    pub fn plugins_lock(&self) -> PathBuf {
        self.home.join("plugins.lock")
    }
    pub fn plugins_dir(&self) -> PathBuf {
        self.home.join("plugins")
    }
    pub fn config_yaml(&self) -> PathBuf {
        self.home.join("config.yaml")
    }

    /// Create `HERMES_HOME` (0700) if it does not exist.
    pub fn ensure_home(&self) -> Result<()> {
        crate::fsutil::create_private_dir(&self.home).map_err(|source| {
            ConfigError::CreateDir {
                dir: self.home.clone(),
                source,
            }
            .into()
        })
    }
}

/// What a provider declares that its settings (`providers.<id>.<key>` in `config.yaml`) are
/// checked against.
#[derive(Clone, Debug, Default)]
pub struct Declared {
    /// The provider's display name, for messages.
    pub display_name: String,
    /// Its region ids.
    pub regions: Vec<String>,
    /// Its regions as people read them: `global, cn (China)` (a name that only differs in case is left out).
    pub regions_shown: String,
    /// What its URL override variables target (`portal`, `inference`).
    pub url_targets: Vec<String>,
}

impl From<&ProviderDesc> for Declared {
    fn from(d: &ProviderDesc) -> Self {
        Declared {
            display_name: d.display_name.clone(),
            regions: d.regions.iter().map(|r| r.name.clone()).collect(),
            regions_shown: d.region_list(),
            url_targets: d.url_overrides.iter().map(|o| o.target.clone()).collect(),
        }
    }
}

/// What is wrong with one provider setting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SettingProblem {
    /// A key hermes does not read. It is kept (the provider's plugin may read it).
    Unknown,
    /// A key hermes reads, with a value the provider does not accept.
    Invalid {
        /// What is wrong.
        why: String,
        /// What to write instead.
        help: String,
    },
}

/// The settings hermes reads under `providers.<id>`.
pub const PROVIDER_KEYS: &[&str] = &[
    "region",
    "account",
    "portal_base_url",
    "inference_base_url",
    "base_url",
];

/// Check `providers.<id>.<key> = value` against what the provider declares: a region must be
/// one of its regions, a base URL an http(s) URL for a URL it lets be overridden (`base_url`
/// also serves providers that read it themselves). `None`: nothing to report.
pub fn check_provider_setting(d: &Declared, key: &str, value: &str) -> Option<SettingProblem> {
    let value = value.trim();
    let invalid = |why: String, help: String| Some(SettingProblem::Invalid { why, help });
    match key {
        "region" => {
            if d.regions.iter().any(|r| r.eq_ignore_ascii_case(value)) {
                None
            } else if d.regions.is_empty() {
                invalid(
                    format!("{} has no regions", d.display_name),
                    "remove the setting".into(),
                )
            } else {
                invalid(
                    format!(
                        "{} has no region {:?}",
                        d.display_name,
                        crate::text::line(value, 64)
                    ),
                    format!("choose one of: {}", d.regions_shown),
                )
            }
        }
        "account" => None,
        "portal_base_url" | "inference_base_url" | "base_url" => {
            let target = match key {
                "portal_base_url" => "portal",
                _ => "inference",
            };
            if key != "base_url" && !d.url_targets.iter().any(|t| t == target) {
                return invalid(
                    format!("{} has no {target} URL to override", d.display_name),
                    "remove the setting".into(),
                );
            }
            match reqwest::Url::parse(value) {
                Ok(u) if matches!(u.scheme(), "https" | "http") && u.host().is_some() => None,
                _ => invalid(
                    format!("{:?} is not an http(s) URL", crate::text::line(value, 200)),
                    "give a full URL such as https://api.example.com/v1".into(),
                ),
            }
        }
        _ => Some(SettingProblem::Unknown),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimax() -> Declared {
        Declared {
            display_name: "MiniMax".into(),
            regions: vec!["global".into(), "cn".into()],
            regions_shown: "global, cn (China)".into(),
            url_targets: vec!["portal".into(), "inference".into()],
        }
    }

    #[test]
    fn provider_settings_are_checked_against_what_the_provider_declares() {
        let d = minimax();
        assert_eq!(check_provider_setting(&d, "region", "CN"), None);
        assert!(matches!(
            check_provider_setting(&d, "region", "mars"),
            Some(SettingProblem::Invalid { why, help })
                if why == "MiniMax has no region \"mars\"" && help == "choose one of: global, cn (China)"
        ));
        assert_eq!(check_provider_setting(&d, "account", "work"), None);
        assert_eq!(
            check_provider_setting(&d, "portal_base_url", "http://127.0.0.1:9"),
            None
        );
        assert!(matches!(
            check_provider_setting(&d, "inference_base_url", "not a url"),
            Some(SettingProblem::Invalid { .. })
        ));
        assert_eq!(
            check_provider_setting(&d, "colour", "blue"),
            Some(SettingProblem::Unknown)
        );
        let no_portal = Declared {
            url_targets: vec!["inference".into()],
            ..minimax()
        };
        assert!(matches!(
            check_provider_setting(&no_portal, "portal_base_url", "https://x.example"),
            Some(SettingProblem::Invalid { .. })
        ));
    }

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_vars(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn a_relative_hermes_home_is_made_absolute_at_start() {
        let e = env(&[("HERMES_HOME", "some/dir")]);
        assert!(e.home.is_absolute(), "{}", e.home.display());
        assert!(e.home.ends_with("some/dir"));
        assert_eq!(env(&[("HERMES_HOME", "/abs")]).home, PathBuf::from("/abs"));
    }

    #[test]
    fn proxies_are_read_once_upper_case_first() {
        let e = env(&[
            ("HOME", "/h"),
            ("HTTPS_PROXY", "http://upper:1"),
            ("https_proxy", "http://lower:1"),
            ("http_proxy", "http://lower:2"),
            ("NO_PROXY", "example.com"),
        ]);
        assert_eq!(
            e.proxies,
            Proxies {
                https: Some("http://upper:1".into()),
                http: Some("http://lower:2".into()),
                all: None,
                no_proxy: Some("example.com".into()),
            }
        );
    }

    #[test]
    fn the_plugin_timeout_comes_from_the_environment() {
        let e = env(&[("HOME", "/h"), ("HERMES_PLUGIN_TIMEOUT_MS", "1500")]);
        assert_eq!(
            e.diagnostic_timeout(),
            std::time::Duration::from_millis(1500)
        );
        assert_eq!(
            env(&[("HOME", "/h")]).diagnostic_timeout(),
            DIAGNOSTIC_TIMEOUT
        );
    }
}
