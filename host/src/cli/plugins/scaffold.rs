//! `hermes plugins new`: a plugin crate that builds into a loadable library straight away.
//!
//! The templates are files under `cli/templates/`, written as a working plugin called
//! `example-provider`; generating one is replacing that name (in its spellings) with the new
//! one. The `api_key` template is also the example in the plugin author guide, and a test
//! keeps the two identical.

use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};
use crate::fsutil;

/// The template plugin's names, replaced by the new plugin's.
const TEMPLATE_TYPE: &str = "ExampleProvider";
const TEMPLATE_DISPLAY: &str = "Example Provider";
const TEMPLATE_ENV: &str = "EXAMPLE_PROVIDER";
const TEMPLATE_SNAKE: &str = "example_provider";
const TEMPLATE_ID: &str = "example-provider";

/// `src/lib.rs` of an `api_key` plugin (the guide's example).
pub const API_KEY_LIB: &str = include_str!("../templates/api_key.rs");
/// `src/lib.rs` of a `device_code` plugin.
pub const DEVICE_CODE_LIB: &str = include_str!("../templates/device_code.rs");
/// `tests/conformance.rs`.
pub const CONFORMANCE_TEST: &str = include_str!("../templates/conformance.rs");
const CARGO_TOML: &str = include_str!("../templates/Cargo.toml.tmpl");
const README: &str = include_str!("../templates/README.md");
const GITIGNORE: &str = include_str!("../templates/gitignore.tmpl");

/// The sign-in flows a new plugin can start from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum Flow {
    /// A static API key, piped to `hermes auth add <id> --api-key-stdin`.
    ApiKey,
    /// OAuth device code (RFC 8628) with refresh.
    DeviceCode,
}

impl Flow {
    /// The flow kind's name in the descriptor.
    pub fn name(self) -> &'static str {
        match self {
            Flow::ApiKey => hermes_plugin_api::flow::API_KEY,
            Flow::DeviceCode => hermes_plugin_api::flow::DEVICE_CODE,
        }
    }
}

/// The inference API a new plugin speaks (its `api_mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum Api {
    /// Anthropic Messages: the host appends `/v1/messages` to the base URL.
    AnthropicMessages,
    /// OpenAI chat completions: the host appends `/chat/completions` to the base URL (which
    /// ends in `/v1` by convention); the key or token is sent as Bearer.
    ChatCompletions,
}

impl Api {
    /// The api mode's name in the descriptor.
    pub fn name(self) -> &'static str {
        match self {
            Api::AnthropicMessages => hermes_plugin_api::api_mode::ANTHROPIC_MESSAGES,
            Api::ChatCompletions => hermes_plugin_api::api_mode::CHAT_COMPLETIONS,
        }
    }
}

/// What turns the templates (written for Anthropic Messages) into a chat completions plugin.
/// Every pair applies to at least one template; a test keeps it so.
const CHAT_COMPLETIONS_EDITS: &[(&str, &str)] = &[
    ("api_mode::ANTHROPIC_MESSAGES", "api_mode::CHAT_COMPLETIONS"),
    ("auth_scheme::X_API_KEY", "auth_scheme::BEARER"),
    (
        "`x-api-key` on every inference request",
        "`Authorization: Bearer` on every inference request",
    ),
    (
        "example-provider.example/anthropic\"",
        "example-provider.example/v1\"",
    ),
    (
        "(the Anthropic Messages API lives under it)",
        "(the host appends `/chat/completions` to it)",
    ),
    (
        "fn describes_one_provider_with_the_anthropic_messages_api",
        "fn describes_one_provider_with_the_chat_completions_api",
    ),
];

/// `template` for `api`.
pub fn for_api(template: &str, api: Api) -> String {
    match api {
        Api::AnthropicMessages => template.to_string(),
        Api::ChatCompletions => CHAT_COMPLETIONS_EDITS
            .iter()
            .fold(template.to_string(), |t, (from, to)| t.replace(from, to)),
    }
}

/// Where `hermes-plugin-sdk` comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SdkSource {
    /// A local checkout's `plugin-sdk` directory.
    Path(PathBuf),
    /// crates.io, this SDK's major version.
    Registry,
}

/// What to generate.
#[derive(Clone, Debug)]
pub struct Spec {
    /// Plugin and provider id.
    pub name: String,
    /// Starting flow.
    pub flow: Flow,
    /// The inference API.
    pub api_mode: Api,
    /// The crate directory (created; must not exist or be empty).
    pub dir: PathBuf,
    /// Where `hermes-plugin-sdk` comes from.
    pub sdk: SdkSource,
}

/// What was generated.
#[derive(Debug)]
pub struct Generated {
    /// The crate directory.
    pub dir: PathBuf,
    /// Files written, relative to it.
    pub files: Vec<PathBuf>,
    /// The workspace root it sits in, when it is inside one (it must be added to `members`).
    pub workspace: Option<PathBuf>,
    /// The library `cargo build` produces, relative to the crate (or workspace) target dir.
    pub library: String,
}

/// Names a crate and plugin may not take (Rust keywords and crates every program links).
const RESERVED: &[&str] = &[
    "test",
    "std",
    "core",
    "alloc",
    "proc-macro",
    "self",
    "super",
    "crate",
    "build",
    "deps",
    "examples",
    "incremental",
];

/// Check `name` as a plugin id that is also a usable crate name.
pub fn check_name(name: &str) -> Result<()> {
    let bad = |why: &str| {
        Error::usage(
            format!("{:?} cannot be a plugin name: {why}", crate::text::line(name, 64)),
            "use lower-case letters, digits and '-', starting with a letter, e.g. `hermes plugins new acme-llm`",
        )
    };
    if !hermes_plugin_api::validate::valid_id(name) {
        return Err(bad("it is not a valid provider id"));
    }
    if !name.as_bytes()[0].is_ascii_lowercase() {
        return Err(bad("it must start with a letter"));
    }
    if name.ends_with('-') || name.contains("--") {
        return Err(bad("it has an empty part between dashes"));
    }
    if RESERVED.contains(&name) {
        return Err(bad("the name is reserved"));
    }
    Ok(())
}

/// The parts of a `-`-separated name, each with its first letter in upper case.
fn capitalized(name: &str) -> Vec<String> {
    name.split('-')
        .map(|part| {
            let mut c = part.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

fn type_name(name: &str) -> String {
    capitalized(name).concat()
}

fn display_name(name: &str) -> String {
    capitalized(name).join(" ")
}

/// The template with the example plugin's names replaced by `name`'s.
pub fn rename(template: &str, name: &str) -> String {
    template
        .replace(TEMPLATE_TYPE, &type_name(name))
        .replace(TEMPLATE_DISPLAY, &display_name(name))
        .replace(TEMPLATE_ENV, &name.replace('-', "_").to_ascii_uppercase())
        .replace(TEMPLATE_SNAKE, &name.replace('-', "_"))
        .replace(TEMPLATE_ID, name)
}

/// `path` relative to `base` (both absolute), for a path dependency that survives moving the
/// checkout; `path` itself when the two share nothing but the root.
fn relative(path: &Path, base: &Path) -> PathBuf {
    let p: Vec<Component<'_>> = path.components().collect();
    let b: Vec<Component<'_>> = base.components().collect();
    let common = p.iter().zip(&b).take_while(|(x, y)| x == y).count();
    if common <= 1 {
        return path.to_path_buf();
    }
    let mut out = PathBuf::new();
    for _ in common..b.len() {
        out.push("..");
    }
    for c in &p[common..] {
        out.push(c.as_os_str());
    }
    out
}

/// The nearest directory above `dir` whose `Cargo.toml` declares a workspace.
fn enclosing_workspace(dir: &Path) -> Option<PathBuf> {
    dir.ancestors().skip(1).find_map(|a| {
        let text = std::fs::read_to_string(a.join("Cargo.toml")).ok()?;
        text.lines()
            .any(|l| l.trim() == "[workspace]")
            .then(|| a.to_path_buf())
    })
}

/// An absolute, normalised form of `p` (which need not exist).
fn absolute(p: &Path) -> Result<PathBuf> {
    let abs = std::path::absolute(p)
        .map_err(|e| Error::io(format!("cannot resolve {}", p.display()), e))?;
    // Resolve what exists (symlinks such as /tmp → /private/tmp) so relative paths line up.
    let mut existing = abs.as_path();
    let mut rest = Vec::new();
    while !existing.exists() {
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent;
            }
            _ => break,
        }
    }
    let mut out = existing
        .canonicalize()
        .unwrap_or_else(|_| existing.to_path_buf());
    out.extend(rest.iter().rev());
    Ok(out)
}

/// The files of the new crate, relative path and contents.
pub fn render(spec: &Spec, dir: &Path, standalone: bool) -> Result<Vec<(PathBuf, String)>> {
    let name = spec.name.as_str();
    let sdk = match &spec.sdk {
        SdkSource::Path(p) => {
            // Inside a workspace the crate moves with it, so a relative path survives; a
            // standalone crate may be moved anywhere, and only an absolute path does.
            let abs = absolute(p)?;
            let p = if standalone { abs } else { relative(&abs, dir) };
            format!("path = {:?}", p.to_string_lossy())
        }
        SdkSource::Registry => format!(
            "version = \"{}\"",
            hermes_plugin_sdk::SDK_VERSION
                .split('.')
                .next()
                .unwrap_or("1")
        ),
    };
    let cargo = CARGO_TOML
        .replace(
            "{{sdk_dependency}}",
            &format!("hermes-plugin-sdk = {{ {sdk} }}"),
        )
        .replace(
            "{{sdk_dev_dependency}}",
            &format!("hermes-plugin-sdk = {{ {sdk}, features = [\"testkit\"] }}"),
        )
        .replace(
            "{{extra_dependencies}}",
            match spec.flow {
                Flow::DeviceCode => "serde_json = \"1\"\n",
                Flow::ApiKey => "",
            },
        )
        .replace(
            "{{workspace}}",
            if standalone {
                // Profiles count only in a workspace's root; inside another workspace its own
                // release profile applies.
                "\n# The SDK's panic guard turns a panic into an error at the boundary: it needs\n\
                 # unwinding. Stripped symbols keep the library small.\n\
                 [profile.release]\npanic = \"unwind\"\nstrip = true\n\n\
                 # Not part of another workspace: the crate builds on its own.\n[workspace]\n"
            } else {
                ""
            },
        );
    let login = match spec.flow {
        Flow::ApiKey => format!("hermes auth add {name} --api-key-stdin < key.txt"),
        Flow::DeviceCode => format!("hermes auth add {name}"),
    };
    let readme = README
        .replace("{{flow}}", spec.flow.name())
        .replace("{{api_mode}}", spec.api_mode.name())
        .replace("{{login_command}}", &login);
    let lib = match spec.flow {
        Flow::ApiKey => API_KEY_LIB,
        Flow::DeviceCode => DEVICE_CODE_LIB,
    };
    Ok(vec![
        (PathBuf::from("Cargo.toml"), rename(&cargo, name)),
        (
            PathBuf::from("src/lib.rs"),
            rename(&for_api(lib, spec.api_mode), name),
        ),
        (
            PathBuf::from("tests/conformance.rs"),
            rename(&for_api(CONFORMANCE_TEST, spec.api_mode), name),
        ),
        (PathBuf::from("README.md"), rename(&readme, name)),
        (PathBuf::from(".gitignore"), GITIGNORE.to_string()),
    ])
}

/// Generate the crate. Refuses a directory that exists and is not empty.
pub fn generate(spec: &Spec) -> Result<Generated> {
    check_name(&spec.name)?;
    let dir = absolute(&spec.dir)?;
    if dir.exists()
        && std::fs::read_dir(&dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(Error::usage(
            format!("{} already exists and is not empty", dir.display()),
            "choose another directory with --path",
        ));
    }
    let workspace = enclosing_workspace(&dir);
    let files = render(spec, &dir, workspace.is_none())?;
    for (rel, text) in &files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::io(format!("cannot create {}", parent.display()), e))?;
        }
        fsutil::write_atomic(&path, text.as_bytes(), 0o644)
            .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
    }
    Ok(Generated {
        files: files.into_iter().map(|(p, _)| p).collect(),
        workspace,
        library: format!(
            "lib{}{}",
            spec.name.replace('-', "_"),
            std::env::consts::DLL_SUFFIX
        ),
        dir,
    })
}

/// The SDK this hermes was built with, when its source is still there.
pub fn default_sdk() -> SdkSource {
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugin-sdk");
    match here.join("Cargo.toml").is_file() {
        true => SdkSource::Path(here.canonicalize().unwrap_or(here)),
        false => SdkSource::Registry,
    }
}

/// `dir` shown relative to `base` when it is below it.
pub fn shown(dir: &Path, base: &Path) -> String {
    dir.strip_prefix(base)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| dir.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_types_and_titles() {
        assert_eq!(type_name("acme-llm-2"), "AcmeLlm2");
        assert_eq!(display_name("acme-llm"), "Acme Llm");
        let out = rename(
            "ExampleProvider example-provider example_provider EXAMPLE_PROVIDER_X Example Provider",
            "acme-llm",
        );
        assert_eq!(out, "AcmeLlm acme-llm acme_llm ACME_LLM_X Acme Llm");
    }

    #[test]
    fn bad_names_are_usage_errors_with_an_example() {
        for bad in ["Acme", "9lives", "a--b", "acme-", "test", "acme_llm", ""] {
            let e = check_name(bad).unwrap_err();
            assert_eq!(e.exit_code() as u8, 2, "{bad}");
        }
        check_name("acme").unwrap();
    }

    #[test]
    fn relative_paths_climb_to_the_common_ancestor() {
        assert_eq!(
            relative(
                Path::new("/w/main/plugin-sdk"),
                Path::new("/w/main/plugins/x")
            ),
            PathBuf::from("../../plugin-sdk")
        );
        assert_eq!(
            relative(Path::new("/w/main/plugin-sdk"), Path::new("/tmp/x")),
            PathBuf::from("/w/main/plugin-sdk")
        );
    }

    #[test]
    fn the_templates_mention_only_the_example_names() {
        // Any other spelling of the template's name would survive renaming.
        for t in [
            API_KEY_LIB,
            DEVICE_CODE_LIB,
            CONFORMANCE_TEST,
            CARGO_TOML,
            README,
        ] {
            let renamed = rename(t, "zz-new");
            assert!(
                !renamed.to_ascii_lowercase().contains("example-provider"),
                "{renamed}"
            );
            assert!(
                !renamed.to_ascii_lowercase().contains("example_provider"),
                "{renamed}"
            );
            assert!(!renamed.contains("ExampleProvider"));
        }
    }

    #[test]
    fn a_standalone_crate_gets_an_empty_workspace_table() {
        let dir = tempfile::tempdir().unwrap();
        let spec = Spec {
            name: "acme".into(),
            flow: Flow::DeviceCode,
            api_mode: Api::AnthropicMessages,
            dir: dir.path().join("acme"),
            sdk: SdkSource::Registry,
        };
        let g = generate(&spec).unwrap();
        assert!(g.workspace.is_none());
        let cargo = std::fs::read_to_string(g.dir.join("Cargo.toml")).unwrap();
        assert!(cargo.contains("name = \"acme\""), "{cargo}");
        assert!(
            cargo.contains("hermes-plugin-sdk = { version = \"1\" }"),
            "{cargo}"
        );
        assert!(cargo.contains("features = [\"testkit\"]"), "{cargo}");
        assert!(cargo.contains("serde_json = \"1\""), "{cargo}");
        assert!(cargo.trim_end().ends_with("[workspace]"), "{cargo}");
        assert!(
            cargo.contains("[profile.release]\npanic = \"unwind\"\nstrip = true\n"),
            "{cargo}"
        );
        let lib = std::fs::read_to_string(g.dir.join("src/lib.rs")).unwrap();
        assert!(lib.contains("hermes_plugin_sdk::export_plugin!(Acme);"));
        assert!(lib.contains("\"ACME_PORTAL_URL\""));
        assert_eq!(
            g.library,
            format!("libacme{}", std::env::consts::DLL_SUFFIX)
        );
        // A second run refuses to overwrite.
        assert_eq!(generate(&spec).unwrap_err().exit_code() as u8, 2);
    }

    #[test]
    fn a_crate_inside_a_workspace_has_no_workspace_table_and_a_relative_sdk_path() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(
            root.path().join("Cargo.toml"),
            "[workspace]\nmembers = []\n",
        )
        .unwrap();
        std::fs::create_dir_all(root.path().join("plugin-sdk")).unwrap();
        let spec = Spec {
            name: "acme".into(),
            flow: Flow::ApiKey,
            api_mode: Api::AnthropicMessages,
            dir: root.path().join("plugins/acme"),
            sdk: SdkSource::Path(root.path().join("plugin-sdk")),
        };
        let g = generate(&spec).unwrap();
        assert_eq!(
            g.workspace.as_deref().map(|p| p.canonicalize().unwrap()),
            Some(root.path().canonicalize().unwrap())
        );
        let cargo = std::fs::read_to_string(g.dir.join("Cargo.toml")).unwrap();
        assert!(
            cargo.contains("hermes-plugin-sdk = { path = \"../../plugin-sdk\" }"),
            "{cargo}"
        );
        assert!(!cargo.contains("[workspace]"), "{cargo}");
        assert!(
            !cargo.contains("[profile"),
            "a member's profile would be ignored: {cargo}"
        );
    }

    #[test]
    fn a_chat_completions_plugin_speaks_it_everywhere() {
        for (from, _) in CHAT_COMPLETIONS_EDITS {
            assert!(
                [API_KEY_LIB, DEVICE_CODE_LIB, CONFORMANCE_TEST]
                    .iter()
                    .any(|t| t.contains(from)),
                "{from:?} is in no template any more"
            );
        }
        for t in [API_KEY_LIB, DEVICE_CODE_LIB, CONFORMANCE_TEST] {
            let out = for_api(t, Api::ChatCompletions);
            for gone in [
                "ANTHROPIC",
                "X_API_KEY",
                "x-api-key",
                "/anthropic",
                "anthropic_messages",
            ] {
                assert!(!out.contains(gone), "{gone:?} left in:\n{out}");
            }
            assert!(out.contains("CHAT_COMPLETIONS"), "{out}");
            assert_eq!(for_api(t, Api::AnthropicMessages), t);
        }
        assert!(for_api(API_KEY_LIB, Api::ChatCompletions).contains("auth_scheme::BEARER"));
        assert!(for_api(API_KEY_LIB, Api::ChatCompletions)
            .contains("\"https://api.example-provider.example/v1\""));
    }

    #[test]
    fn the_guide_shows_the_api_key_template_verbatim() {
        let guide = include_str!("../../../../docs/plugin-authors.md");
        // The conformance test names the generated crate, so the guide's doctests cannot compile
        // it; the end-to-end test that builds and tests a generated plugin does.
        for (marker, fence, file) in [
            ("src/lib.rs", "rust", API_KEY_LIB),
            ("tests/conformance.rs", "rust,ignore", CONFORMANCE_TEST),
        ] {
            let start = format!("<!-- template: {marker} -->\n```{fence}\n");
            let at = guide
                .find(&start)
                .unwrap_or_else(|| panic!("the guide has no {start:?}"))
                + start.len();
            let block = &guide[at..];
            let block = &block[..block.find("\n```\n").expect("the block ends") + 1];
            assert_eq!(block, file, "docs/plugin-authors.md must show {marker} exactly as `hermes plugins new` writes it");
        }
    }
}
