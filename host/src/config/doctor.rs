//! Doctor's check of `config.yaml`.

use crate::doctor::{finding, Check, Context, Finding, Severity};

/// `config.yaml` can be read and parsed; the fix names the file.
fn config_file(ctx: &Context<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Err(e) = super::Settings::load(ctx.paths) {
        out.push(finding(
            "home",
            Severity::Error,
            "hermes",
            e.message().to_string(),
            Some(e.help().unwrap_or_else(|| {
                format!("fix or move away {}", ctx.paths.config_yaml().display())
            })),
        ));
    }
    out
}

inventory::submit! { Check { name: "config", order: 14, run: config_file } }
