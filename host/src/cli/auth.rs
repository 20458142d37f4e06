//! `hermes auth …`.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use hermes_plugin_api::{flow, RemovalPlan, StatusReport};
use serde_json::{json, Value};

use super::Ctx;
use crate::auth::choice;
use crate::auth::login::{self, Tick};
use crate::auth::pool::{self, EntryView, Slot, SINGLETON_SOURCE};
use crate::auth::{Store, TokenSource};
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::net::Net;
use crate::plugins::registry::Entry;
use crate::plugins::runtime::{self, PluginSet, Provider, Scope};
use crate::plugins::supervise::{self, Findings};
use crate::text;
use crate::timefmt::{countdown, iso_from_ms};
use hermes_plugin_sdk::duration::human as human_duration;

#[derive(Debug, clap::Subcommand)]
pub enum Cmd {
    /// Sign in to a provider (device code: open a URL, enter a code).
    Add {
        /// Provider id or alias.
        provider: String,
        /// A name for this login; with an existing login, a new label adds a second account.
        #[arg(long)]
        label: Option<String>,
        /// Region (e.g. global, cn); default: the provider's first.
        #[arg(long)]
        region: Option<String>,
        /// Never open a browser.
        #[arg(long)]
        no_browser: bool,
        /// Give up after this many seconds.
        #[arg(long, value_name = "SECONDS")]
        timeout: Option<u64>,
        /// Read an API key from stdin (api-key providers).
        #[arg(long)]
        api_key_stdin: bool,
    },
    /// List logins, per provider.
    List {
        /// Only this provider.
        provider: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Whether you are signed in; exit 1 when not.
    Status {
        /// Only this provider.
        provider: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove one login of a provider (by number, id or label, see `auth list`).
    Remove {
        /// Provider id or alias.
        provider: String,
        /// Number, id or label.
        entry: String,
    },
    /// Remove every login of a provider.
    Logout {
        /// Provider id or alias.
        provider: String,
    },
    /// Print a valid access token (refreshing it if due), for scripts.
    Token {
        /// Provider id or alias.
        provider: String,
        /// The login to use (number, id, label, or `oauth` for the main login); default:
        /// HERMES_ACCOUNT, then `providers.<id>.account` in config.yaml, then priority.
        #[arg(long)]
        account: Option<String>,
    },
}

pub fn run(ctx: &Ctx, cmd: Cmd) -> Result<ExitCode> {
    match cmd {
        Cmd::Add {
            provider,
            label,
            region,
            no_browser,
            timeout,
            api_key_stdin,
        } => add(
            ctx,
            &provider,
            label.as_deref(),
            region.as_deref(),
            no_browser,
            timeout,
            api_key_stdin,
        ),
        Cmd::List { provider, json } => list(ctx, provider.as_deref(), json),
        Cmd::Status { provider, json } => status(ctx, provider.as_deref(), json),
        Cmd::Remove { provider, entry } => remove(ctx, &provider, &entry),
        Cmd::Logout { provider } => logout(ctx, &provider),
        Cmd::Token { provider, account } => token(ctx, &provider, account),
    }
}

/// Load what is needed and open the provider called `name`.
pub fn open(ctx: &Ctx, name: &str) -> Result<Arc<Provider>> {
    let set = PluginSet::load(&ctx.env.paths(), runtime::Scope::Provider(name))?;
    let settings = Settings::load(&ctx.env.paths())?;
    open_entry(ctx, &settings, &set, set.resolve(name)?)
}

fn open_entry(
    ctx: &Ctx,
    settings: &Settings,
    set: &PluginSet,
    entry: &Entry,
) -> Result<Arc<Provider>> {
    let time = ctx.env.time();
    set.open(entry, &ctx.env, settings, &ctx.out, time)
}

/// Sign in to `provider` with the defaults (used by the model picker).
pub fn add_default(ctx: &Ctx, provider: &str) -> Result<()> {
    add(ctx, provider, None, None, false, None, false).map(|_| ())
}

fn add(
    ctx: &Ctx,
    name: &str,
    label: Option<&str>,
    region: Option<&str>,
    no_browser: bool,
    timeout: Option<u64>,
    api_key_stdin: bool,
) -> Result<ExitCode> {
    if let Some(l) = label {
        pool::check_label(l).map_err(|why| {
            Error::usage(
                format!("cannot use the label {:?}: {why}", text::line(l, 80)),
                "choose a name with a letter in it, such as `--label work`",
            )
        })?;
    }
    let settings = Settings::load(&ctx.env.paths())?;
    let set = PluginSet::load(&ctx.env.paths(), Scope::Provider(name))?;
    let provider = open_entry(ctx, &settings, &set, set.resolve(name)?)?;
    let d = provider.desc.clone();
    if let Some(l) = label {
        let file = Store::new(&ctx.env.paths()).read()?;
        if let Some(e) = file
            .entries(&d.id)
            .iter()
            .find(|e| e.label.eq_ignore_ascii_case(l))
        {
            ctx.out.notice(&format!(
                "a login of {} is already called {:?} (id {}); signing in replaces it",
                d.display_name,
                text::line(e.name(), 64),
                e.id
            ));
        }
    }
    let configured = settings.provider_values(&d.id).get("region").cloned();
    let region = region.or(configured.as_deref());
    if let Some(r) = region {
        if d.region(Some(r)).is_none() {
            return Err(Error::usage(
                format!("{} has no region {r:?}", d.display_name),
                format!("choose one of: {}", d.region_list()),
            ));
        }
    }
    let mut options = json!({});
    // A declared credential variable that is set lets the plugin take the key from it.
    let key_env = d.credential_env.iter().find(|v| ctx.env.var(v).is_some());
    if d.flow == flow::API_KEY && !api_key_stdin {
        match key_env {
            Some(var) => ctx.out.info(&format!("using the API key in {var}")),
            None => {
                let or_env = d
                    .credential_env
                    .first()
                    .map(|v| format!(", or set {v}"))
                    .unwrap_or_default();
                return Err(Error::usage(
                    format!("{} signs in with an API key", d.display_name),
                    format!(
                        "pipe it in: `hermes auth add {} --api-key-stdin < key.txt`{or_env} (keys are never taken as arguments)",
                        d.id
                    ),
                ));
            }
        }
    }
    if d.flow == flow::API_KEY && api_key_stdin {
        let mut key = String::new();
        std::io::stdin()
            .read_line(&mut key)
            .map_err(|e| Error::io("cannot read the key from stdin", e))?;
        options["api_key"] = Value::String(key.trim().to_string());
    }
    // A sign-in that cannot be saved is wasted (and, with device codes, spent): check the
    // store can be read and written before the server is asked for anything.
    Store::new(&ctx.env.paths()).check_writable()?;
    let challenge = login::start(&provider, region, &options.to_string())?;
    let cancel = Arc::new(AtomicBool::new(false));
    {
        let cancel = Arc::clone(&cancel);
        Net::get().runtime().spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                cancel.store(true, Ordering::SeqCst);
            }
        });
    }
    if d.flow == flow::DEVICE_CODE || !challenge.verification_uri.is_empty() {
        ctx.out.notice(&format!(
            "To sign in to {}, open this URL and enter the code:",
            d.display_name
        ));
        ctx.out.notice("");
        ctx.out.notice(&format!(
            "  {}",
            text::line(&challenge.verification_uri, 400)
        ));
        ctx.out
            .notice(&format!("  code: {}", text::line(&challenge.user_code, 64)));
        ctx.out.notice("");
        let interactive = std::io::stdin().is_terminal() && ctx.out.stderr_is_tty();
        let wanted = (interactive && !ctx.env.ssh) || super::browser::explicit(&ctx.env);
        if wanted && !no_browser && super::browser::open_url(&ctx.env, &challenge.verification_uri)
        {
            ctx.out.info("Opening the link in your browser…");
        }
    }
    let deadline = match timeout {
        Some(s) => provider
            .time
            .now_ms()
            .saturating_add(i64::try_from(s).unwrap_or(i64::MAX).saturating_mul(1000)),
        None => challenge.expires_at_ms,
    };
    if !ctx.out.animated() {
        // No terminal to animate: one plain line says what is happening and how to stop it.
        ctx.out.info(&format!(
            "waiting for approval; the code expires in {}; Ctrl-C to cancel",
            countdown(challenge.expires_at_ms - provider.time.now_ms())
        ));
    }
    let waiting = |left: i64, failing: &str| {
        format!(
            "waiting for approval… {} left (Ctrl-C to cancel){failing}",
            countdown(left)
        )
    };
    let spinner = ctx.out.spinner(&waiting(
        deadline.min(challenge.expires_at_ms) - provider.time.now_ms(),
        "",
    ));
    let mut failing = String::new();
    let result = login::wait(&provider, &challenge, deadline, &cancel, &mut |t| match t {
        Tick::Waiting(left) => {
            if let Some(s) = &spinner {
                s.set(&waiting(left, &failing));
            }
        }
        Tick::ServerFailing {
            failed,
            polls,
            last,
        } => {
            failing = format!("; the server failed {failed} of {polls}");
            // In full (status and the server's words) at the 1st, 2nd, 4th, 8th… failure,
            // above the spinner when there is one: the user learns the server is failing
            // without a line per poll.
            if failed.is_power_of_two() {
                ctx.out.warn(&format!(
                    "{}; still waiting for approval",
                    login::server_failing(failed, polls, &last)
                ));
            }
        }
    });
    drop(spinner);
    let approved = match result {
        Ok(a) => a,
        Err(e) if cancel.load(Ordering::SeqCst) => {
            ctx.out.error(&e);
            return Ok(ExitCode::from(130));
        }
        Err(e) => return Err(e),
    };
    let store = Store::new(&ctx.env.paths());
    let region_name = approved.credential.region.to_string();
    let expires = approved.credential.expires_at_ms;
    let saved = login::save(&store, &d.id, approved.credential, label)?;
    let mut line = format!("{} Signed in to {}", ctx.out.ok_mark(), d.display_name);
    if !region_name.is_empty() {
        let shown = d
            .region(Some(&region_name))
            .map_or(region_name.clone(), |r| r.shown());
        line.push_str(&format!(" (region {shown})"));
    }
    if saved.extra_account {
        line.push_str(&format!(" as an extra account {:?}", label.unwrap_or("")));
    }
    if let Some((name, id)) = &saved.replaced {
        line.push_str(&format!(
            ", replacing the login {:?} (id {id})",
            text::line(name, 64)
        ));
    }
    if expires > 0 {
        line.push_str(&format!(
            "; token valid {}",
            human_duration(expires - provider.time.now_ms())
        ));
    }
    ctx.out.result(&line);
    if !approved.message.is_empty() {
        ctx.out.notice(&format!(
            "Note from {}: {}",
            short_name(&d.display_name),
            text::line(&approved.message, 400)
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// `MiniMax (OAuth)` → `MiniMax`.
fn short_name(display: &str) -> &str {
    display.split(" (").next().unwrap_or(display)
}

/// The providers a command reports on (one, or all) and their statuses from a supervised
/// worker: these commands run no plugin code in this process.
fn providers(ctx: &Ctx, name: Option<&str>) -> Result<(Vec<Entry>, Findings)> {
    let (set, found) = supervise::diagnose(&ctx.env, name.map_or(Scope::All, Scope::Provider))?;
    let entries = match name {
        Some(n) => vec![set.resolve(n)?.clone()],
        None => set.registry.entries().to_vec(),
    };
    if name.is_none() {
        for f in found.failures.values() {
            if f.call == supervise::call::DESCRIBE {
                ctx.out.warn(&f.to_string());
            }
        }
    }
    Ok((entries, found))
}

/// What to say when no provider is installed at all: what is missing and the next command.
fn say_no_providers(ctx: &Ctx) {
    let names = crate::plugins::index::available(ctx.env.plugin_index.as_deref());
    let which = match names.as_slice() {
        [one] => one.as_str(),
        _ => "<name>",
    };
    ctx.out
        .notice("no provider is installed, so there is nothing to sign in to");
    let mut hint = format!("install one with `hermes plugins install {which}`");
    if names.len() > 1 {
        hint.push_str(&format!(" (available: {})", names.join(", ")));
    }
    ctx.out.notice(&hint);
}

/// A row standing for a provider whose plugin could not report its status.
fn failed_row(entry: &Entry, line: &str) -> Value {
    json!({
        "provider": entry.provider.id,
        "display_name": entry.provider.display_name,
        "logged_in": false,
        "state": "unavailable",
        "error": line,
    })
}

fn entry_json(e: &EntryView, n: usize, report: &StatusReport) -> Value {
    json!({
        "number": n,
        "id": e.id,
        "label": e.label,
        "source": e.source,
        "priority": e.priority,
        "state": crate::doctor::state_name(report.state),
        "logged_in": report.logged_in(),
        "summary": report.summary.as_str(),
        "region": report.region.as_str(),
        "token_preview": crate::secret::mask(&e.credential.access_token),
        "has_refresh_token": !e.credential.refresh_token.is_empty(),
        "expires_at": (e.credential.expires_at_ms > 0).then(|| iso_from_ms(e.credential.expires_at_ms)).flatten(),
        "expires_at_ms": e.credential.expires_at_ms,
        "last_error": e.last_error.as_ref().map(|le| json!({"code": le.code, "message": le.message, "at": le.at})),
        "problems": report.problems.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
    })
}

fn list(ctx: &Ctx, name: Option<&str>, as_json: bool) -> Result<ExitCode> {
    let (entries, found) = providers(ctx, name)?;
    if entries.is_empty() && !as_json {
        say_no_providers(ctx);
        return Ok(ExitCode::SUCCESS);
    }
    let file = Store::new(&ctx.env.paths()).read()?;
    let mut all = Vec::new();
    for entry in &entries {
        let (plugin, id) = (&entry.plugin_id, &entry.provider.id);
        let logins = file.entries(id);
        let mut failure = None;
        let mut rows: Vec<Value> = Vec::new();
        for (i, e) in logins.iter().enumerate() {
            match found
                .status(plugin, id, Some(&e.id))
                .into_report(plugin, id)
            {
                Ok(report) => rows.push(entry_json(e, i + 1, &report)),
                Err(line) => {
                    failure = Some(line);
                    break;
                }
            }
        }
        if let Some(line) = failure {
            if !as_json {
                ctx.out
                    .result(&format!("{id} ({}):", entry.provider.display_name));
                ctx.out.result(&format!("  {} {line}", ctx.out.bad_mark()));
            }
            all.push(failed_row(entry, &line));
            continue;
        }
        if !as_json {
            ctx.out.result(&format!(
                "{} ({}):",
                entry.provider.id, entry.provider.display_name
            ));
            if rows.is_empty() {
                ctx.out.result(&format!(
                    "  no logins; sign in with `{}`",
                    entry.provider.login_command()
                ));
            }
            for r in &rows {
                let field = |k: &str, max: usize| text::line(r[k].as_str().unwrap_or(""), max);
                let name = match field("label", 64) {
                    l if l.is_empty() => text::line(
                        shown_source(&entry.provider, r["source"].as_str().unwrap_or("")),
                        64,
                    ),
                    l => l,
                };
                ctx.out.result(&format!(
                    "  #{} {} {:<22} {:<13} {}  {}",
                    r["number"],
                    field("id", 16),
                    name,
                    text::line(
                        shown_source(&entry.provider, r["source"].as_str().unwrap_or("")),
                        13
                    ),
                    field("token_preview", 32),
                    field("summary", 200),
                ));
            }
        }
        all.push(json!({"provider": entry.provider.id, "display_name": entry.provider.display_name, "logins": rows}));
    }
    if as_json {
        ctx.out.json(&json!({"version": 1, "providers": all}));
    }
    Ok(ExitCode::SUCCESS)
}

fn status(ctx: &Ctx, name: Option<&str>, as_json: bool) -> Result<ExitCode> {
    let (entries, found) = providers(ctx, name)?;
    if entries.is_empty() && !as_json {
        say_no_providers(ctx);
        return Ok(ExitCode::FAILURE);
    }
    let file = Store::new(&ctx.env.paths()).read()?;
    let settings = crate::config::Settings::load(&ctx.env.paths())?;
    let mut any_logged_in = false;
    let mut all_logged_in = true;
    let mut out = Vec::new();
    for entry in &entries {
        let d = &entry.provider;
        let (picked, report) =
            match super::status::login_status(ctx, &settings, &file, &found, entry) {
                Ok(p) => p,
                Err(e) if name.is_some() => return Err(e),
                // With every provider listed, one misconfigured account does not hide the others.
                Err(e) => {
                    ctx.out.error(&e);
                    all_logged_in = false;
                    continue;
                }
            };
        let chosen = picked.as_ref().map(|c| &c.entry);
        let report = match report {
            Ok(r) => r,
            Err(line) => {
                all_logged_in = false;
                if as_json {
                    out.push(failed_row(entry, &line));
                } else {
                    ctx.out.result(&format!("{} ({})", d.id, d.display_name));
                    ctx.out.result(&format!("  {} {line}", ctx.out.bad_mark()));
                }
                continue;
            }
        };
        any_logged_in |= report.logged_in();
        all_logged_in &= report.logged_in();
        if as_json {
            let mut v = json!({
                "provider": d.id,
                "display_name": d.display_name,
                "logged_in": report.logged_in(),
                "state": crate::doctor::state_name(report.state),
                "summary": report.summary.as_str(),
                "region": report.region.as_str(),
                "problems": report.problems.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
            });
            if let Some(e) = chosen {
                // Numbered as `auth list` numbers them (from 1).
                let n = file
                    .entries(&d.id)
                    .iter()
                    .position(|l| l.id == e.id)
                    .map_or(0, |i| i + 1);
                v["account"] = entry_json(e, n, &report);
            }
            out.push(v);
            continue;
        }
        let mark = if report.logged_in() {
            ctx.out.ok_mark()
        } else {
            ctx.out.bad_mark()
        };
        ctx.out.result(&format!("{} ({})", d.id, d.display_name));
        ctx.out
            .result(&format!("  {mark} {}", text::line(&report.summary, 200)));
        if let Some(c) = &picked {
            let e = &c.entry;
            let name = if e.label.is_empty() {
                shown_source(d, e.name())
            } else {
                e.name()
            };
            ctx.out.result(&format!(
                "  - login: {} (id {}; {})",
                text::line(name, 64),
                e.id,
                c.reason
            ));
            if !e.credential.access_token.is_empty() {
                ctx.out.result(&format!(
                    "  - token: {}",
                    crate::secret::mask(&e.credential.access_token)
                ));
            }
            if let Some(iso) = (e.credential.expires_at_ms > 0)
                .then(|| iso_from_ms(e.credential.expires_at_ms))
                .flatten()
            {
                ctx.out.result(&format!("  - expires: {iso}"));
            }
        }
        for p in report.problems.iter() {
            ctx.out.result(&format!("  - {}", text::line(p, 200)));
        }
        // The fix, unless a problem line already names that very command.
        let fix = d.login_command();
        if !report.logged_in() && !report.problems.iter().any(|p| p.contains(fix.as_str())) {
            ctx.out.result(&format!("  - fix: {fix}"));
        }
    }
    if as_json {
        ctx.out.json(&json!({"version": 1, "logged_in": if name.is_some() { all_logged_in } else { any_logged_in }, "providers": out}));
    }
    let ok = if name.is_some() {
        all_logged_in
    } else {
        any_logged_in
    };
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn remove(ctx: &Ctx, name: &str, key: &str) -> Result<ExitCode> {
    let provider = open(ctx, name)?;
    let id = provider.desc.id.clone();
    let store = Store::new(&ctx.env.paths());
    let file = store.read()?;
    let logins = file.entries(&id);
    let Some(target) = pool::find(&logins, key).cloned() else {
        return Err(Error::msg(format!(
            "{} has no login {key:?}",
            provider.desc.display_name
        ))
        .with_help(format!("see them with `hermes auth list {id}`")));
    };
    let plan = match provider.handle.removal.as_ref().into_option() {
        Some(r) => r.removal(target.source.as_str().into()),
        None => RemovalPlan {
            clear_provider_state: target.slot == Slot::Singleton,
            suppress_source: target.slot == Slot::Singleton,
            message: Default::default(),
        },
    };
    store.update(|f| {
        match &target.slot {
            Slot::Singleton => {
                if plan.clear_provider_state {
                    f.remove_provider_state(&id);
                }
                f.remove_pool_source(&id, SINGLETON_SOURCE);
            }
            Slot::Pool(pid) => {
                f.remove_pool_entry(&id, pid);
            }
        }
        if plan.suppress_source {
            f.set_suppressed(&id, &target.source, true);
        }
        Ok(())
    })?;
    ctx.out.result(&format!(
        "removed login {} ({}) of {}",
        target.name(),
        target.id,
        provider.desc.display_name
    ));
    if !plan.message.is_empty() {
        ctx.out.info(&crate::text::line(
            plan.message.as_str(),
            crate::plugins::boundary::MAX_LINE,
        ));
    }
    Ok(ExitCode::SUCCESS)
}

fn logout(ctx: &Ctx, name: &str) -> Result<ExitCode> {
    let set = PluginSet::described(&ctx.env.paths())?;
    let d = set.resolve(name)?.provider.clone();
    let removed = login::logout(&Store::new(&ctx.env.paths()), &d.id)?;
    if removed {
        ctx.out.result(&format!(
            "signed out of {}; its logins were removed",
            d.display_name
        ));
    } else {
        ctx.out.result(&format!(
            "not signed in to {}; nothing to do",
            d.display_name
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// The refresh worker (`hermes __refresh-worker`, its request on stdin; see
/// [`crate::auth::worker`]): open the provider as any command does and refresh the login.
/// Returns the process exit code.
pub fn refresh_worker() -> u8 {
    crate::auth::worker::ignore_stop_signals();
    crate::auth::worker::serve(|request| {
        let env = crate::config::Env::from_process()?;
        let out = crate::output::Output::new(&env, request.verbose, request.quiet);
        super::configure(&env, &out);
        let ctx = Ctx { env, out };
        let provider = open(&ctx, &request.provider)?;
        let store = Store::new(&ctx.env.paths());
        TokenSource::new(store, provider, None, "", ctx.out.clone()).refresh_for_worker(&request)
    });
    0
}

fn token(ctx: &Ctx, name: &str, account: Option<String>) -> Result<ExitCode> {
    let provider = open(ctx, name)?;
    let settings = Settings::load(&ctx.env.paths())?;
    let choice = choice::account_choice(&ctx.env, &settings, &provider.desc.id, account);
    let source = TokenSource::new(
        Store::new(&ctx.env.paths()),
        provider,
        choice.key,
        &choice.source,
        ctx.out.clone(),
    );
    let resolved = source.token()?;
    ctx.out.log(
        1,
        &format!(
            "using login {} ({}): {}",
            resolved.entry_name, resolved.entry_id, resolved.reason
        ),
    );
    // The one place a token is printed unmasked: this command exists to hand it to scripts.
    ctx.out.result_checked(resolved.token.expose())?;
    Ok(ExitCode::SUCCESS)
}

/// A login's source as people read it: the main login by its kind (an API-key login is not
/// called `oauth`), a further account as such, not by its storage name `manual:<provider>`.
fn shown_source<'a>(d: &crate::plugins::ProviderDesc, source: &'a str) -> &'a str {
    if source == crate::auth::pool::SINGLETON_SOURCE {
        d.main_login_name()
    } else if source.starts_with("manual:") {
        "extra account"
    } else {
        source
    }
}
