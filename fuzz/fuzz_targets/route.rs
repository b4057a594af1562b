//! Any bytes, as `sesroute route` and the daemon read a queue body: parsed,
//! routed through the sample config, and written as decision lines. The
//! target fails on a panic, an abort (a stack overflow) or a decision line
//! that is not one JSON object per input.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use sesroute::cmd::route::{decide, route_bytes};
use sesroute::config::Config;

static CONFIG: LazyLock<Config> = LazyLock::new(|| {
    sesroute::config::from_toml(include_str!("../../tests/fixtures/samples/config.toml"))
        .expect("the sample config is valid")
});

fuzz_target!(|body: &[u8]| {
    let mut scratch = String::new();
    let _ = decide(&CONFIG, body, Some("feedback"), &mut scratch);
    let mut out = Vec::new();
    route_bytes(&mut out, &CONFIG, "fuzz", body, Some("feedback")).expect("writing to a Vec cannot fail");
    let out = std::str::from_utf8(&out).expect("decision lines are UTF-8");
    assert!(!out.is_empty(), "every input gives a decision");
    for line in out.lines() {
        assert!(line.starts_with("{\"input\":\"fuzz") && line.ends_with('}'), "a decision line: {line}");
    }
});
