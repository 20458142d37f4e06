//! `hermes doctor`: every check over every installed plugin and provider, without any network
//! call. Each check registers itself with `inventory`, so adding one touches one place.

use serde::Serialize;

use crate::auth::{AuthFile, Store};
use crate::config::{Env, Paths};
use crate::fsutil::mode_of;
use crate::output::Output;
use crate::plugins::install::sha256_reader;
use crate::plugins::runtime::PluginSet;
use crate::plugins::supervise::{self, Findings, Outcome};
use crate::plugins::LoadError;
use crate::plugins::Registry;
use hermes_plugin_api::status_state;

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// All good.
    Ok,
    /// Worth knowing; nothing to do.
    Info,
    /// Works, but should be fixed.
    Warning,
    /// Needs action.
    Error,
}

/// One line of the report.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    /// The check that made it.
    pub check: &'static str,
    /// Severity.
    pub severity: Severity,
    /// What it is about: a plugin id, a provider id, or `hermes`.
    pub subject: String,
    /// One line.
    pub message: String,
    /// The exact command that fixes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// Provider status fields, for provider findings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<ProviderStatus>,
}

/// A provider's status in the report.
#[derive(Clone, Debug, Serialize)]
pub struct ProviderStatus {
    /// `not_logged_in`, `valid`, `refresh_on_next_use`, `relogin_required`.
    pub state: &'static str,
    /// Logged in (possibly after a refresh).
    pub logged_in: bool,
    /// Region.
    pub region: String,
    /// Expiry, unix ms (0: none).
    pub expires_at_ms: i64,
    /// The login (pool entry) reported on.
    pub account: String,
}

/// What checks look at.
pub struct Context<'a> {
    /// Paths.
    pub paths: &'a Paths,
    /// Environment.
    pub env: &'a Env,
    /// The installed plugins.
    pub set: &'a PluginSet,
    /// What the supervised workers found (statuses, and plugins that hung or crashed).
    pub found: &'a Findings,
    /// The credential store, or why it cannot be read.
    pub auth: &'a crate::Result<AuthFile>,
    /// Only this provider (canonical id).
    pub provider: Option<&'a str>,
    /// For provider services' logging.
    pub out: &'a Output,
    /// Re-hash every library even when unchanged since it was verified.
    pub deep: bool,
}

/// A registered check.
pub struct Check {
    /// Name (`home`, `plugins`, `providers`).
    pub name: &'static str,
    /// Order in the report.
    pub order: u32,
    /// The check.
    pub run: fn(&Context<'_>) -> Vec<Finding>,
}

inventory::collect!(Check);

fn finding(
    check: &'static str,
    severity: Severity,
    subject: &str,
    message: String,
    fix: Option<String>,
) -> Finding {
    Finding {
        check,
        severity,
        subject: subject.to_string(),
        message,
        fix,
        status: None,
    }
}

/// Run every check.
pub fn run(ctx: &Context<'_>) -> Vec<Finding> {
    let mut checks: Vec<&Check> = inventory::iter::<Check>.into_iter().collect();
    checks.sort_by_key(|c| c.order);
    checks.iter().flat_map(|c| (c.run)(ctx)).collect()
}

fn check_home(ctx: &Context<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    let home = &ctx.paths.home;
    match mode_of(home) {
        None => out.push(finding(
            "home",
            Severity::Info,
            "hermes",
            format!("{} does not exist yet", home.display()),
            None,
        )),
        Some(m) if m & 0o077 != 0 => out.push(finding(
            "home",
            Severity::Warning,
            "hermes",
            format!(
                "{} is accessible by other users (mode {m:o})",
                home.display()
            ),
            Some(format!("chmod 700 {}", home.display())),
        )),
        Some(_) => {}
    }
    for f in [ctx.paths.auth_json(), ctx.paths.plugins_json()] {
        if let Some(m) = mode_of(&f) {
            if m & 0o077 != 0 {
                out.push(finding(
                    "home",
                    Severity::Warning,
                    "hermes",
                    format!("{} is readable by other users (mode {m:o})", f.display()),
                    Some(format!("chmod 600 {}", f.display())),
                ));
            }
        }
    }
    if let Err(e) = ctx.auth {
        out.push(finding(
            "home",
            Severity::Error,
            "hermes",
            e.message().to_string(),
            e.help().map(String::from),
        ));
    }
    if let Err(e) = crate::config::Settings::load(ctx.paths) {
        out.push(finding(
            "home",
            Severity::Error,
            "hermes",
            e.message().to_string(),
            Some(e.help().map(String::from).unwrap_or_else(|| {
                format!("fix or move away {}", ctx.paths.config_yaml().display())
            })),
        ));
    }
    out
}

fn check_plugins(ctx: &Context<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    if ctx.set.installed.is_empty() && ctx.provider.is_none() {
        out.push(finding(
            "plugins",
            Severity::Warning,
            "hermes",
            "no plugin is installed".into(),
            Some("hermes plugins install minimax-oauth".into()),
        ));
    }
    for inst in &ctx.set.installed {
        let r = &inst.record;
        let id = r.id.as_str();
        if !r.enabled {
            out.push(finding(
                "plugins",
                Severity::Info,
                id,
                format!("plugin {id} {} is disabled", r.version),
                Some(format!("hermes plugins enable {id}")),
            ));
            continue;
        }
        if let Some(f) = ctx
            .found
            .failures
            .get(id)
            .filter(|f| f.call == supervise::call::DESCRIBE)
        {
            out.push(finding(
                "plugins",
                Severity::Error,
                id,
                f.what(),
                Some(f.fix()),
            ));
            continue;
        }
        // Every fix below is safe to run as given: a reinstall verifies what it installs,
        // and `remove` deletes only the library the record installed, never through a link.
        match &inst.loaded {
            Some(Err(LoadError::Missing(lib))) => {
                out.push(finding(
                    "plugins",
                    Severity::Error,
                    id,
                    format!("plugin {id}: its library {} is missing", lib.display()),
                    Some(r.reinstall_command()),
                ));
                continue;
            }
            Some(Err(LoadError::Changed(why))) => {
                out.push(finding(
                    "plugins",
                    Severity::Error,
                    id,
                    format!("plugin {why}"),
                    Some(r.reinstall_command()),
                ));
                continue;
            }
            Some(Err(LoadError::Refused(why))) => {
                let loose = why.contains("writable by other users");
                let fix = match crate::plugins::confine::split(&r.path) {
                    Ok(_) if loose => format!(
                        "chmod go-w {}",
                        crate::plugins::manifest::shell_word(
                            why.split(" is writable").next().unwrap_or_default()
                        )
                    ),
                    _ => format!("hermes plugins remove {id}, then {}", r.reinstall_command()),
                };
                out.push(finding(
                    "plugins",
                    Severity::Error,
                    id,
                    format!("plugin {id}: {why}"),
                    Some(fix),
                ));
                continue;
            }
            _ => {}
        }
        if ctx.deep {
            // Re-hash even a library unchanged since it was verified.
            let sum = crate::plugins::confine::PluginsDir::open(&ctx.paths.home)
                .and_then(|d| d.open_library(&r.path))
                .map_err(|e| e.to_string())
                .and_then(|l| sha256_reader(&l.file).map_err(|e| e.to_string()));
            match sum {
                Ok(sum) if sum == r.sha256 => {}
                Ok(_) => out.push(finding(
                    "plugins",
                    Severity::Error,
                    id,
                    format!("plugin {id}: the library's checksum no longer matches the one recorded at install"),
                    Some(r.reinstall_command()),
                )),
                Err(e) => out.push(finding("plugins", Severity::Error, id, format!("plugin {id}: {e}"), Some(r.reinstall_command()))),
            }
        }
        match (inst.desc(), inst.status()) {
            (Some(d), "ok") => out.push(finding(
                "plugins",
                Severity::Ok,
                id,
                format!("plugin {id} {} loaded (plugin-api {})", d.version, inst.api_version()),
                None,
            )),
            (_, status) => out.push(finding(
                "plugins",
                Severity::Error,
                id,
                format!("plugin {id}: {status}: {}", inst.reason().unwrap_or_default()),
                Some(format!("hermes plugins install <a build of {id} for this hermes>, or hermes plugins remove {id}")),
            )),
        }
        for c in ctx.set.registry.conflicts_of(id) {
            out.push(finding(
                "plugins",
                if c.refused_plugin {
                    Severity::Error
                } else {
                    Severity::Warning
                },
                id,
                c.message.clone(),
                Some(format!(
                    "hermes plugins remove {}",
                    if c.refused_plugin {
                        id
                    } else {
                        c.plugin.as_str()
                    }
                )),
            ));
        }
    }
    for r in &ctx.set.ignored {
        let id = r.id.as_str();
        let kept = ctx.set.installed.iter().find(|i| i.record.id == id);
        // Any change to the plugin set rewrites plugins.json without the ignored record; the
        // command below changes nothing else.
        let fix = match kept {
            Some(i) if !i.record.enabled => format!("hermes plugins disable {id}"),
            _ => format!("hermes plugins enable {id}"),
        };
        out.push(finding(
            "plugins",
            Severity::Warning,
            id,
            format!(
                "plugins.json records plugin {id} more than once; the later record ({} at {}) is ignored and is dropped by the next change to the plugin set",
                crate::text::line(&r.version, 40),
                crate::text::line(&r.path, 160)
            ),
            Some(fix),
        ));
    }
    out
}

/// The stable name of a [`status_state`] value, as `--json` output and the dashboard spell it.
pub fn state_name(s: u32) -> &'static str {
    match s {
        status_state::VALID => "valid",
        status_state::REFRESH_ON_NEXT_USE => "refresh_on_next_use",
        status_state::RELOGIN_REQUIRED => "relogin_required",
        _ => "not_logged_in",
    }
}

fn check_providers(ctx: &Context<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    let reg: &Registry = &ctx.set.registry;
    let empty = AuthFile::empty();
    let file = ctx.auth.as_ref().unwrap_or(&empty);
    for entry in reg.entries() {
        if ctx.provider.is_some_and(|p| p != entry.provider.id) {
            continue;
        }
        let d = &entry.provider;
        let plugin = &entry.plugin_id;
        let entries = file.entries(&d.id);
        let creds: Vec<Option<&crate::auth::EntryView>> = if entries.is_empty() {
            vec![None]
        } else {
            entries.iter().map(Some).collect()
        };
        for e in creds {
            let report = match ctx.found.status(plugin, &d.id, e.map(|e| e.id.as_str())) {
                Outcome::Report(r) => r,
                Outcome::Failed(f) => {
                    // One finding for the provider, whatever number of logins it has.
                    out.push(finding(
                        "providers",
                        Severity::Error,
                        &d.id,
                        f.what(),
                        Some(f.fix()),
                    ));
                    break;
                }
                Outcome::ProviderError(why) => {
                    out.push(finding(
                        "providers",
                        Severity::Error,
                        &d.id,
                        format!("plugin {plugin} could not open provider {}: {why}", d.id),
                        Some(format!(
                            "hermes plugins install {plugin}, or hermes plugins disable {plugin}"
                        )),
                    ));
                    break;
                }
                Outcome::Missing => {
                    out.push(finding(
                        "providers",
                        Severity::Warning,
                        &d.id,
                        format!("{}: the logins changed while doctor ran", d.display_name),
                        Some("hermes doctor".into()),
                    ));
                    continue;
                }
            };
            if let Some(p) = report
                .problems
                .iter()
                .find(|p| p.contains(hermes_plugin_api::sdk::PANIC_PREFIX))
            {
                out.push(finding(
                    "providers",
                    Severity::Error,
                    &d.id,
                    format!("plugin {plugin} {}: {p}", version_of(ctx, plugin)),
                    Some(format!("hermes plugins disable {plugin}")),
                ));
                continue;
            }
            let account = e.map(|e| e.name().to_string()).unwrap_or_default();
            let severity = match report.state {
                status_state::VALID | status_state::REFRESH_ON_NEXT_USE => Severity::Ok,
                status_state::NOT_LOGGED_IN => Severity::Warning,
                _ => Severity::Error,
            };
            let who = if entries.len() > 1 {
                format!(" [{account}]")
            } else {
                String::new()
            };
            let mut message = format!("{}{who}  {}", d.display_name, report.summary);
            // A missing login's problem line only repeats the fix shown beside it.
            if report.state != status_state::NOT_LOGGED_IN {
                for p in report.problems.iter() {
                    message.push_str(&format!("; {p}"));
                }
            }
            if let Some(t) = e.and_then(|e| e.last_transient.as_ref()) {
                message.push_str(&format!(
                    "; last refresh attempt failed at {} ({}), will retry on next use",
                    crate::text::line(&t.at, 40),
                    crate::text::line(&t.message, supervise::MAX_LINE)
                ));
            }
            let fix = (severity > Severity::Ok).then(|| d.login_command());
            out.push(Finding {
                check: "providers",
                severity,
                subject: d.id.clone(),
                message,
                fix,
                status: Some(ProviderStatus {
                    state: state_name(report.state),
                    logged_in: report.logged_in(),
                    region: report.region.to_string(),
                    expires_at_ms: report.expires_at_ms,
                    account,
                }),
            });
        }
    }
    out
}

fn version_of(ctx: &Context<'_>, plugin: &str) -> String {
    ctx.set
        .installed
        .iter()
        .find(|i| i.record.id == plugin)
        .map(|i| i.record.version.clone())
        .unwrap_or_default()
}

inventory::submit! { Check { name: "home", order: 10, run: check_home } }
inventory::submit! { Check { name: "plugins", order: 20, run: check_plugins } }
inventory::submit! { Check { name: "providers", order: 30, run: check_providers } }

/// Whether the report needs action (any error; a warning about not being signed in does not
/// count as broken only when `strict` is false).
pub fn healthy(findings: &[Finding]) -> bool {
    findings.iter().all(|f| f.severity < Severity::Warning)
}

/// The store's current contents for doctor (errors become findings, never failures).
pub fn read_auth(paths: &Paths) -> crate::Result<AuthFile> {
    Store::new(paths).read()
}

/// A whole doctor report: what `hermes doctor` prints, and what `hermes doctor --json` and
/// the dashboard's `GET /api/doctor` serialize with [`Report::to_json`].
#[derive(Clone, Debug)]
pub struct Report {
    /// `HERMES_HOME`.
    pub home: std::path::PathBuf,
    /// Every finding, in check order.
    pub findings: Vec<Finding>,
    /// No finding needs action.
    pub healthy: bool,
}

impl Report {
    /// Load the installed plugins and run every check, for every provider or only for
    /// `provider` (an id or alias; unknown is an error). Calls plugins (their Status), so
    /// async callers must run it on a blocking thread.
    pub fn collect(
        env: &Env,
        out: &Output,
        provider: Option<&str>,
        deep: bool,
    ) -> crate::Result<Report> {
        let paths = env.paths();
        let scope = provider.map_or(
            crate::plugins::runtime::Scope::All,
            crate::plugins::runtime::Scope::Provider,
        );
        // Plugin code runs only in supervised workers; this process loads the libraries
        // whose describe() answered there, for their descriptors.
        let (set, found) = supervise::diagnose(env, scope)?;
        let provider = match provider {
            Some(p) => Some(set.resolve(p)?.provider.id.clone()),
            None => None,
        };
        let auth = read_auth(&paths);
        let findings = run(&Context {
            paths: &paths,
            env,
            set: &set,
            found: &found,
            auth: &auth,
            provider: provider.as_deref(),
            out,
            deep,
        });
        let healthy = healthy(&findings);
        Ok(Report {
            home: paths.home,
            findings,
            healthy,
        })
    }

    /// The stable JSON form (version 1; see docs/cli.md).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "version": 1,
            "healthy": self.healthy,
            "hermes_home": self.home,
            "findings": self.findings,
        })
    }
}
