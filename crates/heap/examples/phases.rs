//! Times each phase of loading and analysing a snapshot: `cargo run --release --example phases -- FILE`.
//! Used by bench/ to see where the time goes; `leakscope summary` is what users run.

use leakscope_heap::{Analysis, AnalysisOptions};
use std::time::Instant;

fn main() {
    let path = std::env::args().nth(1).expect("usage: phases FILE.heapsnapshot");
    let start = Instant::now();
    let file = std::fs::File::open(&path).expect("open");
    let snapshot = leakscope_heap::parse(std::io::BufReader::with_capacity(1 << 20, file)).expect("parse");
    let parsed = start.elapsed();
    let mut last = Instant::now();
    let mut phases = Vec::new();
    let options = AnalysisOptions { parallel: true, ..Default::default() };
    let analysis = Analysis::new(&snapshot, &options, &mut |phase| {
        phases.push((phase.to_string(), last.elapsed()));
        last = Instant::now();
    });
    let analysed = start.elapsed();
    let rows = analysis.summary(&snapshot);
    let total = start.elapsed();
    println!(
        "{path}: {} nodes, {} edges, {} strings; snapshot columns {} MB",
        snapshot.node_count(),
        snapshot.edge_count(),
        snapshot.strings().len(),
        snapshot.memory_bytes() >> 20
    );
    println!("parse {:.3}s", parsed.as_secs_f64());
    for (phase, took) in phases.iter().skip(1) {
        println!("  before '{phase}': {:.3}s", took.as_secs_f64());
    }
    println!(
        "analysis done at {:.3}s; summary ({} rows) at {:.3}s",
        analysed.as_secs_f64(),
        rows.len(),
        total.as_secs_f64()
    );
}
