//! Any byte string: the parser returns a snapshot or an error, never panics; a snapshot it accepts can be
//! analysed without panicking either.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(snapshot) = leakscope_heap::parse_bytes(data) {
        let options = leakscope_heap::AnalysisOptions::default();
        let analysis = leakscope_heap::Analysis::new(&snapshot, &options, &mut |_| {});
        let _ = analysis.summary(&snapshot);
        let _ = analysis.statistics(&snapshot);
    }
});
