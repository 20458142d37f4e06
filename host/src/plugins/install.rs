//! `hermes plugins install`: resolve, read the source once into a staging file inside
//! `plugins/` (random name, `O_EXCL`), verify the checksum of those bytes, trial-load that very
//! file in a child process (which also runs the conformance checks of `hermes plugins check`),
//! then, under the plugins lock, rename it to `plugins/<id>/<version>/` and record it — with
//! the identity of the file that was verified — in `plugins.json`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::confine::{self, Identity, PluginsDir};
use super::descriptor::PluginDesc;
use super::index::{self, IndexEntry};
use super::manifest::{self, Record, Verified};
use super::registry::{PluginProviders, Registry};
use super::runtime::PluginSet;
use super::PluginsError;
use crate::config::Env;
use crate::error::{Error, Result};

/// Largest library accepted from a URL.
pub const MAX_DOWNLOAD: usize = 64 * 1024 * 1024;
pub use super::probe::ProbeReport;

/// Trial-load `path` in a child process ([`super::probe::in_child`]).
pub fn probe_in_child(path: &Path) -> Result<ProbeReport> {
    super::probe::in_child(path)
}

/// SHA-256 of a file, lower-case hex.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    sha256_reader(std::fs::File::open(path)?)
}

/// SHA-256 of everything `f` yields, lower-case hex.
pub fn sha256_reader(mut f: impl Read) -> std::io::Result<String> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(crate::secret::hex(&h.finalize()))
}

/// What an install changed, for the message. (Not to be confused with
/// [`runtime::Installed`](super::runtime::Installed), a plugin of this run.)
#[derive(Debug)]
pub enum Change {
    /// Newly installed.
    New(Record),
    /// Replaced an older (or different) build.
    Replaced { old: Box<Record>, new: Box<Record> },
    /// The same version and checksum was already there.
    Unchanged(Record),
}

/// Alias conflicts the new plugin will live with.
pub struct Outcome {
    pub change: Change,
    /// Warnings (refused aliases).
    pub warnings: Vec<String>,
}

/// Where the library's bytes come from.
enum Data {
    /// A file, read once while it is copied into staging.
    File(PathBuf),
    /// A download, already in memory.
    Bytes(Vec<u8>),
}

struct Fetched {
    data: Data,
    shown: String,
    source: String,
    expected: Option<String>,
}

fn looks_like_path(t: &str) -> bool {
    t.contains('/') || t.ends_with(std::env::consts::DLL_SUFFIX) || Path::new(t).exists()
}

fn fetch(env: &Env, target: &str, sha256: Option<&str>) -> Result<Fetched> {
    if target.starts_with("https://") || target.starts_with("http://") {
        return download(target, sha256.map(String::from));
    }
    if looks_like_path(target) {
        let p = PathBuf::from(target);
        if !p.is_file() {
            return Err(PluginsError::NotAFile(target.into()).into());
        }
        return Ok(Fetched {
            data: Data::File(p),
            shown: target.into(),
            source: target.into(),
            expected: sha256.map(String::from),
        });
    }
    let index: Vec<IndexEntry> = match &env.plugin_index {
        Some(p) => index::from_file(p)?,
        None => index::beside_binary(),
    };
    let Some(entry) = index::lookup(&index, target) else {
        return Err(PluginsError::NotInIndex {
            name: target.into(),
            names: index.iter().map(|e| e.name.clone()).collect(),
        }
        .into());
    };
    let expected = sha256.map(String::from).or_else(|| entry.sha256.clone());
    match (&entry.path, &entry.url) {
        (Some(p), _) => Ok(Fetched {
            data: Data::File(p.clone()),
            shown: p.display().to_string(),
            source: format!("index:{}", entry.name),
            expected,
        }),
        (None, Some(u)) => download(u, expected),
        (None, None) => Err(PluginsError::EmptyIndexEntry(entry.name.clone()).into()),
    }
}

fn download(url: &str, sha256: Option<String>) -> Result<Fetched> {
    let Some(expected) = sha256 else {
        return Err(PluginsError::NoChecksum { url: url.into() }.into());
    };
    let parsed = reqwest::Url::parse(url).map_err(|e| PluginsError::InvalidUrl(e.to_string()))?;
    if parsed.scheme() != "https" && !crate::net::is_loopback(&parsed) {
        return Err(PluginsError::NotHttps.into());
    }
    let net = crate::net::Net::get();
    let bytes = net
        .runtime()
        .block_on(async {
            let sent = std::time::Instant::now();
            let resp = net.client_for(&parsed).get(parsed.clone()).send().await;
            crate::net::log_request(
                "GET",
                &parsed,
                resp.as_ref()
                    .map(|r| r.status().as_u16())
                    .map_err(|_| "no answer"),
                sent.elapsed(),
            );
            let mut resp = resp?.error_for_status()?;
            let mut buf = Vec::new();
            while let Some(chunk) = resp.chunk().await? {
                if buf.len() + chunk.len() > MAX_DOWNLOAD {
                    return Ok(None);
                }
                buf.extend_from_slice(&chunk);
            }
            Ok::<_, reqwest::Error>(Some(buf))
        })
        .map_err(|e| PluginsError::Download {
            url: url.into(),
            why: e.to_string(),
        })?
        .ok_or_else(|| PluginsError::TooLarge { url: url.into() })?;
    Ok(Fetched {
        data: Data::Bytes(bytes),
        shown: url.into(),
        source: url.into(),
        expected: Some(expected),
    })
}

fn refused(e: confine::Refused) -> Error {
    PluginsError::Refused(e).into()
}

/// Copy the source into `staging`, reading it exactly once, and hash the bytes written.
fn fill_staging(fetched: &Fetched, staging: &confine::Staging<'_>) -> Result<String> {
    use std::io::Write;
    let mut out = staging.file();
    let mut h = Sha256::new();
    match &fetched.data {
        Data::Bytes(b) => {
            h.update(b);
            out.write_all(b)
                .map_err(|e| Error::io("cannot write the staging copy", e))?;
        }
        Data::File(p) => {
            let mut src = std::fs::File::open(p)
                .map_err(|e| Error::io(format!("cannot read {}", p.display()), e))?;
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                let n = src
                    .read(&mut buf)
                    .map_err(|e| Error::io(format!("cannot read {}", p.display()), e))?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
                out.write_all(&buf[..n])
                    .map_err(|e| Error::io("cannot write the staging copy", e))?;
            }
        }
    }
    out.sync_all()
        .map_err(|e| Error::io("cannot write the staging copy", e))?;
    Ok(crate::secret::hex(&h.finalize()))
}

/// Install `target` (a name, a path or a URL).
pub fn install(env: &Env, target: &str, sha256: Option<&str>, force: bool) -> Result<Outcome> {
    let paths = env.paths();
    let fetched = fetch(env, target, sha256)?;
    paths.ensure_home()?;
    let dir = PluginsDir::create(&paths.home).map_err(refused)?;
    // Everything from here on reads the staging copy, never the source again: a source that
    // changes meanwhile (a build rewriting target/, a swap) cannot slip in unverified bytes.
    // The staging copy keeps the source's file name (a library may look at its own name).
    let file_name = match &fetched.data {
        Data::File(p) => p.file_name().map(|n| n.to_os_string()),
        Data::Bytes(_) => None,
    }
    .unwrap_or_else(|| format!("download{}", std::env::consts::DLL_SUFFIX).into());
    let staging = dir.staging(&file_name).map_err(|e| {
        Error::io(
            format!("cannot create a file in {}", dir.path().display()),
            e,
        )
    })?;
    let sum = fill_staging(&fetched, &staging)?;
    if let Some(exp) = &fetched.expected {
        if !exp.eq_ignore_ascii_case(&sum) {
            return Err(PluginsError::ChecksumMismatch {
                source_: fetched.source.clone(),
                expected: exp.clone(),
                got: sum,
            }
            .into());
        }
    }
    let staged =
        Identity::of(staging.file()).map_err(|e| Error::io("cannot read the staging copy", e))?;
    let mut report = probe_in_child(&staging.path())?;
    let shown = fetched.shown.clone();
    // Messages name what the user gave, not the staging copy.
    let staged_path = staging.path().display().to_string();
    for text in [&mut report.error, &mut report.detail]
        .into_iter()
        .flatten()
    {
        *text = text.replace(&staged_path, &shown);
    }
    if !report.ok {
        return Err(PluginsError::TrialFailed {
            shown,
            why: report.error.unwrap_or_else(|| "it failed to load".into()),
            detail: report.detail,
        }
        .into());
    }
    if report.identity != Some(staged) {
        return Err(PluginsError::Changed {
            shown,
            what: "staging copy",
            when: "during the trial load; nothing was installed",
        }
        .into());
    }
    let failures = report.check_failures();
    let (Some(desc), Some(api_version)) = (report.desc, report.api_version) else {
        return Err(PluginsError::NoDescriptor { shown }.into());
    };
    if !report.problems.is_empty() {
        return Err(PluginsError::InvalidDescriptor {
            shown,
            problems: report.problems,
        }
        .into());
    }
    if let Some(first) = failures.first() {
        return Err(PluginsError::FailsChecks {
            shown,
            first: first.to_string(),
            more: failures.len() - 1,
        }
        .into());
    }
    let rel = PathBuf::from("plugins")
        .join(&desc.id)
        .join(&desc.version)
        .join(format!(
            "lib{}{}",
            desc.id.replace('-', "_"),
            std::env::consts::DLL_SUFFIX
        ))
        .to_string_lossy()
        .into_owned();
    if let Some(pause) = env.test_pause_staged {
        crate::fsutil::test_pause(
            &format!(
                "{} staged and verified, committing",
                staging.path().display()
            ),
            pause,
        );
    }
    // From reading the installed set to writing it, under the plugins lock: a concurrent
    // install or remove sees the state before this one or after it, never half of it.
    manifest::update(&paths, |m| {
        // The others as their recorded descriptors describe them: installing runs no code of
        // any other plugin (records without one load as before, and get it recorded).
        let existing = PluginSet::from_manifest(&paths.home, m);
        super::runtime::apply_fills(m, &existing.fills());
        let mut warnings = Vec::new();
        {
            let others: Vec<&PluginDesc> = existing
                .installed
                .iter()
                .filter_map(|i| i.desc())
                .filter(|p| p.id != desc.id)
                .collect();
            let reg = Registry::build(
                others
                    .iter()
                    .map(|p| PluginProviders {
                        plugin_id: &p.id,
                        providers: &p.providers,
                    })
                    .chain(std::iter::once(PluginProviders {
                        plugin_id: &desc.id,
                        providers: &desc.providers,
                    })),
            );
            for c in reg.conflicts_of(&desc.id) {
                if c.refused_plugin {
                    return Err(PluginsError::Conflict {
                        id: desc.id.clone(),
                        message: c.message.clone(),
                        holder: c.holder.clone(),
                    }
                    .into());
                }
                warnings.push(c.message.clone());
            }
        }
        let old = m.get(&desc.id).cloned();
        if let Some(o) = &old {
            let intact = || super::runtime::open_verified(&paths.home, o).is_ok();
            if o.version == desc.version && o.sha256 == sum && intact() {
                return Ok(Outcome {
                    change: Change::Unchanged(o.clone()),
                    warnings,
                });
            }
            let (ov, nv) = (
                semver::Version::parse(&o.version),
                semver::Version::parse(&desc.version),
            );
            if let (Ok(ov), Ok(nv)) = (ov, nv) {
                if nv < ov && !force {
                    return Err(PluginsError::Downgrade {
                        id: desc.id.clone(),
                        installed: o.version.clone(),
                        version: desc.version.clone(),
                    }
                    .into());
                }
            }
        }
        let placed = staging.place(&rel).map_err(refused)?;
        // The identity recorded is that of the very file hashed and trial-loaded: same inode,
        // size and mtime (the rename may only move the change time).
        let now = Identity::of(&placed).map_err(|e| Error::io("cannot read the new library", e))?;
        if !now.same_content(&staged) {
            return Err(PluginsError::Changed {
                shown,
                what: "new library",
                when: "while it was moved into place",
            }
            .into());
        }
        let record = Record {
            id: desc.id.clone(),
            version: desc.version.clone(),
            api_version: api_version.clone(),
            path: rel.clone(),
            sha256: sum.clone(),
            enabled: old.as_ref().is_none_or(|o| o.enabled),
            providers: desc.providers.iter().map(|p| p.id.clone()).collect(),
            source: fetched.source.clone(),
            installed_at: crate::timefmt::iso_from_ms(crate::timefmt::now_ms()).unwrap_or_default(),
            verified: Some(Verified::new(&now)),
            // Read in the trial load of the very file hashed, identified and now placed.
            desc: Some(desc.clone()),
        };
        match m.get_mut(&record.id) {
            Some(r) => *r = record.clone(),
            None => m.plugins.push(record.clone()),
        }
        if let Some(o) = &old {
            if o.path != record.path {
                // Best effort: the new record is what counts; a refusal leaves files alone.
                let _ = remove_library(&paths.home, o, m);
            }
        }
        Ok(Outcome {
            change: match old {
                Some(o) => Change::Replaced {
                    old: Box::new(o),
                    new: Box::new(record),
                },
                None => Change::New(record),
            },
            warnings,
        })
    })
}

/// Remove the library a record installed (and its folders while empty), through the confined
/// walk — unless another record in `m` still names the same file. Call it under the plugins
/// lock. `Ok(false)`: there was nothing to remove.
pub fn remove_library(
    home: &Path,
    r: &Record,
    m: &manifest::Manifest,
) -> std::result::Result<bool, confine::Refused> {
    confine::split(&r.path).map_err(confine::Refused::Unsafe)?;
    if m.plugins.iter().any(|o| o.path == r.path && o.id != r.id) {
        return Ok(false);
    }
    match PluginsDir::open(home) {
        Ok(dir) => dir.remove_library(&r.path),
        Err(confine::Refused::Missing(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Fill in the identity of a record that has none this host can use (written by an older
/// hermes without `dev`, or by a host of another interface), once the library was re-hashed
/// and layout-checked at load: `identity` is the file as it was opened for that check. Under
/// the plugins lock, and only while the record is unchanged and the file still has that very
/// identity, so later loads take the verified fast path. Best effort: a failure changes
/// nothing but the speed of later loads.
pub fn remember_verified(home: &Path, record: &Record, identity: Identity) {
    // Never wait: a load inside a change of the plugin set (this process holds the lock) or
    // beside another one simply leaves the upgrade to a later load.
    let mut paths = crate::config::Paths::new(home);
    paths.lock_timeout = Duration::ZERO;
    let paths = &paths;
    let _ = manifest::update(paths, |m| {
        let Some(r) = m.get_mut(&record.id) else {
            return Ok(());
        };
        if r.path != record.path || r.sha256 != record.sha256 || r.verified != record.verified {
            return Ok(());
        }
        let Ok(dir) = PluginsDir::open(&paths.home) else {
            return Ok(());
        };
        let Ok(now) = dir.open_library(&r.path) else {
            return Ok(());
        };
        if now.identity == identity {
            r.verified = Some(Verified::new(&identity));
        }
        Ok(())
    });
}
