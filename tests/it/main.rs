//! sesroute's integration tests: the contract in `CONTRACT.md`, checked from
//! the outside (the binary) and through the library's config and router.
//!
//! The helpers below are shared by the modules; each module reads on its own.

mod audit;
mod check;
mod check_sinks;
mod corpus;
mod daemon;
mod hostile;
mod parser_props;
mod route_cli;
mod routing;
mod signature;

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sesroute::config::Config;
use sesroute::notification::{self, Parsed};

/// `tests/fixtures`, wherever the crate was cloned.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// `tests/fixtures/samples`: the acme.test corpus and its `config.toml`.
pub fn samples() -> PathBuf {
    fixtures().join("samples")
}

/// The `sesroute` binary, with no `SESROUTE_` variable inherited from the
/// caller's environment: they override config keys, so a stray one (such as
/// the test script's own `FAUXQS_ENDPOINT`) would change the result.
pub fn sesroute() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("sesroute").expect("the sesroute binary is built");
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("SESROUTE_") {
            cmd.env_remove(name);
        }
    }
    cmd
}

/// What one run of the binary did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn of(cmd: &mut assert_cmd::Command) -> Run {
        let output = cmd.output().expect("sesroute runs");
        Run {
            code: output.status.code().expect("exited, not killed by a signal"),
            stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// The JSON Lines `route` printed, one value per line.
    pub fn decisions(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: not JSON: {line}")))
            .collect()
    }

    /// The stderr lines that start with `prefix` (`"error: "`, `"warning: "`), without it.
    pub fn stderr_lines(&self, prefix: &str) -> Vec<&str> {
        self.stderr.lines().filter_map(|line| line.strip_prefix(prefix)).collect()
    }

    /// Asserts a config was refused (exit 2) because of `key`, and gives the reason.
    pub fn reason_for(&self, key: &str) -> String {
        assert_eq!(self.code, 2, "accepted:\n{}", self.stderr);
        let prefix = format!("{key}: ");
        self.stderr_lines("error: ")
            .iter()
            .find_map(|line| line.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no error about {key}:\n{}", self.stderr))
            .to_owned()
    }
}

/// Validates config text, panicking with every issue when it is invalid.
pub fn config(toml: &str) -> Config {
    sesroute::config::from_toml(toml).unwrap_or_else(|e| panic!("invalid config:\n{e}\n{toml}"))
}

/// Routes one body through a config, as `sesroute route --queue QUEUE` would,
/// and gives the decision in the contract's output shape (without `input`).
pub fn route_on(queue: Option<&str>, config_toml: &str, body: &str) -> Value {
    let config = config(config_toml);
    let mut scratch = String::new();
    match notification::parse(body, &mut scratch) {
        Ok(Parsed::Notification(n)) => {
            let decision = config.router.route(&n, queue);
            let routes = config.router.routes();
            json!({
                "kind": n.kind,
                "source": n.source,
                "message_id": n.message_id,
                "routes": decision.routes.iter().map(|i| &routes[*i].name).collect::<Vec<_>>(),
                "sinks": decision.sinks.iter().map(|id| &config.sink(*id).name).collect::<Vec<_>>(),
            })
        }
        Ok(Parsed::Ignored(reason)) => json!({ "ignored": reason.to_string() }),
        Err(e) => json!({ "error": e.to_string() }),
    }
}

/// [`route_on`] for a body that arrived on no particular queue.
pub fn route_one(config_toml: &str, body: &str) -> Value {
    route_on(None, config_toml, body)
}

/// A fixture's text.
pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The `*.json` files directly in `dir`, sorted by name.
pub fn json_files(dir: &Path) -> Vec<PathBuf> {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    files
}

/// The sample bodies, sorted by file name (their two-digit prefix).
pub fn sample_bodies() -> Vec<PathBuf> {
    json_files(&samples().join("bodies"))
}

/// A file's name as a `&str`.
pub fn file_name(path: &Path) -> &str {
    path.file_name().and_then(|name| name.to_str()).expect("a UTF-8 file name")
}

/// A temporary file holding `contents`, named with `suffix` (`".toml"`).
/// The Python `scripts/test` installs for `test`'s servers, named by the
/// environment variable `var`; `None` (after a note) when it is not set,
/// which fails under CI instead.
pub fn test_python(var: &str, test: &str) -> Option<String> {
    let python = std::env::var(var).ok().filter(|p| !p.is_empty());
    if python.is_none() {
        assert!(std::env::var_os("CI").is_none(), "{test}: CI is set but {var} is not: use scripts/test");
        eprintln!("{test}: skipped: {var} is not set (scripts/test installs its servers and sets it)");
    }
    python
}

pub fn temp_file(suffix: &str, contents: impl AsRef<[u8]>) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new().suffix(suffix).tempfile().expect("a temporary file");
    std::io::Write::write_all(&mut file, contents.as_ref()).expect("the temporary file is written");
    file
}

/// A temporary directory holding one file, `name`, with `contents`.
pub fn dir_with(name: &str, contents: impl AsRef<[u8]>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(dir.path().join(name), contents).expect("the file is written");
    dir
}
