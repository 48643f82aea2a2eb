//! The one way this crate uses a second core: two closures, one of them on a scoped thread.

/// Runs `a` on a thread of its own and `b` on this one when `parallel`, else one after the other.
#[track_caller]
pub(crate) fn join<A: Send, B>(parallel: bool, a: impl FnOnce() -> A + Send, b: impl FnOnce() -> B) -> (A, B) {
    let loc = std::panic::Location::caller();
    let pt = std::env::var_os("LS_PT").is_some() && !loc.file().contains("lexer");
    let t0 = std::time::Instant::now();
    if !parallel {
        let a = a();
        return (a, b());
    }
    let r = std::thread::scope(|scope| {
        let handle = scope.spawn(move || {
            let t = std::time::Instant::now();
            let r = a();
            (r, t.elapsed().as_secs_f64())
        });
        let tb = std::time::Instant::now();
        let b = b();
        let bt = tb.elapsed().as_secs_f64();
        let (a, at) = handle.join().expect("leakscope-heap worker thread panicked");
        ((a, at), (b, bt))
    });
    let ((a, at), (b, bt)) = r;
    if pt {
        eprintln!("PTJ {}:{} a {:.3} b {:.3} total {:.3}", loc.file(), loc.line(), at, bt, t0.elapsed().as_secs_f64());
    }
    (a, b)
}
