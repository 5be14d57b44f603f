//! Reading the figures out of what the measuring programs print.

use serde_json::Value;

fn field<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(k))
}

/// Why an iperf3 run has no result. iperf3 also sets `error` for
/// complaints that do not stop the test (a getsockopt(TCP_INFO) the stack
/// does not answer), so `error` alone does not mean failure: the result
/// missing does.
fn failure(v: &Value) -> String {
    match v.get("error").and_then(Value::as_str) {
        Some(e) => format!("iperf3: {e}"),
        None => "iperf3 -J has no end.sum_received".into(),
    }
}

/// iperf3 -J of a TCP test: the receiver's throughput in Gbit/s.
pub fn iperf3_tcp_gbits(json: &str) -> Result<f64, String> {
    let v: Value = serde_json::from_str(json).map_err(|e| format!("iperf3 -J output: {e}"))?;
    field(&v, &["end", "sum_received", "bits_per_second"])
        .and_then(Value::as_f64)
        .map(|b| b / 1e9)
        .ok_or_else(|| failure(&v))
}

/// iperf3 -J of a UDP test with `len`-byte datagrams: datagrams received
/// per second (what arrived, not what was sent).
pub fn iperf3_udp_rate(json: &str, len: usize) -> Result<f64, String> {
    let v: Value = serde_json::from_str(json).map_err(|e| format!("iperf3 -J output: {e}"))?;
    let r = field(&v, &["end", "sum_received"]).ok_or_else(|| failure(&v))?;
    let bytes = r.get("bytes").and_then(Value::as_f64).ok_or("no bytes")?;
    let secs = r
        .get("seconds")
        .and_then(Value::as_f64)
        .ok_or("no seconds")?;
    if secs <= 0.0 || len == 0 {
        return Err("iperf3 reported no time".into());
    }
    Ok(bytes / len as f64 / secs)
}

/// sockperf ping-pong output: the median half round trip in µs.
pub fn sockperf_median_us(out: &str) -> Result<f64, String> {
    for line in out.lines() {
        if let Some(rest) = line.split("percentile 50.000 =").nth(1) {
            let num: String = rest
                .trim()
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            return num
                .parse()
                .map_err(|_| format!("sockperf median not a number: {line}"));
        }
    }
    Err(format!("no median in sockperf output:\n{out}"))
}

/// `connrate`'s summary line: connections per second, and the errors.
pub fn connrate(out: &str) -> Result<(f64, u64), String> {
    let line = out
        .lines()
        .find(|l| l.starts_with("connections "))
        .ok_or_else(|| format!("no summary from connrate:\n{out}"))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let after = |k: &str| {
        words
            .iter()
            .position(|w| *w == k)
            .and_then(|i| words.get(i + 1))
            .copied()
    };
    let rate = after("rate")
        .and_then(|r| r.parse().ok())
        .ok_or("no rate")?;
    let errors = after("errors")
        .and_then(|r| r.parse().ok())
        .ok_or("no errors")?;
    Ok((rate, errors))
}

/// A `Key:   1234 kB` line of /proc/PID/status or /proc/meminfo, in bytes.
pub fn kb_field(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with(key) && l[key.len()..].starts_with(':'))
        .and_then(|l| l[key.len() + 1..].split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok())
        .map(|kb| kb * 1024)
}

/// Bytes held by every slab cache: the sum of active objects times object
/// size over /proc/slabinfo.
pub fn slab_bytes(slabinfo: &str) -> Option<u64> {
    let mut total = 0u64;
    let mut seen = false;
    for line in slabinfo.lines() {
        if line.starts_with('#') || line.starts_with("slabinfo") {
            continue;
        }
        let w: Vec<&str> = line.split_whitespace().collect();
        let (Some(active), Some(size)) = (
            w.get(1).and_then(|x| x.parse::<u64>().ok()),
            w.get(3).and_then(|x| x.parse::<u64>().ok()),
        ) else {
            continue;
        };
        total += active * size;
        seen = true;
    }
    seen.then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iperf3_tcp_reads_the_receivers_rate() {
        let j = r#"{"end":{"sum_sent":{"bits_per_second":3e9},"sum_received":{"bits_per_second":2.5e9}}}"#;
        assert_eq!(iperf3_tcp_gbits(j), Ok(2.5));
        assert_eq!(
            iperf3_tcp_gbits(r#"{"error":"unable to connect"}"#),
            Err("iperf3: unable to connect".to_string())
        );
        // A complaint beside a result is not a failure.
        let j = r#"{"error":"getsockopt","end":{"sum_received":{"bits_per_second":1e9}}}"#;
        assert_eq!(iperf3_tcp_gbits(j), Ok(1.0));
        assert!(iperf3_tcp_gbits("not json").is_err());
    }

    #[test]
    fn iperf3_udp_counts_what_arrived() {
        let j = r#"{"end":{"sum_received":{"bytes":6400,"seconds":2.0}}}"#;
        assert_eq!(iperf3_udp_rate(j, 64), Ok(50.0));
    }

    #[test]
    fn sockperf_median_among_coloured_lines() {
        let out = "sockperf: \u{1b}[2;35m====> avg-latency=48.137 (std-dev=25.512)\u{1b}[0m\n\
                   sockperf: ---> percentile 75.000 =   49.691\n\
                   sockperf: ---> percentile 50.000 =   46.386\n";
        assert_eq!(sockperf_median_us(out), Ok(46.386));
        assert!(sockperf_median_us("nothing").is_err());
    }

    #[test]
    fn connrate_summary() {
        let out = "connections 1200 errors 3 seconds 2.000 rate 600.0\n";
        assert_eq!(connrate(out), Ok((600.0, 3)));
    }

    #[test]
    fn status_and_slabinfo_fields() {
        let status = "Name:\tio-pkt\nVmRSS:\t    5120 kB\nVmRSS2: 1 kB\n";
        assert_eq!(kb_field(status, "VmRSS"), Some(5120 * 1024));
        assert_eq!(kb_field(status, "VmHWM"), None);
        let slab = "slabinfo - version: 2.1\n# name <active_objs> <num_objs> <objsize>\n\
                    TCP 10 12 2432 13 8 : tunables\nUNIX 4 4 1024 16 4 : tunables\n";
        assert_eq!(slab_bytes(slab), Some(10 * 2432 + 4 * 1024));
    }
}
