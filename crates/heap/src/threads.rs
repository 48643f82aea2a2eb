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

/// [`join`], with `b` started only once `a`'s thread runs: for a `b` that maps or unmaps pages (`madvise`), which
/// holds the address-space lock that a new thread waits for to map its signal stack (at 324 MiB, the DFS started
/// 13 ms late while the pages of its arrays were mapped beside it).
pub(crate) fn join_after_start<A: Send, B>(
    parallel: bool,
    a: impl FnOnce() -> A + Send,
    b: impl FnOnce() -> B,
) -> (A, B) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let started = AtomicBool::new(false);
    join(
        parallel,
        || {
            started.store(true, Ordering::Release);
            a()
        },
        || {
            while parallel && !started.load(Ordering::Acquire) {
                std::thread::yield_now();
            }
            b()
        },
    )
}

/// Memory one pass gives back for a pass beside it to take: the giver counts the bytes it frees, the taker waits
/// until enough has been freed before it allocates, so that the two side by side stay under the giver's peak.
pub(crate) struct Handover {
    given: std::sync::atomic::AtomicUsize,
}

impl Handover {
    pub(crate) fn new() -> Self {
        Handover { given: std::sync::atomic::AtomicUsize::new(0) }
    }

    pub(crate) fn give(&self, bytes: usize) {
        self.given.fetch_add(bytes, std::sync::atomic::Ordering::Release);
    }

    /// The giver is done: everything it had to give is given.
    pub(crate) fn give_all(&self) {
        self.given.store(usize::MAX / 2, std::sync::atomic::Ordering::Release);
    }

    /// Gives all when dropped, so that a taker never waits on a giver that stopped early (a panic).
    pub(crate) fn all_given_on_drop(&self) -> impl Drop + '_ {
        struct GiveAll<'a>(&'a Handover);
        impl Drop for GiveAll<'_> {
            fn drop(&mut self) {
                self.0.give_all();
            }
        }
        GiveAll(self)
    }

    /// Returns once `bytes` have been given (or all of it).
    pub(crate) fn wait_for(&self, bytes: usize) {
        while self.given.load(std::sync::atomic::Ordering::Acquire) < bytes {
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Handover;

    /// The taker goes on once enough is given, and also when the giver stops early.
    #[test]
    fn a_taker_waits_for_what_it_needs_or_for_the_giver_to_stop() {
        let handover = Handover::new();
        let taken = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                handover.wait_for(100);
                taken.store(true, std::sync::atomic::Ordering::SeqCst);
            });
            handover.give(60);
            std::thread::sleep(std::time::Duration::from_millis(20));
            assert!(!taken.load(std::sync::atomic::Ordering::SeqCst), "60 of 100 bytes is not enough");
            handover.give(40);
        });
        assert!(taken.load(std::sync::atomic::Ordering::SeqCst));

        let handover = Handover::new();
        std::thread::scope(|scope| {
            let taker = scope.spawn(|| handover.wait_for(usize::MAX / 4));
            let giver = scope.spawn(|| {
                let _all = handover.all_given_on_drop();
                panic!("the giver stops early");
            });
            assert!(giver.join().is_err());
            taker.join().expect("the taker is not left waiting");
        });
    }
}
