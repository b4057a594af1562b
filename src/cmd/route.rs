//! `sesroute route`: decide offline where each body would go, as JSON Lines.
//!
//! No sink is opened and no network is touched: this is the same parse and
//! route the daemon runs, with the decision printed instead of delivered.

use std::fmt;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::config::{self, Config};
use crate::notification::{self, Notification, ParseError, Parsed};
use crate::route::Decision;

pub fn run(config_path: &Path, queue: Option<&str>, files: &[PathBuf]) -> ExitCode {
    let config = match config::load(config_path) {
        Ok(config) => config,
        Err(e) => return super::config_error(&e),
    };
    if let Some(queue) = queue.filter(|q| config.source(q).is_none()) {
        let names: Vec<&str> = config.sources.iter().map(|s| s.name.as_str()).collect();
        eprintln!("warning: --queue {queue:?} is not a [[sources]] name (defined: {})", names.join(", "));
    }
    let stdin = [PathBuf::from("-")];
    let files = if files.is_empty() { &stdin[..] } else { files };
    let mut out = BufWriter::with_capacity(1 << 16, io::stdout().lock());
    let mut status = ExitCode::SUCCESS;
    for file in files {
        let (name, bytes) = match read(file) {
            Ok(read) => read,
            Err(e) => {
                eprintln!("error: cannot read {}: {e}", file.display());
                status = ExitCode::from(super::exit::FAILURE);
                continue;
            }
        };
        if let Err(e) = route_bytes(&mut out, &config, &name, &bytes, queue) {
            return write_failed(&e);
        }
    }
    match out.flush() {
        Ok(()) => status,
        Err(e) => write_failed(&e),
    }
}

fn read(file: &Path) -> io::Result<(String, Vec<u8>)> {
    if file.as_os_str() == "-" {
        let mut bytes = Vec::new();
        io::stdin().lock().read_to_end(&mut bytes)?;
        Ok(("-".to_owned(), bytes))
    } else {
        Ok((file.display().to_string(), std::fs::read(file)?))
    }
}

fn write_failed(e: &io::Error) -> ExitCode {
    // A closed pipe (`sesroute route ... | head`) is the reader's choice, not a failure.
    if e.kind() == io::ErrorKind::BrokenPipe {
        return ExitCode::SUCCESS;
    }
    eprintln!("error: cannot write the decisions: {e}");
    ExitCode::from(super::exit::FAILURE)
}

/// Routes every body of one input (a file or stdin) and writes a line each.
///
/// The input is one body when it parses whole as one JSON value (even over
/// many lines), else one body per non-empty line.
pub fn route_bytes<W: Write>(
    out: &mut W,
    config: &Config,
    name: &str,
    bytes: &[u8],
    queue: Option<&str>,
) -> io::Result<()> {
    if serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok() || is_blank(bytes) {
        return route_one(out, config, Input { name, line: 1 }, bytes, queue);
    }
    for (index, line) in bytes.split(|b| *b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if !is_blank(line) {
            route_one(out, config, Input { name, line: index + 1 }, line, queue)?;
        }
    }
    Ok(())
}

fn is_blank(bytes: &[u8]) -> bool {
    bytes.iter().all(u8::is_ascii_whitespace)
}

fn route_one<W: Write>(
    out: &mut W,
    config: &Config,
    input: Input<'_>,
    body: &[u8],
    queue: Option<&str>,
) -> io::Result<()> {
    let mut scratch = String::new();
    let outcome = decide(config, body, queue, &mut scratch);
    serde_json::to_writer(&mut *out, &Line { input, config, outcome: &outcome })?;
    out.write_all(b"\n")
}

/// What became of one body.
#[derive(Debug)]
pub enum Outcome<'a> {
    Routed(Box<Notification<'a>>, Decision),
    Ignored(notification::Ignored),
    Error(ParseError),
}

/// Parses and routes one body.
///
/// The outcome borrows from `body` and `scratch` (see [`notification::parse`]).
pub fn decide<'a>(config: &Config, body: &'a [u8], queue: Option<&str>, scratch: &'a mut String) -> Outcome<'a> {
    let parsed =
        std::str::from_utf8(body).map_err(|_| ParseError::NotUtf8).and_then(|body| notification::parse(body, scratch));
    match parsed {
        Ok(Parsed::Notification(n)) => {
            let decision = config.router.route(&n, queue);
            Outcome::Routed(n, decision)
        }
        Ok(Parsed::Ignored(reason)) => Outcome::Ignored(reason),
        Err(e) => Outcome::Error(e),
    }
}

/// `FILE:LINE`, the `input` field.
#[derive(Clone, Copy)]
struct Input<'a> {
    name: &'a str,
    line: usize,
}

impl fmt::Display for Input<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.name, self.line)
    }
}

/// One output line, serialized straight from the decision without copies.
struct Line<'a> {
    input: Input<'a>,
    config: &'a Config,
    outcome: &'a Outcome<'a>,
}

impl Serialize for Line<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("input", &format_args!("{}", self.input))?;
        match self.outcome {
            Outcome::Routed(n, decision) => {
                let routes = self.config.router.routes();
                map.serialize_entry("kind", &n.kind)?;
                map.serialize_entry("source", &n.source)?;
                map.serialize_entry("message_id", &n.message_id)?;
                if let Some(class) = n.bounce_class() {
                    map.serialize_entry("bounce_class", &class)?;
                }
                map.serialize_entry("routes", &Names(decision.routes.iter().map(|i| routes[*i].name.as_str())))?;
                map.serialize_entry(
                    "sinks",
                    &Names(decision.sinks.iter().map(|id| self.config.sink(*id).name.as_str())),
                )?;
            }
            Outcome::Ignored(reason) => {
                map.serialize_entry("ignored", &format_args!("{reason}"))?;
            }
            Outcome::Error(e) => map.serialize_entry("error", &format_args!("{e}"))?,
        }
        map.end()
    }
}

/// A list of names serialized as a JSON array from an iterator.
struct Names<I>(I);

impl<'n, I: Iterator<Item = &'n str> + Clone> Serialize for Names<I> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.clone())
    }
}
