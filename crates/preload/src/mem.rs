//! Raw memory for the profiler's own tables: anonymous `MAP_NORESERVE` mappings, so only touched pages count.

use core::ffi::c_void;

/// Maps `bytes` of zeroed memory, or returns null.
pub fn map(bytes: usize) -> *mut c_void {
    // SAFETY: an anonymous private mapping has no preconditions; MAP_FAILED is turned into null.
    let p = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        core::ptr::null_mut()
    } else {
        p
    }
}

/// A tiny test-and-set spin lock that yields the CPU while contended. Only used off the malloc fast path
/// (sampling, dumps). Never destroyed, so a fork child that inherits it locked simply never takes it (the
/// child disables sampling).
pub struct SpinLock(core::sync::atomic::AtomicBool);

impl SpinLock {
    pub const fn new() -> Self {
        SpinLock(core::sync::atomic::AtomicBool::new(false))
    }

    pub fn lock(&self) -> SpinGuard<'_> {
        use core::sync::atomic::Ordering;
        let mut spins = 0u32;
        while self.0.compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
            spins += 1;
            if spins > 64 {
                // SAFETY: sched_yield has no preconditions.
                unsafe { libc::sched_yield() };
            } else {
                core::hint::spin_loop();
            }
        }
        SpinGuard(self)
    }
}

pub struct SpinGuard<'a>(&'a SpinLock);

impl Drop for SpinGuard<'_> {
    fn drop(&mut self) {
        self.0 .0.store(false, core::sync::atomic::Ordering::Release);
    }
}
