//! The command line, as clap derives it.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::DEFAULT_PATH;

/// Routes Amazon SES feedback (bounces, complaints, deliveries and events)
/// from SQS queues to the teams who own it, through ordered TOML routes.
#[derive(Debug, Parser)]
#[command(name = "sesroute", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    /// The config file. Keys can be overridden by SESROUTE_<KEY> environment
    /// variables, with `__` between nested keys (SESROUTE_AWS__REGION=eu-west-1).
    #[arg(long, short = 'c', global = true, env = "SESROUTE_CONFIG", default_value = DEFAULT_PATH, value_name = "PATH")]
    pub config: PathBuf,

    /// Log format: `json` (one object per line), `pretty`, or `auto` (pretty on a terminal, else JSON).
    #[arg(long, global = true, value_enum, env = "SESROUTE_LOG_FORMAT", default_value_t = LogFormat::Auto)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Auto,
    Json,
    Pretty,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuditFormat {
    /// Grouped by resource, worst first, each finding with its fix.
    Text,
    /// One JSON object per finding, one per line.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: poll every source queue, route, deliver to sinks, delete what was delivered.
    Run,
    /// Validate the config and print a summary of its sources, sinks and routes (exit 2 when invalid).
    Check,
    /// Ask the running daemon on `[server] listen` whether it is alive (exit 0) or not (exit 1).
    ///
    /// For container health checks: the image has no shell or curl.
    Health {
        /// Ask whether it is ready (every source polled recently) instead of alive.
        #[arg(long)]
        ready: bool,
    },
    /// Route message bodies offline and print one JSON decision per body; no sink is called.
    ///
    /// Each FILE holds one JSON document (even pretty-printed) or JSON Lines
    /// (one body per non-empty line). Without FILE, or with `-`, bodies are
    /// read from standard input. Exit status: 0, 2 on an invalid config, 1 when
    /// a file cannot be read.
    Route {
        /// The [[sources]] name the bodies arrived on (for the `queue` matcher).
        #[arg(long, value_name = "NAME")]
        queue: Option<String>,
        /// Files of message bodies; `-` is standard input.
        #[arg(value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Hold the SES account of `[aws]` against the config, with read-only calls.
    ///
    /// Checks that every sending identity's bounces and complaints reach a
    /// [[sources]] queue, that no identity policy makes an identity public or
    /// lets any From address send, that feedback topics and queues are not
    /// open, that the archive bucket is not readable, and more (see the
    /// README's table). Exit status: 0 when no finding is at or above
    /// --fail-on, 1 when one is, 2 on an invalid config, 3 when the account
    /// cannot be read at all.
    Audit {
        /// `text` for people, `json` (JSON Lines) for machines.
        #[arg(long, value_enum, default_value_t = AuditFormat::Text)]
        format: AuditFormat,
        /// The lowest level that makes the exit status 1.
        #[arg(long, value_enum, default_value_t = crate::audit::Level::Fail)]
        fail_on: crate::audit::Level,
    },
}
