//! Doctor's checks of the credential store and of every provider's login.

use hermes_plugin_api::status_state;

use super::AuthFile;
use crate::doctor::{finding, state_name, Check, Context, Finding, ProviderStatus, Severity};
use crate::plugins::supervise::{self, Outcome};
use crate::plugins::Registry;

/// `auth.json` can be read (a corrupt or unreadable store is an error with its fix).
fn store(ctx: &Context<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Err(e) = ctx.auth {
        out.push(finding(
            "home",
            Severity::Error,
            "hermes",
            e.message().to_string(),
            e.help(),
        ));
    }
    out
}

/// Every provider's login(s), as its plugin's status reports them.
fn providers(ctx: &Context<'_>) -> Vec<Finding> {
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
                .find(|p| p.contains(hermes_plugin_sdk::PANIC_PREFIX))
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

inventory::submit! { Check { name: "store", order: 12, run: store } }
inventory::submit! { Check { name: "providers", order: 30, run: providers } }
