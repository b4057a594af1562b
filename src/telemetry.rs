//! Logging: structured JSON by default, pretty for people at a terminal.
//!
//! The filter comes from `SESROUTE_LOG`, else `RUST_LOG` (`info` when neither
//! is set), in `tracing_subscriber`'s `EnvFilter` syntax.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;

/// Installs the global subscriber; logs go to standard output.
pub fn init(format: LogFormat) {
    let filter = std::env::var("SESROUTE_LOG")
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let pretty = match format {
        LogFormat::Pretty => true,
        LogFormat::Json => false,
        LogFormat::Auto => std::io::stdout().is_terminal(),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if pretty {
        builder.with_target(false).init();
    } else {
        builder.json().with_current_span(true).with_span_list(false).flatten_event(true).init();
    }
}
