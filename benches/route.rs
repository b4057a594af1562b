//! Parse + route over the sample corpus, against a bare `serde_json::Value`
//! parse of the same bytes, in the same run (`cargo bench --bench route`).
//!
//! The goal: parse + route at least as fast as the Value parse alone.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sesroute::cmd::route::decide;

fn corpus() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/samples/bodies");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("the sample corpus is readable")
        .map(|e| e.expect("a readable directory entry").path())
        .collect();
    files.sort();
    files.iter().map(|f| std::fs::read(f).expect("the sample corpus is readable")).collect()
}

fn bench(c: &mut Criterion) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/samples");
    let config = sesroute::config::from_toml(
        &std::fs::read_to_string(dir.join("config.toml")).expect("the sample corpus is readable"),
    )
    .expect("the sample corpus is readable");
    let bodies = corpus();
    let mut group = c.benchmark_group("corpus");
    group.throughput(Throughput::Elements(bodies.len() as u64));
    group.bench_function("value_parse", |b| {
        b.iter(|| {
            for body in &bodies {
                let _ = black_box(serde_json::from_slice::<serde_json::Value>(black_box(body)));
            }
        });
    });
    group.bench_function("parse_and_route", |b| {
        b.iter(|| {
            for body in &bodies {
                let mut scratch = String::new();
                black_box(decide(&config, black_box(body), None, &mut scratch));
            }
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
