//! Doctor's check of the installed plugins: each loads, is unchanged since it was verified,
//! and clashes with no other.

use crate::doctor::{finding, Check, Context, Finding, Severity};
use crate::plugins::install::sha256_reader;
use crate::plugins::supervise;
use crate::plugins::LoadError;

fn plugins(ctx: &Context<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    if ctx.set.installed.is_empty() && ctx.provider.is_none() {
        out.push(finding(
            "plugins",
            Severity::Warning,
            "hermes",
            "no plugin is installed".into(),
            Some(crate::plugins::index::install_hint(
                ctx.env.plugin_index.as_deref(),
            )),
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

inventory::submit! { Check { name: "plugins", order: 20, run: plugins } }
