//! `hermes doctor`: every check over every installed plugin and provider, without any network
//! call. This module runs the checks and shapes the report; each check lives with the module
//! that owns its concern and registers itself there with `inventory::submit!`:
//!
//! | order | report section | check | owner |
//! |---|---|---|---|
//! | 10 | `home` | permissions of `HERMES_HOME`, `auth.json`, `plugins.json` | `fsutil` |
//! | 12 | `home` | `auth.json` can be read | `auth::doctor` |
//! | 14 | `home` | `config.yaml` can be read | `config::doctor` |
//! | 20 | `plugins` | every installed plugin loads, unchanged, without conflicts | `plugins::doctor` |
//! | 30 | `providers` | every provider's login, from its plugin's status | `auth::doctor` |

use serde::Serialize;

use crate::auth::{AuthFile, Store};
use crate::config::{Env, Paths};
use crate::output::Output;
use crate::plugins::runtime::PluginSet;
use crate::plugins::supervise::{self, Findings};
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
    pub region: String,
    /// Expiry, unix ms (0: none).
    pub expires_at_ms: i64,
    /// The login (pool entry) reported on.
    pub account: String,
}

/// What checks look at.
pub struct Context<'a> {
    pub paths: &'a Paths,
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
    /// What it checks, for people reading the code (the report shows each finding's own
    /// section, [`Finding::check`]).
    pub name: &'static str,
    /// Where its findings go in the report: lower first.
    pub order: u32,
    /// Runs the check; it must make no network call and call plugins only through `found`.
    pub run: fn(&Context<'_>) -> Vec<Finding>,
}

inventory::collect!(Check);

/// A finding without a provider status.
pub fn finding(
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

/// The stable name of a [`status_state`] value, as `--json` output and the dashboard spell it.
pub fn state_name(s: u32) -> &'static str {
    match s {
        status_state::VALID => "valid",
        status_state::REFRESH_ON_NEXT_USE => "refresh_on_next_use",
        status_state::RELOGIN_REQUIRED => "relogin_required",
        _ => "not_logged_in",
    }
}

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
