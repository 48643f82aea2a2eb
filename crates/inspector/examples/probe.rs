//! Measures what polling costs the target: `probe PID MODE SECONDS` polls once a second with one kind of
//! call (idle, mem, heap, space) and prints the target's RSS before and after.
use leakscope_inspector::{procfs::ProcInfo, AttachOptions, Session, Target};
use std::time::{Duration, Instant};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (pid, mode, secs): (u32, &str, u64) = (args[1].parse()?, &args[2], args[3].parse()?);
    let mut s = Session::attach(&Target::Pid(pid), &AttachOptions::default())?;
    let rss = || ProcInfo::read(pid).map(|p| p.rss_bytes / 1_000_000).unwrap_or(0);
    println!("{mode}: rss before {} MB", rss());
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(secs) {
        match mode {
            "mem" => drop(s.memory_usage()?),
            "heap" => drop(s.heap_usage()?),
            "space" => drop(s.heap_space_statistics()?),
            _ => {}
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    println!("{mode}: rss after {} MB", rss());
    s.close()?;
    std::thread::sleep(Duration::from_secs(5));
    println!("{mode}: rss 5 s after detach {} MB", rss());
    Ok(())
}
