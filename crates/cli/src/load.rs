//! Opening snapshot files: plain or gzip (detected by magic bytes), read ahead on a second thread, with a
//! progress bar on stderr for big files.

use crate::output::Exit;
use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use leakscope_heap::{Analysis, AnalysisOptions, HeapSnapshot};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

const CHUNK: usize = 4 << 20;
/// Files smaller than this load too fast for a progress bar to help.
const PROGRESS_MIN_BYTES: u64 = 32 << 20;

pub fn progress_bar(total: u64, quiet: bool) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr_with_hz(8));
    if quiet || total < PROGRESS_MIN_BYTES || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template("{msg:>10} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar
}

/// Reads and parses a snapshot. Errors name the file and say where in it the problem is (exit code 2).
pub fn load_snapshot(path: &Path, quiet: bool) -> anyhow::Result<HeapSnapshot> {
    let mut file = File::open(path).map_err(|e| Exit {
        code: 2,
        message: format!("cannot open {}: {e}", path.display()),
        hint: None,
    })?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut magic = [0u8; 2];
    let gzipped = file.read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b];
    drop(file);
    let bar = progress_bar(size, quiet);
    bar.set_message(if gzipped { "gunzip" } else { "reading" });
    let result = if !gzipped {
        // Plain text is mapped and parsed in place (no copy of every byte into a buffer, no read calls between
        // the scanner's steps), or read by the parser itself where it cannot be mapped.
        match File::open(path) {
            Ok(file) => match parse_mapped(&file, &bar) {
                Some(parsed) => parsed,
                None => leakscope_heap::parse(Counting { inner: file, bar: bar.clone() }),
            },
            Err(e) => Err(leakscope_heap::ParseError::Io { offset: 0, source: e }),
        }
    } else {
        let bar = bar.clone();
        let path = path.to_owned();
        let (sender, receiver) = mpsc::sync_channel::<std::io::Result<Vec<u8>>>(4);
        // Consumed chunks go back to the reader thread, so the same few buffers are reused (no page faults).
        let (recycle, recycled) = mpsc::channel::<Vec<u8>>();
        // Reading (and gunzipping) runs on its own thread so the parser keeps the other core busy.
        let reader_thread = std::thread::spawn(move || {
            let opened = File::open(&path).map(|f| Counting { inner: f, bar });
            let mut source: Box<dyn Read> = match opened {
                Ok(counting) if gzipped => {
                    Box::new(flate2::read::MultiGzDecoder::new(BufReader::with_capacity(CHUNK, counting)))
                }
                Ok(counting) => Box::new(counting),
                Err(e) => {
                    let _ = sender.send(Err(e));
                    return;
                }
            };
            loop {
                let mut chunk = recycled.try_recv().unwrap_or_else(|_| vec![0u8; CHUNK]);
                chunk.resize(CHUNK, 0);
                let mut filled = 0;
                let outcome = loop {
                    match source.read(&mut chunk[filled..]) {
                        Ok(0) => break Ok(()),
                        Ok(n) => {
                            filled += n;
                            if filled == chunk.len() {
                                break Ok(());
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(e) => break Err(e),
                    }
                };
                chunk.truncate(filled);
                let last = filled == 0;
                let message = outcome.map(|_| chunk);
                let failed = message.is_err();
                if sender.send(message).is_err() || failed || last {
                    return;
                }
            }
        });
        let parsed = leakscope_heap::parse(ChannelReader { receiver, recycle, current: Vec::new(), pos: 0 });
        let _ = reader_thread.join();
        parsed
    };
    bar.finish_and_clear();
    result.map_err(|e| {
        let hint = match &e {
            leakscope_heap::ParseError::Truncated { .. } => {
                Some("the snapshot was probably cut short while being written; take it again".to_string())
            }
            leakscope_heap::ParseError::NotASnapshot(_) => {
                Some("leakscope reads .heapsnapshot files written by V8 (Node, Chrome, DevTools)".to_string())
            }
            _ => None,
        };
        anyhow::Error::new(Exit { code: 2, message: format!("{}: {e}", path.display()), hint })
    })
}

/// Parses a mapped file in place; `None` when it cannot be mapped. The pages read are given back as the parse
/// goes, so they never pile up in the resident set (the page cache keeps them), on a thread of their own (unmapping
/// a window's pages takes ~0.8 ms per 16 MiB, which the parse need not wait for).
fn parse_mapped(file: &File, bar: &ProgressBar) -> Option<Result<HeapSnapshot, leakscope_heap::ParseError>> {
    // SAFETY: the map is only read. Were the file truncated while it is read, reading the lost pages would stop the
    // process with SIGBUS — the risk every reader of mapped files takes (ripgrep's default for large files too);
    // snapshots that leakscope writes are complete before they get their name.
    let map = unsafe { memmap2::Mmap::map(file) }.ok()?;
    let _ = map.advise(memmap2::Advice::Sequential);
    let parsed = leakscope_heap::parse_in_place_giving_back(&map, 4096, &|range| {
        // SAFETY: the parser reads nothing before the range's end again — and if it did, a dropped page of a
        // read-only file mapping is read back from the file, so nothing could change under it.
        let _ = unsafe { map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, range.start, range.len()) };
        bar.set_position(range.end as u64);
    });
    Some(parsed)
}

/// Runs the analysis with a spinner naming the phase.
pub fn analyse(snapshot: &HeapSnapshot, options: &AnalysisOptions, quiet: bool) -> Analysis {
    let spinner = ProgressBar::new_spinner();
    if quiet || snapshot.node_count() < 1_000_000 || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        spinner.set_draw_target(ProgressDrawTarget::hidden());
    } else {
        spinner.enable_steady_tick(Duration::from_millis(120));
    }
    let analysis = Analysis::new(snapshot, options, &mut |phase| spinner.set_message(phase.to_string()));
    spinner.finish_and_clear();
    analysis
}

/// Loads and analyses in one go.
pub fn open(path: &Path, raw_sizes: bool, quiet: bool) -> anyhow::Result<(HeapSnapshot, Analysis)> {
    let snapshot = load_snapshot(path, quiet).with_context(|| "loading the snapshot")?;
    let options = AnalysisOptions { raw_sizes, parallel: true, ..Default::default() };
    let analysis = analyse(&snapshot, &options, quiet);
    Ok((snapshot, analysis))
}

struct Counting {
    inner: File,
    bar: ProgressBar,
}

impl Read for Counting {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

struct ChannelReader {
    receiver: mpsc::Receiver<std::io::Result<Vec<u8>>>,
    recycle: mpsc::Sender<Vec<u8>>,
    current: Vec<u8>,
    pos: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.current.len() {
            match self.receiver.recv() {
                Ok(Ok(chunk)) if chunk.is_empty() => return Ok(0),
                Ok(Ok(chunk)) => {
                    let done = std::mem::replace(&mut self.current, chunk);
                    if done.capacity() > 0 {
                        let _ = self.recycle.send(done);
                    }
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
