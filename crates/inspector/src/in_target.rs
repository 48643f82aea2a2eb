//! JavaScript that leakscope evaluates inside the target and that needs one of Node's own modules.
//!
//! `Runtime.evaluate` is answered in an interrupt when the target is running JavaScript, and that can be
//! halfway through Node loading one of its modules for the app (its first `console.log` to a pipe loads
//! `stream` and `net`). Loading `inspector` or `v8` there finds the half-loaded `stream` (`class … extends
//! Readable` with `Readable` still undefined), throws, and leaves `node:internal/worker/io` half-defined:
//! `worker_threads`, `inspector` and `v8` then fail in that process for good ("Cannot redefine property").
//! So a module the target has not finished loading is loaded later, from its event loop, never inside the
//! evaluation.

/// A JS function `(id, later) => module | null`: the module `id` when the target has finished loading it;
/// otherwise `null`, and the module is loaded on the target's event loop (`setImmediate`) and handed to
/// `later`. Node lists a module in `process.moduleLoadList` only once it has finished loading. Needs
/// `includeCommandLineAPI` on Node without `process.getBuiltinModule` (before 20.16).
macro_rules! load_builtin_safely {
    () => {
        "((id, later) => { const get = typeof process.getBuiltinModule === 'function' \
? (m) => process.getBuiltinModule(m) : (process.mainModule ? (m) => process.mainModule.require(m) : require); \
const list = process.moduleLoadList; \
if (Array.isArray(list) && list.includes('NativeModule ' + id)) return get(id); \
setImmediate(() => later(get(id))); return null; })"
    };
}

/// Closes the inspector from inside the target, from its event loop: `close()` waits for open sessions,
/// including the one that sent this.
pub const CLOSE_INSPECTOR_EXPRESSION: &str = concat!(
    "(() => { const i = ",
    load_builtin_safely!(),
    "('inspector', (i) => i.close()); if (i) setImmediate(() => i.close()); return true; })()"
);

/// `v8.getHeapSpaceStatistics()`, or `null` while `v8` is being loaded (see the module docs).
pub const HEAP_SPACE_STATISTICS_EXPRESSION: &str = concat!(
    "(() => { const v8 = ",
    load_builtin_safely!(),
    "('v8', () => {}); return v8 ? v8.getHeapSpaceStatistics() : null; })()"
);

#[cfg(test)]
mod tests {
    use super::*;

    /// The expressions are valid JavaScript and do what they say in a plain Node (no inspector needed).
    #[test]
    fn expressions_run_in_node() {
        let script = format!(
            "const first = {HEAP_SPACE_STATISTICS_EXPRESSION};\n\
             setTimeout(() => {{ const later = {HEAP_SPACE_STATISTICS_EXPRESSION};\n\
             console.log(JSON.stringify([first, Array.isArray(later), typeof {CLOSE_INSPECTOR_EXPRESSION}])); }}, 10);"
        );
        let out = std::process::Command::new("node").arg("-e").arg(&script).output().expect("node on PATH");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        // `node -e` has not loaded `v8`: the first call defers the load, the next one answers. The close is
        // a no-op without an inspector.
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), r#"[null,true,"boolean"]"#);
    }
}
