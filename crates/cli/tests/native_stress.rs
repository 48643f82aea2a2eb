//! Stress: 16 threads in a malloc/free/realloc storm over every interposed function, plus fork+exec of a child,
//! under the preload with a small interval (many samples): same output as without it, no crash or deadlock.

#[path = "native_common.rs"]
mod common;
use common::*;
use std::time::Duration;

#[test]
fn threads_fork_and_exec_under_the_preload() {
    let dir = scratch("stress");
    let exe = dir.join("stress");
    compile("stress.c", &exe, &["-pthread"]);
    let plain = dir.join("plain.txt");
    let st = std::process::Command::new(&exe).arg(&plain).status().unwrap();
    assert!(st.success());
    let traced = dir.join("traced.txt");
    let mut child = leakscope()
        .args(["native", "--interval", "64KiB", "--json", "-o"])
        .arg(&dir)
        .arg("--")
        .arg(&exe)
        .arg(&traced)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Bounded: a deadlock fails the test instead of hanging it.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("stress program did not finish in 120 s under the preload (deadlock?)");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "status {}", out.status);
    let a = std::fs::read_to_string(&plain).unwrap();
    let b = std::fs::read_to_string(&traced).unwrap();
    assert_eq!(a, b, "output changed under the preload");
    assert!(b.contains("child-ok"));
    // The exec'd child ran without the preload (the library removes itself from LD_PRELOAD).
    if std::env::var_os("LD_PRELOAD").is_none() {
        assert!(b.contains("child-ok LD_PRELOAD=none"), "{b}");
    }
    let v = json(&out);
    assert!(v["final"]["samples"].as_u64().is_some());
}
