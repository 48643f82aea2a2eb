//! Reaching the real allocator: `dlsym(RTLD_NEXT, …)` resolved once into plain function-pointer statics, plus a
//! static bootstrap arena that serves the allocations made before the symbols are known (glibc's `dlsym` itself
//! calls `calloc`).
//!
//! Each slot starts out holding a `boot_*` function that resolves the symbols and then forwards (or falls back to
//! the arena while `dlsym` is still running), so callers never test for "not resolved yet": they load the slot and
//! call it. The assembly fast paths in `hooks.rs` tail-jump through the same slots.

use core::cell::UnsafeCell;
use core::ffi::c_void;
use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

pub type MallocFn = unsafe extern "C" fn(usize) -> *mut c_void;
pub type FreeFn = unsafe extern "C" fn(*mut c_void);
pub type CallocFn = unsafe extern "C" fn(usize, usize) -> *mut c_void;
pub type ReallocFn = unsafe extern "C" fn(*mut c_void, usize) -> *mut c_void;
pub type PosixMemalignFn = unsafe extern "C" fn(*mut *mut c_void, usize, usize) -> i32;
pub type AlignFn = unsafe extern "C" fn(usize, usize) -> *mut c_void;
pub type UsableFn = unsafe extern "C" fn(*mut c_void) -> usize;
pub type PthreadCreateFn = unsafe extern "C" fn(
    *mut libc::pthread_t,
    *const libc::pthread_attr_t,
    extern "C" fn(*mut c_void) -> *mut c_void,
    *mut c_void,
) -> i32;

/// A function pointer written once by [`resolve`] (from its `boot_*` value to the real function) and read on
/// every call. An aligned 8-byte store and load: readers see the old or the new pointer, both valid to call.
#[repr(transparent)]
pub struct Slot<F: Copy>(UnsafeCell<F>);

// SAFETY: see the type's docs; the only writer is `resolve`, which publishes each pointer with one store.
unsafe impl<F: Copy> Sync for Slot<F> {}

impl<F: Copy> Slot<F> {
    const fn new(f: F) -> Self {
        Slot(UnsafeCell::new(f))
    }

    #[inline(always)]
    pub fn get(&self) -> F {
        // SAFETY: the cell always holds a valid function pointer (see the type's docs).
        unsafe { core::ptr::read_volatile(self.0.get()) }
    }

    fn set(&self, f: F) {
        // SAFETY: as above; a single aligned store.
        unsafe { core::ptr::write_volatile(self.0.get(), f) }
    }
}

pub static MALLOC: Slot<MallocFn> = Slot::new(boot_malloc);
pub static FREE: Slot<FreeFn> = Slot::new(boot_free);
pub static CALLOC: Slot<CallocFn> = Slot::new(boot_calloc);
pub static REALLOC: Slot<ReallocFn> = Slot::new(boot_realloc);
pub static POSIX_MEMALIGN: Slot<PosixMemalignFn> = Slot::new(boot_posix_memalign);
pub static ALIGNED_ALLOC: Slot<AlignFn> = Slot::new(boot_aligned_alloc);
pub static MEMALIGN: Slot<AlignFn> = Slot::new(boot_memalign);
pub static VALLOC: Slot<MallocFn> = Slot::new(boot_valloc);
pub static PVALLOC: Slot<MallocFn> = Slot::new(boot_pvalloc);
pub static USABLE_SIZE: Slot<UsableFn> = Slot::new(boot_usable_size);
pub static PTHREAD_CREATE: Slot<PthreadCreateFn> = Slot::new(boot_pthread_create);

/// 0 = not resolved, 1 = resolving (dlsym in progress), 2 = done.
static STATE: AtomicU8 = AtomicU8::new(0);

/// Resolves every real function once. Re-entrant calls (dlsym → calloc → here) see state 1 and return at once,
/// so their caller falls back to the bootstrap arena. A symbol dlsym cannot find keeps its `boot_*` value.
#[cold]
pub fn resolve() {
    if STATE.compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire).is_err() {
        return;
    }
    let look = |name: &core::ffi::CStr| {
        // SAFETY: dlsym with RTLD_NEXT and a NUL-terminated name.
        let p = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) };
        (!p.is_null()).then_some(p)
    };
    // SAFETY (each transmute): dlsym returned the next definition of this C function, whose type is the slot's.
    unsafe {
        // free first: what the functions resolved next allocate may be freed before dlsym returns.
        if let Some(p) = look(c"free") {
            FREE.set(core::mem::transmute::<*mut c_void, FreeFn>(p));
        }
        if let Some(p) = look(c"calloc") {
            CALLOC.set(core::mem::transmute::<*mut c_void, CallocFn>(p));
        }
        if let Some(p) = look(c"realloc") {
            REALLOC.set(core::mem::transmute::<*mut c_void, ReallocFn>(p));
        }
        if let Some(p) = look(c"posix_memalign") {
            POSIX_MEMALIGN.set(core::mem::transmute::<*mut c_void, PosixMemalignFn>(p));
        }
        if let Some(p) = look(c"aligned_alloc") {
            ALIGNED_ALLOC.set(core::mem::transmute::<*mut c_void, AlignFn>(p));
        }
        if let Some(p) = look(c"memalign") {
            MEMALIGN.set(core::mem::transmute::<*mut c_void, AlignFn>(p));
        }
        if let Some(p) = look(c"valloc") {
            VALLOC.set(core::mem::transmute::<*mut c_void, MallocFn>(p));
        }
        if let Some(p) = look(c"pvalloc") {
            PVALLOC.set(core::mem::transmute::<*mut c_void, MallocFn>(p));
        }
        if let Some(p) = look(c"pthread_create") {
            PTHREAD_CREATE.set(core::mem::transmute::<*mut c_void, PthreadCreateFn>(p));
        }
        if let Some(p) = look(c"malloc_usable_size") {
            USABLE_SIZE.set(core::mem::transmute::<*mut c_void, UsableFn>(p));
        }
        if let Some(p) = look(c"malloc") {
            MALLOC.set(core::mem::transmute::<*mut c_void, MallocFn>(p));
        }
    }
    STATE.store(2, Ordering::Release);
}

/// Whether `f` is still the bootstrap function `boot` (not resolved, or resolving right now).
#[inline(always)]
fn unresolved(f: *const (), boot: *const ()) -> bool {
    core::ptr::eq(f, boot)
}

unsafe extern "C" fn boot_malloc(size: usize) -> *mut c_void {
    resolve();
    let f = MALLOC.get();
    if unresolved(f as *const (), boot_malloc as *const ()) {
        arena_alloc(size, 16)
    } else {
        f(size)
    }
}

unsafe extern "C" fn boot_free(p: *mut c_void) {
    resolve();
    let f = FREE.get();
    if !unresolved(f as *const (), boot_free as *const ()) {
        f(p)
    }
    // else: a block we cannot give back before free is known (never happens for arena blocks: callers filter them).
}

unsafe extern "C" fn boot_calloc(n: usize, size: usize) -> *mut c_void {
    resolve();
    let f = CALLOC.get();
    if unresolved(f as *const (), boot_calloc as *const ()) {
        match n.checked_mul(size) {
            Some(total) => arena_alloc(total, 16),
            None => core::ptr::null_mut(),
        }
    } else {
        f(n, size)
    }
}

unsafe extern "C" fn boot_realloc(p: *mut c_void, size: usize) -> *mut c_void {
    resolve();
    let f = REALLOC.get();
    if unresolved(f as *const (), boot_realloc as *const ()) {
        core::ptr::null_mut() // arena blocks are moved by the callers; nothing else can exist yet
    } else {
        f(p, size)
    }
}

unsafe extern "C" fn boot_posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> i32 {
    resolve();
    let f = POSIX_MEMALIGN.get();
    if !unresolved(f as *const (), boot_posix_memalign as *const ()) {
        return f(out, align, size);
    }
    if !align.is_power_of_two() || !align.is_multiple_of(core::mem::size_of::<usize>()) {
        return libc::EINVAL;
    }
    let p = arena_alloc(size, align);
    if p.is_null() {
        return libc::ENOMEM;
    }
    *out = p;
    0
}

unsafe extern "C" fn boot_aligned_alloc(align: usize, size: usize) -> *mut c_void {
    resolve();
    let f = ALIGNED_ALLOC.get();
    if unresolved(f as *const (), boot_aligned_alloc as *const ()) {
        arena_alloc(size, align.next_power_of_two())
    } else {
        f(align, size)
    }
}

unsafe extern "C" fn boot_memalign(align: usize, size: usize) -> *mut c_void {
    resolve();
    let f = MEMALIGN.get();
    if unresolved(f as *const (), boot_memalign as *const ()) {
        arena_alloc(size, align.next_power_of_two())
    } else {
        f(align, size)
    }
}

unsafe extern "C" fn boot_valloc(size: usize) -> *mut c_void {
    resolve();
    let f = VALLOC.get();
    if unresolved(f as *const (), boot_valloc as *const ()) {
        arena_alloc(size, 4096)
    } else {
        f(size)
    }
}

unsafe extern "C" fn boot_pvalloc(size: usize) -> *mut c_void {
    resolve();
    let f = PVALLOC.get();
    if unresolved(f as *const (), boot_pvalloc as *const ()) {
        arena_alloc(size.saturating_add(4095) & !4095, 4096)
    } else {
        f(size)
    }
}

unsafe extern "C" fn boot_usable_size(p: *mut c_void) -> usize {
    resolve();
    let f = USABLE_SIZE.get();
    if unresolved(f as *const (), boot_usable_size as *const ()) {
        0
    } else {
        f(p)
    }
}

unsafe extern "C" fn boot_pthread_create(
    thread: *mut libc::pthread_t,
    attr: *const libc::pthread_attr_t,
    start: extern "C" fn(*mut c_void) -> *mut c_void,
    arg: *mut c_void,
) -> i32 {
    resolve();
    let f = PTHREAD_CREATE.get();
    if unresolved(f as *const (), boot_pthread_create as *const ()) {
        libc::EAGAIN
    } else {
        f(thread, attr, start, arg)
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Bootstrap arena: a bump allocator over a static buffer (untouched pages cost no memory). Every block starts a
// page, so that the `free` fast path needs no range check: a pointer with page offset 0 takes the slow path,
// which recognises arena blocks. Blocks carry their size in the 16 bytes before them (the end of the previous
// page), so that realloc and malloc_usable_size work on them; free of a bootstrap block is a no-op. glibc's dlsym
// allocates little or nothing, so a few blocks are all that is ever used.

pub const ARENA_SIZE: usize = 1024 * 1024;
const PAGE: usize = 4096;

#[repr(C, align(4096))]
pub struct Arena(UnsafeCell<[u8; ARENA_SIZE]>);
// SAFETY: disjoint ranges are handed out by an atomic bump pointer; each range is written by one owner only.
unsafe impl Sync for Arena {}

pub static ARENA: Arena = Arena(UnsafeCell::new([0; ARENA_SIZE]));
static ARENA_USED: AtomicUsize = AtomicUsize::new(0);

#[inline(always)]
fn arena_base() -> usize {
    ARENA.0.get() as usize
}

/// Whether `p` was served by the bootstrap arena.
#[inline(always)]
pub fn in_arena(p: *const c_void) -> bool {
    (p as usize).wrapping_sub(arena_base()) < ARENA_SIZE
}

/// Allocates `size` bytes aligned to `align` (a power of two) and to a page from the arena; null when exhausted.
/// The memory is zeroed (it is static and never reused), so this also serves calloc.
pub fn arena_alloc(size: usize, align: usize) -> *mut c_void {
    let align = align.max(PAGE);
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
