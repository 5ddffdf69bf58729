//! `fsc-bench --port-base`: the bench's federation listens only on ports of the range it is
//! given, past those already taken, so that it can run beside other federations.

use std::process::Command;

#[test]
fn the_bench_keeps_to_its_port_range() {
    // The range starts at a port that stays taken (another federation's, as it were).
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = taken.local_addr().unwrap().port().min(65535 - 100);
    let output = Command::new(env!("CARGO_BIN_EXE_fsc-bench"))
        .env("FSC_BIN", fsc_e2e::fsc_bin())
        .args(["--port-base", &base.to_string(), "--latency-runs", "2"])
        .args([
            "--skip",
            "python,compare,throughput,protocols,million,matrix,psi,datasets,postgres,psi-csv,parties",
        ])
        .output()
        .unwrap();
    let text = fsc_e2e::output_text(&output);
    assert!(output.status.success(), "{text}");
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("broker "))
        .expect("the URLs line");
    let ports: Vec<u16> = line
        .split_whitespace()
        .filter_map(|word| word.trim_end_matches(',').rsplit_once(':')?.1.parse().ok())
        .collect();
    assert_eq!(ports.len(), 4, "{line}");
    let own = taken.local_addr().unwrap().port();
    for port in ports {
        assert!((base..base + 100).contains(&port) && port != own, "{port} in {line}");
    }
}
