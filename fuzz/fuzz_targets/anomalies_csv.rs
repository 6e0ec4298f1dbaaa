//! Any bytes as the input of `slo-agent anomalies`: the reader reports bad
//! rows by line, the detector never panics, and every score is in [0, 1].
#![no_main]

use libfuzzer_sys::fuzz_target;
use slo_agent::cli::anomalies::score_csv;
use slo_agent::forecast::anomaly::Detector;
use slo_agent::forecast::csv::Reader;

fuzz_target!(|data: &[u8]| {
    // The command's own loop, output discarded.
    let _ = score_csv(data, &mut std::io::sink());
    // The reader and detector directly, checking every score.
    let mut reader = Reader::new(data);
    let mut detector = Detector::new();
    while let Some(Ok(row)) = reader.next_row() {
        let s = detector.score(row.ts_ms, row.value);
        assert!((0.0..=1.0).contains(&s), "score {s}");
    }
    // Raw numbers straight into the detector, values and times from the bytes.
    let mut detector = Detector::new();
    for chunk in data.chunks_exact(16) {
        let t = i64::from_le_bytes(chunk[..8].try_into().unwrap());
        let v = f64::from_le_bytes(chunk[8..].try_into().unwrap());
        let s = detector.score(t, v);
        assert!((0.0..=1.0).contains(&s), "score {s}");
    }
});
