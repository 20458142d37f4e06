//! Opening a URL in the user's browser, for `hermes auth add` and `hermes dashboard`.
//!
//! Callers decide *whether* to open (a terminal, no SSH session, no opt-out flag); this only
//! launches the platform's opener and never waits for it or reports its failure, because the
//! URL is always printed as well and the user can open it by hand.

/// Launch the platform's URL opener on `url`, detached, with its output discarded.
pub fn open(url: &str) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let _ = std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
}
