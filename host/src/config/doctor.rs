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

/// `config.yaml`'s provider settings against what each provider declares: a value the
/// provider does not accept (a region it does not have) needs action; a key hermes does not
/// read, or settings of a provider that is not installed, are kept and only mentioned.
fn provider_settings(ctx: &Context<'_>) -> Vec<Finding> {
    use super::{check_provider_setting, Declared, SettingProblem};
    let Ok(settings) = super::Settings::load(ctx.paths) else {
        return Vec::new(); // said by the home check
    };
    let mut out = Vec::new();
    for id in settings.provider_ids() {
        let entry = ctx.set.registry.resolve(&id);
        if ctx
            .provider
            .is_some_and(|p| entry.is_none_or(|e| e.provider.id != p))
        {
            continue;
        }
        let Some(entry) = entry else {
            out.push(finding(
                "config",
                Severity::Info,
                &id,
                format!("config.yaml has settings for providers.{id}, but no installed provider is called {id:?}; they are kept"),
                None,
            ));
            continue;
        };
        let declared = Declared::from(&entry.provider);
        for (key, value) in settings.provider_values(&id) {
            let dotted = format!("providers.{id}.{key}");
            match check_provider_setting(&declared, &key, &value) {
                None => {}
                Some(SettingProblem::Unknown) => out.push(finding(
                    "config",
                    Severity::Info,
                    &entry.provider.id,
                    format!("{dotted} is not a setting hermes reads; it is kept for the plugin"),
                    None,
                )),
                Some(SettingProblem::Invalid { why, help }) => {
                    let fix = match (key.as_str(), declared.regions.first()) {
                        ("region", Some(first)) => {
                            format!("hermes config set {dotted} {first}")
                        }
                        _ => format!("{help} in {}", ctx.paths.config_yaml().display()),
                    };
                    out.push(finding(
                        "config",
                        Severity::Warning,
                        &entry.provider.id,
                        format!("{dotted}: {why} ({help})"),
                        Some(fix),
                    ));
                }
            }
        }
    }
    out
}

inventory::submit! { Check { name: "config", order: 25, run: provider_settings } }

/// The default model (`model.default`) against the models installed providers declare: one
/// that the chosen provider, or any installed provider when none is chosen, does not have is
/// a warning, fixed with `hermes model`.
fn default_model(ctx: &Context<'_>) -> Vec<Finding> {
    let Ok(settings) = super::Settings::load(ctx.paths) else {
        return Vec::new(); // said by the home check
    };
    let Some(model) = settings.model_default() else {
        return Vec::new();
    };
    let provider = settings.model_provider();
    let entry = provider
        .as_deref()
        .and_then(|p| ctx.set.registry.resolve(p));
    if ctx
        .provider
        .is_some_and(|p| entry.is_none_or(|e| e.provider.id != p))
    {
        return Vec::new();
    }
    let Some(why) = crate::catalog::unknown_model(&ctx.set.registry, provider.as_deref(), &model)
    else {
        return Vec::new();
    };
    let subject = entry.map_or("hermes", |e| e.provider.id.as_str());
    vec![finding(
        "config",
        Severity::Warning,
        subject,
        format!("model.default: {why}"),
        Some("hermes model".into()),
    )]
}

inventory::submit! { Check { name: "config", order: 26, run: default_model } }
