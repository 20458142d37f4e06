//! Plugin authors: `hermes plugins new` generates a crate that builds into a loadable plugin,
//! and `hermes plugins check` fails every bad fixture with a clear finding and passes the real
//! plugins.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::support::{bin_dir, lib, Emulator, EmulatorConfig, Home, Run};

/// The target directory generated plugins build in: one shared directory under `target/`, so
/// that only the first build compiles the dependencies (abi_stable and friends, about a minute
/// on two cores) and every later one compiles the new crate alone. Not `target/` itself: the
/// `cargo test` running this holds its lock.
pub(crate) fn generated_target_dir() -> PathBuf {
    bin_dir().parent().expect("target dir").join("authors-e2e")
}

pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_path_buf()
}

/// `cargo <args>` in `dir`, offline, in the shared target directory. Returns the run and how
/// long it took.
pub(crate) fn cargo(dir: &Path, args: &[&str]) -> (Run, std::time::Duration) {
    let started = Instant::now();
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .arg("--offline")
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", generated_target_dir())
        .env_remove("RUSTFLAGS")
        // Set to read libtest's `--report-time`, it would also change how the generated
        // plugin's dependencies are fingerprinted, and rebuild them.
        .env_remove("RUSTC_BOOTSTRAP")
        .output()
        .expect("run cargo");
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    (run, started.elapsed())
}

/// Where plugin `name` is generated: a fixed place, since a path dependency (plugin-sdk) is
/// compiled again whenever the crate that uses it moves; outside this workspace, so that the
/// crate is generated as a standalone one, as an author's would be.
fn crate_dir(name: &str) -> PathBuf {
    scratch_dir("hermes-e2e-authors").join(name)
}

/// A fixed folder under the temporary directory for this checkout: two checkouts running
/// these tests at once do not generate into each other's crates.
pub(crate) fn scratch_dir(what: &str) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    workspace_root().hash(&mut h);
    std::env::temp_dir().join(format!("{what}-{:08x}", h.finish() as u32))
}

/// Generate plugin `name` with `flow` (afresh) and build it.
fn generate_and_build(home: &Home, name: &str, flow: &str) -> PathBuf {
    generate_and_build_for(home, name, flow, "anthropic_messages")
}

/// Generate plugin `name` with `flow` and inference API `api` (afresh) and build it.
fn generate_and_build_for(home: &Home, name: &str, flow: &str, api: &str) -> PathBuf {
    let dir = crate_dir(name);
    let _ = std::fs::remove_dir_all(&dir);
    let r = home
        .run(&[
            "plugins",
            "new",
            name,
            "--flow",
            flow,
            "--api",
            api,
            "--path",
            dir.to_str().unwrap(),
        ])
        .ok();
    assert!(
        r.stdout.contains(&format!(
            "created plugin {name} ({flow} sign-in, {api} API)"
        )),
        "{}",
        r.stdout
    );
    assert!(
        r.stderr.contains(&format!(
            "hermes plugins check target/debug/lib{}.so",
            name.replace('-', "_")
        )),
        "{}",
        r.stderr
    );
    let cargo_toml = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    assert!(
        cargo_toml.contains("\n[workspace]\n"),
        "outside a workspace it builds on its own:\n{cargo_toml}"
    );
    assert!(
        cargo_toml.contains("[profile.release]\npanic = \"unwind\"\nstrip = true\n"),
        "the panic guard needs unwinding:\n{cargo_toml}"
    );
    assert!(
        cargo_toml.contains(&format!(
            "path = {:?}",
            workspace_root()
                .join("plugin-sdk")
                .canonicalize()
                .unwrap()
                .to_string_lossy()
        )),
        "hermes-plugin-sdk comes from this checkout:\n{cargo_toml}"
    );
    // The workspace's lock pins the versions already built and cached here.
    std::fs::copy(workspace_root().join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    let (build, took) = cargo(&dir, &["build"]);
    assert_eq!(
        build.code, 0,
        "cargo build of the generated plugin failed:\n{}",
        build.stderr
    );
    eprintln!(
        "generated {flow} plugin {name}: cargo build took {:.1} s",
        took.as_secs_f64()
    );
    let so = generated_target_dir()
        .join("debug")
        .join(format!("lib{}.so", name.replace('-', "_")));
    assert!(so.is_file(), "{} was not built", so.display());
    so
}

#[test]
fn a_generated_plugin_builds_passes_its_tests_and_the_checks_and_installs() {
    let home = Home::new();
    let so = generate_and_build(&home, "acme-gen", "api_key");

    // Its own tests: the conformance suite and the template's behaviour tests.
    let (test, took) = cargo(&crate_dir("acme-gen"), &["test"]);
    assert_eq!(
        test.code, 0,
        "cargo test of the generated plugin failed:\n{}\n{}",
        test.stdout, test.stderr
    );
    assert!(
        test.stdout
            .contains("conforms_to_the_hermes_plugin_rules ... ok"),
        "{}",
        test.stdout
    );
    eprintln!(
        "generated plugin: cargo test took {:.1} s",
        took.as_secs_f64()
    );

    let check = home.run(&["plugins", "check", so.to_str().unwrap()]).ok();
    assert!(
        check
            .stdout
            .contains("plugin acme-gen 0.1.0: all 10 checks passed"),
        "{}",
        check.stdout
    );

    let r = home.run(&["plugins", "install", so.to_str().unwrap()]).ok();
    assert_eq!(
        r.stdout.trim(),
        "installed acme-gen 0.1.0 (providers: acme-gen)"
    );
    let d = home.run(&["doctor"]).code(1);
    assert!(
        d.stdout
            .contains("✓ plugin acme-gen 0.1.0 loaded (plugin-api 1.0.0)"),
        "{}",
        d.stdout
    );
    assert!(d.stdout.contains("Acme Gen  not logged in"), "{}", d.stdout);

    let key = "sk-acme-0123456789abcdef";
    let r = home
        .run_stdin(
            &["auth", "add", "acme-gen", "--api-key-stdin"],
            &format!("{key}\n"),
        )
        .ok();
    assert!(r.stdout.contains("Signed in to Acme Gen"), "{}", r.stdout);
    assert!(!r.all().contains(key));
    home.run(&["doctor", "--provider", "acme-gen"]).ok();
}

#[test]
fn a_generated_chat_completions_plugin_chats_with_the_emulator_without_host_edits() {
    let emu = Emulator::start(EmulatorConfig::default());
    let key = "sk-acme-chat-0123456789abcdef";
    emu.add_api_key(key);
    let mut home = Home::new();
    let so = generate_and_build_for(&home, "acme-chat", "api_key", "chat_completions");
    let (test, _) = cargo(&crate_dir("acme-chat"), &["test"]);
    assert_eq!(
        test.code, 0,
        "cargo test of the generated plugin failed:\n{}\n{}",
        test.stdout, test.stderr
    );
    assert!(
        test.stdout
            .contains("describes_one_provider_with_the_chat_completions_api ... ok"),
        "{}",
        test.stdout
    );
    let check = home.run(&["plugins", "check", so.to_str().unwrap()]).ok();
    assert!(!check.stdout.contains("cannot chat in"), "{}", check.stdout);
    home.run(&["plugins", "install", so.to_str().unwrap()]).ok();
    // The template's override variable points it at the emulator's OpenAI-compatible API.
    home.set_env("ACME_CHAT_BASE_URL", &emu.openai_url());
    home.run_stdin(
        &["auth", "add", "acme-chat", "--api-key-stdin"],
        &format!("{key}\n"),
    )
    .ok();
    let r = home
        .run(&[
            "chat",
            "--provider",
            "acme-chat",
            "-q",
            "hello from a third party",
        ])
        .ok();
    assert_eq!(
        r.stdout,
        "Hello from the MiniMax emulator. You said: hello from a third party\n"
    );
    let j = home
        .run(&["chat", "--provider", "acme-chat", "-q", "json", "--json"])
        .ok()
        .json();
    assert_eq!(j["text"], "Hello from the MiniMax emulator. You said: json");
    let c = emu.counters();
    assert_eq!(
        (
            c.completions_ok,
            c.completions_streamed,
            c.messages_requests
        ),
        (2, 1, 0)
    );
}

#[test]
fn a_generated_device_code_plugin_builds_and_passes_the_checks() {
    let home = Home::new();
    let so = generate_and_build(&home, "acme-device", "device_code");
    let check = home
        .run(&["plugins", "check", so.to_str().unwrap(), "--json"])
        .ok()
        .json();
    assert_eq!(check["ok"], true, "{check:#}");
    assert_eq!(check["plugin"]["id"], "acme-device");
}

#[test]
fn plugins_new_refuses_bad_names_and_existing_directories() {
    let home = Home::new();
    let r = home
        .run(&[
            "plugins",
            "new",
            "Acme_LLM",
            "--path",
            home.scratch().join("x").to_str().unwrap(),
        ])
        .code(2);
    assert!(r.stderr.contains("cannot be a plugin name"), "{}", r.stderr);
    let dir = home.scratch().join("taken");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("keep.txt"), "mine").unwrap();
    let r = home
        .run(&["plugins", "new", "taken", "--path", dir.to_str().unwrap()])
        .code(2);
    assert!(
        r.stderr.contains("already exists and is not empty"),
        "{}",
        r.stderr
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("keep.txt")).unwrap(),
        "mine"
    );
}

/// `hermes plugins check` on `path`: exit 1 and every `needles` in stdout.
#[track_caller]
fn check_fails(home: &Home, path: &Path, needles: &[&str]) -> Run {
    let r = home
        .run(&["plugins", "check", path.to_str().unwrap()])
        .code(1);
    for n in needles {
        assert!(
            r.stdout.contains(n),
            "missing {n:?} in the check of {}:\n{}",
            path.display(),
            r.stdout
        );
    }
    r
}

#[test]
fn check_fails_each_bad_fixture_with_a_clear_finding() {
    let home = Home::new();
    check_fails(
        &home,
        &lib("fixture_old_api"),
        &[
            "✗ loads as a hermes plugin",
            "built for plugin-api 0.3.0, this hermes speaks 1.0.0: rebuild it",
            "does not load as a hermes plugin; the other checks were skipped",
        ],
    );
    check_fails(
        &home,
        &lib("fixture_panic_describe"),
        &["describe() failed: plugin panicked in describe: this plugin always panics in describe"],
    );
    let r = check_fails(
        &home,
        &lib("fixture_layout_mismatch"),
        &["its ABI layout does not match this hermes (type layouts differ)"],
    );
    assert!(
        r.stderr
            .contains("(run with -v for the full layout report)"),
        "{}",
        r.stderr
    );
    check_fails(
        &home,
        &lib("fixture_crash_on_load"),
        &["the library crashed with signal 6 while loading"],
    );
    let garbage = home.scratch().join("libnot_a_library.so");
    std::fs::write(&garbage, "#!/bin/sh\necho not a library\n").unwrap();
    check_fails(&home, &garbage, &["not a loadable library"]);

    // The leak is in the plugin's own type, which the host never sees; the log line it
    // produced with the secret the check handed over is what gives it away.
    check_fails(
        &home,
        &lib("fixture_leaky_debug"),
        &[
            "✗ no secret in logs, messages, URLs or Debug output",
            "RuntimeCredential::runtime with a live credential logged the access token: resolving the runtime for KeyHolder { key: \"hck-access-",
            "plugin leaky-debug 0.1.0: 1 of 10 checks failed",
        ],
    );
    let j = home
        .run(&[
            "plugins",
            "check",
            lib("fixture_leaky_debug").to_str().unwrap(),
            "--json",
        ])
        .code(1)
        .json();
    assert_eq!(j["ok"], false);
    let secrets = j["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "secrets")
        .unwrap();
    assert_eq!(secrets["outcome"], "fail");
}

#[test]
fn check_passes_on_minimax_oauth() {
    let home = Home::new();
    let r = home
        .run(&["plugins", "check", lib("minimax_oauth").to_str().unwrap()])
        .ok();
    assert!(
        r.stdout
            .contains("plugin minimax-oauth 0.1.0: all 10 checks passed"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains('✗'), "{}", r.stdout);
}

#[test]
fn install_refuses_a_plugin_that_fails_the_checks() {
    let home = Home::new();
    let path = lib("fixture_leaky_debug");
    let r = home
        .run(&["plugins", "install", path.to_str().unwrap()])
        .code(1);
    assert!(
        r.stderr.contains("it fails the plugin checks: secrets: RuntimeCredential::runtime with a live credential logged the access token"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(&format!(
            "help: see every finding with `hermes plugins check {}`",
            path.display()
        )),
        "{}",
        r.stderr
    );
    let j = home.run(&["plugins", "list", "--json"]).ok().json();
    assert_eq!(
        j["plugins"].as_array().unwrap().len(),
        0,
        "nothing was installed"
    );
}
