//! Offline checks on a hand-made dump: estimates and their errors, diff, pprof structure, folded stacks.

use leakscope_native::export::{stack_profile, INUSE_SPACE};
use leakscope_native::report::site_of;
use leakscope_native::{diff, Dump, Profile, Symbolizer};
use leakscope_profile::pprof;
use prost::Message;

/// A dump whose frames lie in a module that does not exist (so they stay unnamed) with `n` live 4 KiB samples at R = 512 KiB.
fn dump(n: usize, time: u64) -> Dump {
    let r = 524_288f64;
    let w = 1.0 / (1.0 - (-(4097.0) / r).exp());
    let mut text = format!(
        "{{\"type\":\"header\",\"format\":\"leakscope-native\",\"version\":1,\"pid\":999999999,\"exe\":\"/x\",\"interval\":524288,\"time_unix_ms\":{time}}}\n"
    );
    text.push_str("{\"type\":\"module\",\"start\":4096,\"end\":65536,\"offset\":0,\"path\":\"/nonexistent/a.so\"}\n");
    text.push_str("{\"type\":\"stack\",\"id\":0,\"alloc_objects\":10,\"alloc_space\":40960,\"frames\":[5000,6000]}\n");
    text.push_str("{\"type\":\"stack\",\"id\":1,\"alloc_objects\":1,\"alloc_space\":100,\"frames\":[7000]}\n");
    for i in 0..n {
        text.push_str(&format!(
            "{{\"type\":\"sample\",\"addr\":{},\"size\":4096,\"weight\":{w},\"stack\":0}}\n",
            1 << 20 | i
        ));
    }
    text.push_str("{\"type\":\"sample\",\"addr\":1,\"size\":8388608,\"weight\":1.0,\"stack\":1}\n");
    text.push_str("{\"type\":\"end\"}\n");
    Dump::parse(text.as_bytes(), "mem").unwrap()
}

#[test]
fn estimates_carry_their_expected_error() {
    let d = dump(100, 0);
    let frames = Symbolizer::new().symbolize_dump(&d);
    let p = Profile::build(&d, &frames);
    // The 8 MiB block (weight 1) is exact; the 100 small samples (≈52 MiB, first) have ~10% relative error.
    let big = p.rows.iter().find(|r| r.samples == 1).unwrap();
    assert_eq!(big.inuse_space.value, 8_388_608.0);
    assert_eq!(big.inuse_space.stderr, 0.0);
    let small = &p.rows[0];
    assert_eq!(small.samples, 100);
    assert!((small.inuse_space.relative() - 0.1).abs() < 0.005, "{}", small.inuse_space.relative());
    assert!(!site_of(&small.frames).is_empty());
}

#[test]
fn diff_flags_only_significant_growth() {
    let a = dump(100, 1000);
    let b = dump(400, 2000);
    let c = dump(105, 2000);
    let mut sym = Symbolizer::new();
    let (pa, pb, pc) = (
        Profile::build(&a, &sym.symbolize_dump(&a)),
        Profile::build(&b, &sym.symbolize_dump(&b)),
        Profile::build(&c, &sym.symbolize_dump(&c)),
    );
    let d = diff(&pa, &pb);
    assert!(d.rows[0].significant && d.rows[0].growth.value > 0.0);
    assert_eq!(d.elapsed_ms, 1000);
    let d = diff(&pa, &pc);
    assert!(d.rows.iter().all(|r| !r.significant), "5 more samples is noise");
}

#[test]
fn pprof_has_heap_sample_types_and_decodes() {
    let d = dump(10, 0);
    let frames = Symbolizer::new().symbolize_dump(&d);
    let p = stack_profile(&d, &frames);
    let mut gz = Vec::new();
    p.write_pprof_gz(&mut gz).unwrap();
    let mut raw = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut raw).unwrap();
    let back = pprof::Profile::decode(&raw[..]).unwrap();
    assert_eq!(back.string_table[0], "");
    let types: Vec<&str> = back.sample_type.iter().map(|t| back.string_table[t.r#type as usize].as_str()).collect();
    assert_eq!(types, ["alloc_objects", "alloc_space", "inuse_objects", "inuse_space"]);
    assert_eq!(back.string_table[back.default_sample_type as usize], "inuse_space");
    assert_eq!(back.period, 524_288);
    assert_eq!(back.sample.len(), 2);
    assert_eq!(back.sample[1].value[3], 8_388_608);
    assert_eq!(back.sample[0].location_id.len(), 2);
    for s in &back.sample {
        for l in &s.location_id {
            assert!(back.location.iter().any(|loc| loc.id == *l));
        }
    }
    // Frames are located at their call site (return address − 1) on the module that contains them.
    let leaf = &back.location[back.sample[0].location_id[0] as usize - 1];
    assert_eq!(leaf.address, 4999);
    assert_eq!(back.string_table[back.mapping[leaf.mapping_id as usize - 1].filename as usize], "/nonexistent/a.so");
    let folded = p.folded(INUSE_SPACE);
    assert_eq!(folded.len(), 2);
    assert!(folded.iter().all(|l| l.rsplit(' ').next().unwrap().parse::<u64>().is_ok()));
    let mut svg = Vec::new();
    p.write_flamegraph(INUSE_SPACE, "live native memory", &mut svg).unwrap();
    assert!(String::from_utf8(svg).unwrap().contains("<svg"));
}
