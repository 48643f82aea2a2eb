//! Reaching the real allocator: `dlsym(RTLD_NEXT, …)` resolved once, plus a static bootstrap arena that serves
//! the allocations made before the symbols are known (glibc's `dlsym` itself calls `calloc`).

use core::ffi::c_void;
use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

type MallocFn = unsafe extern "C" fn(usize) -> *mut c_void;
type FreeFn = unsafe extern "C" fn(*mut c_void);
type CallocFn = unsafe extern "C" fn(usize, usize) -> *mut c_void;
type ReallocFn = unsafe extern "C" fn(*mut c_void, usize) -> *mut c_void;
type PosixMemalignFn = unsafe extern "C" fn(*mut *mut c_void, usize, usize) -> i32;
type AlignFn = unsafe extern "C" fn(usize, usize) -> *mut c_void;
type UsableFn = unsafe extern "C" fn(*mut c_void) -> usize;

/// 0 = not resolved, 1 = resolving (dlsym in progress), 2 = ready.
static STATE: AtomicU8 = AtomicU8::new(0);

macro_rules! real_fn {
    ($slot:ident, $getter:ident, $ty:ty) => {
        static $slot: AtomicUsize = AtomicUsize::new(0);
        /// The next definition of this symbol after ours, or `None` while it is not resolved yet.
        #[inline(always)]
        pub fn $getter() -> Option<$ty> {
            let mut f = $slot.load(Ordering::Acquire);
            if f == 0 {
                resolve();
                f = $slot.load(Ordering::Acquire);
                if f == 0 {
                    return None;
                }
            }
            // SAFETY: the slot only ever holds 0 or the address dlsym returned for a function of this type.
            Some(unsafe { core::mem::transmute::<usize, $ty>(f) })
        }
    };
}

real_fn!(MALLOC, malloc, MallocFn);
real_fn!(FREE, free, FreeFn);
real_fn!(CALLOC, calloc, CallocFn);
real_fn!(REALLOC, realloc, ReallocFn);
real_fn!(POSIX_MEMALIGN, posix_memalign, PosixMemalignFn);
real_fn!(ALIGNED_ALLOC, aligned_alloc, AlignFn);
real_fn!(MEMALIGN, memalign, AlignFn);
real_fn!(VALLOC, valloc, MallocFn);
real_fn!(PVALLOC, pvalloc, MallocFn);
real_fn!(USABLE_SIZE, malloc_usable_size, UsableFn);

/// Resolves every real function once. Re-entrant calls (dlsym → calloc → here) see state 1 and return at once,
/// so their caller falls back to the bootstrap arena.
#[cold]
pub fn resolve() {
    if STATE.compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire).is_err() {
        return;
    }
    // SAFETY: dlsym with RTLD_NEXT and NUL-terminated names; a null result leaves the slot at 0.
    unsafe {
        let look = |name: &core::ffi::CStr| libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) as usize;
        let entries: [(&AtomicUsize, &core::ffi::CStr); 10] = [
            (&FREE, c"free"),
            (&CALLOC, c"calloc"),
            (&REALLOC, c"realloc"),
            (&POSIX_MEMALIGN, c"posix_memalign"),
            (&ALIGNED_ALLOC, c"aligned_alloc"),
            (&MEMALIGN, c"memalign"),
            (&VALLOC, c"valloc"),
            (&PVALLOC, c"pvalloc"),
            (&USABLE_SIZE, c"malloc_usable_size"),
            (&MALLOC, c"malloc"),
        ];
        for (slot, name) in entries {
            slot.store(look(name), Ordering::Release);
        }
    }
    STATE.store(2, Ordering::Release);
}

// ---------------------------------------------------------------------------------------------------------------
// Bootstrap arena: a bump allocator over a static buffer. Blocks carry a 16-byte header holding their size so that
// realloc and malloc_usable_size work on them; free of a bootstrap block is a no-op.

const ARENA_SIZE: usize = 256 * 1024;

#[repr(C, align(4096))]
struct Arena(core::cell::UnsafeCell<[u8; ARENA_SIZE]>);
// SAFETY: disjoint ranges are handed out by an atomic bump pointer; each range is written by one owner only.
unsafe impl Sync for Arena {}

static ARENA: Arena = Arena(core::cell::UnsafeCell::new([0; ARENA_SIZE]));
static ARENA_USED: AtomicUsize = AtomicUsize::new(0);

#[inline(always)]
fn arena_base() -> usize {
    ARENA.0.get() as usize
}

/// Whether `p` was served by the bootstrap arena.
#[inline(always)]
pub fn in_arena(p: *const c_void) -> bool {
    let p = p as usize;
    p >= arena_base() && p < arena_base() + ARENA_SIZE
}

/// Allocates `size` bytes aligned to `align` (a power of two ≥ 16) from the arena; null when exhausted. The
/// memory is zeroed (it is static and never reused), so this also serves calloc.
pub fn arena_alloc(size: usize, align: usize) -> *mut c_void {
    let align = align.max(16);
    loop {
        let used = ARENA_USED.load(Ordering::Relaxed);
        let start = (arena_base() + used + 16 + align - 1) & !(align - 1);
        let end = match start.checked_add(size) {
            Some(e) => e,
            None => return core::ptr::null_mut(),
        };
        if end > arena_base() + ARENA_SIZE {
            return core::ptr::null_mut();
        }
        let new_used = end - arena_base();
        if ARENA_USED.compare_exchange_weak(used, new_used, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
            // SAFETY: [start-16, end) lies inside the arena and was just reserved for this caller alone.
            unsafe { *((start - 16) as *mut usize) = size };
            return start as *mut c_void;
        }
    }
}

/// Size recorded for an arena block.
///
/// # Safety
/// `p` must satisfy [`in_arena`] and have come from [`arena_alloc`].
pub unsafe fn arena_size(p: *const c_void) -> usize {
    *((p as usize - 16) as *const usize)
}
