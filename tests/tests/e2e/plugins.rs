//! The plugin host: install, list, info, remove, enable/disable, doctor, and the bad-plugin
//! matrix. Every refusal is one line, and the host and the other plugins keep working.

use crate::support::{lib, Home};

/// No line of a refusal without `-v` may be a dump: abi_stable's reports run to kilobytes.
#[track_caller]
fn assert_short(text: &str) {
    assert!(
        text.len() < 600,
        "output is too long ({} bytes):\n{text}",
        text.len()
    );
    assert!(
        text.lines().count() <= 4,
        "output has too many lines:\n{text}"
    );
}

#[test]
fn install_list_info_and_doctor_work_on_a_fresh_home() {
    let home = Home::new();
    let r = home.run(&["plugins", "install", "minimax-oauth"]).ok();
    assert_eq!(
        r.stdout.trim(),
        "installed minimax-oauth 0.1.0 (providers: minimax-oauth)"
    );
    let mode = std::fs::metadata(home.path()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        mode.permissions().mode() & 0o777,
        0o700,
        "HERMES_HOME must be 0700"
    );

    let list = home.run(&["plugins", "list"]).ok();
    assert!(
        list.stdout
            .contains("minimax-oauth        0.1.0      1.0.0  ok"),
        "{}",
        list.stdout
    );
    assert!(
        list.stdout
            .contains("minimax-portal, minimax-global, minimax_oauth"),
        "{}",
        list.stdout
    );

    let j = home.run(&["plugins", "list", "--json"]).ok().json();
    let p = &j["plugins"][0];
    assert_eq!(p["id"], "minimax-oauth");
    assert_eq!(p["status"], "ok");
    assert_eq!(p["api_version"], "1.0.0");
    assert_eq!(p["providers"][0]["api_mode"], "anthropic_messages");
    assert_eq!(p["providers"][0]["regions"][1]["name"], "cn");

    let info = home
        .run(&["plugins", "info", "minimax-portal", "--json"])
        .ok()
        .json();
    assert_eq!(info["id"], "minimax-oauth", "info resolves aliases");

    // Not signed in yet: doctor reports it and exits 1, with the fix command.
    let d = home.run(&["doctor"]).code(1);
    assert!(
        d.stdout
            .contains("✓ plugin minimax-oauth 0.1.0 loaded (plugin-api 1.0.0)"),
        "{}",
        d.stdout
    );
    assert!(
        d.stdout.contains("(fix: hermes auth add minimax-oauth)"),
        "{}",
        d.stdout
    );
    let dj = home.run(&["doctor", "--json"]).code(1).json();
    assert_eq!(dj["version"], 1);
    assert_eq!(dj["healthy"], false);
    let prov = dj["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == "providers")
        .unwrap();
    assert_eq!(prov["status"]["state"], "not_logged_in");
    assert_eq!(prov["subject"], "minimax-oauth");
}

#[test]
fn reinstalling_the_same_version_is_a_no_op_that_says_so() {
    let home = Home::new();
    home.install_minimax();
    let before = home.read("plugins.json");
    let r = home.run(&["plugins", "install", "minimax-oauth"]).ok();
    assert_eq!(
        r.stdout.trim(),
        "minimax-oauth 0.1.0 is already installed; nothing to do"
    );
    assert_eq!(home.read("plugins.json"), before);
}

#[test]
fn a_changed_build_of_the_same_version_replaces_the_old_one() {
    let home = Home::new();
    home.install_minimax();
    let copy = home.scratch().join("libminimax_oauth.so");
    let mut bytes = std::fs::read(lib("minimax_oauth")).unwrap();
    bytes.extend_from_slice(b"\0trailing bytes change the checksum, not the code");
    std::fs::write(&copy, &bytes).unwrap();
    let r = home
        .run(&["plugins", "install", copy.to_str().unwrap()])
        .ok();
    assert_eq!(
        r.stdout.trim(),
        "reinstalled minimax-oauth 0.1.0 (the library changed)"
    );
    let j = home.run(&["plugins", "list", "--json"]).ok().json();
    assert_eq!(j["plugins"].as_array().unwrap().len(), 1);
    assert_eq!(
        j["plugins"][0]["sha256"],
        crate::support::sha256_hex(&bytes)
    );
    home.run(&["doctor", "--provider", "minimax-oauth"]).code(1);
}

#[test]
fn garbage_file_is_refused_in_one_line_and_list_still_works() {
    let home = Home::new();
    home.install_minimax();
    let garbage = home.scratch().join("libgarbage.so");
    std::fs::write(&garbage, b"\x7fELF but not really; just some bytes").unwrap();
    let r = home
        .run(&["plugins", "install", garbage.to_str().unwrap()])
        .code(1);
    assert!(
        r.stderr.starts_with("error: cannot install"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("not a loadable library"), "{}", r.stderr);
    assert_short(&r.stderr);
    let list = home.run(&["plugins", "list"]).ok();
    assert!(list.stdout.contains("minimax-oauth"), "{}", list.stdout);
    assert!(!list.stdout.contains("garbage"));
}

#[test]
fn old_api_major_is_refused_by_the_version_check() {
    let home = Home::new();
    home.install_minimax();
    let r = home
        .run(&[
            "plugins",
            "install",
            lib("fixture_old_api").to_str().unwrap(),
        ])
        .code(1);
    assert!(
        r.stderr.contains("built for plugin-api 0.3.0, this hermes speaks 1.0.0: rebuild it against this hermes-plugin-api"),
        "{}",
        r.stderr
    );
    assert_short(&r.stderr);
    home.run(&["doctor", "--provider", "minimax-portal"])
        .code(1);
    home.run(&["plugins", "list"]).ok();
}

#[test]
fn layout_mismatch_is_one_line_and_the_full_report_needs_v() {
    let home = Home::new();
    let path = lib("fixture_layout_mismatch");
    let r = home
        .run(&["plugins", "install", path.to_str().unwrap()])
        .code(1);
    assert!(
        r.stderr
            .contains("its ABI layout does not match this hermes"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("(run with -v for details)"),
        "{}",
        r.stderr
    );
    assert_short(&r.stderr);
    let v = home
        .run(&["-v", "plugins", "install", path.to_str().unwrap()])
        .code(1);
    assert!(
        v.stderr.len() > r.stderr.len() + 200,
        "-v shows abi_stable's report:\n{}",
        v.stderr
    );
}

#[test]
fn a_panic_in_describe_is_reported_not_fatal() {
    let home = Home::new();
    home.install_minimax();
    let r = home
        .run(&[
            "plugins",
            "install",
            lib("fixture_panic_describe").to_str().unwrap(),
        ])
        .code(1);
    assert!(
        r.stderr
            .contains("plugin panicked in describe: this plugin always panics in describe"),
        "{}",
        r.stderr
    );
    assert_short(&r.stderr);

    // The same library recorded as installed (as if it went bad after installation): list and
    // doctor report it and still report the healthy plugin.
    home.force_record("panicky", &lib("fixture_panic_describe"));
    let list = home.run(&["plugins", "list"]).ok();
    assert!(list.stdout.contains("panicky"), "{}", list.stdout);
    assert!(list.stdout.contains("failed to load"), "{}", list.stdout);
    assert!(
        list.stdout
            .contains("minimax-oauth        0.1.0      1.0.0  ok"),
        "{}",
        list.stdout
    );
    let d = home.run(&["doctor"]).code(1);
    assert!(
        d.stdout
            .contains("✗ plugin panicky: failed to load: describe() failed: plugin panicked"),
        "{}",
        d.stdout
    );
    assert!(d.stdout.contains("✓ plugin minimax-oauth"), "{}", d.stdout);
    home.run(&["auth", "status", "minimax-portal"]).code(1);
}

#[test]
fn a_library_that_crashes_on_load_cannot_take_the_host_down() {
    let home = Home::new();
    home.install_minimax();
    let r = home
        .run(&[
            "plugins",
            "install",
            lib("fixture_crash_on_load").to_str().unwrap(),
        ])
        .code(1);
    assert!(
        r.stderr.contains("crashed with signal 6 while loading"),
        "{}",
        r.stderr
    );
    assert_short(&r.stderr);
    home.run(&["plugins", "list"]).ok();
}

#[test]
fn a_duplicate_provider_id_refuses_the_second_plugin() {
    let home = Home::new();
    home.install_minimax();
    let r = home
        .run(&[
            "plugins",
            "install",
            lib("fixture_dup_provider").to_str().unwrap(),
        ])
        .code(1);
    assert!(
        r.stderr.contains("plugin dup-provider declares provider minimax-oauth, which plugin minimax-oauth already provides"),
        "{}",
        r.stderr
    );
    assert_short(&r.stderr);
    // Recorded anyway (a hand-edited plugins.json): the first plugin keeps the name.
    home.force_record("dup-provider", &lib("fixture_dup_provider"));
    let j = home
        .run(&["plugins", "info", "minimax-oauth", "--json"])
        .ok()
        .json();
    assert_eq!(j["id"], "minimax-oauth");
    let d = home.run(&["doctor"]).code(1);
    assert!(
        d.stdout.contains("dup-provider's provider was refused"),
        "{}",
        d.stdout
    );
}

#[test]
fn a_clashing_alias_is_refused_and_names_both_plugins() {
    let home = Home::new();
    home.install_minimax();
    let r = home
        .run(&[
            "plugins",
            "install",
            lib("fixture_alias_clash").to_str().unwrap(),
        ])
        .ok();
    assert!(
        r.stdout.contains("installed alias-clash 0.1.0"),
        "{}",
        r.stdout
    );
    assert!(
        r.stderr.contains("alias minimax-portal of clash (plugin alias-clash) is already an alias of minimax-oauth (plugin minimax-oauth); the alias was refused"),
        "{}",
        r.stderr
    );
    // The earlier plugin keeps the alias; the later plugin's other alias works.
    let j = home
        .run(&["plugins", "info", "minimax-portal", "--json"])
        .ok()
        .json();
    assert_eq!(j["id"], "minimax-oauth");
    let j = home
        .run(&["plugins", "info", "CLASH-ALIAS", "--json"])
        .ok()
        .json();
    assert_eq!(j["id"], "alias-clash");
    let d = home.run(&["doctor", "--json"]).json();
    let msgs: Vec<String> = d["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["message"].as_str().unwrap().to_string())
        .collect();
    assert!(
        msgs.iter()
            .any(|m| m.contains("alias minimax-portal of clash")),
        "{msgs:?}"
    );
}

#[test]
fn remove_disable_and_enable() {
    let home = Home::new();
    home.install_minimax();
    home.run(&["plugins", "disable", "minimax-oauth"]).ok();
    let j = home.run(&["plugins", "list", "--json"]).ok().json();
    assert_eq!(j["plugins"][0]["status"], "disabled");
    let r = home.run(&["auth", "status", "minimax-oauth"]).code(2);
    assert!(r.stderr.contains("unknown provider"), "{}", r.stderr);
    home.run(&["plugins", "enable", "minimax-oauth"]).ok();
    home.run(&["plugins", "remove", "minimax-oauth"]).ok();
    assert!(!home.path().join("plugins/minimax-oauth").exists());
    let j = home.run(&["plugins", "list", "--json"]).ok().json();
    assert_eq!(j["plugins"].as_array().unwrap().len(), 0);
    let r = home.run(&["plugins", "remove", "minimax-oauth"]).code(1);
    assert!(r.stderr.contains("is not installed"));
}

#[test]
fn doctor_notices_a_library_changed_after_install() {
    let home = Home::new();
    home.install_minimax();
    let installed = home
        .path()
        .join("plugins/minimax-oauth/0.1.0/libminimax_oauth.so");
    let mut bytes = std::fs::read(&installed).unwrap();
    bytes.push(0);
    std::fs::write(&installed, bytes).unwrap();
    let d = home.run(&["doctor"]).code(1);
    assert!(
        d.stdout.contains("plugin minimax-oauth 0.1.0 changed since it was installed (its checksum no longer matches); it was not loaded: reinstall it with `hermes plugins install minimax-oauth`  (fix: hermes plugins install minimax-oauth)"),
        "{}",
        d.stdout
    );
}

#[test]
fn url_install_without_a_checksum_is_refused() {
    let home = Home::new();
    let r = home
        .run(&["plugins", "install", "https://example.invalid/libx.so"])
        .code(2);
    assert!(r.stderr.contains("without a checksum"), "{}", r.stderr);
}

#[test]
fn unknown_provider_names_what_is_installed() {
    let home = Home::new();
    home.install_minimax();
    let r = home.run(&["auth", "status", "nope"]).code(2);
    assert!(
        r.stderr
            .contains("unknown provider \"nope\" (installed providers: minimax-oauth)"),
        "{}",
        r.stderr
    );
}

/// A tiny HTTP server that serves `bytes` for any GET.
fn serve_bytes(bytes: Vec<u8>) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(4) {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                bytes.len()
            );
            let _ = s.write_all(&bytes);
        }
    });
    format!("http://{addr}")
}

#[test]
fn install_from_an_index_entry_with_a_url_checks_its_sha256() {
    let bytes = std::fs::read(lib("minimax_oauth")).unwrap();
    let sum = crate::support::sha256_hex(&bytes);
    let url = format!("{}/libminimax_oauth.so", serve_bytes(bytes));
    let mut home = Home::new();
    let index = home.scratch().join("index.json");
    std::fs::write(
        &index,
        serde_json::json!({"plugins": [
            {"name": "minimax-oauth", "url": url, "sha256": sum},
            {"name": "tampered", "url": url, "sha256": "00".repeat(32)},
        ]})
        .to_string(),
    )
    .unwrap();
    home.set_env("HERMES_PLUGIN_INDEX", index.to_str().unwrap());
    let r = home.run(&["plugins", "install", "tampered"]).code(1);
    assert!(r.stderr.contains("checksum mismatch"), "{}", r.stderr);
    assert!(r.stderr.contains("nothing was installed"), "{}", r.stderr);
    let r = home.run(&["plugins", "install", "minimax-oauth"]).ok();
    assert_eq!(
        r.stdout.trim(),
        "installed minimax-oauth 0.1.0 (providers: minimax-oauth)"
    );
    let j = home
        .run(&["plugins", "info", "minimax-oauth", "--json"])
        .ok()
        .json();
    assert_eq!(j["sha256"], sum);
    assert_eq!(j["source"], url);
}

#[test]
fn completions_are_valid_shell_and_list_the_commands() {
    let home = Home::new();
    let r = home.run(&["completions", "bash"]).ok();
    for word in [
        "plugins",
        "auth",
        "doctor",
        "chat",
        "dashboard",
        "--provider",
    ] {
        assert!(r.stdout.contains(word), "missing {word}");
    }
    assert!(
        !r.stdout.contains("__probe-plugin"),
        "hidden commands stay hidden"
    );
    let script = home.scratch().join("hermes.bash");
    std::fs::write(&script, &r.stdout).unwrap();
    let check = std::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    home.run(&["completions", "zsh"]).ok();
    home.run(&["completions", "tcsh"]).code(2);
}
