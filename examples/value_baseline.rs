//! Baseline for the `route` benchmark: parses each JSON Lines body into a
//! `serde_json::Value` and prints one line per body, nothing else.
//!
//! `scripts/bench-route` times `sesroute route` against this program on the
//! same file; sesroute should take at most 1.1 times as long.

use std::io::{self, BufWriter, Write};

fn main() -> io::Result<()> {
    let path = std::env::args().nth(1).expect("usage: value_baseline FILE");
    let bytes = std::fs::read(&path)?;
    let mut out = BufWriter::with_capacity(1 << 16, io::stdout().lock());
    for (index, line) in bytes.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let parsed = serde_json::from_slice::<serde_json::Value>(line);
        writeln!(out, "{{\"input\":\"{path}:{}\",\"ok\":{}}}", index + 1, parsed.is_ok())?;
    }
    out.flush()
}
