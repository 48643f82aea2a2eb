//! The control socket: `/tmp/leakscope-<uid>/native-<pid>.sock`, in a directory of mode 0700, socket mode 0600,
//! and every peer checked with SO_PEERCRED (same uid, or root). Served by one background thread with all signals
//! blocked. Protocol: the client sends one line, `dump` or `ping`; the server answers and closes.

use core::sync::atomic::{AtomicI32, Ordering};
use std::ffi::CString;

static LISTEN_FD: AtomicI32 = AtomicI32::new(-1);
static PATH: std::sync::OnceLock<CString> = std::sync::OnceLock::new();

fn socket_dir(uid: u32) -> String {
    format!("/tmp/leakscope-{uid}")
}

/// Creates the socket and the serving thread. Failures leave the process running without a socket.
pub fn start() {
    // SAFETY: libc calls on owned, NUL-terminated paths and zero-initialised structs.
    unsafe {
        let uid = libc::geteuid();
        let dir = socket_dir(uid);
        let Ok(cdir) = CString::new(dir.clone()) else { return };
        libc::mkdir(cdir.as_ptr(), 0o700);
        let mut st: libc::stat = core::mem::zeroed();
        if libc::lstat(cdir.as_ptr(), &mut st) != 0
            || st.st_mode & libc::S_IFMT != libc::S_IFDIR
            || st.st_uid != uid
            || st.st_mode & 0o077 != 0
        {
            return;
        }
        let path = format!("{dir}/native-{}.sock", crate::owner_pid());
        let Ok(cpath) = CString::new(path) else { return };
        let mut addr: libc::sockaddr_un = core::mem::zeroed();
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        let bytes = cpath.as_bytes_with_nul();
        if bytes.len() > addr.sun_path.len() {
            return;
        }
        for (d, &s) in addr.sun_path.iter_mut().zip(bytes) {
            *d = s as libc::c_char;
        }
        let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return;
        }
        libc::unlink(cpath.as_ptr());
        if libc::bind(fd, &addr as *const _ as *const libc::sockaddr, core::mem::size_of::<libc::sockaddr_un>() as u32)
            != 0
            || libc::listen(fd, 8) != 0
        {
            libc::close(fd);
            return;
        }
        libc::chmod(cpath.as_ptr(), 0o600);
        LISTEN_FD.store(fd, Ordering::Relaxed);
        let _ = PATH.set(cpath);

        // Start the thread with every signal blocked (it inherits the mask), then restore ours.
        let mut all: libc::sigset_t = core::mem::zeroed();
        let mut old: libc::sigset_t = core::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        let mut tid: libc::pthread_t = 0;
        let mut attr: libc::pthread_attr_t = core::mem::zeroed();
        libc::pthread_attr_init(&mut attr);
        libc::pthread_attr_setdetachstate(&mut attr, libc::PTHREAD_CREATE_DETACHED);
        libc::pthread_attr_setstacksize(&mut attr, 256 * 1024);
        let rc = libc::pthread_create(&mut tid, &attr, serve, core::ptr::null_mut());
        libc::pthread_attr_destroy(&mut attr);
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, core::ptr::null_mut());
        if rc != 0 {
            cleanup();
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
                let c = libc::accept4(listen, core::ptr::null_mut(), core::ptr::null_mut(), libc::SOCK_CLOEXEC);
                if c < 0 {
                    let e = *libc::__errno_location();
                    if e == libc::EINTR || e == libc::ECONNABORTED || e == libc::EMFILE || e == libc::ENFILE {
                        libc::usleep(10_000);
                        continue;
                    }
                    break; // the listening socket is gone (closed by the program): stop serving
                }
                handle(c);
                libc::close(c);
            }
        }
    });
    core::ptr::null_mut()
}

unsafe fn handle(c: i32) {
    let mut cred: libc::ucred = core::mem::zeroed();
    let mut len = core::mem::size_of::<libc::ucred>() as libc::socklen_t;
    if libc::getsockopt(c, libc::SOL_SOCKET, libc::SO_PEERCRED, &mut cred as *mut _ as *mut libc::c_void, &mut len) != 0
        || (cred.uid != libc::geteuid() && cred.uid != 0)
    {
        return;
    }
    let tv = libc::timeval { tv_sec: 5, tv_usec: 0 };
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
