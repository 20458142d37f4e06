//! The dashboard page in a real browser: headless Chromium driven through chromedriver
//! (WebDriver, with `fantoccini`). Signs in and out of MiniMax in both regions against the
//! emulator, the way a person would, and leaves screenshots under `target/screens/`.
//!
//! Needs the Debian packages `chromium-headless-shell` (or `chromium`) and `chromium-driver`;
//! without them the test fails and says so (it never passes silently).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use super::Dash;
use crate::support::*;

/// How long any one page condition may take to appear.
const WAIT: Duration = Duration::from_secs(30);

/// The longest one look inside the page lasts before the test hears back (well under
/// WebDriver's 30 s script timeout).
const LOOK: Duration = Duration::from_secs(2);

/// A JS function: the rendered text of the first element matching a selector, or `''` when
/// there is none or it is not rendered (as WebDriver's element text).
const READ_TEXT: &str = "((css) => { const e = document.querySelector(css); \
    return e && e.checkVisibility({ visibilityProperty: true }) ? e.innerText.trim() : ''; })";

/// The flags the browser runs with: no sandbox (containers), no GPU, and nothing that talks
/// to the network behind the test's back.
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1100,1000",
];

fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path).chain([PathBuf::from("/usr/bin")]) {
        for n in names {
            let p = dir.join(n);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// Where screenshots go: `target/screens/`.
fn output_dir() -> PathBuf {
    let dir = bin_dir().parent().expect("target dir").join("screens");
    std::fs::create_dir_all(&dir).expect("create the test output dir");
    dir
}

/// chromedriver and one Chromium session, ended when dropped.
struct Browser {
    rt: tokio::runtime::Runtime,
    client: Option<Client>,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start(scratch: &Path) -> Browser {
        // Chromium's headless shell where it is installed: the same engine (Blink and V8)
        // without the desktop browser around it. A session costs about a third of the CPU
        // of `chromium --headless` to start and to answer commands (0.9 s against 3.0 s for a
        // start and 20 navigations, measured through chromedriver).
        let (chromium, browser_name) = match find_program(&["chromium-headless-shell"]) {
            Some(shell) => (shell, "chrome-headless-shell"),
            None => (
                find_program(&["chromium", "chromium-browser"]).unwrap_or_else(|| {
                    panic!("headless Chromium is required for this test and was not found: `apt-get install -y chromium-headless-shell chromium-driver`")
                }),
                "chrome",
            ),
        };
        let chromedriver = find_program(&["chromedriver"]).unwrap_or_else(|| {
            panic!("chromedriver is required for this test and was not found: `apt-get install -y chromium-driver`")
        });
        // A free port for chromedriver: bind, read, release.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = std::fs::File::create(scratch.join("chromedriver.log")).unwrap();
        let mut driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver.display()));
        let up = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(st)) = driver.try_wait() {
                panic!(
                    "chromedriver exited ({st}): {}",
                    std::fs::read_to_string(scratch.join("chromedriver.log")).unwrap_or_default()
                );
            }
            assert!(
                up.elapsed() < WAIT,
                "chromedriver did not listen within {WAIT:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = tempfile::tempdir().unwrap();
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|s| s.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let caps = json!({
            "browserName": browser_name,
            "goog:chromeOptions": {
                "binary": chromium.display().to_string(),
                "args": args,
                // The first tab opens `about:blank`. Without this, Chromium renders its
                // new-tab page (a web app of its own) behind the test's first navigation:
                // about 2.5 s of CPU per browser, for nothing the test looks at.
                "prefs": {
                    "session.restore_on_startup": 4,
                    "session.startup_urls": ["about:blank"],
                },
            },
        });
        let caps = caps.as_object().unwrap().clone();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let client = rt
            .block_on(
                ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                    .capabilities(caps)
                    .connect(&format!("http://127.0.0.1:{port}")),
            )
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start headless Chromium through chromedriver: {e}\n{}",
                    std::fs::read_to_string(scratch.join("chromedriver.log")).unwrap_or_default()
                )
            });
        Browser {
            rt,
            client: Some(client),
            driver,
            _profile: profile,
        }
    }

    fn c(&self) -> &Client {
        self.client.as_ref().expect("client")
    }

    fn goto(&self, url: &str) {
        self.rt.block_on(self.c().goto(url)).expect("open the page");
    }

    /// The rendered text of the first element matching `css` (empty when hidden or absent),
    /// read by one script in the page. Finding the element and asking WebDriver for its text
    /// costs two commands and runs WebDriver's text atom: 30 ms of CPU against 9 ms, measured
    /// through chromedriver.
    fn text(&self, css: &str) -> String {
        let script = format!("return {READ_TEXT}(arguments[0]);");
        self.rt
            .block_on(self.c().execute(&script, vec![json!(css)]))
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    /// Evaluate `value` (a JS expression over `args`) in the page every 20 ms until `until`
    /// (a JS expression over that value, `v`) holds or `most` has passed; the last value.
    /// One WebDriver command per wait instead of one per poll, and no state the page shows
    /// for longer than 20 ms goes unseen. `None` when the script was cut short (a navigation
    /// ends it).
    fn look(
        &self,
        value: &str,
        until: &str,
        mut args: Vec<serde_json::Value>,
        most: Duration,
    ) -> Option<serde_json::Value> {
        let script = format!(
            "const args = arguments; const done = args[args.length - 1]; \
             const end = performance.now() + args[args.length - 2]; \
             (function look() {{ let v = null; try {{ v = {value}; }} catch (e) {{}} \
               if (({until}) || performance.now() >= end) done(v); else setTimeout(look, 20); }})();"
        );
        args.push(json!(most.as_millis() as u64));
        match self.rt.block_on(self.c().execute_async(&script, args)) {
            Ok(v) => Some(v),
            Err(_) => {
                std::thread::sleep(Duration::from_millis(50));
                None
            }
        }
    }

    /// The text of `css` once it differs from `last`, or as it is after `most`.
    fn next_text(&self, css: &str, last: &str, most: Duration) -> String {
        let value = format!("{READ_TEXT}(args[0])");
        match self.look(&value, "v !== args[1]", vec![json!(css), json!(last)], most) {
            Some(v) => v.as_str().unwrap_or_default().to_string(),
            None => self.text(css),
        }
    }

    /// Wait until the text of `css` satisfies `ok`; returns it.
    #[track_caller]
    fn wait_text(&self, css: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
        self.wait_text_for(css, what, WAIT, ok)
    }

    /// [`Browser::wait_text`] with its own time limit. Every text the element shows on the way
    /// is checked.
    #[track_caller]
    fn wait_text_for(
        &self,
        css: &str,
        what: &str,
        limit: Duration,
        ok: impl Fn(&str) -> bool,
    ) -> String {
        let start = Instant::now();
        let mut t = self.text(css);
        loop {
            if ok(&t) {
                return t;
            }
            let left = limit.saturating_sub(start.elapsed());
            if left.is_zero() {
                let shot = self.screenshot("failure");
                panic!(
                    "timed out waiting for {what} ({css}); last text {t:?}; screenshot {}",
                    shot.display()
                );
            }
            t = self.next_text(css, &t, left.min(LOOK));
        }
    }

    /// Wait until `script` (a JS expression) is true, looked at by the page every 20 ms.
    #[track_caller]
    fn wait_js(&self, script: &str, what: &str) {
        let value = format!("!!({script})");
        let start = Instant::now();
        loop {
            let left = WAIT.saturating_sub(start.elapsed());
            if self.look(&value, "v", vec![], left.min(LOOK)) == Some(json!(true)) {
                return;
            }
            if start.elapsed() > WAIT {
                let shot = self.screenshot("failure");
                panic!(
                    "timed out waiting for {what} ({script}); screenshot {}",
                    shot.display()
                );
            }
        }
    }

    fn js(&self, script: &str) -> serde_json::Value {
        self.rt
            .block_on(self.c().execute(script, vec![]))
            .expect("run a script in the page")
    }

    fn click(&self, css: &str) {
        self.rt
            .block_on(async {
                let e = self
                    .c()
                    .wait()
                    .at_most(WAIT)
                    .for_element(Locator::Css(css))
                    .await?;
                e.click().await
            })
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Press Enter on `css` (keyboard use, not a click).
    fn press_enter(&self, css: &str) {
        self.rt
            .block_on(async {
                let e = self
                    .c()
                    .wait()
                    .at_most(WAIT)
                    .for_element(Locator::Css(css))
                    .await?;
                e.send_keys(&fantoccini::key::Key::Enter.to_string()).await
            })
            .unwrap_or_else(|e| panic!("press Enter on {css}: {e}"));
    }

    fn select(&self, css: &str, value: &str) {
        self.rt
            .block_on(async {
                let e = self
                    .c()
                    .wait()
                    .at_most(WAIT)
                    .for_element(Locator::Css(css))
                    .await?;
                e.select_by_value(value).await
            })
            .unwrap_or_else(|e| panic!("select {value} in {css}: {e}"));
    }

    fn resize(&self, w: u32, h: u32) {
        self.rt
            .block_on(self.c().set_window_size(w, h))
            .expect("resize the window");
    }

    /// Save a PNG of the window as `target/screens/<name>.png`.
    fn screenshot(&self, name: &str) -> PathBuf {
        let png = self
            .rt
            .block_on(self.c().screenshot())
            .expect("take a screenshot");
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        let path = output_dir().join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write the screenshot");
        println!("screenshot: {}", path.display());
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(c) = self.client.take() {
            let _ = self
                .rt
                .block_on(async { tokio::time::timeout(Duration::from_secs(10), c.close()).await });
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Whether `t` reads like `9:58`.
fn is_mss(t: &str) -> bool {
    let b = t.as_bytes();
    b.len() == 4 && b[0].is_ascii_digit() && b[1] == b':' && b[2..].iter().all(u8::is_ascii_digit)
}

const CARD: &str = r#"[data-provider="minimax-oauth"]"#;

fn sel(inner: &str) -> String {
    format!("{CARD} {inner}")
}

/// Sign in through the page in `region` and out again; returns the user code used.
fn sign_in_and_out(
    b: &Browser,
    emu: &Emulator,
    home: &Home,
    region: &str,
    keyboard: bool,
    shot: &str,
) {
    b.wait_text(
        &sel(r#"[data-role="status"]"#),
        "the provider's status",
        |t| t.contains("Not signed in"),
    );
    b.select(&sel(r#"[data-role="region"]"#), region);
    if keyboard {
        b.press_enter(&sel(r#"[data-action="signin"]"#));
    } else {
        b.click(&sel(r#"[data-action="signin"]"#));
    }
    let code = b.wait_text(&sel(r#"[data-role="user-code"]"#), "the user code", |t| {
        !t.trim().is_empty()
    });
    let code = code.trim().to_string();
    assert!(
        emu.pending_user_codes().contains(&code),
        "the page shows the emulator's pending code {code}"
    );
    let href = b.js(&format!(
        "return document.querySelector('{}').getAttribute('href');",
        sel(r#"[data-role="verification-url"]"#).replace('\'', "\\'")
    ));
    let portal = if region == "cn" {
        emu.cn_url()
    } else {
        emu.url()
    };
    assert!(
        href.as_str()
            .unwrap_or("")
            .starts_with(&format!("{portal}/verify?user_code=")),
        "{href}"
    );
    // m:ss under 10 minutes, as in the terminal.
    b.wait_text(
        &sel(r#"[data-role="countdown"]"#),
        "the countdown in m:ss",
        |t| t.starts_with("The code expires in ") && is_mss(t.rsplit(' ').next().unwrap_or("")),
    );
    // The panel names the region, and the region cannot change under a sign-in.
    let label = if region == "cn" {
        "China (cn)"
    } else {
        "Global (global)"
    };
    let heading = b.text(&sel(r#"[data-role="signing-in"]"#));
    assert!(heading.contains(label), "{heading}");
    assert_eq!(
        b.js(&format!(
            "return document.querySelector('{}').disabled;",
            sel(r#"[data-role="region"]"#).replace('\'', "\\'")
        )),
        json!(true),
        "the region select is disabled during a sign-in"
    );
    b.wait_js(
        &format!("document.querySelector('{}').complete && !document.querySelector('{0}').hidden && document.querySelector('{0}').naturalWidth > 0", sel(r#"[data-role="qr"]"#).replace('\'', "\\'")),
        "the QR code",
    );
    // The link has focus after starting, for keyboard users.
    assert_eq!(
        b.js("return document.activeElement.getAttribute('data-role');"),
        json!("verification-url")
    );
    b.screenshot(&format!("{shot}-code"));

    assert!(emu.approve(&code));
    b.wait_text(&sel(r#"[data-role="result"]"#), "the result", |t| {
        t.contains("Signed in.")
    });
    let status = b.wait_text(&sel(r#"[data-role="status"]"#), "logged in", |t| {
        t.contains("Logged in")
    });
    let label = if region == "cn" {
        "China (cn)"
    } else {
        "Global (global)"
    };
    assert!(status.contains(&format!("region {label}")), "{status}");
    assert!(status.contains("expires in 1"), "{status}");
    let s = stored(home);
    assert_eq!(s["region"], region, "auth.json says region {region}");
    assert!(s["access_token"].as_str().unwrap().starts_with("mm-at-"));
    b.screenshot(&format!("{shot}-signed-in"));

    assert_eq!(
        b.js(&format!(
            "return document.querySelector('{}').disabled;",
            sel(r#"[data-role="region"]"#).replace('\'', "\\'")
        )),
        json!(false),
        "the region select is enabled again after the sign-in"
    );
    b.click(&sel(r#"[data-action="signout"]"#));
    b.wait_js(
        "document.getElementById('confirm').open",
        "the sign-out confirmation",
    );
    // Commands show as code, not between backticks.
    let dialog = b.text("#confirm-text");
    assert!(!dialog.contains('`'), "{dialog}");
    assert_eq!(
        b.js("return document.querySelector('#confirm-text code').textContent;"),
        json!("hermes auth logout minimax-oauth")
    );
    b.screenshot(&format!("{shot}-sign-out-dialog"));
    b.click("#confirm-yes");
    b.wait_text(&sel(r#"[data-role="status"]"#), "signed out", |t| {
        t.contains("Not signed in")
    });
    b.wait_text(
        &sel(r#"[data-role="result"]"#),
        "the sign-out result",
        |t| t.contains("Signed out"),
    );
    assert!(
        home.auth_json()["providers"].get("minimax-oauth").is_none(),
        "signed out in auth.json"
    );
}

#[test]
fn dashboard_in_headless_chromium_signs_in_and_out_in_both_regions() {
    let (emu, home) = minimax(EmulatorConfig {
        interval_ms: 0,
        ..EmulatorConfig::default()
    });
    let browser = Browser::start(&home.scratch());

    // Global: the home's overrides point at the emulator's global region. Opened the way
    // `hermes dashboard` opens a browser: through the private page it hands the opener (the
    // URL with the token is never on a command line).
    let rec = home.scratch().join("opener");
    std::fs::create_dir_all(&rec).unwrap();
    let opener = super::recording_opener(&rec);
    let d = Dash::start_args(&home, &[], &[("HERMES_BROWSER", opener.to_str().unwrap())]);
    super::wait_for_opener(&rec, &d);
    let argv = std::fs::read_to_string(rec.join("argv")).unwrap();
    assert!(!argv.contains(&d.token), "{argv}");
    browser.goto(argv.trim());
    browser.wait_js(
        &format!("location.origin === 'http://127.0.0.1:{}'", d.port),
        "the opener page to forward to the dashboard",
    );
    // The token left the address bar as soon as the page read it.
    browser.wait_js(
        "location.search === ''",
        "the token to leave the address bar",
    );
    let summary = browser.wait_text("#doctor-summary", "the doctor section", |t| {
        t.contains("needs action") || t.contains("need action")
    });
    assert!(counts_findings_properly(&summary), "{summary}");
    sign_in_and_out(&browser, &emu, &home, "global", false, "global");
    assert_eq!(emu.counters().global.logins_completed, 1);
    drop(d);

    // cn: this dashboard's portal override points at the emulator's cn region; signed in
    // with the keyboard this time.
    let cn = emu.cn_url();
    let cn_inference = emu.cn_inference_url();
    let d = Dash::start(
        &home,
        &[
            ("MINIMAX_PORTAL_BASE_URL", &cn),
            ("MINIMAX_INFERENCE_BASE_URL", &cn_inference),
        ],
    );
    browser.goto(&d.url);
    sign_in_and_out(&browser, &emu, &home, "cn", true, "cn");
    let c = emu.counters();
    assert_eq!((c.cn.logins_completed, c.global.logins_completed), (1, 1));

    // A narrow window still shows everything, signed in, with a code on screen.
    browser.resize(420, 1000);
    browser.goto(&d.url);
    browser.click(&sel(r#"[data-action="signin"]"#));
    browser.wait_text(&sel(r#"[data-role="user-code"]"#), "the user code", |t| {
        !t.trim().is_empty()
    });
    // The link may wrap, but never inside the user code it carries.
    let code = browser.text(&sel(r#"[data-role="user-code"]"#));
    let lines = browser.js(&format!(
        "const a = document.querySelector('{}'); const span = a.querySelector('.nowrap'); \
         if (!span || span.textContent !== {code:?}) return -1; \
         const r = document.createRange(); r.selectNodeContents(span); \
         return new Set(Array.from(r.getClientRects()).map((x) => Math.round(x.top))).size;",
        sel(r#"[data-role="verification-url"]"#).replace('\'', "\\'")
    ));
    assert_eq!(lines, json!(1), "the code in the link is on one line");
    let link_lines = browser.js(&format!(
        "const r = document.createRange(); r.selectNodeContents(document.querySelector('{}')); \
         return new Set(Array.from(r.getClientRects()).map((x) => Math.round(x.top))).size;",
        sel(r#"[data-role="verification-url"]"#).replace('\'', "\\'")
    ));
    assert!(
        link_lines.as_u64().unwrap() >= 2,
        "the narrow window does wrap the link: {link_lines}"
    );
    let overflow = browser.js("return document.documentElement.scrollWidth > window.innerWidth;");
    assert_eq!(
        overflow,
        json!(false),
        "no horizontal scrolling in a narrow window"
    );
    browser.screenshot("narrow");
    // The session token never appears in the page's own text.
    let html = browser.js("return document.documentElement.outerHTML;");
    assert!(!html.as_str().unwrap().contains(&d.token));
}

/// The doctor summary counts in words: "1 finding needs action.", "3 findings need action."
/// (never "finding(s)").
fn counts_findings_properly(summary: &str) -> bool {
    let t = summary.trim();
    let Some((n, rest)) = t.split_once(' ') else {
        return false;
    };
    match n.parse::<u32>() {
        Ok(1) => rest == "finding needs action.",
        Ok(n) if n > 1 => rest == "findings need action.",
        _ => false,
    }
}

/// Open `d`'s page in `b` and wait for the MiniMax card.
fn open(b: &Browser, d: &Dash) {
    b.goto(&d.url);
    b.wait_text(
        &sel(r#"[data-role="status"]"#),
        "the provider's status",
        |t| !t.is_empty(),
    );
}

/// The page's visible text.
fn body_text(b: &Browser) -> String {
    b.text("body")
}

#[test]
fn dashboard_page_says_when_the_dashboard_stopped() {
    let (emu, home) = minimax(manual_emulator());
    let browser = Browser::start(&home.scratch());
    let d = Dash::start(&home, &[]);
    open(&browser, &d);
    browser.click(&sel(r#"[data-action="signin"]"#));
    let code = browser.wait_text(&sel(r#"[data-role="user-code"]"#), "the user code", |t| {
        !t.trim().is_empty()
    });
    browser.wait_text(&sel(r#"[data-role="result"]"#), "waiting", |t| {
        t.contains("Waiting for you to approve")
    });
    // The dashboard process goes away (killed: no chance to say goodbye).
    drop(d);
    let notice = browser.wait_text("#notice", "the lost-dashboard notice", |t| {
        t.contains("The dashboard stopped")
    });
    assert!(notice.contains("run hermes dashboard again"), "{notice}");
    assert_eq!(
        browser.js("return document.querySelector('#notice code').textContent;"),
        json!("hermes dashboard")
    );
    let result = browser.text(&sel(r#"[data-role="result"]"#));
    assert!(result.contains("nothing was saved"), "{result}");
    // No countdown, no waiting text, nothing left to click.
    let text = body_text(&browser);
    assert!(!text.contains("Waiting for you"), "{text}");
    assert!(!text.contains("expires in"), "{text}");
    assert!(!text.contains('`'), "{text}");
    assert_eq!(
        browser.js("return document.querySelector('[data-action=\"signin\"]').disabled;"),
        json!(true)
    );
    browser.screenshot("dashboard-stopped");
    // Approving now saves nothing, and the page never claims otherwise.
    assert!(emu.approve(code.trim()));
    std::thread::sleep(Duration::from_secs(3));
    assert!(!home.path().join("auth.json").exists());
    assert!(!body_text(&browser).contains("Signed in."));
}

/// The page re-reads the providers' state when the tab comes back into focus, and on its
/// own every `REFRESH_MS` (30 s; for the periodic read, a second dashboard makes it 2 s
/// through `HERMES_TEST_DASHBOARD_REFRESH_MS`, so the test does not wait half a minute for
/// what a shorter period shows as well).
#[test]
fn dashboard_page_rereads_provider_state() {
    let (emu, home) = minimax(approving());
    login(&home);
    let browser = Browser::start(&home.scratch());
    let d = Dash::start(&home, &[]);
    open(&browser, &d);
    browser.wait_text(&sel(r#"[data-role="status"]"#), "logged in", |t| {
        t.contains("Logged in")
    });
    // A logout in a terminal shows when the tab comes back into focus.
    home.run(&["auth", "logout", "minimax-oauth"]).ok();
    browser.js("window.dispatchEvent(new Event('focus')); return 0;");
    // Well within the 30 s between periodic reads: the focus itself re-read the state.
    browser.wait_text_for(
        &sel(r#"[data-role="status"]"#),
        "signed out, on focus",
        Duration::from_secs(10),
        |t| t.contains("Not signed in"),
    );
    // A page behind a terminal logout does not claim to sign out what is not there.
    login(&home);
    browser.js("window.dispatchEvent(new Event('focus')); return 0;");
    browser.wait_text(&sel(r#"[data-role="status"]"#), "logged in", |t| {
        t.contains("Logged in")
    });
    home.run(&["auth", "logout", "minimax-oauth"]).ok();
    browser.click(&sel(r#"[data-action="signout"]"#));
    browser.wait_js(
        "document.getElementById('confirm').open",
        "the confirmation",
    );
    browser.click("#confirm-yes");
    let r = browser.wait_text(&sel(r#"[data-role="result"]"#), "the result", |t| {
        t.contains("nothing was removed")
    });
    assert!(!r.contains("Signed out of"), "{r}");
    browser.wait_text(&sel(r#"[data-role="status"]"#), "signed out", |t| {
        t.contains("Not signed in")
    });
    browser.screenshot("signed-out-elsewhere");

    // A token that expires while the page is open never reads "expires in 0 s" on a green
    // badge: it turns into the expired state on time.
    emu.set_config(|c| c.access_ttl_ms = 8_000);
    login(&home);
    browser.js("window.dispatchEvent(new Event('focus')); return 0;");
    browser.wait_text(
        &sel(r#"[data-role="status"]"#),
        "a short-lived login",
        |t| t.contains("Logged in") && t.contains("expires in "),
    );
    // Every text the badge shows on the way (the page is looked at every 20 ms).
    let status = sel(r#"[data-role="status"]"#);
    let start = Instant::now();
    let mut seen = Vec::new();
    let mut t = browser.text(&status);
    loop {
        assert!(
            !(t.contains("expires in 0 s")),
            "an expired token shown as alive: {t:?}"
        );
        if t.contains("Token expired") {
            let green = browser.js(&format!(
                "return !!document.querySelector('{} .badge.ok');",
                status.replace('\'', "\\'")
            ));
            assert_eq!(green, json!(false), "{t}");
            assert!(t.contains("fetched on next use"), "{t}");
            break;
        }
        assert!(start.elapsed() < WAIT, "never shown as expired: {seen:?}");
        let next = browser.next_text(&status, &t, LOOK);
        seen.push(std::mem::replace(&mut t, next));
    }
    browser.screenshot("token-expired");

    // And with no event at all, within the page's refresh period.
    home.run(&["auth", "logout", "minimax-oauth"]).ok();
    emu.set_config(|c| c.access_ttl_ms = 900_000);
    let fast = Dash::start(&home, &[("HERMES_TEST_DASHBOARD_REFRESH_MS", "2000")]);
    open(&browser, &fast);
    browser.wait_text(&sel(r#"[data-role="status"]"#), "signed out", |t| {
        t.contains("Not signed in")
    });
    login(&home);
    browser.wait_text_for(
        &sel(r#"[data-role="status"]"#),
        "the terminal's sign-in to show without a reload",
        Duration::from_secs(15),
        |t| t.contains("Logged in"),
    );
}

#[test]
fn dashboard_page_shows_a_failing_server_while_waiting_and_at_the_end() {
    let (emu, home) = minimax(EmulatorConfig {
        code_ttl_ms: 9_000,
        ..manual_emulator()
    });
    let browser = Browser::start(&home.scratch());
    let d = Dash::start(&home, &[]);
    open(&browser, &d);
    // A 500 when the sign-in starts: the status and the server's message, never its JSON.
    emu.inject("/oauth2/device/code", Fault::Status500, 1);
    browser.click(&sel(r#"[data-action="signin"]"#));
    let r = browser.wait_text(&sel(r#"[data-role="result"]"#), "the start error", |t| {
        t.contains("Could not start")
    });
    assert!(
        r.contains("HTTP 500") && r.contains("internal server error"),
        "{r}"
    );
    assert!(!r.contains('{') && !r.contains("base_resp"), "{r}");
    browser.screenshot("start-500");

    // A 500 on every poll: said while waiting, with how often, and at the end.
    emu.inject("/oauth2/token", Fault::Status500, 1000);
    browser.click(&sel(r#"[data-action="signin"]"#));
    let failing = browser.wait_text(
        &sel(r#"[data-role="failing"]"#),
        "the failing-server line",
        |t| t.contains("The server is failing"),
    );
    assert!(failing.contains("HTTP 500"), "{failing}");
    assert!(failing.contains(" of "), "{failing}");
    assert!(
        browser
            .text(&sel(r#"[data-role="countdown"]"#))
            .contains("expires in"),
        "still waiting"
    );
    browser.screenshot("polls-failing");
    let end = browser.wait_text(&sel(r#"[data-role="result"]"#), "the end", |t| {
        !t.contains("Waiting") && !t.contains("Starting")
    });
    assert!(
        end.starts_with("The code expired before it was approved"),
        "{end}"
    );
    assert!(end.contains("the server was failing: it failed "), "{end}");
    assert!(!end.contains(".;") && !end.contains("timed out"), "{end}");
    assert!(end.contains("HTTP 500"), "{end}");
    assert!(end.to_lowercase().contains("nothing was saved"), "{end}");
    assert!(browser.text(&sel(r#"[data-role="failing"]"#)).is_empty());
    browser.screenshot("polls-failed-end");
}

#[test]
fn dashboard_page_after_its_session_ended_says_so_once() {
    let (_emu, home) = minimax(manual_emulator());
    let browser = Browser::start(&home.scratch());
    let d = Dash::start(&home, &[]);
    open(&browser, &d);
    browser.wait_text("#doctor-summary", "the doctor section", |t| {
        t.contains("needs action") || t.contains("need action") || t.contains("No problems")
    });
    // The dashboard restarts on the same port with a new token: the open page is stale.
    let port = d.port;
    drop(d);
    let d2 = Dash::start_on(&home, port);
    browser.js("window.dispatchEvent(new Event('focus')); return 0;");
    let notice = browser.wait_text("#notice", "the ended-session notice", |t| {
        t.contains("session ended")
    });
    assert!(notice.contains("run hermes dashboard again"), "{notice}");
    let text = body_text(&browser);
    assert!(!text.contains("Loading"), "{text}");
    assert!(!text.contains("Run the checks again"), "{text}");
    assert!(!text.contains("MiniMax"), "no stale cards: {text}");
    assert!(!text.contains('`'), "{text}");
    browser.screenshot("session-ended");

    // Opened without a token at all: the same one message, no empty doctor card.
    browser.js("sessionStorage.clear(); return 0;");
    browser.goto(&format!("http://127.0.0.1:{}/", d2.port));
    let notice = browser.wait_text("#notice", "the no-token notice", |t| {
        t.contains("session ended")
    });
    assert!(notice.contains("hermes dashboard"), "{notice}");
    let text = body_text(&browser);
    assert!(!text.contains("Loading"), "{text}");
    assert!(!text.contains("Run the checks again"), "{text}");
    assert!(!text.contains("Doctor"), "{text}");
    assert!(!text.contains('`'), "{text}");
    browser.screenshot("no-token");
}

fn manual_emulator() -> EmulatorConfig {
    EmulatorConfig {
        interval_ms: 0,
        ..EmulatorConfig::default()
    }
}
