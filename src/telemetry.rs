//! Logging: structured JSON by default, pretty for people at a terminal.
//!
//! The filter comes from `SESROUTE_LOG`, else `RUST_LOG` (`info` when neither
//! is set), in `tracing_subscriber`'s `EnvFilter` syntax.
//!
//! Lines are formatted where they happen and written by a thread of their
//! own (`tracing_appender`'s non-blocking writer, which never drops a line:
//! a full buffer makes the logging task wait) through a buffer, so many lines
//! take one `write` when they come together. [`init`] returns the [`Log`]
//! that owns that thread; [`Log::flush`] (also on drop) writes out every line
//! logged so far, before the process exits.

use std::io::{self, BufWriter, IsTerminal};
use std::sync::Mutex;

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::cli::LogFormat;

/// The buffer between the formatted lines and standard output.
const WRITE_BUFFER_BYTES: usize = 64 * 1024;
/// Lines waiting for the writer thread before a logging task waits.
const QUEUED_LINES: usize = 8 * 1024;

/// The running log: its writer thread, until flushed.
pub struct Log(Mutex<Option<WorkerGuard>>);

impl Log {
    /// Writes out every line logged so far and stops the writer thread;
    /// later lines are not written. Waits at most about a second.
    pub fn flush(&self) {
        let guard = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        drop(guard);
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Installs the global subscriber; logs go to standard output.
pub fn init(format: LogFormat) -> Log {
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
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(QUEUED_LINES)
        .thread_name("sesroute-log")
        .finish(BufWriter::with_capacity(WRITE_BUFFER_BYTES, io::stdout()));
    if pretty {
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).with_target(false).init();
    } else {
        let json = json_subscriber::fmt::layer()
            .with_writer(writer)
            .with_current_span(true)
            .with_span_list(false)
            .flatten_event(true);
        tracing_subscriber::registry().with(filter).with(json).init();
    }
    Log(Mutex::new(Some(guard)))
}
