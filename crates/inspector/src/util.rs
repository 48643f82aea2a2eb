//! Small OS helpers the live commands need: an interrupt flag (Ctrl-C ends a watch cleanly so we can close
//! what we opened), local timestamps for file names, and the memory headroom for snapshot pre-flight.

use std::fs;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::SystemTime;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// Process group of an app we launched and must not leave behind (0 = none).
static LAUNCHED_GROUP: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(_: libc::c_int) {
    if INTERRUPTED.swap(true, Ordering::SeqCst) {
        // Second Ctrl-C: the user insists. Do not leave a launched app (and its open inspector) behind.
        let group = LAUNCHED_GROUP.load(Ordering::SeqCst);
        // SAFETY: kill and _exit are async-signal-safe.
        unsafe {
            if group > 0 {
                libc::kill(-group, libc::SIGKILL);
            }
            libc::_exit(130)
        };
    }
}

/// Records (or clears, with 0) the process group of a launched app that a hard exit must kill.
pub(crate) fn set_launched_group(pgid: i32) {
    LAUNCHED_GROUP.store(pgid, Ordering::SeqCst);
}

/// Installs SIGINT/SIGTERM/SIGHUP handlers that set a flag (see [`interrupted`]); a second signal exits at
/// once with status 130. Uses `SA_RESTART` so blocking socket reads are not broken by the signal.
pub fn install_interrupt_handler() {
    // SAFETY: a zeroed sigaction is a valid starting point; the handler only touches an atomic or _exits.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_signal as *const () as usize;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaction(sig, &action, std::ptr::null_mut());
        }
    }
}

/// True once SIGINT/SIGTERM/SIGHUP arrived (after [`install_interrupt_handler`]).
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// `YYYYmmdd-HHMMSS` in local time.
pub fn local_timestamp(time: SystemTime) -> String {
    let secs = time.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0) as libc::time_t;
    // SAFETY: localtime_r writes into the zeroed struct we own.
    let tm = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&secs, &mut tm).is_null() {
            return format!("{secs}");
        }
        tm
    };
    format!(
        "{:04}{:02}{:02}-{:02}{:02}{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

/// How much memory a process may still use before the kernel or its cgroup would kill something.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct MemoryHeadroom {
    /// `MemAvailable` from `/proc/meminfo`.
    pub mem_available: Option<u64>,
    /// The tightest cgroup memory limit on the process's cgroup path, and that cgroup's current usage.
    pub cgroup_limit: Option<u64>,
    pub cgroup_usage: Option<u64>,
}

impl MemoryHeadroom {
    /// The smaller of `MemAvailable` and the cgroup's limit minus its usage.
    pub fn available(&self) -> Option<u64> {
        let cgroup = match (self.cgroup_limit, self.cgroup_usage) {
            (Some(limit), Some(usage)) => Some(limit.saturating_sub(usage)),
            (Some(limit), None) => Some(limit),
            _ => None,
        };
        match (self.mem_available, cgroup) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

fn read_u64(path: &str) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Reads `MemAvailable` and the cgroup (v2, else v1) limits of `pid` (or of leakscope itself).
pub fn memory_headroom(pid: Option<u32>) -> MemoryHeadroom {
    let mut out = MemoryHeadroom {
        mem_available: fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemAvailable:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
                .map(|kb| kb * 1024)
        }),
        ..MemoryHeadroom::default()
    };
    let cgroup_file = match pid {
        Some(pid) => format!("/proc/{pid}/cgroup"),
        None => "/proc/self/cgroup".into(),
    };
    let Ok(cgroups) = fs::read_to_string(cgroup_file) else { return out };
    for line in cgroups.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let (root, max_file, cur_file) = if controllers.is_empty() {
            ("/sys/fs/cgroup".to_string(), "memory.max", "memory.current")
        } else if controllers.split(',').any(|c| c == "memory") {
            ("/sys/fs/cgroup/memory".to_string(), "memory.limit_in_bytes", "memory.usage_in_bytes")
        } else {
            continue;
        };
        // Walk from the process's cgroup up to the root; the tightest headroom wins.
        let mut dir = format!("{root}{}", path.trim_end_matches('/'));
        loop {
            if let Some(limit) = read_u64(&format!("{dir}/{max_file}")).filter(|l| *l < 1 << 60) {
                let usage = read_u64(&format!("{dir}/{cur_file}"));
                let room = limit.saturating_sub(usage.unwrap_or(0));
                let best = out.cgroup_limit.map(|l| l.saturating_sub(out.cgroup_usage.unwrap_or(0)));
                if best.is_none_or(|b| room < b) {
                    out.cgroup_limit = Some(limit);
                    out.cgroup_usage = usage;
                }
            }
            if dir.len() <= root.len() {
                break;
            }
            match dir.rfind('/') {
                Some(pos) if pos >= root.len() => dir.truncate(pos),
                _ => break,
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_has_the_file_name_shape() {
        let stamp = local_timestamp(SystemTime::now());
        assert_eq!(stamp.len(), 15, "{stamp}");
        assert_eq!(&stamp[8..9], "-");
        assert!(stamp.chars().filter(|c| c.is_ascii_digit()).count() == 14);
    }

    #[test]
    fn headroom_is_known_on_linux() {
        let room = memory_headroom(None);
        assert!(room.mem_available.unwrap_or(0) > 0);
        assert!(room.available().unwrap_or(0) > 0);
    }
}
