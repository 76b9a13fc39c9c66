//! The peer comparison of quality.md: the original design's Redis commands for one
//! lesson completion, replayed against a running `redis-server` with the same
//! concurrency as `memora-bench --scenario complete`.
//!
//! One operation is one round trip carrying
//! `MULTI; SETBIT progress:{student}:{subject} {bit} 1; SADD dirty {student}:{subject};
//! HINCRBY wallet:{student} xp 40; HINCRBY wallet:{student} coins 1; EXEC`
//! (bitmap set, dirty-set add, two wallet hash increments), pipelined as one write, and
//! it counts when EXEC's reply has arrived. Students (1,000) and subjects (7) cycle per
//! connection; the bit walks forward like a student completing lessons in order.
//!
//! Environment: `REDIS_PEER_PORT` (no default: without it the benchmark prints that it
//! was skipped, so that a plain `cargo bench` does not need Redis), `REDIS_PEER_CONNECTIONS`
//! [64], `REDIS_PEER_SECS` [15], `REDIS_PEER_WARMUP_SECS` [3]. `benches/peer.sh` starts
//! the server (`appendonly yes`, `appendfsync always`) and runs this next to Memora.
//! Prints a table line and a JSON line shaped like `memora-bench`'s.

use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

fn env_num(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One RESP command as an array of bulk strings.
fn command(out: &mut Vec<u8>, args: &[&str]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
}

/// Reads one reply (simple, error, integer, bulk or array); fails on an error reply.
async fn reply(r: &mut BufReader<TcpStream>, line: &mut String) -> std::io::Result<()> {
    line.clear();
    r.read_line(line).await?;
    let kind = line.as_bytes().first().copied().unwrap_or(b'-');
    let rest = line.get(1..).unwrap_or_default().trim_end();
    match kind {
        b'+' | b':' => Ok(()),
        b'$' => {
            let n: i64 = rest.parse().unwrap_or(-1);
            if n >= 0 {
                let mut skip = vec![0u8; n as usize + 2];
                r.read_exact(&mut skip).await?;
            }
            Ok(())
        }
        b'*' => {
            let n: i64 = rest.parse().unwrap_or(-1);
            for _ in 0..n.max(0) {
                Box::pin(reply(r, line)).await?;
            }
            Ok(())
        }
        _ => Err(std::io::Error::other(format!("redis: {}", line.trim_end()))),
    }
}

/// One connection's loop; returns the latencies (µs) of operations started in the
/// measured window.
async fn connection(
    port: u16,
    index: usize,
    measure_from: Instant,
    end: Instant,
) -> std::io::Result<Vec<u32>> {
    let stream = TcpStream::connect(("127.0.0.1", port)).await?;
    stream.set_nodelay(true)?;
    let mut r = BufReader::new(stream);
    let (mut buf, mut line, mut lat) = (Vec::with_capacity(512), String::new(), Vec::new());
    let mut k = 0usize;
    while Instant::now() < end {
        let student = (index + 64 * k) % 1000;
        let subject = k % 7;
        let bit = (k / 7).to_string();
        let progress = format!("progress:{student}:{subject}");
        let member = format!("{student}:{subject}");
        let wallet = format!("wallet:{student}");
        buf.clear();
        command(&mut buf, &["MULTI"]);
        command(&mut buf, &["SETBIT", &progress, &bit, "1"]);
        command(&mut buf, &["SADD", "dirty", &member]);
        command(&mut buf, &["HINCRBY", &wallet, "xp", "40"]);
        command(&mut buf, &["HINCRBY", &wallet, "coins", "1"]);
        command(&mut buf, &["EXEC"]);
        let started = Instant::now();
        r.get_mut().write_all(&buf).await?;
        for _ in 0..6 {
            reply(&mut r, &mut line).await?;
        }
        if started >= measure_from {
            lat.push(started.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
        }
        k += 1;
    }
    Ok(lat)
}

fn main() {
    let Ok(port) = std::env::var("REDIS_PEER_PORT") else {
        println!("redis_peer: skipped (set REDIS_PEER_PORT; benches/peer.sh does)");
        return;
    };
    let port: u16 = port.parse().expect("REDIS_PEER_PORT is a port number");
    let connections = env_num("REDIS_PEER_CONNECTIONS", 64.0) as usize;
    let secs = env_num("REDIS_PEER_SECS", 15.0);
    let warmup = env_num("REDIS_PEER_WARMUP_SECS", 3.0);
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let mut lat: Vec<u32> = rt.block_on(async {
        let measure_from = Instant::now() + Duration::from_secs_f64(warmup);
        let end = measure_from + Duration::from_secs_f64(secs);
        let tasks: Vec<_> = (0..connections)
            .map(|i| tokio::spawn(connection(port, i, measure_from, end)))
            .collect();
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.expect("task").expect("redis connection"));
        }
        all
    });
    lat.sort_unstable();
    let pct = |p: f64| lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)));
    let pct = |p: f64| pct(p).copied().unwrap_or(0);
    let rps = lat.len() as f64 / secs;
    println!(
        "redis MULTI(SETBIT,SADD,HINCRBY×2): {} ops, {rps:.1} ops/s, p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms",
        lat.len(),
        f64::from(pct(0.50)) / 1000.0,
        f64::from(pct(0.95)) / 1000.0,
        f64::from(pct(0.99)) / 1000.0
    );
    println!(
        "{{\"scenario\":\"redis_peer\",\"connections\":{connections},\"duration_secs\":{secs},\"ops\":{{\"redis_completion\":{{\"count\":{},\"rps\":{rps},\"p50_us\":{},\"p95_us\":{},\"p99_us\":{},\"errors\":{{}}}}}}}}",
        lat.len(),
        pct(0.50),
        pct(0.95),
        pct(0.99)
    );
}
