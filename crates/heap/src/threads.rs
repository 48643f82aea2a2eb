//! The one way this crate uses a second core: two closures, one of them on a scoped thread.

/// Runs `a` on a thread of its own and `b` on this one when `parallel`, else one after the other.
pub(crate) fn join<A: Send, B>(parallel: bool, a: impl FnOnce() -> A + Send, b: impl FnOnce() -> B) -> (A, B) {
    if !parallel {
        let a = a();
        return (a, b());
    }
    std::thread::scope(|scope| {
        let handle = scope.spawn(a);
        let b = b();
        (handle.join().expect("leakscope-heap worker thread panicked"), b)
    })
}
