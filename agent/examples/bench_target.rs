//! A benchmark target for `tests/bench/probes.py`: an HTTP/1.1 server on
//! 127.0.0.1 that holds each request a known time before its response head,
//! with nothing between the probe and the delay but the kernel: one OS
//! thread per connection, `std::thread::sleep`, no runtime, no interpreter.
//! It records how long it really held each request target (head read to
//! answer written, in ms) and serves that as JSON on `/_held`.
//!
//!     cargo run --release --example bench_target -- PORT DELAY_MS
//!
//! Prints `ready` once it listens. Loopback only; it runs until killed.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Held = Arc<Mutex<HashMap<String, f64>>>;

fn serve(mut conn: TcpStream, delay: Duration, held: &Held) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = conn.read(&mut buf)?;
        if n == 0 || head.len() > 65536 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let t0 = Instant::now();
    let text = String::from_utf8_lossy(&head);
    let target = text.split(' ').nth(1).unwrap_or("/").to_string();
    if target == "/_held" {
        let map = held.lock().unwrap_or_else(|e| e.into_inner());
        let body = format!(
            "{{{}}}",
            map.iter().map(|(k, v)| format!("\"{}\": {v}", k.replace('"', ""))).collect::<Vec<_>>().join(", ")
        );
        drop(map);
        let out = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
        return conn.write_all(out.as_bytes());
    }
    std::thread::sleep(delay);
    conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")?;
    let ms = t0.elapsed().as_secs_f64() * 1000.0;
    held.lock().unwrap_or_else(|e| e.into_inner()).insert(target, ms);
    Ok(())
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(port), Some(delay)) =
        (args.get(1).and_then(|p| p.parse::<u16>().ok()), args.get(2).and_then(|d| d.parse::<f64>().ok()))
    else {
        eprintln!("usage: bench_target PORT DELAY_MS");
        std::process::exit(2);
    };
    let listener = TcpListener::bind(("127.0.0.1", port))?;
    let delay = Duration::from_secs_f64(delay / 1000.0);
    let held: Held = Arc::default();
    println!("ready");
    std::io::stdout().flush()?;
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        let held = held.clone();
        std::thread::spawn(move || {
            let _ = serve(conn, delay, &held);
        });
    }
    Ok(())
}
