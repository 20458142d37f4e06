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
use super::AuthError;
use crate::config::{Env, Settings};
use crate::error::Result;

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
            Lookup::Ambiguous(ids) => Err(AuthError::AmbiguousAccount {
                display: display.to_string(),
                provider: provider.to_string(),
                key: key.clone(),
                source_: choice.source.clone(),
                ids: ids.into(),
            }
            .into()),
            Lookup::Missing => Err(AuthError::UnknownAccount {
                display: display.to_string(),
                provider: provider.to_string(),
                key: key.clone(),
                source_: choice.source.clone(),
            }
            .into()),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::AuthFile;
    use hermes_plugin_api::Credential;

    fn named(key: &str) -> AccountChoice {
        AccountChoice {
            key: Some(key.into()),
            source: "chosen with --account".into(),
        }
    }

    #[test]
    fn a_name_that_fits_two_logins_or_none_is_its_own_error() {
        let mut f = AuthFile::empty();
        let cred = |n: u32| Credential {
            access_token: format!("at-{n}").into(),
            refresh_token: format!("rt-{n}").into(),
            ..Default::default()
        };
        f.save_singleton("p", &cred(1));
        f.add_account("p", &cred(2), "work");
        f.add_account("p", &cred(3), "work");
        let es = f.entries("p");
        let e = choose("P", "p", &es, &named("work")).unwrap_err();
        assert!(
            matches!(&e, crate::Error::Auth(AuthError::AmbiguousAccount { ids, provider, .. })
                if ids.len() == 2 && provider == "p"),
            "{e:?}"
        );
        assert!(e.help().unwrap().contains("hermes auth remove p <id>"));
        let e = choose("P", "p", &es, &named("home")).unwrap_err();
        assert!(
            matches!(&e, crate::Error::Auth(AuthError::UnknownAccount { key, .. }) if key == "home"),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            "no login of P is called \"home\" (chosen with --account)"
        );
        assert!(!e.needs_sign_in());
        let chosen = choose("P", "p", &es, &named("1")).unwrap().unwrap();
        assert_eq!(chosen.entry.slot, pool::Slot::Singleton);
    }
}
