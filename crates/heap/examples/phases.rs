//! Times each phase of loading and analysing a snapshot: `cargo run --release --example phases -- FILE`.
//! Used by bench/ to see where the time goes; `leakscope summary` is what users run.
//!
//! Per phase: wall time, CPU time of the whole process (both threads; on a shared machine the CPU time is the
//! steadier figure), peak RSS so far and RSS at its end (VmHWM, VmRSS; Linux only).

use leakscope_heap::{Analysis, AnalysisOptions};
use std::time::Instant;

struct Mark {
    wall: Instant,
    cpu: f64,
}

impl Mark {
    fn now() -> Mark {
        Mark { wall: Instant::now(), cpu: cpu_seconds() }
    }

    fn line(&self, what: &str) -> String {
        format!(
            "{what:<52} wall {:>6.3}s  cpu {:>6.3}s  peak RSS {:>5} MB  RSS after {:>5} MB",
            self.wall.elapsed().as_secs_f64(),
            cpu_seconds() - self.cpu,
            status_mb("VmHWM:"),
            status_mb("VmRSS:")
        )
    }
}

/// User + system time of this process, from /proc/self/stat (clock ticks of 1/100 s).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(") ").map(|(_, rest)| rest.split(' ').collect()).unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// A memory figure from /proc/self/status (VmHWM: peak RSS, VmRSS: current), in MiB.
fn status_mb(key: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}

fn main() {
    let path = std::env::args().nth(1).expect("usage: phases FILE.heapsnapshot");
    // As `leakscope` itself does (see its main.rs), so that the peaks are the ones users see.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; no other thread exists yet.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 << 10);
    }
    let start = Mark::now();
    // Mapped and read in place, its pages given back as the parse goes, as `leakscope` loads plain files.
    let file = std::fs::File::open(&path).expect("open");
    // SAFETY: only read; the benchmark's files are not modified while it runs.
    let map = unsafe { memmap2::Mmap::map(&file) }.expect("map");
    let _ = map.advise(memmap2::Advice::Sequential);
    let snapshot = leakscope_heap::parse_in_place_giving_back(&map, 4096, &|range| {
        // SAFETY: the parser does not read before the range's end again.
        let _ = unsafe { map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, range.start, range.len()) };
    })
    .expect("parse");
    drop(map);
    println!(
        "{path}: {} nodes, {} edges, {} strings; snapshot columns {} MB",
        snapshot.node_count(),
        snapshot.edge_count(),
        snapshot.strings().len(),
        snapshot.memory_bytes() >> 20
    );
    println!("{}", start.line("parse"));
    let mut lines = Vec::new();
    let mut last: Option<(String, Mark)> = None;
    let options = AnalysisOptions { parallel: true, ..Default::default() };
    let analysis = Analysis::new(&snapshot, &options, &mut |phase| {
        if let Some((name, mark)) = last.take() {
            lines.push(mark.line(&format!("  {name}")));
        }
        last = Some((phase.to_string(), Mark::now()));
    });
    if let Some((name, mark)) = last.take() {
        lines.push(mark.line(&format!("  {name}")));
    }
    let mark = Mark::now();
    let rows = analysis.summary(&snapshot);
    lines.push(mark.line(&format!("  summary ({} rows)", rows.len())));
    for line in lines {
        println!("{line}");
    }
    println!("{}", start.line("total"));
}
