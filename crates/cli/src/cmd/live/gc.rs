//! `leakscope gc`: force a full GC in the target and show the heap before and after.

use super::args::GcArgs;
use crate::output::{human_bytes, Table};
use leakscope_inspector::MemoryUsage;
use std::process::ExitCode;

fn signed(before: u64, after: u64) -> String {
    if after >= before {
        format!("+{}", human_bytes(after - before))
    } else {
        format!("-{}", human_bytes(before - after))
    }
}

pub fn gc(args: &GcArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    let mut session = super::attach(&args.target, quiet, args.json)?;
    let result = (|| {
        let before = session.memory_usage()?;
        let started = std::time::Instant::now();
        session.collect_garbage()?;
        let took = started.elapsed();
        let after = session.memory_usage()?;
        Ok::<_, leakscope_inspector::Error>((before, after, took))
    })();
    let (before, after, took) = match result {
        Ok(r) => r,
        Err(e) => {
            let err = session.explain(e);
            let _ = session.close();
            return Err(super::to_exit(err));
        }
    };
    let pid = session.pid();
    super::detach(session, quiet)?;
    if args.json {
        let value =
            serde_json::json!({ "pid": pid, "before": before, "after": after, "gc_ms": took.as_millis() as u64 });
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = Table::new(&[("", false), ("before", true), ("after", true), ("change", true)]);
    type Get = fn(&MemoryUsage) -> u64;
    let rows: [(&str, Get); 5] = [
        ("heapUsed", |m| m.heap_used),
        ("heapTotal", |m| m.heap_total),
        ("external", |m| m.external),
        ("arrayBuffers", |m| m.array_buffers),
        ("rss", |m| m.rss),
    ];
    for (name, get) in rows {
        let (b, a) = (get(&before), get(&after));
        table.row(vec![name.to_string(), human_bytes(b), human_bytes(a), signed(b, a)]);
    }
    print!("{}", table.render());
    println!("full GC took {} ms", took.as_millis());
    Ok(ExitCode::SUCCESS)
}
