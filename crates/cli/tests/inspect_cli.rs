//! `leakscope show|retainers|find|diff|dup-strings|summary --by-location` end to end: the built binary on
//! snapshots real Node writes at test time. The `--json` outputs are checked for structure and key values.

#[path = "../../heap/tests/common/mod.rs"]
mod common;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_leakscope")).arg("--quiet").args(args).output().expect("leakscope runs")
}

fn json(args: &[&str]) -> Value {
    let out = run(args);
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e})"))
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn listener_leak() -> Vec<PathBuf> {
    common::scenario_snapshots("listener-leak")
}

fn per_round(scenario: &str) -> u64 {
    let meta = common::work_dir().join("scenarios").join(scenario).join("meta.json");
    let meta: Value = serde_json::from_str(&std::fs::read_to_string(meta).unwrap()).unwrap();
    meta["perRound"].as_u64().unwrap()
}

/// The id of the leaked `onMessage` closure with the largest retained size, found with `find --json`.
fn on_message_id(snapshot: &Path) -> u64 {
    let found =
        json(&["find", s(snapshot), "--class", "^Function$", "--name", "^onMessage$", "--limit", "5", "--json"]);
    assert!(found["total"].as_u64().unwrap() >= per_round("listener-leak") * 2, "{}", found["total"]);
    found["objects"][0]["id"].as_u64().unwrap()
}

fn located_in(node: &Value, file: &str) -> bool {
    node["location"]["file"].as_str().is_some_and(|f| f.ends_with(file)) && node["location"]["line"].as_u64() > Some(0)
}

#[test]
fn show_json_describes_the_object() {
    let snapshots = listener_leak();
    let snapshot = snapshots.last().unwrap();
    let id = on_message_id(snapshot);
    let shown = json(&["show", s(snapshot), &format!("@{id}"), "--limit", "0", "--json"]);
    let object = &shown["object"];
    assert_eq!(object["id"].as_u64(), Some(id));
    assert_eq!(object["type"], "closure");
    assert_eq!(object["class"], "Function");
    assert!(object["retained_size"].as_u64() >= object["self_size"].as_u64());
    assert!(located_in(object, "listener-leak.js"), "{object}");
    // Dominator chain: nearest first, ending at the root (id 1), each retaining at least as much as the last.
    let dominators = shown["dominators"].as_array().unwrap();
    assert_eq!(dominators.last().unwrap()["id"].as_u64(), Some(1));
    let sizes: Vec<u64> = dominators.iter().map(|d| d["retained_size"].as_u64().unwrap()).collect();
    assert!(sizes.windows(2).all(|w| w[0] <= w[1]), "{sizes:?}");
    // Edges: all of them (--limit 0), sorted by retained size, with `context` and `shared` internals.
    let edges = shown["edges"].as_array().unwrap();
    assert_eq!(edges.len() as u64, shown["edge_count"].as_u64().unwrap());
    let retained: Vec<u64> = edges.iter().map(|e| e["target"]["retained_size"].as_u64().unwrap()).collect();
    assert!(retained.windows(2).all(|w| w[0] >= w[1]));
    assert!(edges.iter().any(|e| e["edge"] == "{context}" && e["type"] == "internal"));
    assert!(edges.iter().any(|e| e["name"] == "shared"));
    // The human form names the location too.
    let text = String::from_utf8(run(&["show", s(snapshot), &id.to_string()]).stdout).unwrap();
    assert!(text.contains("listener-leak.js:"), "{text}");
    assert!(text.contains("next: leakscope retainers"));
}

#[test]
fn unknown_or_bad_ids_exit_2() {
    let snapshots = listener_leak();
    let snapshot = snapshots.last().unwrap();
    let out = run(&["show", s(snapshot), "@4294967295"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no object with id @4294967295") && stderr.contains("hint:"), "{stderr}");
    let out = run(&["retainers", s(snapshot), "@abc"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["retainers", s(snapshot), "--class", "NoSuchClassAnywhere"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no object of class"));
    let out = run(&["find", s(snapshot), "--name", "(unclosed"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn retainers_json_of_one_object() {
    let snapshots = listener_leak();
    let snapshot = snapshots.last().unwrap();
    let id = on_message_id(snapshot);
    let out = json(&["retainers", s(snapshot), &format!("@{id}"), "--paths", "2", "--json"]);
    let paths = out["paths"].as_array().unwrap();
    assert!(!paths.is_empty() && paths.len() <= 2);
    let first = &paths[0];
    let steps = first["steps"].as_array().unwrap();
    assert!(steps[0]["edge"].is_null(), "the first step has no incoming edge");
    assert_eq!(steps[0]["node"]["name"], "(GC roots)");
    assert_eq!(steps.last().unwrap()["node"]["id"].as_u64(), Some(id));
    assert_eq!(first["stop"], "no-retainers");
    let text = first["text"].as_str().unwrap();
    assert!(text.contains("->bus._events.message["), "{text}");
    // The closure and the context on the path carry source positions.
    assert!(steps.iter().any(|st| st["node"]["type"] == "closure" && located_in(&st["node"], "listener-leak.js")));
    assert!(steps.iter().any(|st| st["node"]["class"] == "system / Context" && st["node"]["location"].is_object()));
    // Human output: root first, the object last, the DevTools notation on one line.
    let human = String::from_utf8(run(&["retainers", s(snapshot), &id.to_string()]).stdout).unwrap();
    assert!(human.contains("(GC roots) @3") || human.contains("(GC roots)"), "{human}");
    assert!(human.contains("path: (GC roots)"), "{human}");
}

#[test]
fn retainers_ignore_changes_the_path() {
    let snapshots = listener_leak();
    let snapshot = snapshots.last().unwrap();
    let id = on_message_id(snapshot);
    let plain = json(&["retainers", s(snapshot), &format!("@{id}"), "--json"]);
    let ignored = json(&["retainers", s(snapshot), &format!("@{id}"), "--ignore", "_events", "--json"]);
    assert!(!ignored["ignored_ids"].as_array().unwrap().is_empty());
    let (a, b) = (plain["paths"][0]["text"].as_str().unwrap(), ignored["paths"][0]["text"].as_str().unwrap());
    assert!(a.contains("._events"));
    assert!(!b.contains("._events"), "ignoring the objects held in `_events` removes them from the path: {b}");
    let out = run(&["retainers", s(snapshot), &format!("@{id}"), "--ignore", "no_such_edge_or_class"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn retainers_by_class_groups_objects() {
    let snapshots = listener_leak();
    let snapshot = snapshots.last().unwrap();
    let out = json(&["retainers", s(snapshot), "--class", "Function", "--limit", "0", "--json"]);
    let groups = out["groups"].as_array().unwrap();
    assert_eq!(groups.len() as u64, out["group_count"].as_u64().unwrap());
    let total: u64 = groups.iter().map(|g| g["count"].as_u64().unwrap()).sum();
    assert_eq!(total, out["object_count"].as_u64().unwrap(), "every object is in one group");
    let retained: Vec<u64> = groups.iter().map(|g| g["retained_size"].as_u64().unwrap()).collect();
    assert!(retained.windows(2).all(|w| w[0] >= w[1]), "largest group first");
    // The leaked listeners form one group of (at least) two rounds' worth, on the `bus._events.message` path.
    let leak = groups
        .iter()
        .find(|g| {
            g["path"]["text"].as_str().unwrap().contains("->bus._events.message[]")
                || g["path"]["text"].as_str().unwrap().contains("._events.message[")
        })
        .expect("a group under bus._events.message");
    assert!(leak["count"].as_u64().unwrap() >= per_round("listener-leak") * 2, "{}", leak["count"]);
    let steps = leak["path"]["steps"].as_array().unwrap();
    assert!(steps.last().unwrap()["node"]["name"] == "onMessage");
    assert!(located_in(&steps.last().unwrap()["node"], "listener-leak.js"));
}

#[test]
fn retainers_class_path_mentions_the_truth_edges() {
    for (scenario, class, wanted) in [
        ("listener-leak", "Array", vec!["bus", "_events", "message"]),
        ("unbounded-cache", "Map", vec!["cache"]),
        ("linked-list", "ListNode", vec!["head"]),
    ] {
        let snapshots = common::scenario_snapshots(scenario);
        let snapshot = snapshots.last().unwrap();
        let out = json(&["retainers", s(snapshot), "--class", class, "--limit", "3", "--json"]);
        let hit = out["groups"].as_array().unwrap().iter().any(|g| {
            let names: Vec<&str> =
                g["path"]["steps"].as_array().unwrap().iter().filter_map(|st| st["edge_name"].as_str()).collect();
            let mut i = 0;
            for n in names {
                if i < wanted.len() && n == wanted[i] {
                    i += 1;
                }
            }
            i == wanted.len()
        });
        assert!(hit, "{scenario}: no top group of {class} mentions {wanted:?}");
        let text =
            String::from_utf8(run(&["retainers", s(snapshot), "--class", class, "--limit", "3"]).stdout).unwrap();
        assert!(text.contains(&format!("{scenario}.js:")), "{scenario}: the path's closure is located: {text}");
    }
}

#[test]
fn find_json_filters_and_sorts() {
    let snapshots = listener_leak();
    let snapshot = snapshots.last().unwrap();
    let out = json(&["find", s(snapshot), "--class", "^Array$", "--min-retained", "1KiB", "--limit", "7", "--json"]);
    let objects = out["objects"].as_array().unwrap();
    assert_eq!(out["shown"].as_u64().unwrap() as usize, objects.len());
    assert!(objects.len() <= 7 && out["total"].as_u64().unwrap() >= objects.len() as u64);
    assert!(objects.iter().all(|o| o["class"] == "Array" && o["retained_size"].as_u64().unwrap() >= 1024));
    let retained: Vec<u64> = objects.iter().map(|o| o["retained_size"].as_u64().unwrap()).collect();
    assert!(retained.windows(2).all(|w| w[0] >= w[1]));
    // String search matches content; only strings come back. Every unit made one `req-N` request id.
    let strings = json(&["find", s(snapshot), "--string", "^req-[0-9]+$", "--limit", "0", "--json"]);
    let found = strings["objects"].as_array().unwrap();
    assert!(found.len() as u64 >= 2 * per_round("listener-leak"), "{} request ids", found.len());
    assert!(found.iter().all(|o| o["type"].as_str().unwrap().contains("string")));
    assert!(found.iter().all(|o| o["name"].as_str().unwrap().starts_with("req-")));
    assert_eq!(found.len() as u64, strings["total"].as_u64().unwrap());
}

#[test]
fn diff_json_and_class_listing() {
    let snapshots = listener_leak();
    let (s2, s3) = (&snapshots[1], &snapshots[2]);
    let out = json(&["diff", s(s2), s(s3), "--top", "0", "--json"]);
    let classes = out["classes"].as_array().unwrap();
    assert_eq!(classes.len() as u64, out["class_count"].as_u64().unwrap());
    let added: u64 = classes.iter().map(|c| c["added_count"].as_u64().unwrap()).sum();
    assert_eq!(added, out["totals"]["added_count"].as_u64().unwrap());
    let sizes: Vec<u64> = classes.iter().map(|c| c["added_size"].as_u64().unwrap()).collect();
    assert!(sizes.windows(2).all(|w| w[0] >= w[1]), "sorted by allocated size");
    // Each unit leaks one response object: exactly one round's worth of new ones, none deleted.
    let responses = classes.iter().find(|c| c["class"] == "{headers, chunks, payload, write}").expect("response row");
    assert_eq!(responses["added_count"].as_u64(), Some(per_round("listener-leak")));
    assert_eq!(responses["removed_count"].as_u64(), Some(0));
    assert_eq!(responses["key"], ",{headers, chunks, payload, write}");
    assert!(out["overlap"]["shared"].as_u64().unwrap() > 0);
    // --class: the new closures hang under bus._events.message.
    let listed = json(&["diff", s(s2), s(s3), "--class", "Function", "--json"]);
    let groups = listed["new_objects"]["groups"].as_array().unwrap();
    assert!(groups[0]["path"]["text"].as_str().unwrap().contains("._events.message["), "{}", groups[0]["path"]["text"]);
}

#[test]
fn diff_refuses_snapshots_of_different_processes() {
    let a = listener_leak();
    let b = common::scenario_snapshots("unbounded-cache");
    let out = run(&["diff", s(&a[2]), s(&b[2])]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("do not look like snapshots of one process") && stderr.contains("--force"), "{stderr}");
    let forced = run(&["diff", s(&a[2]), s(&b[2]), "--force", "--top", "3"]);
    assert!(forced.status.success());
}

#[test]
fn dup_strings_json() {
    let snapshots = listener_leak();
    let snapshot = snapshots.last().unwrap();
    let out = json(&["dup-strings", s(snapshot), "--limit", "0", "--json"]);
    let rows = out["strings"].as_array().unwrap();
    assert!(!rows.is_empty());
    assert_eq!(rows.len() as u64, out["group_count"].as_u64().unwrap());
    let wasted: Vec<u64> = rows.iter().map(|r| r["wasted"].as_u64().unwrap()).collect();
    assert!(wasted.windows(2).all(|w| w[0] >= w[1]));
    assert_eq!(wasted.iter().sum::<u64>(), out["total_wasted"].as_u64().unwrap());
    for r in rows {
        assert!(r["count"].as_u64().unwrap() >= 2);
        assert!(r["wasted"].as_u64() < r["total_size"].as_u64());
    }
    let few = json(&["dup-strings", s(snapshot), "--min-count", "1000", "--json"]);
    assert!(few["strings"].as_array().unwrap().iter().all(|r| r["count"].as_u64().unwrap() >= 1000));
}

#[test]
fn summary_by_location_json() {
    let snapshots = listener_leak();
    let snapshot = snapshots.last().unwrap();
    let out = json(&["summary", s(snapshot), "--by-location", "--top", "0", "--json"]);
    let rows = out["rows"].as_array().unwrap();
    assert_eq!(rows.len() as u64, out["row_count"].as_u64().unwrap());
    let listeners = rows
        .iter()
        .find(|r| {
            r["class"] == "Function"
                && located_in(r, "listener-leak.js")
                && r["count"].as_u64().unwrap() >= 2 * per_round("listener-leak")
        })
        .expect("a Function row at onMessage's definition");
    let source = std::fs::read_to_string(common::shared_dir().join("scenarios/listener-leak.js")).unwrap();
    let line = source.lines().nth(listeners["location"]["line"].as_u64().unwrap() as usize - 1).unwrap();
    assert!(line.contains("onMessage"), "{line}");
    // Objects keep DevTools' split by constructor site too.
    assert!(rows.iter().any(|r| r["class"] == "EventEmitter" && r["location"]["file"] == "node:events"));
}
