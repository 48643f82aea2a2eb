//! Times the dominator computation alone, several times on one parsed snapshot:
//! `cargo run --release --example dominators -- FILE [RUNS]`. Used by bench/ to compare variants.

use leakscope_heap::analysis::dominators::{immediate_dominators, FlowGraph};
use leakscope_heap::analysis::{essential, roots, weakmap::WeakMapNames};
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: dominators FILE [RUNS]");
    let runs: usize = args.next().map_or(5, |r| r.parse().expect("RUNS is a number"));
    let snapshot = leakscope_heap::parse(std::fs::File::open(&path).expect("open")).expect("parse");
    let weakmaps = WeakMapNames::build(&snapshot);
    let page_owned = roots::page_owned(&snapshot, true);
    let essential = essential::essential_edges(&snapshot, &page_owned, &weakmaps);
    let graph = FlowGraph::new(&snapshot, &essential);
    let mut times = Vec::new();
    let mut checksum = 0u64;
    for _ in 0..runs {
        let start = Instant::now();
        let doms = immediate_dominators(&graph, snapshot.root());
        times.push(start.elapsed().as_secs_f64());
        checksum = doms.idom.iter().map(|&d| d as u64).sum();
    }
    times.sort_by(f64::total_cmp);
    println!("immediate_dominators: min {:.3}s median {:.3}s (idom checksum {checksum})", times[0], times[runs / 2]);
}
