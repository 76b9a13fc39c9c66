//! The output: a compact human table on stdout, then one JSON line with the same
//! figures (`{"scenario":…,"ops":{…}}`) to paste into BENCHMARKS.md or parse.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::args::Args;
use crate::stats::Summary;

/// The table followed by the JSON line.
pub fn render(args: &Args, ops: &BTreeMap<&'static str, Summary>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "scenario {}  url {}  students {}  connections {}  measured {}s (warmup {}s)",
        args.scenario.name(),
        args.base_url(),
        args.students,
        args.connections,
        args.duration,
        args.warmup
    );
    let _ = writeln!(
        out,
        "{:<10} {:>10} {:>11} {:>9} {:>9} {:>9} {:>9} {:>8}",
        "op", "count", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "errors"
    );
    for (name, s) in ops {
        let errors: u64 = s.errors.values().sum();
        let _ = writeln!(
            out,
            "{name:<10} {:>10} {:>11.1} {:>9} {:>9} {:>9} {:>9} {errors:>8}",
            s.count,
            s.rps,
            ms(s.p50_us),
            ms(s.p95_us),
            ms(s.p99_us),
            ms(s.max_us)
        );
        if !s.errors.is_empty() {
            let list: Vec<String> = s.errors.iter().map(|(k, n)| format!("{k} ×{n}")).collect();
            let _ = writeln!(out, "  {name} errors: {}", list.join(", "));
        }
    }
    let _ = writeln!(out, "{}", json_line(args, ops));
    out
}

/// The machine-readable line.
pub fn json_line(args: &Args, ops: &BTreeMap<&'static str, Summary>) -> Value {
    json!({
        "scenario": args.scenario.name(),
        "url": args.base_url(),
        "students": args.students,
        "connections": args.connections,
        "duration_secs": args.duration,
        "warmup_secs": args.warmup,
        "ops": ops,
    })
}

fn ms(us: u32) -> String {
    format!("{:.2}", f64::from(us) / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::OpStats;
    use clap::Parser;
    use std::time::Duration;

    #[test]
    fn table_and_json_line_carry_the_same_figures() {
        let args = Args::try_parse_from(["memora-bench", "--scenario", "complete"]).expect("args");
        let mut st = OpStats::default();
        st.ok(Duration::from_micros(1500));
        st.error("409 NOT_UNLOCKED".into());
        let mut ops = BTreeMap::new();
        ops.insert("complete", st.summarize(Duration::from_secs(1)));
        let text = render(&args, &ops);
        assert!(text.contains("complete"), "{text}");
        assert!(text.contains("1.50"), "{text}");
        assert!(text.contains("409 NOT_UNLOCKED ×1"), "{text}");
        let last = text.lines().last().expect("a JSON line");
        let v: Value = serde_json::from_str(last).expect("JSON");
        assert_eq!(v["scenario"], "complete");
        assert_eq!(v["ops"]["complete"]["count"], 1);
        assert_eq!(v["ops"]["complete"]["p99_us"], 1500);
        assert_eq!(v["ops"]["complete"]["errors"]["409 NOT_UNLOCKED"], 1);
    }
}
