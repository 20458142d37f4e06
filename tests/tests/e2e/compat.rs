//! The split of the plugin interface into `hermes-plugin-api` and `hermes-plugin-sdk` is not an
//! ABI change: a plugin built before it still loads, passes the checks and works.
//!
//! `tests/compat/pre-split-1.0.0.tar.gz` holds, byte for byte, the sources of `plugin-api`
//! (ABI and SDK in one crate) and of the `minimax-apikey` plugin at the commit before the
//! split (cae2808). The test builds that plugin against that interface crate, out of this
//! workspace, then installs the library with this hermes and signs in and chats through it.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::authors::{cargo, generated_target_dir, scratch_dir, workspace_root};
use crate::support::{Emulator, EmulatorConfig, Home};

/// The workspace the old sources build in: the pre-split crate as it was published
/// (`hermes-plugin-api` 1.0.0) and the plugin, with the dependency versions of this checkout.
const WORKSPACE: &str = r#"[workspace]
resolver = "2"
members = ["plugin-api", "plugins/minimax-apikey"]

[workspace.package]
edition = "2021"
license = "MIT OR Apache-2.0"
rust-version = "1.89"

[workspace.dependencies]
abi_stable = { version = "0.11", default-features = false }
serde_json = "1"
hermes-plugin-api = { path = "plugin-api", version = "1.0.0" }

[profile.release]
panic = "unwind"
"#;

const API_MANIFEST: &str = r#"[package]
name = "hermes-plugin-api"
version = "1.0.0"
edition.workspace = true
license.workspace = true
rust-version.workspace = true

[dependencies]
abi_stable.workspace = true
serde_json.workspace = true

[features]
testkit = []
"#;

const PLUGIN_MANIFEST: &str = r#"[package]
name = "minimax-apikey"
version = "0.1.0"
edition.workspace = true
license.workspace = true
rust-version.workspace = true

[lib]
name = "minimax_apikey"
crate-type = ["cdylib"]

[dependencies]
hermes-plugin-api.workspace = true
abi_stable.workspace = true
"#;

/// Unpack the pinned sources into a fixed directory (a path dependency moved elsewhere is
/// compiled again) and build the plugin; returns the library.
fn build_pre_split_plugin() -> PathBuf {
    let dir = scratch_dir("hermes-e2e-compat").join("pre-split");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let archive = workspace_root().join("tests/compat/pre-split-1.0.0.tar.gz");
    let out = Command::new("tar")
        .arg("xzf")
        .arg(&archive)
        .arg("-C")
        .arg(&dir)
        .output()
        .expect("run tar");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let write = |rel: &str, text: &str| std::fs::write(dir.join(rel), text).unwrap();
    write("Cargo.toml", WORKSPACE);
    write("plugin-api/Cargo.toml", API_MANIFEST);
    write("plugins/minimax-apikey/Cargo.toml", PLUGIN_MANIFEST);
    // The plugin's unit tests are not part of the archive and not built.
    assert!(dir.join("plugin-api/src/sdk/check.rs").is_file());
    std::fs::copy(workspace_root().join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    let (build, took) = cargo(&dir, &["build"]);
    assert_eq!(
        build.code, 0,
        "cargo build of the pre-split plugin failed:\n{}",
        build.stderr
    );
    eprintln!(
        "pre-split minimax-apikey: cargo build took {:.1} s",
        took.as_secs_f64()
    );
    let so = generated_target_dir()
        .join("debug")
        .join(format!("libminimax_apikey{}", std::env::consts::DLL_SUFFIX));
    assert!(so.is_file(), "{} was not built", so.display());
    // Out of the shared target directory, so that nothing else builds over it.
    let kept = dir.join(so.file_name().unwrap());
    std::fs::copy(&so, &kept).unwrap();
    kept
}

fn pre_split_source_is_the_one_pinned(dir: &Path) {
    // The archive is the interface before the split: one crate with the SDK inside.
    let lib = std::fs::read_to_string(dir.join("plugin-api/src/lib.rs")).unwrap();
    assert!(lib.contains("pub mod sdk;"), "not the pre-split crate");
    assert!(lib.contains("pub struct PluginMod {"));
}

#[test]
fn a_plugin_built_before_the_sdk_split_loads_passes_the_checks_and_chats() {
    let so = build_pre_split_plugin();
    pre_split_source_is_the_one_pinned(so.parent().unwrap());

    let mut home = Home::new();
    let check = home.run(&["plugins", "check", so.to_str().unwrap()]).ok();
    assert!(
        check
            .stdout
            .contains("plugin minimax-apikey 0.1.0: all 10 checks passed"),
        "{}",
        check.stdout
    );
    let r = home.run(&["plugins", "install", so.to_str().unwrap()]).ok();
    assert_eq!(
        r.stdout.trim(),
        "installed minimax-apikey 0.1.0 (providers: minimax, minimax-cn)"
    );
    let d = home.run(&["doctor"]).code(1);
    assert!(
        d.stdout
            .contains("✓ plugin minimax-apikey 0.1.0 loaded (plugin-api 1.0.0)"),
        "{}",
        d.stdout
    );

    let emu = Emulator::start(EmulatorConfig::default());
    let key = "sk-pre-split-0123456789abcdef";
    emu.add_api_key(key);
    home.set_env("MINIMAX_BASE_URL", &emu.inference_url());
    home.run_stdin(
        &["auth", "add", "minimax", "--api-key-stdin"],
        &format!("{key}\n"),
    )
    .ok();
    let d = home.run(&["doctor"]).code(1);
    assert!(
        d.stdout
            .contains("MiniMax  logged in with API key sk-…cdef"),
        "{}",
        d.stdout
    );
    let c = home
        .run(&["chat", "-q", "hello from before", "--provider", "minimax"])
        .ok();
    assert_eq!(
        c.stdout,
        "Hello from the MiniMax emulator. You said: hello from before\n"
    );
}
