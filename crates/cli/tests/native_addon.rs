//! The N-API bar: an addon (built here with node-gyp from npm, against the headers installed with Node) leaks on
//! every call from a named JS function; `native diff` of two dumps names the addon's leaking function and the JS
//! caller within the top 3 stacks.

#[path = "native_common.rs"]
mod common;
use common::*;
use std::process::Command;

#[test]
fn addon_leak_is_named_with_its_js_caller() {
    if !tool_ok("node") || !tool_ok("npm") {
        eprintln!("skipped: node or npm not on PATH");
        return;
    }
    let dir = scratch("addon");
    // node-gyp from npm (bounded in time).
    let npm = Command::new("timeout")
        .args(["300", "npm", "install", "--no-audit", "--no-fund", "--prefix"])
        .arg(&dir)
        .arg("node-gyp@10")
        .output()
        .unwrap();
    assert!(npm.status.success(), "npm install node-gyp failed:\n{}", String::from_utf8_lossy(&npm.stderr));
    let src = dir.join("addon");
    std::fs::create_dir_all(&src).unwrap();
    for f in ["binding.gyp", "leaky_addon.c", "leak_from_js.js"] {
        std::fs::copy(fixtures().join("addon").join(f), src.join(f)).unwrap();
    }
    // Node's headers come with Node: <prefix>/include/node next to <prefix>/bin/node.
    let exec = Command::new("node").args(["-p", "process.execPath"]).output().unwrap();
    let node_path = std::fs::canonicalize(String::from_utf8_lossy(&exec.stdout).trim()).unwrap();
    let nodedir = node_path.parent().and_then(|p| p.parent()).unwrap();
    let gyp = Command::new("timeout")
        .arg("300")
        .arg(dir.join("node_modules/.bin/node-gyp"))
        .arg("rebuild")
        .arg(format!("--nodedir={}", nodedir.display()))
        .current_dir(&src)
        .output()
        .unwrap();
    assert!(gyp.status.success(), "node-gyp failed:\n{}", String::from_utf8_lossy(&gyp.stderr));
    let addon = src.join("build/Release/leaky_addon.node");
    assert!(addon.exists());

    let out = run(leakscope()
        .args(["native", "--every", "1s", "--json", "-o"])
        .arg(&dir)
        .args(["--", "node"])
        .arg(src.join("leak_from_js.js"))
        .arg(&addon)
        .arg("3500"));
    let v = json(&out);
    let dumps = v["dumps"].as_array().unwrap();
    assert!(dumps.len() >= 3, "{v:#}");
    let first = dumps[0].as_str().unwrap();
    let last = dumps[dumps.len() - 2].as_str().unwrap();
    let d = json(&run(leakscope().args(["native", "diff", first, last, "--json", "--top", "3"])));
    let rows = d["rows"].as_array().unwrap();
    let hit = rows.iter().find(|r| {
        let key = r["key"].as_str().unwrap();
        key.contains("addon_leaky_alloc") && key.contains("callLeakyAddon")
    });
    let hit = hit.unwrap_or_else(|| panic!("addon leak with its JS caller not in the top 3:\n{d:#}"));
    assert_eq!(hit["significant"], true, "{hit:#}");
}
