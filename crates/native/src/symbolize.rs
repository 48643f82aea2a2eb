//! Offline symbolization of raw return addresses: ELF symbol tables and DWARF (via `object` + `addr2line`,
//! including separate debug files under /usr/lib/debug/.build-id), and V8's `/tmp/perf-PID.map` for JIT code.

use crate::dump::{Dump, Module};

use object::{Object, ObjectSection, ObjectSegment, ObjectSymbol};
use serde::Serialize;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::rc::Rc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FrameKind {
    /// Named from an ELF symbol or DWARF.
    Native,
    /// Named from the V8 perf map (JavaScript or a V8 builtin/stub).
    Jit,
    /// Not named.
    Unknown,
}

/// One logical frame (inlined functions expand into several frames for one address).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Frame {
    pub address: u64,
    pub function: Option<String>,
    pub file: Option<String>,
    pub line: Option<u32>,
    pub module: Option<String>,
    pub kind: FrameKind,
    /// True for frames inlined into the next one.
    pub inlined: bool,
}

impl Frame {
    /// `function (file:line)`, `module+0xoff`, or the address.
    pub fn label(&self) -> String {
        match (&self.function, &self.file) {
            (Some(f), Some(file)) => match self.line {
                Some(l) => format!("{f} ({}:{l})", short_path(file)),
                None => format!("{f} ({})", short_path(file)),
            },
            (Some(f), None) => f.clone(),
            (None, _) => match &self.module {
                Some(m) => format!("{}+{:#x}", short_path(m), self.address),
                None => format!("{:#x}", self.address),
            },
        }
    }
}

impl Frame {
    /// A coarse name for matching stacks across dumps and runs: the function without line numbers and without
    /// V8's tier marker (`JS:*f` and `JS:~f` are the same function), else the module's file name, else `?`.
    pub fn key_name(&self) -> String {
        match (&self.function, &self.module) {
            (Some(f), _) => strip_tier(f),
            (None, Some(m)) => short_path(m).to_string(),
            (None, None) => "?".to_string(),
        }
    }
}

fn strip_tier(name: &str) -> String {
    match name.find(':') {
        Some(i) if name[i + 1..].starts_with(['*', '~', '^', '+']) && !name[..i].contains(' ') => {
            format!("{}{}", &name[..=i], &name[i + 2..])
        }
        _ => name.to_string(),
    }
}

fn short_path(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

type Reader = gimli::EndianRcSlice<gimli::RunTimeEndian>;

struct ModuleSyms {
    /// (file offset, file size, virtual address) of each loadable segment.
    segments: Vec<(u64, u64, u64)>,
    /// (address, size, demangled name), sorted by address.
    symbols: Vec<(u64, u64, String)>,
    dwarf: Option<addr2line::Context<Reader>>,
}

#[derive(Default)]
struct PerfMap {
    /// start → (end, name); later lines win.
    entries: BTreeMap<u64, (u64, String)>,
}

/// Caches parsed modules across dumps.
#[derive(Default)]
pub struct Symbolizer {
    modules: HashMap<String, Option<ModuleSyms>>,
    perf_maps: HashMap<u32, Option<PerfMap>>,
    /// Explicit perf map (overrides /tmp/perf-PID.map).
    perf_map_override: Option<PathBuf>,
    /// Use DWARF (file:line, inlining) when present.
    pub use_dwarf: bool,
}

impl Symbolizer {
    pub fn new() -> Self {
        Symbolizer { use_dwarf: true, ..Default::default() }
    }

    pub fn with_perf_map(mut self, path: Option<PathBuf>) -> Self {
        self.perf_map_override = path;
        self
    }

    /// Symbolizes every stack of `dump`: result[stack id] = frames, leaf first.
    pub fn symbolize_dump(&mut self, dump: &Dump) -> Vec<Vec<Frame>> {
        let mut cache: HashMap<u64, Vec<Frame>> = HashMap::new();
        let mut out = Vec::with_capacity(dump.stacks.len());
        for stack in &dump.stacks {
            let mut frames = Vec::new();
            for &addr in &stack.frames {
                if let std::collections::hash_map::Entry::Vacant(e) = cache.entry(addr) {
                    e.insert(self.symbolize_address(dump, addr));
                }
                frames.extend(cache[&addr].iter().cloned());
            }
            out.push(frames);
        }
        out
    }

    /// Frames for one return address (inlined callees first).
    pub fn symbolize_address(&mut self, dump: &Dump, addr: u64) -> Vec<Frame> {
        // A return address points after the call; look up the call instruction.
        let probe = addr.saturating_sub(1);
        if let Some(m) = dump.modules.iter().find(|m| probe >= m.start && probe < m.end) {
            if m.path.starts_with('/') {
                return self.symbolize_in_module(m, addr, probe);
            }
        }
        if let Some(name) = self.perf_lookup(dump.header.pid, probe) {
            return vec![Frame {
                address: addr,
                function: Some(name),
                file: None,
                line: None,
                module: None,
                kind: FrameKind::Jit,
                inlined: false,
            }];
        }
        vec![Frame {
            address: addr,
            function: None,
            file: None,
            line: None,
            module: None,
            kind: FrameKind::Unknown,
            inlined: false,
        }]
    }

    fn symbolize_in_module(&mut self, m: &Module, addr: u64, probe: u64) -> Vec<Frame> {
        let unknown = |address: u64| Frame {
            address,
            function: None,
            file: None,
            line: None,
            module: Some(m.path.clone()),
            kind: FrameKind::Unknown,
            inlined: false,
        };
        let use_dwarf = self.use_dwarf;
        let syms = self.modules.entry(m.path.clone()).or_insert_with(|| load_module(Path::new(&m.path), use_dwarf));
        let Some(syms) = syms else { return vec![unknown(addr - m.start + m.offset)] };
        let file_off = probe - m.start + m.offset;
        let Some(vaddr) = syms
            .segments
            .iter()
            .find(|(off, size, _)| file_off >= *off && file_off < off + size)
            .map(|(off, _, va)| file_off - off + va)
        else {
            return vec![unknown(file_off)];
        };
        let mut frames = Vec::new();
        if let Some(ctx) = &syms.dwarf {
            if let Ok(mut iter) = ctx.find_frames(vaddr).skip_all_loads() {
                while let Ok(Some(f)) = iter.next() {
                    let function = f.function.as_ref().and_then(|n| n.demangle().ok().map(|c| c.into_owned()));
                    let (file, line) = match &f.location {
                        Some(loc) => (loc.file.map(|s| s.to_string()), loc.line),
                        None => (None, None),
                    };
                    frames.push(Frame {
                        address: addr,
                        function,
                        file,
                        line,
                        module: Some(m.path.clone()),
                        kind: FrameKind::Native,
                        inlined: true,
                    });
                }
            }
        }
        let symbol = lookup_symbol(&syms.symbols, vaddr);
        if let Some(last) = frames.last_mut() {
            last.inlined = false;
            if last.function.is_none() {
                last.function = symbol.map(str::to_string);
            }
        }
        if frames.iter().all(|f| f.function.is_none()) {
            frames.clear();
        }
        if frames.is_empty() {
            match symbol {
                Some(name) => frames.push(Frame {
                    address: addr,
                    function: Some(name.to_string()),
                    file: None,
                    line: None,
                    module: Some(m.path.clone()),
                    kind: FrameKind::Native,
                    inlined: false,
                }),
                None => frames.push(unknown(file_off)),
            }
        }
        frames
    }

    fn perf_lookup(&mut self, pid: u32, probe: u64) -> Option<String> {
        let override_path = self.perf_map_override.clone();
        let map = self.perf_maps.entry(pid).or_insert_with(|| {
            let path = override_path.unwrap_or_else(|| PathBuf::from(format!("/tmp/perf-{pid}.map")));
            load_perf_map(&path)
        });
        let map = map.as_ref()?;
        let (_, (end, name)) = map.entries.range(..=probe).next_back()?;
        (probe < *end).then(|| name.clone())
    }
}

fn lookup_symbol(symbols: &[(u64, u64, String)], vaddr: u64) -> Option<&str> {
    let i = symbols.partition_point(|(a, _, _)| *a <= vaddr);
    let (a, size, name) = symbols.get(i.checked_sub(1)?)?;
    // Unsized symbols (size 0) are accepted within 64 KiB.
    let limit = if *size == 0 { 64 * 1024 } else { *size };
    (vaddr - a < limit).then_some(name.as_str())
}

fn load_perf_map(path: &Path) -> Option<PerfMap> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut map = PerfMap::default();
    for line in text.lines() {
        let mut parts = line.splitn(3, ' ');
        let (Some(start), Some(size), Some(name)) = (parts.next(), parts.next(), parts.next()) else { continue };
        let (Ok(start), Ok(size)) = (
            u64::from_str_radix(start.trim_start_matches("0x"), 16),
            u64::from_str_radix(size.trim_start_matches("0x"), 16),
        ) else {
            continue;
        };
        map.entries.insert(start, (start.saturating_add(size), name.to_string()));
    }
    Some(map)
}

fn load_module(path: &Path, use_dwarf: bool) -> Option<ModuleSyms> {
    let data = std::fs::read(path).ok()?;
    let obj = object::File::parse(&*data).ok()?;
    let segments: Vec<(u64, u64, u64)> = obj
        .segments()
        .map(|s| {
            let (off, size) = s.file_range();
            (off, size, s.address())
        })
        .collect();
    let mut symbols: Vec<(u64, u64, String)> = obj
        .symbols()
        .chain(obj.dynamic_symbols())
        .filter(|s| s.kind() == object::SymbolKind::Text && s.address() != 0)
        .filter_map(|s| {
            let name = s.name().ok()?;
            Some((s.address(), s.size(), addr2line::demangle_auto(Cow::Borrowed(name), None).into_owned()))
        })
        .collect();
    symbols.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    symbols.dedup_by_key(|s| s.0);
    let dwarf = if use_dwarf {
        let debug_file = obj.build_id().ok().flatten().and_then(|id| {
            if id.len() < 2 {
                return None;
            }
            let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
            let p = PathBuf::from(format!("/usr/lib/debug/.build-id/{}/{}.debug", &hex[..2], &hex[2..]));
            std::fs::read(p).ok()
        });
        match &debug_file {
            Some(bytes) => object::File::parse(&**bytes).ok().and_then(|o| load_dwarf(&o)),
            None => load_dwarf(&obj),
        }
    } else {
        None
    };
    Some(ModuleSyms { segments, symbols, dwarf })
}

fn load_dwarf(obj: &object::File<'_>) -> Option<addr2line::Context<Reader>> {
    obj.section_by_name(".debug_info")?;
    let endian = if obj.is_little_endian() { gimli::RunTimeEndian::Little } else { gimli::RunTimeEndian::Big };
    let load = |id: gimli::SectionId| -> Result<Reader, gimli::Error> {
        let data =
            obj.section_by_name(id.name()).and_then(|s| s.uncompressed_data().ok()).unwrap_or(Cow::Borrowed(&[][..]));
        Ok(gimli::EndianRcSlice::new(Rc::from(&*data), endian))
    };
    let dwarf = gimli::Dwarf::load(load).ok()?;
    addr2line::Context::from_dwarf(dwarf).ok()
}
