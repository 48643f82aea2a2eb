//! The control socket: `/tmp/leakscope-<uid>/native-<pid>.sock`, in a directory of mode 0700, socket mode 0600,
//! and every peer checked with SO_PEERCRED (same uid, or root). Protocol: the client sends one line, `dump` or
//! `ping`; the server answers and closes.
//!
//! Who answers: a background thread (all signals blocked, named `leakscope-ctl`), started only once the program
//! itself is multi-threaded — at once if it already is when the constructor runs, else by the interposed
//! `pthread_create` just before the program's first thread. A single-threaded program is never made
//! multi-threaded by the profiler (glibc's malloc skips its arena locks while a process has one thread; an idle
//! extra thread costs a few percent in allocation-heavy code). Until the thread exists, requests are answered from
//! the sampling path of the program's own thread ([`poll_inline`], at most every 100 ms): so a single-threaded
//! program answers only while it allocates.

use core::sync::atomic::{AtomicI32, AtomicU64, AtomicU8, Ordering};
use std::ffi::CString;

static LISTEN_FD: AtomicI32 = AtomicI32::new(-1);
static PATH: std::sync::OnceLock<CString> = std::sync::OnceLock::new();

/// No socket (not started, disabled, or a fork child).
const OFF: u8 = 0;
/// Listening; answered from the sampling path until the program starts a thread.
const INLINE: u8 = 1;
/// Answered by the control thread.
const THREAD: u8 = 2;
static MODE: AtomicU8 = AtomicU8::new(OFF);
/// CLOCK_MONOTONIC_COARSE milliseconds of the next inline check.
static NEXT_POLL_MS: AtomicU64 = AtomicU64::new(0);

fn socket_dir(uid: u32) -> String {
    format!("/tmp/leakscope-{uid}")
}

/// Creates the socket, then the serving thread if the process is already multi-threaded (or glibc cannot tell).
/// Failures leave the process running without a socket.
pub fn start() {
    if !listen() {
        return;
    }
    MODE.store(INLINE, Ordering::Release);
    if !single_threaded() {
        before_thread_create();
    }
}

/// glibc's `__libc_single_threaded` (2.32+): true until the process creates its first thread.
fn single_threaded() -> bool {
    // SAFETY: dlsym with a NUL-terminated name; the symbol, if present, is a `char` that lives forever.
    unsafe {
        let p = libc::dlsym(libc::RTLD_DEFAULT, c"__libc_single_threaded".as_ptr()) as *const u8;
        !p.is_null() && core::ptr::read_volatile(p) != 0
    }
}

/// Called before the program creates a thread: starts the control thread the first time.
pub fn before_thread_create() {
    if MODE.load(Ordering::Acquire) != INLINE
        || MODE.compare_exchange(INLINE, THREAD, Ordering::AcqRel, Ordering::Acquire).is_err()
    {
        return;
    }
    if !crate::with_busy(spawn) {
        MODE.store(INLINE, Ordering::Release);
    }
}

/// In a fork child: nobody answers (the parent owns the socket).
pub fn after_fork_child() {
    MODE.store(OFF, Ordering::Release);
}

fn listen() -> bool {
    // SAFETY: libc calls on owned, NUL-terminated paths and zero-initialised structs.
    unsafe {
        let uid = libc::geteuid();
        let dir = socket_dir(uid);
        let Ok(cdir) = CString::new(dir.clone()) else { return false };
        libc::mkdir(cdir.as_ptr(), 0o700);
        let mut st: libc::stat = core::mem::zeroed();
        if libc::lstat(cdir.as_ptr(), &mut st) != 0
            || st.st_mode & libc::S_IFMT != libc::S_IFDIR
            || st.st_uid != uid
            || st.st_mode & 0o077 != 0
        {
            return false;
        }
        let path = format!("{dir}/native-{}.sock", crate::owner_pid());
        let Ok(cpath) = CString::new(path) else { return false };
        let mut addr: libc::sockaddr_un = core::mem::zeroed();
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        let bytes = cpath.as_bytes_with_nul();
        if bytes.len() > addr.sun_path.len() {
            return false;
        }
        for (d, &s) in addr.sun_path.iter_mut().zip(bytes) {
            *d = s as libc::c_char;
        }
        // Non-blocking: the inline check must never wait in accept; the thread waits in poll.
        let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK, 0);
        if fd < 0 {
            return false;
        }
        libc::unlink(cpath.as_ptr());
        if libc::bind(fd, &addr as *const _ as *const libc::sockaddr, core::mem::size_of::<libc::sockaddr_un>() as u32)
            != 0
            || libc::listen(fd, 8) != 0
        {
            libc::close(fd);
            return false;
        }
        libc::chmod(cpath.as_ptr(), 0o600);
        LISTEN_FD.store(fd, Ordering::Relaxed);
        let _ = PATH.set(cpath);
        true
    }
}

/// Starts the serving thread with every signal blocked (it inherits the mask), then restores ours. Uses the real
/// pthread_create (ours would come back here).
fn spawn() -> bool {
    // SAFETY: plain pthread calls on zero-initialised, then initialised, attribute and signal-set structs.
    unsafe {
        let mut all: libc::sigset_t = core::mem::zeroed();
        let mut old: libc::sigset_t = core::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        let mut tid: libc::pthread_t = 0;
        let mut attr: libc::pthread_attr_t = core::mem::zeroed();
        libc::pthread_attr_init(&mut attr);
        libc::pthread_attr_setdetachstate(&mut attr, libc::PTHREAD_CREATE_DETACHED);
        libc::pthread_attr_setstacksize(&mut attr, 256 * 1024);
        let rc = crate::real::PTHREAD_CREATE.get()(&mut tid, &attr, serve, core::ptr::null_mut());
        libc::pthread_attr_destroy(&mut attr);
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, core::ptr::null_mut());
        rc == 0
    }
}

/// Answers a pending request on the calling thread, if the control thread does not exist yet. Called from the
/// sampling path (the thread is `busy`); costs a coarse clock read, and a `poll` system call at most every 100 ms.
pub fn poll_inline() {
    if MODE.load(Ordering::Relaxed) != INLINE {
        return;
    }
    // SAFETY: clock_gettime with a valid out-pointer (vDSO); poll/accept4/close on our listening socket.
    unsafe {
        let mut ts: libc::timespec = core::mem::zeroed();
        libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts);
        let now = ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000;
        let next = NEXT_POLL_MS.load(Ordering::Relaxed);
        if now < next || NEXT_POLL_MS.compare_exchange(next, now + 100, Ordering::Relaxed, Ordering::Relaxed).is_err() {
            return;
        }
        let fd = LISTEN_FD.load(Ordering::Relaxed);
        let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        if libc::poll(&mut p, 1, 0) != 1 {
            return;
        }
        let c = libc::accept4(fd, core::ptr::null_mut(), core::ptr::null_mut(), libc::SOCK_CLOEXEC);
        if c >= 0 {
            handle(c, 1);
            libc::close(c);
        }
    }
}

/// Removes the socket file (at exit).
pub fn cleanup() {
    if let Some(p) = PATH.get() {
        // SAFETY: NUL-terminated path.
        unsafe { libc::unlink(p.as_ptr()) };
    }
}

extern "C" fn serve(_: *mut libc::c_void) -> *mut libc::c_void {
    // The whole thread works for the profiler: never sample it.
    crate::with_busy(|| {
        // SAFETY: libc socket calls on descriptors owned by this thread.
        unsafe {
            #[cfg(target_os = "linux")]
            libc::prctl(libc::PR_SET_NAME, c"leakscope-ctl".as_ptr());
            loop {
                let listen = LISTEN_FD.load(Ordering::Relaxed);
                let mut p = libc::pollfd { fd: listen, events: libc::POLLIN, revents: 0 };
                if libc::poll(&mut p, 1, -1) < 0 {
                    if *libc::__errno_location() == libc::EINTR {
                        continue;
                    }
                    break;
                }
                if p.revents & libc::POLLNVAL != 0 {
                    break; // the listening socket is gone (closed by the program): stop serving
                }
                let c = libc::accept4(listen, core::ptr::null_mut(), core::ptr::null_mut(), libc::SOCK_CLOEXEC);
                if c < 0 {
                    let e = *libc::__errno_location();
                    if e == libc::EAGAIN || e == libc::EINTR || e == libc::ECONNABORTED {
                        continue;
                    }
                    if e == libc::EMFILE || e == libc::ENFILE {
                        libc::usleep(10_000);
                        continue;
                    }
                    break;
                }
                handle(c, 5);
                libc::close(c);
            }
        }
    });
    core::ptr::null_mut()
}

/// Serves one connection; `timeout_s` bounds the wait for the request line.
unsafe fn handle(c: i32, timeout_s: i64) {
    let mut cred: libc::ucred = core::mem::zeroed();
    let mut len = core::mem::size_of::<libc::ucred>() as libc::socklen_t;
    if libc::getsockopt(c, libc::SOL_SOCKET, libc::SO_PEERCRED, &mut cred as *mut _ as *mut libc::c_void, &mut len) != 0
        || (cred.uid != libc::geteuid() && cred.uid != 0)
    {
        return;
    }
    let tv = libc::timeval { tv_sec: timeout_s, tv_usec: 0 };
    libc::setsockopt(
        c,
        libc::SOL_SOCKET,
        libc::SO_RCVTIMEO,
        &tv as *const _ as *const libc::c_void,
        core::mem::size_of::<libc::timeval>() as u32,
    );
    let mut buf = [0u8; 256];
    let mut n = 0;
    while n < buf.len() {
        let r = libc::read(c, buf.as_mut_ptr().add(n) as *mut libc::c_void, buf.len() - n);
        if r <= 0 {
            break;
        }
        n += r as usize;
        if buf[..n].contains(&b'\n') {
            break;
        }
    }
    let line = buf[..n].split(|&b| b == b'\n').next().unwrap_or(&[]).trim_ascii();
    match line {
        b"dump" => crate::dump::write_dump(c, true, "request"),
        b"ping" => {
            let msg = format!("leakscope-native {} {}\n", crate::owner_pid(), env!("CARGO_PKG_VERSION"));
            libc::send(c, msg.as_ptr() as *const libc::c_void, msg.len(), libc::MSG_NOSIGNAL);
        }
        _ => {
            let msg = b"error: unknown command (try dump or ping)\n";
            libc::send(c, msg.as_ptr() as *const libc::c_void, msg.len(), libc::MSG_NOSIGNAL);
        }
    }
}
