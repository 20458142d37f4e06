//! The dashboard page in a real browser: headless Chromium driven through chromedriver
//! (WebDriver, with `fantoccini`). Signs in and out of MiniMax in both regions against the
//! emulator, the way a person would, and leaves screenshots under
//! `target/test-output/dashboard/`.
//!
//! Needs the Debian packages `chromium` and `chromium-driver`; without them the test fails
//! and says so (it never passes silently).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use super::Dash;
use crate::support::*;

/// How long any one page condition may take to appear.
const WAIT: Duration = Duration::from_secs(30);

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

/// Where screenshots go: `target/test-output/dashboard/`.
fn output_dir() -> PathBuf {
    let dir = bin_dir()
        .parent()
        .expect("target dir")
        .join("test-output")
        .join("dashboard");
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
        let chromium = find_program(&["chromium", "chromium-browser"]).unwrap_or_else(|| {
            panic!("headless Chromium is required for this test and was not found: `apt-get install -y chromium chromium-driver`")
        });
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
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": chromium.display().to_string(), "args": args },
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

    /// The rendered text of the first element matching `css` (empty when hidden or absent).
    fn text(&self, css: &str) -> String {
        self.rt.block_on(async {
            match self.c().find(Locator::Css(css)).await {
                Ok(e) => e.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            }
        })
    }

    /// Wait until the text of `css` satisfies `ok`; returns it.
    #[track_caller]
    fn wait_text(&self, css: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let t = self.text(css);
            if ok(&t) {
                return t;
            }
            if start.elapsed() > WAIT {
                let shot = self.screenshot("failure");
                panic!(
                    "timed out waiting for {what} ({css}); last text {t:?}; screenshot {}",
                    shot.display()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Wait until `script` (a JS expression) is true.
    #[track_caller]
    fn wait_js(&self, script: &str, what: &str) {
        let start = Instant::now();
        loop {
            let v = self
                .rt
                .block_on(self.c().execute(&format!("return !!({script});"), vec![]));
            if matches!(v, Ok(serde_json::Value::Bool(true))) {
                return;
            }
            if start.elapsed() > WAIT {
                let shot = self.screenshot("failure");
                panic!(
                    "timed out waiting for {what} ({script}); screenshot {}",
                    shot.display()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
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

    /// Save a PNG of the window as `target/test-output/dashboard/<name>.png`.
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
    b.wait_text(&sel(r#"[data-role="countdown"]"#), "the countdown", |t| {
        t.contains("expires in")
    });
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
    assert!(status.contains(&format!("region {region}")), "{status}");
    assert!(status.contains("expires in 1"), "{status}");
    let s = stored(home);
    assert_eq!(s["region"], region, "auth.json says region {region}");
    assert!(s["access_token"].as_str().unwrap().starts_with("mm-at-"));
    b.screenshot(&format!("{shot}-signed-in"));

    b.click(&sel(r#"[data-action="signout"]"#));
    b.wait_js(
        "document.getElementById('confirm').open",
        "the sign-out confirmation",
    );
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
    browser.wait_text("#doctor-summary", "the doctor section", |t| {
        t.contains("finding(s) need action")
    });
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
