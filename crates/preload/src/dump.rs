//! Dumps: JSON lines (one object per line) written with a fixed buffer, no formatting allocations.
//!
//! ```text
//! {"type":"header","format":"leakscope-native","version":1,"pid":P,"exe":"…","interval":R,"reason":"exit|request",
//!  "time_unix_ms":T,"samples_taken":N,"live_samples":L,"dropped":D,"stacks":S}
//! {"type":"module","start":A,"end":B,"offset":O,"path":"…"}            executable file mappings (/proc/self/maps)
//! {"type":"stack","id":I,"alloc_objects":F,"alloc_space":F,"frames":[A,…]}   return addresses, leaf first
//! {"type":"sample","addr":A,"size":S,"weight":W,"stack":I,"seq":Q}     one per live sampled block
//! {"type":"end","samples":L,"stacks":S}                                 absent → the dump is truncated
//! ```
//! All addresses are decimal integers. `weight` is the unbiased number of blocks this sample stands for.

use crate::mem::SpinLock;
use core::fmt::Write;

const PATH_MAX: usize = 4096;

struct PathBuf(core::cell::UnsafeCell<([u8; PATH_MAX], usize)>);
// SAFETY: written once by the constructor (single-threaded) before any reader exists.
unsafe impl Sync for PathBuf {}
static OUTPUT: PathBuf = PathBuf(core::cell::UnsafeCell::new(([0; PATH_MAX], 0)));
static DUMP_LOCK: SpinLock = SpinLock::new();

/// Remembers `LEAKSCOPE_OUTPUT` (with `%p` replaced by the pid) for the final dump.
pub fn init_output(path: Option<&[u8]>) {
    let Some(path) = path else { return };
    // SAFETY: only the constructor writes OUTPUT, before other threads can read it.
    let out = unsafe { &mut *OUTPUT.0.get() };
    let mut len = 0;
    let pid = crate::owner_pid();
    let mut i = 0;
    while i < path.len() {
        if path[i] == b'%' && path.get(i + 1) == Some(&b'p') {
            let mut digits = [0u8; 12];
            let mut n = pid.unsigned_abs();
            let mut d = 0;
            loop {
                digits[d] = b'0' + (n % 10) as u8;
                n /= 10;
                d += 1;
                if n == 0 {
                    break;
                }
            }
            for k in (0..d).rev() {
                if len + 1 < PATH_MAX {
                    out.0[len] = digits[k];
                    len += 1;
                }
            }
            i += 2;
            continue;
        }
        if len + 1 < PATH_MAX {
            out.0[len] = path[i];
            len += 1;
        }
        i += 1;
    }
    out.0[len] = 0;
    out.1 = len;
}

/// Writes the final dump to `LEAKSCOPE_OUTPUT`, if set.
pub fn write_final() {
    // SAFETY: OUTPUT is immutable after the constructor.
    let out = unsafe { &*OUTPUT.0.get() };
    if out.1 == 0 {
        return;
    }
    // SAFETY: out.0 is NUL-terminated at out.1.
    let fd = unsafe {
        libc::open(
            out.0.as_ptr() as *const libc::c_char,
            libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC,
            0o600,
        )
    };
    if fd < 0 {
        return;
    }
    write_dump(fd, false, "exit");
    // SAFETY: fd was opened above.
    unsafe { libc::close(fd) };
}

/// A buffered writer over a file descriptor (send with MSG_NOSIGNAL for sockets: no SIGPIPE).
pub struct FdWriter {
    fd: i32,
    socket: bool,
    buf: [u8; 32 * 1024],
    len: usize,
    failed: bool,
}

impl FdWriter {
    fn flush(&mut self) {
        let mut off = 0;
        while off < self.len && !self.failed {
            // SAFETY: buf[off..len] is initialised memory owned by self.
            let n = unsafe {
                let p = self.buf.as_ptr().add(off) as *const libc::c_void;
                if self.socket {
                    libc::send(self.fd, p, self.len - off, libc::MSG_NOSIGNAL)
                } else {
                    libc::write(self.fd, p, self.len - off)
                }
            };
            if n < 0 {
                // SAFETY: errno location is always valid.
                if unsafe { *libc::__errno_location() } == libc::EINTR {
                    continue;
                }
                self.failed = true;
            } else {
                off += n as usize;
            }
        }
        self.len = 0;
    }

    fn bytes(&mut self, b: &[u8]) {
        for chunk in b.chunks(self.buf.len()) {
            if self.len + chunk.len() > self.buf.len() {
                self.flush();
            }
            self.buf[self.len..self.len + chunk.len()].copy_from_slice(chunk);
            self.len += chunk.len();
        }
    }

    /// A JSON string literal (quotes, backslashes and control bytes escaped; other bytes copied).
    fn json_str(&mut self, s: &[u8]) {
        self.bytes(b"\"");
        for &c in s {
            match c {
                b'"' => self.bytes(b"\\\""),
                b'\\' => self.bytes(b"\\\\"),
                0..=0x1f => {
                    let _ = write!(self, "\\u{:04x}", c);
                }
                _ => self.bytes(&[c]),
            }
        }
        self.bytes(b"\"");
    }
}

impl Write for FdWriter {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.bytes(s.as_bytes());
        Ok(())
    }
}

/// Writes a full dump to `fd`. Serialised by a lock (one dump at a time); the writer lives on the heap
/// (real allocator: callers are `busy`).
pub fn write_dump(fd: i32, socket: bool, reason: &str) {
    let _g = DUMP_LOCK.lock();
    let mut w = Box::new(FdWriter { fd, socket, buf: [0; 32 * 1024], len: 0, failed: false });
    let stacks = crate::stacks::COUNT.load(core::sync::atomic::Ordering::Acquire);
    // SAFETY: clock_gettime with a valid out-pointer.
    let now_ms = unsafe {
        let mut ts: libc::timespec = core::mem::zeroed();
        libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts);
        ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
    };
    let _ = write!(
        w,
        "{{\"type\":\"header\",\"format\":\"leakscope-native\",\"version\":1,\"pid\":{},\"exe\":",
        crate::owner_pid()
    );
    let mut exe = [0u8; PATH_MAX];
    // SAFETY: readlink writes at most exe.len() bytes into exe.
    let n = unsafe { libc::readlink(c"/proc/self/exe".as_ptr(), exe.as_mut_ptr() as *mut libc::c_char, exe.len()) };
    w.json_str(&exe[..n.max(0) as usize]);
    let _ = writeln!(
        w,
        ",\"interval\":{},\"reason\":\"{}\",\"time_unix_ms\":{},\"samples_taken\":{},\"live_samples\":{},\"dropped\":{},\"stacks\":{}}}",
        crate::interval(),
        reason,
        now_ms,
        crate::samples_taken(),
        crate::live::LIVE.load(core::sync::atomic::Ordering::Relaxed),
        crate::live::DROPPED.load(core::sync::atomic::Ordering::Relaxed),
        stacks
    );
    write_modules(&mut w);
    for id in 0..stacks {
        crate::stacks::read(id, |objects, space, frames| {
            let _ = write!(
                w,
                "{{\"type\":\"stack\",\"id\":{id},\"alloc_objects\":{objects},\"alloc_space\":{space},\"frames\":["
            );
            for (k, f) in frames.enumerate() {
                let _ = write!(w, "{}{}", if k == 0 { "" } else { "," }, f);
            }
            w.bytes(b"]}\n");
        });
    }
    let mut count = 0u64;
    crate::live::for_each(|s| {
        if s.stack < stacks {
            count += 1;
            let _ = writeln!(
                w,
                "{{\"type\":\"sample\",\"addr\":{},\"size\":{},\"weight\":{},\"stack\":{},\"seq\":{}}}",
                s.addr, s.size, s.weight, s.stack, s.seq
            );
        }
    });
    let _ = writeln!(w, "{{\"type\":\"end\",\"samples\":{count},\"stacks\":{stacks}}}");
    w.flush();
}

/// Copies the executable file-backed mappings of /proc/self/maps as module lines.
fn write_modules(w: &mut FdWriter) {
    // SAFETY: plain open/read/close on a procfs file into a heap buffer we own.
    unsafe {
        let fd = libc::open(c"/proc/self/maps".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return;
        }
        let mut data: Vec<u8> = Vec::with_capacity(64 * 1024);
        let mut chunk = [0u8; 8192];
        loop {
            let n = libc::read(fd, chunk.as_mut_ptr() as *mut libc::c_void, chunk.len());
            if n < 0 && *libc::__errno_location() == libc::EINTR {
                continue;
            }
            if n <= 0 {
                break;
            }
            data.extend_from_slice(&chunk[..n as usize]);
        }
        libc::close(fd);
        for line in data.split(|&b| b == b'\n') {
            if let Some(m) = parse_maps_line(line) {
                let _ =
                    write!(w, "{{\"type\":\"module\",\"start\":{},\"end\":{},\"offset\":{},\"path\":", m.0, m.1, m.2);
                w.json_str(m.3);
                w.bytes(b"}\n");
            }
        }
    }
}

/// `start-end perms offset dev inode path` → (start, end, offset, path) for executable mappings with a path.
fn parse_maps_line(line: &[u8]) -> Option<(u64, u64, u64, &[u8])> {
    let mut fields = line.splitn(6, |&b| b == b' ');
    let range = fields.next()?;
    let perms = fields.next()?;
    let offset = fields.next()?;
    let _dev = fields.next()?;
    let _inode = fields.next()?;
    let path = fields.next()?.trim_ascii_start();
    if perms.get(2) != Some(&b'x') || path.is_empty() || (path[0] != b'/' && path[0] != b'[') {
        return None;
    }
    let dash = range.iter().position(|&b| b == b'-')?;
    Some((hex(&range[..dash])?, hex(&range[dash + 1..])?, hex(offset)?, path))
}

fn hex(s: &[u8]) -> Option<u64> {
    core::str::from_utf8(s).ok().and_then(|s| u64::from_str_radix(s, 16).ok())
}
