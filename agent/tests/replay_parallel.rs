//! `slo-agent replay --threads N`: whatever the thread count and however
//! the files are cut into parts, the JSON output is byte for byte the one of
//! `--threads 1` (the sequential reading of every file, whole, in order).
//!
//! The inputs are the demo generator's logs over two weeks: CloudFront logs
//! concatenated from several days, the second day under a second `#Fields`
//! header with its columns in another order, malformed lines at known
//! places; API Gateway JSON, Lambda REPORT lines, NDJSON, and a gzipped
//! CloudFront log. `--min-part-bytes` cuts these few-MB files into many parts.

use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_slo-agent"))
}

fn generate(format: &str, date: &str, lines: u64) -> Vec<u8> {
    let out = bin()
        .args(["generate", "--format", format, "--lines", &lines.to_string(), "--date", date])
        .output()
        .expect("running slo-agent generate");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// A CloudFront log's request lines with their columns reordered, under a
/// `#Fields` header naming them in that order.
fn reorder_cloudfront(log: &[u8]) -> Vec<u8> {
    let text = std::str::from_utf8(log).unwrap();
    let names: Vec<&str> =
        text.lines().find_map(|l| l.strip_prefix("#Fields: ")).expect("a #Fields line").split(' ').collect();
    // Reversed, so every column moves.
    let order: Vec<usize> = (0..names.len()).rev().collect();
    let mut out = String::from("#Version: 1.0\n#Fields: ");
    out += &order.iter().map(|&i| names[i]).collect::<Vec<_>>().join(" ");
    out.push('\n');
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let cols: Vec<&str> = line.split('\t').collect();
        out += &order.iter().map(|&i| cols[i]).collect::<Vec<_>>().join("\t");
        out.push('\n');
    }
    out.into_bytes()
}

/// Insert `junk` lines before the given (0-based) line indexes.
fn with_junk(log: &[u8], at: &[usize], junk: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(log.len() + at.len() * 64);
    for (i, line) in log.split_inclusive(|&b| b == b'\n').enumerate() {
        if at.contains(&i) {
            out.extend_from_slice(format!("{junk} {i}\n").as_bytes());
        }
        out.extend_from_slice(line);
    }
    out
}

fn write_inputs(dir: &Path) -> (PathBuf, Vec<PathBuf>) {
    let mut specs =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/bench/specs-10.yaml")).unwrap();
    let gw = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/bench/specs-apigw-lambda.yaml"))
        .unwrap()
        .replace("name: bench-", "name: gw-");
    specs.push_str("\n---\n");
    specs.push_str(&gw);
    specs.push_str(
        "\n---\napiVersion: slo-agent/v1\nkind: SLO\nmetadata: {name: nd}\nspec:\n  service: nd\n  objective: 99\n  window: 7d\n  indicator:\n    source: ndjson\n    good: {status: \"< 500\", latency: \"<= 100ms\"}\n",
    );
    let spec_path = dir.join("specs.yaml");
    std::fs::write(&spec_path, specs).unwrap();

    let mut files = Vec::new();
    let mut put = |name: &str, bytes: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        files.push(p);
    };
    // Several days of CloudFront logs in one file; the second part under a
    // header with the columns reversed, then the first layout again.
    let mut cf = with_junk(&generate("cloudfront", "2026-11-20", 12_000), &[3, 7_000, 7_001], "not\ta\tlog\tline");
    cf.extend(reorder_cloudfront(&generate("cloudfront", "2026-11-24", 12_000)));
    cf.extend(with_junk(&generate("cloudfront", "2026-11-28", 6_000), &[4_000], "#Remark: not a header"));
    put("cf.log", &cf);
    put("apigw.log", &with_junk(&generate("apigateway", "2026-11-26", 20_000), &[1, 9_999, 19_000], "{\"broken"));
    put("lambda.log", &with_junk(&generate("lambda", "2026-11-27", 8_000), &[100], "REPORT garbage"));
    let mut nd = String::new();
    for i in 0..30_000i64 {
        let ts = 1_795_132_800_000 + i * 40_000; // from 2026-11-20, every 40 s
        let status = if i % 97 == 0 { 503 } else { 200 };
        nd += &format!(
            "{{\"ts\": {ts}, \"service\": \"nd\", \"path\": \"/p/{}\", \"status\": {status}, \"latency_ms\": {}}}\n",
            i % 13,
            i % 150
        );
        if i % 7_919 == 5 {
            nd += "{\"ts\": \"yesterday\", \"status\": 200}\n";
        }
    }
    put("events.ndjson", nd.as_bytes());
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &generate("cloudfront", "2026-12-01", 8_000)).unwrap();
    put("cf-late.log.gz", &gz.finish().unwrap());
    (spec_path, files)
}

fn replay(specs: &Path, files: &[PathBuf], extra: &[&str]) -> String {
    let out = bin()
        .arg("replay")
        .arg("--specs")
        .arg(specs)
        .args(["--output", "json", "--min-part-bytes", "65536", "--service", "shop-api"])
        .args(extra)
        .args(files)
        .output()
        .expect("running slo-agent replay");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn every_thread_count_gives_the_report_of_one_thread() {
    let dir = tempfile::tempdir().unwrap();
    let (specs, files) = write_inputs(dir.path());
    for at in [None, Some("2026-11-27T06:00:00Z")] {
        let at_args: Vec<&str> = at.map(|a| vec!["--at", a]).unwrap_or_default();
        let one = replay(&specs, &files, &[&at_args[..], &["--threads", "1"]].concat());
        let report: serde_json::Value = serde_json::from_str(&one).unwrap();
        // The inputs were read as meant: every SLO counted (as of a time all
        // their windows reach), the junk rejected at its absolute line numbers.
        let counted = |s: &serde_json::Value| s["events"]["total"].as_u64() > Some(0);
        assert!(at.is_none() || report["slos"].as_array().unwrap().iter().all(counted), "{one}");
        let samples = report["rejects"].to_string();
        assert_eq!(report["rejects"]["bad_json"]["count"], 3, "{samples}");
        let cf = files[0].display().to_string();
        for place in [format!("{cf}:4"), format!("{cf}:7002"), format!("{cf}:7004")] {
            assert!(samples.contains(&format!("\"{place}\"")), "{place} in {samples}");
        }
        let gw = files[1].display().to_string();
        assert!(samples.contains(&format!("\"{gw}:2\"")), "{samples}");
        assert!(samples.contains(&format!("\"{gw}:10001\"")), "{samples}");
        assert!(samples.contains(&format!("\"{gw}:19003\"")), "{samples}");
        if at.is_some() {
            assert!(report["events_after_at"].as_u64() > Some(0), "{one}");
        }
        for threads in ["2", "3", "7"] {
            let many = replay(&specs, &files, &[&at_args[..], &["--threads", threads]].concat());
            assert!(one == many, "--threads {threads} differs from --threads 1:\n{}", first_difference(&one, &many));
        }
    }
}

fn first_difference(a: &str, b: &str) -> String {
    match a.lines().zip(b.lines()).enumerate().find(|(_, (x, y))| x != y) {
        Some((i, (x, y))) => format!("line {}: {x:?} vs {y:?}", i + 1),
        None => format!("lengths {} vs {}", a.len(), b.len()),
    }
}
