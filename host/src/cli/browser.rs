//! Opening a URL in the user's browser, for `hermes auth add` and `hermes dashboard`.
//!
//! Callers decide *whether* to open (a terminal, no SSH session, no opt-out flag, or an
//! explicit `HERMES_BROWSER`); this launches the opener and never waits for it or reports its
//! failure, because the URL is always printed as well and the user can open it by hand.
//!
//! The opener is `HERMES_BROWSER` when set (a program, given the URL as its one argument),
//! else the platform's (`xdg-open`, `open`). A command line is visible to every local user
//! (`ps`, `/proc/*/cmdline`), so a URL that carries a secret is never put on one: it goes into
//! a page only the user can read, which sends the browser on (see [`SecretPage`]).

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::config::Env;
use crate::error::{Error, Result};

fn opener(env: &Env) -> String {
    match env.var("HERMES_BROWSER") {
        Some(b) => b.to_string(),
        None if cfg!(target_os = "macos") => "open".into(),
        None => "xdg-open".into(),
    }
}

/// Whether `HERMES_BROWSER` names an opener: the user asked for a browser even where hermes
/// would not open one by itself (no terminal).
pub fn explicit(env: &Env) -> bool {
    env.var("HERMES_BROWSER").is_some()
}

fn launch(env: &Env, arg: &str) -> bool {
    std::process::Command::new(opener(env))
        .arg(arg)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .is_ok()
}

/// Whether a server-provided `url` may be handed to the opener: an absolute https URL (http
/// only to loopback). Anything else (another scheme, a `file:` path, text starting with `-`
/// that an opener would read as an option) is left for the user to copy from the screen.
fn openable(url: &str) -> bool {
    match reqwest::Url::parse(url) {
        Ok(u) => match u.scheme() {
            "https" => true,
            "http" => crate::net::is_loopback(&u),
            _ => false,
        },
        Err(_) => false,
    }
}

/// Open a URL that holds no secret (a sign-in page of the provider); whether an opener was
/// started.
pub fn open_url(env: &Env, url: &str) -> bool {
    openable(url) && launch(env, url)
}

/// A page under `HERMES_HOME`, readable only by the user (0600, in the 0700 home), that sends
/// the browser to a URL carrying a secret — the way Jupyter opens its notebook server. The
/// opener sees only the file's path. The file is removed when this is dropped.
pub struct SecretPage {
    path: PathBuf,
}

impl SecretPage {
    /// Write the page for `url` in `dir`, which must exist and be private to the user.
    pub fn write(dir: &Path, url: &str) -> Result<SecretPage> {
        // A fresh random name, created O_EXCL with mode 0600: nothing planted there is followed.
        let mut f = tempfile::Builder::new()
            .prefix("dashboard-open-")
            .suffix(".html")
            .tempfile_in(dir)
            .map_err(|e| Error::io(format!("cannot create a file in {}", dir.display()), e))?;
        let attr = html_attr(url);
        // `<` escaped so that no URL can close the script element.
        let js = serde_json::to_string(url)
            .unwrap_or_else(|_| "\"\"".into())
            .replace('<', "\\u003c");
        let page = format!(
            "<!doctype html>\n<html><head><meta charset=\"utf-8\">\n\
             <meta http-equiv=\"refresh\" content=\"0;url={attr}\">\n\
             <title>hermes dashboard</title></head>\n\
             <body><script>window.location.replace({js});</script>\n\
             <p>Opening the <a href=\"{attr}\">hermes dashboard</a>…</p></body></html>\n"
        );
        f.write_all(page.as_bytes())
            .and_then(|_| f.as_file().sync_all())
            .map_err(|e| Error::io("cannot write the dashboard's opener page", e))?;
        let (_, path) = f
            .keep()
            .map_err(|e| Error::io("cannot keep the dashboard's opener page", e.error))?;
        Ok(SecretPage { path })
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Open it in the browser: the opener's command line holds the file's path only. Whether
    /// an opener was started.
    pub fn open(&self, env: &Env) -> bool {
        launch(env, &format!("file://{}", self.path.display()))
    }
}

impl Drop for SecretPage {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn html_attr(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn only_https_and_loopback_http_are_opened() {
        assert!(openable("https://www.minimax.io/verify?code=AB"));
        assert!(openable("http://127.0.0.1:8080/verify"));
        assert!(!openable("http://evil.example/verify"));
        assert!(!openable("file:///etc/passwd"));
        assert!(!openable("--help"));
        assert!(!openable("javascript:alert(1)"));
    }

    #[test]
    fn the_secret_page_is_private_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let url = "http://127.0.0.1:5/?token=0123abcd&x=\"<y>";
        let page = SecretPage::write(dir.path(), url).unwrap();
        let path = page.path().to_path_buf();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let html = std::fs::read_to_string(&path).unwrap();
        assert!(
            html.contains("token=0123abcd&amp;x=&quot;&lt;y&gt;"),
            "{html}"
        );
        assert!(
            html.contains("replace(\"http://127.0.0.1:5/?token=0123abcd&x=\\\"\\u003cy>\")"),
            "{html}"
        );
        drop(page);
        assert!(!path.exists());
    }
}
