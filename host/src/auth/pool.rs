//! The logins of each provider as one list (the pool), and how a [`Credential`] maps to and
//! from `auth.json`.
//!
//! The signed-in login lives in `providers.<id>` (the singleton) and appears in the pool as an
//! entry of source `oauth` that *refers* to it. Further accounts (`hermes auth add <p> --label
//! work`) are pool entries of source `manual:<provider>` carrying their own tokens. Each
//! refresh token is stored exactly once: with rotating refresh tokens, two copies of one pair
//! mean refreshing one kills the other. A pool entry that duplicates the singleton's refresh
//! token (older versions wrote such copies) is folded into the singleton on the next write.

use hermes_plugin_api::{Credential, PluginError, HOST_STATE_KEY};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::store::AuthFile;
use super::AuthError;
use crate::error::Result;
use crate::timefmt;

/// The pool source of the singleton login.
pub const SINGLETON_SOURCE: &str = "oauth";

/// The pool source of extra accounts of `provider`.
pub fn manual_source(provider: &str) -> String {
    format!("manual:{}", provider.replace('-', "_"))
}

/// Where a login is stored.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Slot {
    /// `providers.<id>`.
    Singleton,
    /// The pool entry with this id.
    Pool(String),
}

/// The last terminal error of a login, as written at quarantine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastError {
    pub code: String,
    pub message: String,
    /// When, ISO-8601.
    pub at: String,
}

/// One login of a provider.
#[derive(Clone, Debug)]
pub struct EntryView {
    /// 6 hex digits.
    pub id: String,
    /// Label (may be empty).
    pub label: String,
    /// `oauth` or `manual:…`.
    pub source: String,
    /// Lower first.
    pub priority: i64,
    /// Where it is stored.
    pub slot: Slot,
    pub credential: Credential,
    /// The quarantine record, if any.
    pub last_error: Option<LastError>,
    /// The last transient refresh failure since the last success, if any.
    pub last_transient: Option<LastError>,
}

impl EntryView {
    /// Whether it has anything to use (an access or a refresh token).
    pub fn usable(&self) -> bool {
        !self.credential.access_token.is_empty() || !self.credential.refresh_token.is_empty()
    }
    /// `label` or, when empty, the source.
    pub fn name(&self) -> &str {
        if self.label.is_empty() {
            &self.source
        } else {
            &self.label
        }
    }
}

fn str_of<'a>(m: &'a Map<String, Value>, k: &str) -> &'a str {
    m.get(k).and_then(Value::as_str).unwrap_or("")
}

/// Which of the Python hermes's two layouts a record has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    /// `providers.<id>`: the expiry is `expires_at` (ISO-8601). The Python hermes refreshes by
    /// merging into this block and leaves any `expires_at_ms` there stale, so that key is
    /// ignored when reading and never written.
    Provider,
    /// A `credential_pool` entry: the expiry is `expires_at_ms`.
    Pool,
}

fn layout_of(slot: &Slot) -> Layout {
    match slot {
        Slot::Singleton => Layout::Provider,
        Slot::Pool(_) => Layout::Pool,
    }
}

fn expiry_of(m: &Map<String, Value>, layout: Layout) -> i64 {
    let iso = || {
        m.get("expires_at")
            .and_then(Value::as_str)
            .and_then(timefmt::ms_from_iso)
    };
    let ms = || m.get("expires_at_ms").and_then(Value::as_i64);
    match layout {
        Layout::Provider => iso().or_else(ms),
        Layout::Pool => ms().or_else(iso),
    }
    .unwrap_or(0)
}

/// Keys of a stored record that belong to the host: the typed credential fields, the pool's
/// bookkeeping and the failure records. They are never handed to a plugin inside `state`,
/// and never taken from the `state` a plugin returns.
const HOST_KEYS: &[&str] = &[
    "access_token",
    "refresh_token",
    "expires_at",
    "expires_at_ms",
    "label",
    "base_url",
    "last_auth_error",
    "last_refresh_failure",
    "id",
    "priority",
    "source",
    "auth_type",
    HOST_STATE_KEY,
];

/// The `state` a plugin sees for the record `m` of pool source `source`: its own keys, and the
/// host's facts under [`HOST_STATE_KEY`].
fn plugin_state(m: &Map<String, Value>, source: &str) -> String {
    let mut state: Map<String, Value> = m
        .iter()
        .filter(|(k, _)| !HOST_KEYS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut host = Map::new();
    host.insert("source".into(), json!(source));
    if let Some(e) = m.get("last_auth_error").and_then(Value::as_object) {
        host.insert(
            "last_auth_error".into(),
            json!({
                "code": str_of(e, "code"),
                "message": str_of(e, "message"),
                "relogin_required": e.get("relogin_required").and_then(Value::as_bool).unwrap_or(true),
                "at": str_of(e, "at"),
            }),
        );
    }
    state.insert(HOST_STATE_KEY.into(), Value::Object(host));
    Value::Object(state).to_string()
}

fn credential_of(m: &Map<String, Value>, layout: Layout, source: &str) -> Credential {
    Credential {
        access_token: str_of(m, "access_token").into(),
        refresh_token: str_of(m, "refresh_token").into(),
        expires_at_ms: expiry_of(m, layout),
        region: str_of(m, "region").into(),
        base_url: str_of(m, "base_url").into(),
        label: str_of(m, "label").into(),
        state: plugin_state(m, source).into(),
    }
}

fn last_error_of(m: &Map<String, Value>) -> Option<LastError> {
    error_at(m, "last_auth_error")
}

fn error_at(m: &Map<String, Value>, key: &str) -> Option<LastError> {
    let e = m.get(key)?.as_object()?;
    Some(LastError {
        code: str_of(e, "code").to_string(),
        message: str_of(e, "message").to_string(),
        at: str_of(e, "at").to_string(),
    })
}

/// Write `cred` into `m`: the plugin's state first, then the host-known fields over it.
fn apply(m: &mut Map<String, Value>, cred: &Credential, layout: Layout) {
    if let Ok(Value::Object(state)) = serde_json::from_str::<Value>(&cred.state) {
        for (k, v) in state {
            if !HOST_KEYS.contains(&k.as_str()) {
                m.insert(k, v);
            }
        }
    }
    if !cred.base_url.is_empty() {
        m.insert("base_url".into(), json!(cred.base_url.as_str()));
    }
    m.insert("access_token".into(), json!(cred.access_token.as_str()));
    m.insert("refresh_token".into(), json!(cred.refresh_token.as_str()));
    match (cred.expires_at_ms > 0)
        .then(|| timefmt::iso_from_ms(cred.expires_at_ms))
        .flatten()
    {
        Some(iso) => {
            m.insert("expires_at".into(), json!(iso));
            if layout == Layout::Pool {
                m.insert("expires_at_ms".into(), json!(cred.expires_at_ms));
            } else {
                m.remove("expires_at_ms");
            }
        }
        None => {
            m.remove("expires_at");
            m.remove("expires_at_ms");
        }
    }
    if !cred.region.is_empty() {
        m.insert("region".into(), json!(cred.region.as_str()));
    }
    if !cred.label.is_empty() {
        m.insert("label".into(), json!(cred.label.as_str()));
    }
    m.remove("last_auth_error");
    m.remove("last_refresh_failure");
}

fn short_id(seed: &str) -> String {
    let d = Sha256::digest(seed.as_bytes());
    crate::secret::hex(&d[..3])
}

fn random_id() -> String {
    crate::secret::random_hex(3).unwrap_or_else(|_| short_id(&timefmt::now_ms().to_string()))
}

impl AuthFile {
    /// Every login of `provider`, in priority order. The singleton appears even when the
    /// pool has no entry for it yet (files written by older versions).
    pub fn entries(&self, provider: &str) -> Vec<EntryView> {
        let singleton = self.provider_state(provider);
        let singleton_rt = singleton.map(|m| str_of(m, "refresh_token")).unwrap_or("");
        let suppressed = self
            .suppressed(provider)
            .iter()
            .any(|s| s == SINGLETON_SOURCE);
        let mut out: Vec<EntryView> = Vec::new();
        let mut have_singleton = false;
        for (i, e) in self.pool(provider).into_iter().enumerate() {
            let source = str_of(e, "source").to_string();
            let duplicate = !singleton_rt.is_empty() && str_of(e, "refresh_token") == singleton_rt;
            let id = match str_of(e, "id") {
                "" => short_id(&format!("{provider}/{i}")),
                id => id.to_string(),
            };
            let priority = e
                .get("priority")
                .and_then(Value::as_i64)
                .unwrap_or(i as i64);
            if source == SINGLETON_SOURCE || duplicate {
                let Some(s) = singleton else { continue };
                if have_singleton || suppressed {
                    continue;
                }
                have_singleton = true;
                let mut label = str_of(e, "label").to_string();
                if label.is_empty() {
                    label = str_of(s, "label").to_string();
                }
                out.push(EntryView {
                    id,
                    label,
                    source: SINGLETON_SOURCE.into(),
                    priority,
                    slot: Slot::Singleton,
                    credential: credential_of(s, Layout::Provider, SINGLETON_SOURCE),
                    last_error: last_error_of(s),
                    last_transient: error_at(s, "last_refresh_failure"),
                });
            } else {
                out.push(EntryView {
                    id: id.clone(),
                    label: str_of(e, "label").to_string(),
                    source,
                    priority,
                    slot: Slot::Pool(id),
                    credential: credential_of(e, Layout::Pool, str_of(e, "source")),
                    last_error: last_error_of(e),
                    last_transient: error_at(e, "last_refresh_failure"),
                });
            }
        }
        if let (Some(s), false, false) = (singleton, have_singleton, suppressed) {
            out.insert(
                0,
                EntryView {
                    id: short_id(&format!("{provider}/{SINGLETON_SOURCE}")),
                    label: str_of(s, "label").to_string(),
                    source: SINGLETON_SOURCE.into(),
                    priority: -1,
                    slot: Slot::Singleton,
                    credential: credential_of(s, Layout::Provider, SINGLETON_SOURCE),
                    last_error: last_error_of(s),
                    last_transient: error_at(s, "last_refresh_failure"),
                },
            );
        }
        out.sort_by_key(|e| e.priority);
        out
    }

    /// The credential in `slot`.
    pub fn credential(&self, provider: &str, slot: &Slot) -> Option<Credential> {
        match slot {
            Slot::Singleton => self
                .provider_state(provider)
                .map(|m| credential_of(m, Layout::Provider, SINGLETON_SOURCE)),
            Slot::Pool(id) => self
                .pool(provider)
                .into_iter()
                .find(|e| str_of(e, "id") == id)
                .map(|m| credential_of(m, Layout::Pool, str_of(m, "source"))),
        }
    }

    fn slot_map_mut(&mut self, provider: &str, slot: &Slot) -> Option<&mut Map<String, Value>> {
        match slot {
            Slot::Singleton => self.provider_state_mut(provider),
            Slot::Pool(id) => self
                .pool_mut(provider)
                .iter_mut()
                .filter_map(Value::as_object_mut)
                .find(|e| str_of(e, "id") == id),
        }
    }

    /// Store a refreshed credential in `slot`, keeping every other key of the record.
    pub fn update_credential(
        &mut self,
        provider: &str,
        slot: &Slot,
        cred: &Credential,
    ) -> Result<()> {
        if *slot == Slot::Singleton {
            // Fold pool copies of the singleton's token pair first: once the pair rotates, a
            // copy would look like a separate login holding a dead refresh token.
            let current = self
                .provider_state(provider)
                .map(|m| str_of(m, "refresh_token").to_string())
                .unwrap_or_default();
            self.normalize(provider, &current);
        }
        let m =
            self.slot_map_mut(provider, slot)
                .ok_or_else(|| AuthError::RemovedDuringRefresh {
                    provider: provider.to_string(),
                })?;
        apply(m, cred, layout_of(slot));
        Ok(())
    }

    /// Save a new sign-in as the singleton login (replacing any previous one), seed its pool
    /// entry and lift a suppression of it.
    pub fn save_singleton(&mut self, provider: &str, cred: &Credential) {
        let mut m = Map::new();
        apply(&mut m, cred, Layout::Provider);
        let rt = cred.refresh_token.to_string();
        self.set_provider_state(provider, m);
        self.set_suppressed(provider, SINGLETON_SOURCE, false);
        self.set_active_provider(Some(provider));
        self.normalize(provider, &rt);
    }

    /// Save a new sign-in as an extra account; returns its id.
    pub fn add_account(&mut self, provider: &str, cred: &Credential, label: &str) -> String {
        let id = random_id();
        let priority = self
            .entries(provider)
            .iter()
            .map(|e| e.priority)
            .max()
            .unwrap_or(-1)
            + 1;
        let mut m = Map::new();
        m.insert("id".into(), json!(id));
        m.insert("label".into(), json!(label));
        m.insert("auth_type".into(), json!("oauth"));
        m.insert("priority".into(), json!(priority));
        m.insert("source".into(), json!(manual_source(provider)));
        m.insert("base_url".into(), json!(cred.base_url.as_str()));
        apply(&mut m, cred, Layout::Pool);
        self.pool_mut(provider).push(Value::Object(m));
        id
    }

    /// Replace the tokens of the extra account `id` with a new sign-in, keeping its id and
    /// priority.
    pub fn replace_account(
        &mut self,
        provider: &str,
        id: &str,
        cred: &Credential,
        label: &str,
    ) -> Result<()> {
        let slot = Slot::Pool(id.to_string());
        let m = self
            .slot_map_mut(provider, &slot)
            .ok_or_else(|| AuthError::LoginGone {
                provider: provider.to_string(),
                id: id.to_string(),
            })?;
        let keep: Vec<(String, Value)> = ["id", "priority", "auth_type", "source"]
            .iter()
            .filter_map(|k| m.get(*k).map(|v| (k.to_string(), v.clone())))
            .collect();
        m.clear();
        m.extend(keep);
        m.insert("label".into(), json!(label));
        m.insert("base_url".into(), json!(cred.base_url.as_str()));
        apply(m, cred, Layout::Pool);
        Ok(())
    }

    /// Make the pool refer to the singleton exactly once and hold no copy of its tokens.
    fn normalize(&mut self, provider: &str, singleton_rt: &str) {
        let label = self
            .provider_state(provider)
            .map(|m| str_of(m, "label").to_string())
            .unwrap_or_default();
        let pool = self.pool_mut(provider);
        let mut seen = false;
        pool.retain_mut(|v| {
            let Some(e) = v.as_object_mut() else {
                return true;
            };
            let is_ref = str_of(e, "source") == SINGLETON_SOURCE;
            let is_copy = !singleton_rt.is_empty() && str_of(e, "refresh_token") == singleton_rt;
            if !(is_ref || is_copy) {
                return true;
            }
            if seen {
                return false;
            }
            seen = true;
            for k in [
                "access_token",
                "refresh_token",
                "expires_at_ms",
                "expires_at",
                "last_auth_error",
            ] {
                e.remove(k);
            }
            e.insert("source".into(), json!(SINGLETON_SOURCE));
            true
        });
        if !seen {
            pool.insert(
                0,
                json!({
                    "id": short_id(&format!("{provider}/{SINGLETON_SOURCE}")),
                    "label": label,
                    "auth_type": "oauth",
                    "priority": 0,
                    "source": SINGLETON_SOURCE,
                }),
            );
        }
    }

    /// Quarantine the login in `slot` after a terminal refresh error: clear its tokens and
    /// expiry, keep everything else, and record the error.
    pub fn quarantine(&mut self, provider: &str, slot: &Slot, err: &PluginError, now_ms: i64) {
        let Some(m) = self.slot_map_mut(provider, slot) else {
            return;
        };
        m.insert("access_token".into(), Value::Null);
        m.insert("refresh_token".into(), Value::Null);
        m.insert("expires_at".into(), Value::Null);
        m.remove("expires_at_ms");
        m.insert(
            "last_auth_error".into(),
            json!({
                "provider": provider,
                "code": err.code.as_str(),
                "message": err.message.as_str(),
                "reason": "runtime_refresh_failure",
                "relogin_required": true,
                "at": timefmt::iso_from_ms(now_ms).unwrap_or_default(),
            }),
        );
    }

    /// Record a transient refresh failure on the login in `slot` (shown by doctor; cleared by
    /// the next successful refresh). The login itself is untouched.
    pub fn note_transient_failure(
        &mut self,
        provider: &str,
        slot: &Slot,
        err: &PluginError,
        now_ms: i64,
    ) {
        let Some(m) = self.slot_map_mut(provider, slot) else {
            return;
        };
        m.insert(
            "last_refresh_failure".into(),
            json!({
                "code": err.code.as_str(),
                "message": err.message.as_str(),
                "transient": true,
                "at": timefmt::iso_from_ms(now_ms).unwrap_or_default(),
            }),
        );
    }

    /// Remove a pool entry by id; the singleton's entry is handled by the caller's removal
    /// plan.
    pub fn remove_pool_entry(&mut self, provider: &str, id: &str) -> bool {
        let pool = self.pool_mut(provider);
        let before = pool.len();
        pool.retain(|v| v.get("id").and_then(Value::as_str) != Some(id));
        let removed = pool.len() != before;
        if pool.is_empty() {
            self.remove_pool(provider);
        }
        removed
    }

    /// Remove a source's pool entries (e.g. the singleton reference).
    pub fn remove_pool_source(&mut self, provider: &str, source: &str) {
        let pool = self.pool_mut(provider);
        pool.retain(|v| v.get("source").and_then(Value::as_str) != Some(source));
        if pool.is_empty() {
            self.remove_pool(provider);
        }
    }
}

/// What a name given by the user refers to.
#[derive(Debug)]
pub enum Lookup<'a> {
    /// Exactly one login.
    Found(&'a EntryView),
    /// No login.
    Missing,
    /// Several logins share this label (files written by older versions): their ids.
    Ambiguous(Vec<String>),
}

/// Find the login a user named: `oauth` (the main login, as `hermes auth list` calls it), its
/// 1-based position in `hermes auth list`, its id, or its label (case-insensitive). Labels
/// are unique and never all digits (see [`check_label`]); a file written by an older version
/// may still hold two logins with one label, which is reported rather than guessed.
pub fn lookup<'a>(entries: &'a [EntryView], key: &str) -> Lookup<'a> {
    if key.eq_ignore_ascii_case(SINGLETON_SOURCE) {
        if let Some(e) = entries.iter().find(|e| e.slot == Slot::Singleton) {
            return Lookup::Found(e);
        }
    }
    if let Ok(n) = key.parse::<usize>() {
        if n >= 1 && n <= entries.len() && key.len() < 6 {
            return Lookup::Found(&entries[n - 1]);
        }
    }
    if let Some(e) = entries.iter().find(|e| e.id.eq_ignore_ascii_case(key)) {
        return Lookup::Found(e);
    }
    let named: Vec<&EntryView> = entries
        .iter()
        .filter(|e| !e.label.is_empty() && e.label.eq_ignore_ascii_case(key))
        .collect();
    match named.as_slice() {
        [] => Lookup::Missing,
        [one] => Lookup::Found(one),
        many => Lookup::Ambiguous(many.iter().map(|e| e.id.clone()).collect()),
    }
}

/// [`lookup`], when only a unique match will do.
pub fn find<'a>(entries: &'a [EntryView], key: &str) -> Option<&'a EntryView> {
    match lookup(entries, key) {
        Lookup::Found(e) => Some(e),
        _ => None,
    }
}

/// Longest label accepted.
pub const MAX_LABEL_CHARS: usize = 64;

/// Whether `label` can name a login: not empty, at most [`MAX_LABEL_CHARS`] characters, no
/// control or formatting characters, not all digits (a number is a position in `auth list`),
/// not six hex digits (a login id) and not `oauth` (the main login's name). The error says why.
pub fn check_label(label: &str) -> std::result::Result<(), String> {
    if label.trim().is_empty() {
        return Err("a label cannot be empty".into());
    }
    if label.chars().count() > MAX_LABEL_CHARS {
        return Err(format!("a label has at most {MAX_LABEL_CHARS} characters"));
    }
    if crate::text::line(label, MAX_LABEL_CHARS) != label {
        return Err(
            "a label cannot hold control characters, line breaks or repeated spaces".into(),
        );
    }
    if label.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!(
            "{label:?} is all digits, which `--account` and `auth remove` read as a position in `hermes auth list`"
        ));
    }
    if label.len() == 6 && label.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!("{label:?} looks like a login id"));
    }
    if label.eq_ignore_ascii_case(SINGLETON_SOURCE) {
        return Err(format!(
            "{SINGLETON_SOURCE:?} is the name of the main login"
        ));
    }
    Ok(())
}

/// The login to use: the named one, else the first usable in priority order, else the first
/// (so that its error is what the user sees). Commands choose through
/// [`super::choice::choose`], which also says when it falls back.
pub fn select<'a>(entries: &'a [EntryView], account: Option<&str>) -> Option<&'a EntryView> {
    match account {
        Some(key) => find(entries, key),
        None => entries
            .iter()
            .find(|e| e.usable())
            .or_else(|| entries.first()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cred(at: &str, rt: &str) -> Credential {
        Credential {
            access_token: at.into(),
            refresh_token: rt.into(),
            expires_at_ms: 1_767_225_600_000,
            region: "global".into(),
            state: r#"{"provider":"p","portal_base_url":"https://x"}"#.into(),
            ..Default::default()
        }
    }

    #[test]
    fn singleton_is_stored_once_and_referenced_from_the_pool() {
        let mut f = AuthFile::empty();
        f.save_singleton("p", &cred("at-1", "rt-1"));
        let pool = f.pool("p");
        assert_eq!(pool.len(), 1);
        assert_eq!(str_of(pool[0], "source"), "oauth");
        assert!(
            pool[0].get("refresh_token").is_none(),
            "the pool must not copy the token"
        );
        let st = f.provider_state("p").unwrap();
        assert_eq!(str_of(st, "portal_base_url"), "https://x");
        assert_eq!(str_of(st, "expires_at"), "2026-01-01T00:00:00+00:00");
        let es = f.entries("p");
        assert_eq!(es.len(), 1);
        assert_eq!(es[0].slot, Slot::Singleton);
        assert_eq!(es[0].credential.refresh_token.as_str(), "rt-1");
    }

    #[test]
    fn a_pool_copy_of_the_singleton_token_is_folded_in() {
        let mut f = AuthFile::empty();
        f.set_provider_state("p", credential_map(&cred("at-1", "rt-1")));
        f.pool_mut("p").push(
            json!({"id":"abc123","source":"manual:p","access_token":"at-1","refresh_token":"rt-1"}),
        );
        let es = f.entries("p");
        assert_eq!(es.len(), 1, "{es:?}");
        assert_eq!(es[0].slot, Slot::Singleton);
        f.save_singleton("p", &cred("at-2", "rt-1"));
        assert_eq!(f.pool("p").len(), 1);
        assert!(f.pool("p")[0].get("refresh_token").is_none());
    }

    fn credential_map(c: &Credential) -> Map<String, Value> {
        let mut m = Map::new();
        apply(&mut m, c, Layout::Provider);
        m
    }

    #[test]
    fn quarantine_clears_secrets_and_keeps_the_rest() {
        let mut f = AuthFile::empty();
        f.save_singleton("p", &cred("at-1", "rt-1"));
        let err = PluginError::relogin("refresh_failed", "dead");
        f.quarantine("p", &Slot::Singleton, &err, 1_767_225_600_000);
        let st = f.provider_state("p").unwrap();
        assert_eq!(st["access_token"], Value::Null);
        assert_eq!(st["refresh_token"], Value::Null);
        assert_eq!(str_of(st, "portal_base_url"), "https://x");
        assert_eq!(str_of(st, "region"), "global");
        assert_eq!(st["last_auth_error"]["reason"], "runtime_refresh_failure");
        assert_eq!(st["last_auth_error"]["relogin_required"], true);
        let e = &f.entries("p")[0];
        assert!(!e.usable());
        assert_eq!(e.last_error.as_ref().unwrap().code, "refresh_failed");
    }

    #[test]
    fn extra_accounts_carry_their_own_tokens_and_are_found_by_label() {
        let mut f = AuthFile::empty();
        f.save_singleton("p", &cred("at-1", "rt-1"));
        let id = f.add_account("p", &cred("at-9", "rt-9"), "work");
        let es = f.entries("p");
        assert_eq!(es.len(), 2);
        assert_eq!(find(&es, "WORK").unwrap().id, id);
        assert_eq!(find(&es, "2").unwrap().id, id);
        assert_eq!(
            find(&es, &id).unwrap().credential.refresh_token.as_str(),
            "rt-9"
        );
        assert_eq!(select(&es, None).unwrap().slot, Slot::Singleton);
    }

    #[test]
    fn suppressed_singleton_is_not_listed() {
        let mut f = AuthFile::empty();
        f.save_singleton("p", &cred("at-1", "rt-1"));
        f.set_suppressed("p", SINGLETON_SOURCE, true);
        assert!(f.entries("p").is_empty());
    }
}
