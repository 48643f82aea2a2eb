//! Linux `/proc` helpers: is a pid a node process, which TCP ports does it listen on, who holds a port,
//! and the process list behind `leakscope ps`.

use crate::error::{Error, Result};
use std::collections::HashSet;
use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

/// Node's default inspector port (`process.debugPort`).
pub const DEFAULT_INSPECTOR_PORT: u16 = 9229;

/// A listening TCP socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Listener {
    pub addr: IpAddr,
    pub port: u16,
    pub inode: u64,
}

impl Listener {
    /// The address to connect to: the loopback address of the socket's family when it listens on
    /// "any" (0.0.0.0 / ::), else the address itself.
    pub fn connect_addr(&self) -> SocketAddr {
        let ip = match self.addr {
            IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            other => other,
        };
        SocketAddr::new(ip, self.port)
    }
}

/// What `/proc` says about one process.
#[derive(Debug, Clone)]
pub struct ProcInfo {
    pub pid: u32,
    pub uid: u32,
    pub comm: String,
    pub exe: Option<String>,
    pub cmdline: Vec<String>,
    pub rss_bytes: u64,
    pub uptime: Option<Duration>,
    pub state: char,
}

impl ProcInfo {
    /// Reads `/proc/PID`. `NoSuchProcess` if it does not exist.
    pub fn read(pid: u32) -> Result<ProcInfo> {
        let dir = format!("/proc/{pid}");
        let status = fs::read_to_string(format!("{dir}/status")).map_err(|e| map_proc_err(pid, e))?;
        let field = |name: &str| {
            status.lines().find_map(|l| l.strip_prefix(name)).map(|v| v.trim().to_string()).unwrap_or_default()
        };
        let uid = field("Uid:").split_whitespace().next().and_then(|v| v.parse().ok()).unwrap_or(u32::MAX);
        let rss_kb: u64 = field("VmRSS:").split_whitespace().next().and_then(|v| v.parse().ok()).unwrap_or(0);
        let comm = field("Name:");
        let state = field("State:").chars().next().unwrap_or('?');
        let exe = fs::read_link(format!("{dir}/exe")).ok().map(|p| p.to_string_lossy().into_owned());
        let cmdline = fs::read(format!("{dir}/cmdline"))
            .map(|raw| {
                raw.split(|b| *b == 0)
                    .filter(|s| !s.is_empty())
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect()
            })
            .unwrap_or_default();
        Ok(ProcInfo { pid, uid, comm, exe, cmdline, rss_bytes: rss_kb * 1024, uptime: uptime_of(pid), state })
    }

    /// Node if the executable, the thread name or argv[0] is `node`/`nodejs` (also `node20` and the like).
    pub fn is_node(&self) -> bool {
        let base = |s: &str| {
            let name = s.trim_end_matches(" (deleted)");
            Path::new(name).file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default()
        };
        let looks = |name: &str| {
            name == "node"
                || name == "nodejs"
                || (name.starts_with("node") && name[4..].chars().all(|c| c.is_ascii_digit() || c == '.'))
        };
        self.exe.as_deref().map(base).is_some_and(|b| looks(&b))
            || looks(&self.comm)
            || self.cmdline.first().map(|a| base(a)).is_some_and(|b| looks(&b))
    }

    /// Node's own options: the command-line flags before the script, plus `NODE_OPTIONS` from the
    /// process's environment (when readable).
    pub fn node_flags(&self) -> Vec<String> {
        let mut flags: Vec<String> = self.cmdline.iter().skip(1).take_while(|a| a.starts_with('-')).cloned().collect();
        if let Ok(env) = fs::read(format!("/proc/{}/environ", self.pid)) {
            for var in env.split(|b| *b == 0) {
                if let Some(value) = var.strip_prefix(b"NODE_OPTIONS=") {
                    flags.extend(String::from_utf8_lossy(value).split_whitespace().map(str::to_string));
                }
            }
        }
        flags
    }

    /// The script name (`app` for `node --foo /srv/app.js`), for file names.
    pub fn script_name(&self) -> Option<String> {
        let script = self.cmdline.iter().skip(1).find(|a| !a.starts_with('-'))?;
        let stem = Path::new(script).file_stem()?.to_string_lossy().into_owned();
        Some(stem)
    }

    /// A command line for display.
    pub fn command(&self) -> String {
        if self.cmdline.is_empty() {
            format!("[{}]", self.comm)
        } else {
            self.cmdline.join(" ")
        }
    }
}

fn map_proc_err(pid: u32, err: std::io::Error) -> Error {
    match err.kind() {
        std::io::ErrorKind::NotFound => Error::NoSuchProcess { pid },
        std::io::ErrorKind::PermissionDenied => {
            Error::PermissionDenied { pid, detail: format!("cannot read /proc/{pid}: {err}") }
        }
        _ => Error::Io(err),
    }
}

fn uptime_of(pid: u32) -> Option<Duration> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    let start_ticks: f64 = after.split_whitespace().nth(19)?.parse().ok()?;
    let system_up: f64 = fs::read_to_string("/proc/uptime").ok()?.split_whitespace().next()?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks <= 0 {
        return None;
    }
    let up = system_up - start_ticks / ticks as f64;
    (up >= 0.0).then(|| Duration::from_secs_f64(up))
}

/// True while `pid` exists and is not a zombie.
pub fn is_alive(pid: u32) -> bool {
    match ProcInfo::read(pid) {
        Ok(info) => info.state != 'Z' && info.state != 'X',
        Err(Error::PermissionDenied { .. }) => true,
        Err(_) => false,
    }
}

/// Sends `signal` to `pid`, mapping errno to typed errors.
pub fn send_signal(pid: u32, signal: i32) -> Result<()> {
    let target = i32::try_from(pid).map_err(|_| Error::NoSuchProcess { pid })?;
    // SAFETY: kill has no memory-safety preconditions.
    if unsafe { libc::kill(target, signal) } == 0 {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    Err(match err.raw_os_error() {
        Some(libc::ESRCH) => Error::ProcessGone { pid },
        Some(libc::EPERM) => Error::PermissionDenied {
            pid,
            detail: "not allowed to signal it (run leakscope as the same user as the process)".into(),
        },
        _ => Error::Io(err),
    })
}

/// The effective uid of leakscope itself.
pub fn current_euid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

/// Whether the process has a handler for `signal` (from `SigCgt` in `/proc/PID/status`).
pub fn catches_signal(pid: u32, signal: i32) -> Option<bool> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let mask = status.lines().find_map(|l| l.strip_prefix("SigCgt:"))?.trim();
    let bits = u64::from_str_radix(mask, 16).ok()?;
    Some(bits & (1u64 << (signal - 1)) != 0)
}

/// Socket inodes open in `pid`.
fn socket_inodes(pid: u32) -> Result<HashSet<u64>> {
    let dir = fs::read_dir(format!("/proc/{pid}/fd")).map_err(|e| map_proc_err(pid, e))?;
    let mut inodes = HashSet::new();
    for entry in dir.flatten() {
        if let Ok(link) = fs::read_link(entry.path()) {
            let link = link.to_string_lossy();
            if let Some(num) = link.strip_prefix("socket:[").and_then(|s| s.strip_suffix(']')) {
                if let Ok(inode) = num.parse() {
                    inodes.insert(inode);
                }
            }
        }
    }
    Ok(inodes)
}

/// Parses a `/proc/net/tcp{,6}` table and returns its LISTEN sockets.
pub fn parse_listeners(table: &str) -> Vec<Listener> {
    let mut out = Vec::new();
    for line in table.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 10 || fields[3] != "0A" {
            continue;
        }
        let Some((addr_hex, port_hex)) = fields[1].split_once(':') else { continue };
        let (Ok(port), Ok(inode)) = (u16::from_str_radix(port_hex, 16), fields[9].parse::<u64>()) else {
            continue;
        };
        if let Some(addr) = parse_hex_addr(addr_hex) {
            out.push(Listener { addr, port, inode });
        }
    }
    out
}

fn parse_hex_addr(hex: &str) -> Option<IpAddr> {
    let word = |s: &str| u32::from_str_radix(s, 16).ok().map(|w| w.to_le_bytes());
    match hex.len() {
        8 => Some(IpAddr::V4(Ipv4Addr::from(word(hex)?))),
        32 => {
            let mut bytes = [0u8; 16];
            for i in 0..4 {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&word(&hex[i * 8..i * 8 + 8])?);
            }
            Some(IpAddr::V6(Ipv6Addr::from(bytes)))
        }
        _ => None,
    }
}

fn read_tables(prefix: &str) -> Vec<Listener> {
    let mut all = Vec::new();
    for name in ["tcp", "tcp6"] {
        if let Ok(text) = fs::read_to_string(format!("{prefix}/{name}")) {
            all.extend(parse_listeners(&text));
        }
    }
    all
}

/// TCP sockets `pid` is listening on (in its own network namespace).
pub fn listening_sockets(pid: u32) -> Result<Vec<Listener>> {
    let inodes = socket_inodes(pid)?;
    let mut seen = HashSet::new();
    Ok(read_tables(&format!("/proc/{pid}/net"))
        .into_iter()
        .filter(|l| inodes.contains(&l.inode) && seen.insert(l.port))
        .collect())
}

/// Processes holding a LISTEN socket on `port` in the network namespace of `netns_pid` (leakscope's own
/// when `None`). Socket inodes are global, so the holders are found even across namespaces.
pub fn port_holders(port: u16, netns_pid: Option<u32>) -> Vec<u32> {
    let inodes: HashSet<u64> =
        read_tables(&net_dir(netns_pid)).into_iter().filter(|l| l.port == port).map(|l| l.inode).collect();
    if inodes.is_empty() {
        return Vec::new();
    }
    let mut pids = Vec::new();
    for pid in all_pids() {
        if socket_inodes(pid).map(|s| !s.is_disjoint(&inodes)).unwrap_or(false) {
            pids.push(pid);
        }
    }
    pids
}

/// True if anything listens on `port` in the network namespace of `netns_pid` (ours when `None`).
pub fn port_in_use(port: u16, netns_pid: Option<u32>) -> bool {
    read_tables(&net_dir(netns_pid)).iter().any(|l| l.port == port)
}

fn net_dir(netns_pid: Option<u32>) -> String {
    match netns_pid {
        Some(pid) => format!("/proc/{pid}/net"),
        None => "/proc/net".to_string(),
    }
}

/// All numeric entries of `/proc`.
pub fn all_pids() -> Vec<u32> {
    let mut pids: Vec<u32> = fs::read_dir("/proc")
        .map(|d| d.flatten().filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok())).collect())
        .unwrap_or_default();
    pids.sort_unstable();
    pids
}

/// The inspector port Node would open on SIGUSR1 according to its flags (`--inspect-port`, `--inspect=`,
/// `--inspect-brk=`, `--debug-port`); `Some(0)` means "random"; default 9229.
pub fn inspector_port_from_flags(flags: &[String]) -> u16 {
    let mut port = DEFAULT_INSPECTOR_PORT;
    let mut iter = flags.iter().peekable();
    while let Some(flag) = iter.next() {
        let (name, value) = match flag.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (flag.as_str(), None),
        };
        let takes_separate = matches!(name, "--inspect-port" | "--debug-port");
        let value = match value {
            Some(v) => v,
            None if takes_separate => match iter.next() {
                Some(v) => v.clone(),
                None => continue,
            },
            None => continue,
        };
        if matches!(name, "--inspect" | "--inspect-brk" | "--inspect-wait" | "--inspect-port" | "--debug-port") {
            if let Some(p) = parse_port_spec(&value) {
                port = p;
            }
        }
    }
    port
}

/// `9230`, `127.0.0.1:9230`, `[::1]:9230` → port; a bare host → None.
fn parse_port_spec(spec: &str) -> Option<u16> {
    if let Ok(port) = spec.parse() {
        return Some(port);
    }
    let (_, port) = spec.rsplit_once(':')?;
    port.parse().ok()
}

/// One row of `leakscope ps`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NodeProcess {
    pub pid: u32,
    pub uid: u32,
    pub user: String,
    pub uptime_secs: Option<u64>,
    pub rss_bytes: u64,
    pub command: String,
    /// Port of an inspector found listening (confirmed with `/json/version`).
    pub inspector_port: Option<u16>,
    /// Every TCP port the process listens on.
    pub listening: Vec<u16>,
}

/// Which listening ports `ps` may probe with `GET /json/version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// Only the port the flags say the inspector uses (9229 by default), or all when the flags ask for a
    /// random inspector port. Probing sends an HTTP request, which an app's own server would serve.
    Likely,
    /// Every listening port.
    All,
    /// None: report listening ports only.
    None,
}

/// Node processes on this machine, sorted by pid.
pub fn node_processes(probe: Probe) -> Vec<NodeProcess> {
    let users = user_names();
    let me = std::process::id();
    let mut out = Vec::new();
    for pid in all_pids() {
        if pid == me {
            continue;
        }
        let Ok(info) = ProcInfo::read(pid) else { continue };
        if !info.is_node() || info.state == 'Z' {
            continue;
        }
        let listeners = listening_sockets(pid).unwrap_or_default();
        let likely = inspector_port_from_flags(&info.node_flags());
        let inspector_port = listeners
            .iter()
            .filter(|l| match probe {
                Probe::All => true,
                Probe::Likely => likely == 0 || l.port == likely,
                Probe::None => false,
            })
            .find(|l| crate::http::json_version(l.connect_addr(), Duration::from_millis(300)).is_ok())
            .map(|l| l.port);
        out.push(NodeProcess {
            pid,
            uid: info.uid,
            user: users.get(&info.uid).cloned().unwrap_or_else(|| info.uid.to_string()),
            uptime_secs: info.uptime.map(|d| d.as_secs()),
            rss_bytes: info.rss_bytes,
            command: info.command(),
            inspector_port,
            listening: listeners.iter().map(|l| l.port).collect(),
        });
    }
    out
}

fn user_names() -> std::collections::HashMap<u32, String> {
    fs::read_to_string("/etc/passwd")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut parts = l.split(':');
            let name = parts.next()?;
            let uid = parts.nth(1)?.parse().ok()?;
            Some((uid, name.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_net_tcp() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:2405 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0 100 0 0 10 0\n   1: 0100007F:2405 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 4343 1\n";
        let l = parse_listeners(table);
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].port, 9221);
        assert_eq!(l[0].addr, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(l[0].inode, 4242);
        let v6 = "h\n 0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 0:0 0:0 0 0 0 77 1\n";
        let l = parse_listeners(v6);
        assert_eq!(l[0].addr, IpAddr::V6(Ipv6Addr::LOCALHOST));
        assert_eq!(l[0].port, 8080);
    }

    #[test]
    fn finds_inspector_port_in_flags() {
        let f = |v: &[&str]| inspector_port_from_flags(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(f(&[]), 9229);
        assert_eq!(f(&["--inspect-port=9333"]), 9333);
        assert_eq!(f(&["--inspect-port", "127.0.0.1:9334"]), 9334);
        assert_eq!(f(&["--inspect=0"]), 0);
        assert_eq!(f(&["--inspect=127.0.0.1"]), 9229);
        assert_eq!(f(&["--max-old-space-size=100", "--inspect-brk=[::1]:9500"]), 9500);
    }
}
