//! Which login of a provider a command uses: one function for `auth token`, `auth status`,
//! `status`, `chat` and the dashboard.
//!
//! The account is named by `--account`, else `HERMES_ACCOUNT`, else `providers.<id>.account`
//! in `config.yaml`; `oauth` names the main login (as `hermes auth list` shows it). A named
//! login is used as it is, quarantined or not: the user asked for it. Without a name the first
//! login by priority is preferred; when it cannot be used (signed out by a dead refresh token)
//! and another can, that other login is used **and the command says so**, so that a
//! quarantined main login never silently becomes a token of another account or region.

use super::pool::{self, EntryView, Lookup};
use crate::config::{Env, Settings};
use crate::error::{Error, Result};

/// Where the account name came from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccountChoice {
    /// The login named (number, id, label or `oauth`), if any.
    pub key: Option<String>,
    /// Why, in words (`chosen with --account`, …); empty without a name.
    pub source: String,
}

/// `--account`, then `HERMES_ACCOUNT`, then `providers.<provider>.account` in config.yaml.
pub fn account_choice(
    env: &Env,
    settings: &Settings,
    provider: &str,
    flag: Option<String>,
) -> AccountChoice {
    if let Some(a) = flag {
        return AccountChoice {
            key: Some(a),
            source: "chosen with --account".into(),
        };
    }
    if let Some(a) = env.account.clone() {
        return AccountChoice {
            key: Some(a),
            source: "chosen with HERMES_ACCOUNT".into(),
        };
    }
    if let Some(a) = settings.provider_values(provider).get("account").cloned() {
        return AccountChoice {
            key: Some(a),
            source: "the default account in config.yaml".into(),
        };
    }
    AccountChoice::default()
}

/// The login chosen.
#[derive(Clone, Debug)]
pub struct Chosen {
    /// The login.
    pub entry: EntryView,
    /// Why this one, in words.
    pub reason: String,
    /// Set when the preferred login could not be used and another was taken instead: what to
    /// tell the user on stderr.
    pub fallback: Option<String>,
}

/// Choose the login of `provider` (display name `display`) among `entries`. `Ok(None)`: the
/// provider has no login at all.
pub fn choose(
    display: &str,
    provider: &str,
    entries: &[EntryView],
    choice: &AccountChoice,
) -> Result<Option<Chosen>> {
    if let Some(key) = &choice.key {
        return match pool::lookup(entries, key) {
            Lookup::Found(e) => Ok(Some(Chosen {
                entry: e.clone(),
                reason: choice.source.clone(),
                fallback: None,
            })),
            Lookup::Ambiguous(ids) => Err(Error::msg(format!(
                "{} logins of {display} are called {:?} ({}, {})",
                ids.len(),
                crate::text::line(key, 64),
                choice.source,
                ids.join(", ")
            ))
            .with_help(format!(
                "name one by its id, or remove the extra ones with `hermes auth remove {provider} <id>`"
            ))),
            Lookup::Missing => Err(Error::msg(format!(
                "no login of {display} is called {:?} ({})",
                crate::text::line(key, 64),
                choice.source
            ))
            .with_help(format!("see them with `hermes auth list {provider}`"))),
        };
    }
    let Some(preferred) = entries.first() else {
        return Ok(None);
    };
    if preferred.usable() {
        let reason = if entries.len() == 1 {
            "the only login".to_string()
        } else {
            format!("the first of {} logins that works", entries.len())
        };
        return Ok(Some(Chosen {
            entry: preferred.clone(),
            reason,
            fallback: None,
        }));
    }
    let Some(other) = entries.iter().find(|e| e.usable()) else {
        // Nothing usable: the preferred login, so that its error is what the user sees.
        return Ok(Some(Chosen {
            entry: preferred.clone(),
            reason: "no usable login".into(),
            fallback: None,
        }));
    };
    let why = match &preferred.last_error {
        Some(le) => format!(
            "needs a new sign-in ({})",
            crate::text::line(&le.message, 160)
        ),
        None => "is signed out".to_string(),
    };
    let note = format!(
        "the first login of {display}, {} (id {}), {why}; using login {} (id {}{}) instead. \
         Sign in again with `hermes auth add {provider}`, or pick a login with --account",
        crate::text::line(preferred.name(), 64),
        preferred.id,
        crate::text::line(other.name(), 64),
        other.id,
        if other.credential.region.is_empty() {
            String::new()
        } else {
            format!(
                ", region {}",
                crate::text::line(&other.credential.region, 32)
            )
        },
    );
    Ok(Some(Chosen {
        entry: other.clone(),
        reason: format!(
            "fallback: {} {}",
            crate::text::line(preferred.name(), 64),
            why
        ),
        fallback: Some(note),
    }))
}
