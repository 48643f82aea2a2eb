//! The C leak bar: 400 MiB leaked in 4 KiB blocks from `leaky_function`, amid much more churn. The report must put
//! that function first and estimate the leak within ±10% at the default 512 KiB interval.

#[path = "native_common.rs"]
mod common;
#[path = "support/pprof_format.rs"]
mod pprof_format;
use common::*;
use pprof_format::pprof_format;

const BLOCKS: u64 = 102_400;
const SIZE: u64 = 4096;

#[test]
fn c_leak_is_found_and_estimated_within_ten_percent() {
    let dir = scratch("leak");
    let exe = dir.join("leak");
    compile("leak.c", &exe, &[]);
    let out = run(leakscope().args(["native", "--json", "--top", "5", "-o"]).arg(&dir).arg("--").arg(&exe));
    let v = json(&out);
    let rows = v["final"]["rows"].as_array().expect("rows");
    let first = &rows[0];
    let site = first["site"].as_str().unwrap();
    assert!(site.contains("leaky_function"), "first site is {site}\n{v:#}");
    let est = first["inuse_space"]["value"].as_f64().unwrap();
    let truth = (BLOCKS * SIZE) as f64;
    let rel = (est - truth).abs() / truth;
    assert!(rel < 0.10, "estimated {est} for {truth} ({:.1}% off)", rel * 100.0);
    // The expected error is reported and matches 1/sqrt(samples).
    let samples = first["samples"].as_f64().unwrap();
    let stderr = first["inuse_space"]["stderr"].as_f64().unwrap();
    assert!(samples > 600.0 && samples < 1000.0, "samples {samples}");
    let expected = est / samples.sqrt();
    assert!((stderr - expected).abs() / expected < 0.05, "stderr {stderr} vs {expected}");
    // The leaked blocks are objects too.
    let objects = first["inuse_objects"].as_f64().unwrap();
    assert!((objects - BLOCKS as f64).abs() / (BLOCKS as f64) < 0.10, "objects {objects}");
    // Frames: leaky_function, then main, with file:line from DWARF.
    let frames = first["frames"].as_array().unwrap();
    assert!(frames.iter().any(|f| f["function"] == "main"), "{frames:?}");
    assert!(frames[0]["file"].as_str().unwrap_or("").ends_with("leak.c"), "{frames:?}");

    // report: table, pprof, flamegraph, folded from the same dump.
    let pid = v["final"]["pid"].as_u64().unwrap();
    let dump = dir.join(format!("native-{pid}-exit.jsonl"));
    let (pb, svg, folded) = (dir.join("p.pb.gz"), dir.join("f.svg"), dir.join("f.folded"));
    let out = run(leakscope()
        .args(["native", "report"])
        .arg(&dump)
        .arg("--pprof")
        .arg(&pb)
        .arg("--flamegraph")
        .arg(&svg)
        .arg("--folded")
        .arg(&folded));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("leaky_function"), "{text}");
    assert!(text.contains('±'), "{text}");
    let svg_text = std::fs::read_to_string(&svg).unwrap();
    assert!(svg_text.starts_with("<?xml") && svg_text.contains("leaky_function"));
    let folded_text = std::fs::read_to_string(&folded).unwrap();
    assert!(
        folded_text.lines().any(|l| l.contains("main (leak.c:") && l.contains(";leaky_function (leak.c:")),
        "{folded_text}"
    );
    let mut raw = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(std::fs::File::open(&pb).unwrap()), &mut raw).unwrap();
    let s = String::from_utf8_lossy(&raw);
    for t in ["inuse_space", "inuse_objects", "alloc_space", "alloc_objects", "leaky_function"] {
        assert!(s.contains(t), "pprof lacks {t}");
    }
    // An independent decoder reads it: heap sample types in Go's order, inuse_space by default, the interval as
    // period, the same live total as the report, named functions on the program's mapping.
    if let Some(module) = pprof_format() {
        let d = decode_pprof(&module, &pb);
        assert_eq!(d["types"], serde_json::json!(["alloc_objects", "alloc_space", "inuse_objects", "inuse_space"]));
        assert_eq!(d["defaultSampleType"], "inuse_space");
        assert_eq!(d["period"], 524288);
        assert_eq!(d["dangling"], false);
        let report = json(&run(leakscope().args(["native", "report", "--json", "--top", "0"]).arg(&dump)));
        let live = report["inuse_space"]["value"].as_f64().unwrap();
        let total = d["totals"][3].as_f64().unwrap();
        assert!((total - live).abs() <= d["samples"].as_f64().unwrap(), "pprof inuse_space {total} vs report {live}");
        let functions = d["functions"].as_array().unwrap();
        assert!(functions.iter().any(|f| f == "leaky_function") && functions.iter().any(|f| f == "main"), "{d}");
        assert!(d["mappings"].as_array().unwrap().iter().any(|m| m.as_str().unwrap().ends_with("/leak")), "{d}");
    }
}

#[test]
fn series_and_diff_name_the_growing_stack() {
    let dir = scratch("series");
    let exe = dir.join("leak");
    compile("leak.c", &exe, &[]);
    // 160 MiB leaked in 10 steps of ~150 ms: dumps every 400 ms see it grow.
    let out = run(leakscope()
        .args(["native", "--every", "400ms", "--json", "-o"])
        .arg(&dir)
        .arg("--")
        .arg(&exe)
        .args(["40960", "4096", "10", "150"]));
    let v = json(&out);
    let dumps = v["dumps"].as_array().unwrap();
    assert!(dumps.len() >= 3, "{v:#}");
    let series = v["series"].as_array().unwrap();
    assert!(series[0]["site"].as_str().unwrap().contains("leaky_function"), "{v:#}");
    assert_eq!(series[0]["verdict"], "growing");
    assert!(series.iter().filter(|s| s["verdict"] == "growing").count() <= 2, "{v:#}");
    assert_eq!(out.status.code(), Some(1), "growth is a finding");

    let first = dumps[0].as_str().unwrap();
    let last = dumps.last().unwrap().as_str().unwrap();
    let out = run(leakscope().args(["native", "diff", first, last, "--json"]));
    let d = json(&out);
    let top = &d["rows"][0];
    assert!(top["site"].as_str().unwrap().contains("leaky_function"), "{d:#}");
    assert_eq!(top["significant"], true);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn bad_dumps_exit_2() {
    let dir = scratch("bad");
    let missing = run_status(leakscope().args(["native", "report"]).arg(dir.join("nope.jsonl")));
    assert_eq!(missing, Some(2));
    let junk = dir.join("junk.jsonl");
    std::fs::write(&junk, "hello\n").unwrap();
    assert_eq!(run_status(leakscope().args(["native", "report"]).arg(&junk)), Some(2));
    let cut = dir.join("cut.jsonl");
    std::fs::write(
        &cut,
        "{\"type\":\"header\",\"format\":\"leakscope-native\",\"version\":1,\"pid\":1,\"interval\":524288}\n{\"type\":\"stack\",\"id\":0,\"alloc_objects\":1,\"alloc_space\":1,\"frames\":[1,2",
    )
    .unwrap();
    let out = leakscope().args(["native", "report"]).arg(&cut).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cut.jsonl"));
    assert_eq!(run_status(leakscope().arg("native")), Some(2), "nothing to run");
}

fn run_status(cmd: &mut std::process::Command) -> Option<i32> {
    cmd.output().unwrap().status.code()
}
