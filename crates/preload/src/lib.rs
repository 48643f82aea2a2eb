//! `libleakscope_preload.so`: an LD_PRELOAD sampling malloc interposer (glibc Linux).
//!
//! Every allocation is charged `size + 1` bytes against a per-thread countdown drawn from an exponential
//! distribution with mean `LEAKSCOPE_INTERVAL` (Poisson sampling by bytes). When the countdown crosses zero the
//! allocation is sampled: its stack is taken by a bounds-checked frame-pointer walk, interned in the stack table,
//! and the pointer is put into the live table with its unbiased weight `1 / (1 − exp(−(size+1)/R))`. `free`
//! removes sampled pointers. Dumps (on request over a Unix socket, and at exit) list the live samples.
//!
//! Rules kept by this crate (it runs inside malloc):
//! - the fast path (no sample) does no allocation, no locking and no system call;
//! - the profiler's own allocations go straight to the real allocator (`#[global_allocator]` below) and are never
//!   sampled: a per-thread `busy` flag marks code running on behalf of the profiler;
//! - thread-local state is `const`-initialised and has no destructor (a plain TLS slot, valid during thread exit);
//! - no signal handlers are installed, so SIGUSR1/SIGUSR2 stay Node's.
#![allow(clippy::missing_safety_doc)]

mod dump;
mod live;
mod mem;
mod real;
mod server;
mod stacks;

use core::cell::Cell;
use core::ffi::c_void;
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::alloc::{GlobalAlloc, Layout};

/// Sampling is on (constructor finished, not a fork child, not disabled by the environment).
static ENABLED: AtomicBool = AtomicBool::new(false);
/// Mean sampling interval in bytes (R).
static INTERVAL: AtomicU64 = AtomicU64::new(512 * 1024);
/// Optional fixed seed (0 = seed from time and thread id).
static SEED: AtomicU64 = AtomicU64::new(0);
/// Number of samples taken so far (also each sample's sequence number).
static SEQ: AtomicU64 = AtomicU64::new(0);
/// The process that loaded the library (fork children differ).
static OWNER_PID: AtomicI32 = AtomicI32::new(0);

struct Tls {
    /// Bytes left before the next sampled byte.
    countdown: Cell<i64>,
    /// xorshift64* state; 0 = this thread has not been seeded yet.
    rng: Cell<u64>,
    /// Set while the profiler itself runs on this thread: allocations are forwarded, never sampled.
    busy: Cell<bool>,
    /// Stack bounds: 0 = unknown, 1 = known, 2 = unavailable (record only the first frame).
    stack_state: Cell<u8>,
    stack_hi: Cell<usize>,
    stack_lo: Cell<usize>,
}

thread_local! {
    static TLS: Tls = const {
        Tls {
            countdown: Cell::new(0),
            rng: Cell::new(0),
            busy: Cell::new(false),
            stack_state: Cell::new(0),
            stack_hi: Cell::new(0),
            stack_lo: Cell::new(0),
        }
    };
}

/// Runs `f` with this thread's `busy` flag set (restoring the previous value). Used by every profiler code path
/// that may allocate: init, dumps, the socket thread.
pub(crate) fn with_busy<R>(f: impl FnOnce() -> R) -> R {
    let prev = TLS.try_with(|t| t.busy.replace(true)).unwrap_or(true);
    let r = f();
    let _ = TLS.try_with(|t| t.busy.set(prev));
    r
}

// ---------------------------------------------------------------------------------------------------------------
// The profiler's own heap: straight to the real allocator, so it never re-enters the hooks.

struct RealAllocator;

// SAFETY: forwards to the C allocator with its alignment guarantees (16 bytes on x86-64 glibc), using memalign
// for larger alignments; falls back to the bootstrap arena only before dlsym resolved (never freed).
unsafe impl GlobalAlloc for RealAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= 16 {
            match real::malloc() {
                Some(f) => f(layout.size()) as *mut u8,
                None => real::arena_alloc(layout.size(), 16) as *mut u8,
            }
        } else {
            match real::memalign() {
                Some(f) => f(layout.align(), layout.size()) as *mut u8,
                None => real::arena_alloc(layout.size(), layout.align()) as *mut u8,
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        if real::in_arena(ptr as *const c_void) {
            return;
        }
        if let Some(f) = real::free() {
            f(ptr as *mut c_void)
        }
    }
}

#[global_allocator]
static GLOBAL: RealAllocator = RealAllocator;

// ---------------------------------------------------------------------------------------------------------------
// Sampling.

fn next_random(t: &Tls) -> u64 {
    let mut x = t.rng.get();
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    t.rng.set(x);
    x.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

/// An exponential draw with mean R: `−ln(U)·R`, U uniform in (0, 1].
fn draw(t: &Tls) -> i64 {
    let u = ((next_random(t) >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
    let r = INTERVAL.load(Ordering::Relaxed) as f64;
    (-u.ln() * r).min(i64::MAX as f64 / 2.0) as i64
}

fn seed(t: &Tls) {
    let fixed = SEED.load(Ordering::Relaxed);
    // SAFETY: gettid and clock_gettime have no preconditions; ts is a valid out-pointer.
    let (tid, now) = unsafe {
        let mut ts: libc::timespec = core::mem::zeroed();
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
        (libc::syscall(libc::SYS_gettid) as u64, (ts.tv_sec as u64).wrapping_mul(1_000_000_007) ^ ts.tv_nsec as u64)
    };
    let mut z = if fixed != 0 {
        fixed ^ tid.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    } else {
        now ^ (tid << 32) ^ (t as *const Tls as u64)
    };
    // splitmix64 finaliser, never 0
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    t.rng.set(z | 1);
}

/// Hot path, called after every successful allocation of `size` bytes at `p`.
#[inline(always)]
fn account(p: *mut c_void, size: usize, ret: usize, fp: usize) {
    if !ENABLED.load(Ordering::Relaxed) {
        return;
    }
    let _ = TLS.try_with(|t| {
        let c = t.countdown.get().wrapping_sub(size.min(i64::MAX as usize / 2) as i64 + 1);
        if c >= 0 {
            t.countdown.set(c);
        } else {
            sample_slow(t, p, size, c, ret, fp);
        }
    });
}

#[cold]
#[inline(never)]
fn sample_slow(t: &Tls, p: *mut c_void, size: usize, c: i64, ret: usize, fp: usize) {
    if t.busy.get() {
        t.countdown.set(c);
        return;
    }
    t.busy.set(true);
    if t.rng.get() == 0 {
        // First allocation of this thread: start the stream here.
        seed(t);
        let c = draw(t).saturating_add(c);
        if c >= 0 {
            t.countdown.set(c);
            t.busy.set(false);
            return;
        }
    }
    // Memoryless: the distance from the end of this block to the next marked byte is a fresh draw.
    t.countdown.set(draw(t));
    let r = INTERVAL.load(Ordering::Relaxed) as f64;
    let weight = 1.0 / (1.0 - (-((size as f64) + 1.0) / r).exp());
    let mut frames = [0usize; stacks::MAX_FRAMES];
    let n = walk(t, ret, fp, &mut frames);
    if let Some(id) = stacks::intern(&frames[..n], weight, size as u64) {
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        live::insert(p as usize, size as u64, weight, id, seq);
    } else {
        live::DROPPED.fetch_add(1, Ordering::Relaxed);
    }
    t.busy.set(false);
}

/// Frame-pointer walk from the caller of the malloc-family function: `ret` is its return address, `fp` the
/// caller's frame pointer. Every frame pointer is checked to lie inside this thread's stack (between the current
/// stack pointer and the stack's top), to be 8-aligned and to increase, so the walk only reads mapped stack memory.
fn walk(t: &Tls, ret: usize, fp: usize, out: &mut [usize; stacks::MAX_FRAMES]) -> usize {
    if ret == 0 {
        return 0;
    }
    out[0] = ret;
    let mut n = 1;
    if t.stack_state.get() == 0 {
        stack_bounds(t);
    }
    if t.stack_state.get() != 1 {
        return n;
    }
    let sp = &n as *const usize as usize; // a current stack address: every live frame is above it
    let lo = sp.max(t.stack_lo.get());
    let hi = t.stack_hi.get();
    let mut fp = fp;
    while n < stacks::MAX_FRAMES {
        if fp < lo || fp > hi.saturating_sub(16) || fp & 7 != 0 {
            break;
        }
        // SAFETY: [fp, fp+16) lies inside this thread's mapped stack (checked just above).
        let (next, ra) = unsafe { (*(fp as *const usize), *((fp + 8) as *const usize)) };
        if ra < 4096 {
            break;
        }
        out[n] = ra;
        n += 1;
        if next <= fp {
            break;
        }
        fp = next;
    }
    n
}

/// Reads this thread's stack range once (pthread_getattr_np may allocate: we are `busy` here).
fn stack_bounds(t: &Tls) {
    // SAFETY: attr is initialised by pthread_getattr_np before use and destroyed after; out-pointers are valid.
    unsafe {
        let mut attr: libc::pthread_attr_t = core::mem::zeroed();
        t.stack_state.set(2);
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) == 0 {
            let mut addr: *mut c_void = core::ptr::null_mut();
            let mut size: usize = 0;
            if libc::pthread_attr_getstack(&attr, &mut addr, &mut size) == 0 && !addr.is_null() && size > 0 {
                t.stack_lo.set(addr as usize);
                t.stack_hi.set(addr as usize + size);
                t.stack_state.set(1);
            }
            libc::pthread_attr_destroy(&mut attr);
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Implementations behind the exported symbols. `ret`/`fp` come from the trampolines below.

unsafe extern "C" fn malloc_impl(size: usize, ret: usize, fp: usize) -> *mut c_void {
    let p = match real::malloc() {
        Some(f) => f(size),
        None => return real::arena_alloc(size, 16),
    };
    if !p.is_null() {
        account(p, size, ret, fp);
    }
    p
}

unsafe extern "C" fn calloc_impl(n: usize, size: usize, ret: usize, fp: usize) -> *mut c_void {
    let p = match real::calloc() {
        Some(f) => f(n, size),
        None => {
            return match n.checked_mul(size) {
                Some(total) => real::arena_alloc(total, 16),
                None => core::ptr::null_mut(),
            }
        }
    };
    if !p.is_null() {
        account(p, n.saturating_mul(size), ret, fp);
    }
    p
}

unsafe fn realloc_common(old: *mut c_void, size: usize, ret: usize, fp: usize) -> *mut c_void {
    if old.is_null() {
        return malloc_impl(size, ret, fp);
    }
    if real::in_arena(old) {
        // Move a bootstrap block into the real heap.
        let new = malloc_impl(size, ret, fp);
        if !new.is_null() {
            core::ptr::copy_nonoverlapping(old as *const u8, new as *mut u8, real::arena_size(old).min(size));
        }
        return new;
    }
    let f = match real::realloc() {
        Some(f) => f,
        None => return core::ptr::null_mut(),
    };
    // realloc = free + malloc for the sampler; forget the old block before it can be reused.
    if live::LIVE.load(Ordering::Relaxed) != 0 {
        live::remove(old as usize);
    }
    let p = f(old, size);
    if !p.is_null() && size != 0 {
        account(p, size, ret, fp);
    }
    p
}

unsafe extern "C" fn realloc_impl(old: *mut c_void, size: usize, ret: usize, fp: usize) -> *mut c_void {
    realloc_common(old, size, ret, fp)
}

unsafe extern "C" fn reallocarray_impl(old: *mut c_void, n: usize, size: usize, ret: usize, fp: usize) -> *mut c_void {
    match n.checked_mul(size) {
        Some(total) => realloc_common(old, total, ret, fp),
        None => {
            *libc::__errno_location() = libc::ENOMEM;
            core::ptr::null_mut()
        }
    }
}

unsafe extern "C" fn posix_memalign_impl(
    out: *mut *mut c_void,
    align: usize,
    size: usize,
    ret: usize,
    fp: usize,
) -> i32 {
    match real::posix_memalign() {
        Some(f) => {
            let rc = f(out, align, size);
            if rc == 0 {
                account(*out, size, ret, fp);
            }
            rc
        }
        None => {
            if !align.is_power_of_two() || !align.is_multiple_of(core::mem::size_of::<usize>()) {
                return libc::EINVAL;
            }
            let p = real::arena_alloc(size, align);
            if p.is_null() {
                return libc::ENOMEM;
            }
            *out = p;
            0
        }
    }
}

unsafe extern "C" fn aligned_alloc_impl(align: usize, size: usize, ret: usize, fp: usize) -> *mut c_void {
    let p = match real::aligned_alloc() {
        Some(f) => f(align, size),
        None => return real::arena_alloc(size, align.next_power_of_two()),
    };
    if !p.is_null() {
        account(p, size, ret, fp);
    }
    p
}

unsafe extern "C" fn memalign_impl(align: usize, size: usize, ret: usize, fp: usize) -> *mut c_void {
    let p = match real::memalign() {
        Some(f) => f(align, size),
        None => return real::arena_alloc(size, align.next_power_of_two()),
    };
    if !p.is_null() {
        account(p, size, ret, fp);
    }
    p
}

unsafe extern "C" fn valloc_impl(size: usize, ret: usize, fp: usize) -> *mut c_void {
    let p = match real::valloc() {
        Some(f) => f(size),
        None => return real::arena_alloc(size, 4096),
    };
    if !p.is_null() {
        account(p, size, ret, fp);
    }
    p
}

unsafe extern "C" fn pvalloc_impl(size: usize, ret: usize, fp: usize) -> *mut c_void {
    let p = match real::pvalloc() {
        Some(f) => f(size),
        None => return real::arena_alloc((size + 4095) & !4095, 4096),
    };
    if !p.is_null() {
        account(p, (size + 4095) & !4095, ret, fp);
    }
    p
}

// ---------------------------------------------------------------------------------------------------------------
// Exported symbols. On x86-64 the allocating entry points are naked trampolines: at entry, `[rsp]` is the return
// address into the caller and `rbp` still holds the caller's frame pointer, which are passed as two extra
// arguments (in the next free argument registers) to the Rust implementation, then tail-jumped to. This makes the
// stack walk independent of how this crate itself is compiled (Rust omits frame pointers by default).

#[cfg(target_arch = "x86_64")]
macro_rules! trampoline {
    ($name:ident, $imp:ident, ($($arg:ident: $ty:ty),*) -> $ret:ty, $r1:literal, $r2:literal) => {
        /// Interposed allocator entry point (see the module docs).
        #[unsafe(naked)]
        #[no_mangle]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> $ret {
            core::arch::naked_asm!(
                concat!("mov ", $r1, ", qword ptr [rsp]"),
                concat!("mov ", $r2, ", rbp"),
                "jmp {imp}",
                imp = sym $imp,
            )
        }
    };
}

#[cfg(not(target_arch = "x86_64"))]
macro_rules! trampoline {
    ($name:ident, $imp:ident, ($($arg:ident: $ty:ty),*) -> $ret:ty, $r1:literal, $r2:literal) => {
        /// Interposed allocator entry point (no stack capture on this architecture).
        #[no_mangle]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> $ret {
            $imp($($arg,)* 0, 0)
        }
    };
}

trampoline!(malloc, malloc_impl, (size: usize) -> *mut c_void, "rsi", "rdx");
trampoline!(valloc, valloc_impl, (size: usize) -> *mut c_void, "rsi", "rdx");
trampoline!(pvalloc, pvalloc_impl, (size: usize) -> *mut c_void, "rsi", "rdx");
trampoline!(calloc, calloc_impl, (n: usize, size: usize) -> *mut c_void, "rdx", "rcx");
trampoline!(realloc, realloc_impl, (p: *mut c_void, size: usize) -> *mut c_void, "rdx", "rcx");
trampoline!(aligned_alloc, aligned_alloc_impl, (align: usize, size: usize) -> *mut c_void, "rdx", "rcx");
trampoline!(memalign, memalign_impl, (align: usize, size: usize) -> *mut c_void, "rdx", "rcx");
trampoline!(reallocarray, reallocarray_impl, (p: *mut c_void, n: usize, size: usize) -> *mut c_void, "rcx", "r8");
trampoline!(posix_memalign, posix_memalign_impl, (out: *mut *mut c_void, align: usize, size: usize) -> i32, "rcx", "r8");

/// Interposed `free`: forgets a sampled pointer (lock-free lookup), then calls the real free. Preserves errno.
#[no_mangle]
pub unsafe extern "C" fn free(p: *mut c_void) {
    if p.is_null() || real::in_arena(p) {
        return;
    }
    if live::LIVE.load(Ordering::Relaxed) != 0 {
        live::remove(p as usize);
    }
    if let Some(f) = real::free() {
        f(p)
    }
}

/// C23 `free_sized`: same as free.
#[no_mangle]
pub unsafe extern "C" fn free_sized(p: *mut c_void, _size: usize) {
    free(p)
}

/// C23 `free_aligned_sized`: same as free.
#[no_mangle]
pub unsafe extern "C" fn free_aligned_sized(p: *mut c_void, _align: usize, _size: usize) {
    free(p)
}

/// Old alias of free, still exported by glibc.
#[no_mangle]
pub unsafe extern "C" fn cfree(p: *mut c_void) {
    free(p)
}

/// Interposed `malloc_usable_size`, aware of bootstrap blocks.
#[no_mangle]
pub unsafe extern "C" fn malloc_usable_size(p: *mut c_void) -> usize {
    if p.is_null() {
        return 0;
    }
    if real::in_arena(p) {
        return real::arena_size(p);
    }
    match real::malloc_usable_size() {
        Some(f) => f(p),
        None => 0,
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Life cycle: constructor, fork, exit.

#[used]
#[link_section = ".init_array"]
static INIT: extern "C" fn() = leakscope_init;

fn env(name: &core::ffi::CStr) -> Option<&'static [u8]> {
    // SAFETY: getenv returns null or a NUL-terminated string that lives as long as the environment entry; we
    // copy what we keep before anything could change it (only our own init modifies the environment).
    unsafe {
        let p = libc::getenv(name.as_ptr());
        if p.is_null() {
            None
        } else {
            Some(core::ffi::CStr::from_ptr(p).to_bytes())
        }
    }
}

/// Parses `524288`, `512k`, `512KiB`, `1m`, `2MiB`.
fn parse_size(text: &[u8]) -> Option<u64> {
    let s = core::str::from_utf8(text).ok()?.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let n: u64 = s[..split].parse().ok()?;
    let mult = match s[split..].trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        "g" | "gb" | "gib" => 1024 * 1024 * 1024,
        _ => return None,
    };
    n.checked_mul(mult).filter(|&v| v > 0)
}

extern "C" fn leakscope_init() {
    with_busy(|| {
        real::resolve();
        if env(c"LEAKSCOPE_DISABLE").is_some_and(|v| v != b"0") {
            return;
        }
        if let Some(r) = env(c"LEAKSCOPE_INTERVAL").and_then(parse_size) {
            INTERVAL.store(r, Ordering::Relaxed);
        }
        if let Some(s) = env(c"LEAKSCOPE_SEED").and_then(parse_size) {
            SEED.store(s, Ordering::Relaxed);
        }
        let bits = env(c"LEAKSCOPE_TABLE_BITS").and_then(parse_size).map(|b| b.clamp(10, 28) as u32).unwrap_or(19);
        if !live::init(bits) || !stacks::init() {
            return;
        }
        // SAFETY: getpid has no preconditions.
        OWNER_PID.store(unsafe { libc::getpid() }, Ordering::Relaxed);
        dump::init_output(env(c"LEAKSCOPE_OUTPUT"));
        if env(c"LEAKSCOPE_FOLLOW_CHILDREN").is_none_or(|v| v == b"0") {
            strip_ld_preload();
        }
        // SAFETY: registering plain extern "C" callbacks; they never unwind.
        unsafe {
            libc::pthread_atfork(None, None, Some(after_fork_child));
            libc::atexit(at_exit);
        }
        ENABLED.store(true, Ordering::Release);
        if env(c"LEAKSCOPE_NO_SOCKET").is_none_or(|v| v == b"0") {
            server::start();
        }
    });
}

/// Removes this library from LD_PRELOAD so that children (fork+exec) run without it unless asked.
fn strip_ld_preload() {
    let Some(value) = env(c"LD_PRELOAD") else { return };
    let kept: Vec<&[u8]> = value
        .split(|&b| b == b':' || b == b' ')
        .filter(|e| !e.is_empty() && !e.windows(17).any(|w| w == b"leakscope_preload"))
        .collect();
    let joined = kept.join(&b':');
    // SAFETY: called from the constructor while the process is single-threaded; strings are NUL-terminated.
    unsafe {
        if joined.is_empty() {
            libc::unsetenv(c"LD_PRELOAD".as_ptr());
        } else if let Ok(c) = std::ffi::CString::new(joined) {
            libc::setenv(c"LD_PRELOAD".as_ptr(), c.as_ptr(), 1);
        }
    }
}

/// In a fork child: stop sampling for good (locks may be held by threads that no longer exist). The inherited
/// tables stay mapped, untouched; no dump is written at the child's exit.
extern "C" fn after_fork_child() {
    ENABLED.store(false, Ordering::Relaxed);
}

extern "C" fn at_exit() {
    // SAFETY: getpid has no preconditions.
    if OWNER_PID.load(Ordering::Relaxed) != unsafe { libc::getpid() } {
        return;
    }
    with_busy(|| {
        dump::write_final();
        server::cleanup();
    });
}

pub(crate) fn interval() -> u64 {
    INTERVAL.load(Ordering::Relaxed)
}

pub(crate) fn samples_taken() -> u64 {
    SEQ.load(Ordering::Relaxed)
}

pub(crate) fn owner_pid() -> i32 {
    OWNER_PID.load(Ordering::Relaxed)
}
