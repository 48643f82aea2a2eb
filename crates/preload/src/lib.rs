//! `libleakscope_preload.so`: an LD_PRELOAD sampling malloc interposer (glibc Linux).
//!
//! Every allocation is charged `size + 1` bytes against a per-thread countdown drawn from an exponential
//! distribution with mean `LEAKSCOPE_INTERVAL` (Poisson sampling by bytes). When the countdown would go below zero
//! the allocation is sampled: it is served with a small header in front of it that tags it as sampled (see
//! `hooks.rs`), its stack is taken by a bounds-checked frame-pointer walk and interned in the stack table, and the
//! pointer is put into the live table with its unbiased weight `1 / (1 − exp(−(size+1)/R))`. `free` recognises
//! sampled blocks by their tag and removes them. Dumps (on request over a Unix socket, and at exit) list the live
//! samples.
//!
//! Rules kept by this crate (it runs inside malloc):
//! - the fast path (no sample) does no allocation, no locking, no atomic read-modify-write and no system call: on
//!   x86-64 it is a few instructions of assembly and a tail jump to the real function (`hooks.rs`);
//! - the profiler's own allocations go straight to the real allocator (`#[global_allocator]` below) and are never
//!   sampled: a per-thread `busy` flag marks code running on behalf of the profiler;
//! - thread-local state is a plain, zero-initialised TLS block without destructor (valid during thread exit),
//!   reached with the initial-exec model on x86-64 (no `__tls_get_addr` call);
//! - no signal handlers are installed, so SIGUSR1/SIGUSR2 stay Node's.
#![allow(clippy::missing_safety_doc)]

mod dump;
mod hooks;
mod live;
mod mem;
mod real;
mod server;
mod stacks;

use core::cell::Cell;
use core::ffi::c_void;
use core::sync::atomic::{AtomicI32, AtomicU64, AtomicU8, Ordering};
use std::alloc::{GlobalAlloc, Layout};

/// Sampling state: before the constructor ran (allocations are charged nothing and stay on the slow path, which
/// forwards them), on, or off for good (disabled by the environment, failed set-up, or a fork child).
static SAMPLING: AtomicU8 = AtomicU8::new(PRE_INIT);
const PRE_INIT: u8 = 0;
const ON: u8 = 1;
const OFF: u8 = 2;
/// Mean sampling interval in bytes (R).
static INTERVAL: AtomicU64 = AtomicU64::new(512 * 1024);
/// Optional fixed seed (0 = seed from time and thread id).
static SEED: AtomicU64 = AtomicU64::new(0);
/// Number of samples taken so far (also each sample's sequence number).
static SEQ: AtomicU64 = AtomicU64::new(0);
/// The process that loaded the library (fork children differ).
static OWNER_PID: AtomicI32 = AtomicI32::new(0);

/// Per-thread state. `countdown` must stay the first field: the assembly fast paths read and write it at offset 0
/// of the thread's TLS block.
#[repr(C)]
pub(crate) struct Tls {
    /// Bytes left before the next sampled byte: an allocation of s bytes with s + 1 ≤ countdown is not sampled
    /// and subtracts s + 1. 0 in a new thread (its first allocation seeds it on the slow path).
    countdown: Cell<u64>,
    /// xorshift64* state; 0 = this thread has not been seeded yet.
    rng: Cell<u64>,
    stack_hi: Cell<usize>,
    stack_lo: Cell<usize>,
    /// Set while the profiler itself runs on this thread: allocations are forwarded, never sampled.
    busy: Cell<bool>,
    /// Stack bounds: 0 = unknown, 1 = known, 2 = unavailable (record only the first frame).
    stack_state: Cell<u8>,
}

/// Size of the TLS block reserved for [`Tls`] (see `hooks.rs`).
#[cfg(target_arch = "x86_64")]
const TLS_BLOCK: usize = 64;
#[cfg(target_arch = "x86_64")]
const _: () = assert!(core::mem::size_of::<Tls>() <= TLS_BLOCK && core::mem::offset_of!(Tls, countdown) == 0);

/// This thread's state. On x86-64: the `leakscope_tls_block` TLS symbol (zero-initialised `.tbss`, defined in
/// `hooks.rs`) reached with the initial-exec model, i.e. the thread pointer plus an offset fixed at load time:
/// two loads, no call (a Rust `thread_local!` in a cdylib goes through `__tls_get_addr`). A library loaded by
/// LD_PRELOAD is part of the initial TLS block, so this is valid from the first instruction of every thread to
/// its last, destructors included.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn tls() -> &'static Tls {
    let p: usize;
    // SAFETY: fs:0 holds the thread pointer (x86-64 TLS ABI); the GOT entry holds the block's offset from it.
    // The block is TLS_BLOCK bytes, zero-initialised, which is a valid Tls (all Cells of integers and a bool).
    unsafe {
        core::arch::asm!(
            "mov {p}, qword ptr fs:[0]",
            "add {p}, qword ptr [rip + leakscope_tls_block@GOTTPOFF]",
            p = out(reg) p,
            options(pure, nomem, nostack),
        );
        &*(p as *const Tls)
    }
}

#[cfg(not(target_arch = "x86_64"))]
thread_local! {
    static TLS: Tls = const {
        Tls {
            countdown: Cell::new(0),
            rng: Cell::new(0),
            stack_hi: Cell::new(0),
            stack_lo: Cell::new(0),
            busy: Cell::new(false),
            stack_state: Cell::new(0),
        }
    };
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
pub(crate) fn tls() -> &'static Tls {
    // SAFETY: a const-initialised thread_local without destructor lives as long as the thread; the reference is
    // only used on this thread.
    TLS.with(|t| unsafe { &*(t as *const Tls) })
}

/// Runs `f` with this thread's `busy` flag set (restoring the previous value). Used by every profiler code path
/// that may allocate: init, dumps, the socket thread.
pub(crate) fn with_busy<R>(f: impl FnOnce() -> R) -> R {
    let t = tls();
    let prev = t.busy.replace(true);
    let r = f();
    t.busy.set(prev);
    r
}

// ---------------------------------------------------------------------------------------------------------------
// The profiler's own heap: straight to the real allocator, so it never re-enters the hooks.

struct RealAllocator;

// SAFETY: forwards to the C allocator with its alignment guarantees (16 bytes on x86-64 glibc), using memalign
// for larger alignments; before dlsym resolved, the real-function slots serve from the bootstrap arena (never
// freed: dealloc skips arena blocks).
unsafe impl GlobalAlloc for RealAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= 16 {
            real::MALLOC.get()(layout.size()) as *mut u8
        } else {
            real::MEMALIGN.get()(layout.align(), layout.size()) as *mut u8
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        if !real::in_arena(ptr as *const c_void) {
            real::FREE.get()(ptr as *mut c_void)
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

/// An exponential draw with mean R: `−ln(U)·R`, U uniform in (0, 1]; at least 1.
fn draw(t: &Tls) -> u64 {
    let u = ((next_random(t) >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
    let r = INTERVAL.load(Ordering::Relaxed) as f64;
    ((-u.ln() * r).min((u64::MAX / 4) as f64) as u64).max(1)
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

/// Charges an allocation of `size` bytes to this thread's countdown; true when it must be sampled. The inline
/// part is the whole fast path (the assembly entry points in `hooks.rs` do the same before tail-jumping to the
/// real function).
#[inline(always)]
pub(crate) fn charge(size: usize) -> bool {
    let t = tls();
    let need = (size as u64).wrapping_add(1);
    let c = t.countdown.get();
    if need <= c {
        t.countdown.set(c - need);
        false
    } else {
        charge_slow(t, need)
    }
}

/// The countdown is exhausted (or this thread is new, or sampling is not on): decide, and draw a new countdown.
#[cold]
#[inline(never)]
fn charge_slow(t: &Tls, need: u64) -> bool {
    match SAMPLING.load(Ordering::Acquire) {
        ON => {}
        // Before the constructor: stay on the slow path (countdown 0) until sampling starts.
        PRE_INIT => return false,
        // Off for good: never come back here.
        _ => {
            t.countdown.set(u64::MAX);
            return false;
        }
    }
    if t.busy.get() {
        // The profiler's own allocation: not sampled; the next allocation of the program is.
        t.countdown.set(0);
        return false;
    }
    if t.rng.get() == 0 {
        // First allocation of this thread: start the stream here.
        seed(t);
        let c = draw(t);
        if need <= c {
            t.countdown.set(c - need);
            return false;
        }
    }
    // Memoryless: the distance from the end of this block to the next marked byte is a fresh draw.
    t.countdown.set(draw(t));
    true
}

/// Records a sampled block `p` of `size` requested bytes (already allocated and tagged): its stack (from the
/// allocating function's return address `ret` and its caller's frame pointer `fp`), its weight and the live entry.
/// Returns whether it went into the live table.
#[cold]
#[inline(never)]
pub(crate) fn record(p: usize, size: usize, ret: usize, fp: usize) -> bool {
    let t = tls();
    let prev = t.busy.replace(true);
    let r = INTERVAL.load(Ordering::Relaxed) as f64;
    let weight = 1.0 / (1.0 - (-((size as f64) + 1.0) / r).exp());
    let mut frames = [0usize; stacks::MAX_FRAMES];
    let n = walk(t, ret, fp, &mut frames);
    let inserted = match stacks::intern(&frames[..n], weight, size as u64) {
        Some(id) => {
            let seq = SEQ.fetch_add(1, Ordering::Relaxed);
            live::insert(p, size as u64, weight, id, seq)
        }
        None => {
            live::DROPPED.fetch_add(1, Ordering::Relaxed);
            false
        }
    };
    server::poll_inline();
    t.busy.set(prev);
    inserted
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
            SAMPLING.store(OFF, Ordering::Release);
            return;
        }
        if let Some(r) = env(c"LEAKSCOPE_INTERVAL").and_then(parse_size) {
            INTERVAL.store(r, Ordering::Relaxed);
        }
        if let Some(s) = env(c"LEAKSCOPE_SEED").and_then(parse_size) {
            SEED.store(s, Ordering::Relaxed);
        }
        let bits = env(c"LEAKSCOPE_TABLE_BITS").and_then(parse_size).map(|b| b.clamp(10, 28) as u32).unwrap_or(17);
        if !live::init(bits) || !stacks::init() {
            SAMPLING.store(OFF, Ordering::Release);
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
        // Tags are written only once sampling is on, so the secret never changes under a tagged block.
        hooks::init_secret();
        SAMPLING.store(ON, Ordering::Release);
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
    SAMPLING.store(OFF, Ordering::Release);
    server::after_fork_child();
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
