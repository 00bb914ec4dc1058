//! Measures how long a control plane takes to start and stop.
//!
//! `cargo run -p testenv --example start_stop -- [runs] [--with-controller-manager] [--rss]`
//!
//! `--rss` also prints each process's resident memory, 5 s after the first start.

use std::time::{Duration, Instant};

use testenv::TestEnv;

#[tokio::main]
async fn main() -> Result<(), testenv::Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let controller_manager = args.iter().any(|arg| arg == "--with-controller-manager");
    let rss = args.iter().any(|arg| arg == "--rss");
    let runs: u32 = args.iter().find_map(|arg| arg.parse().ok()).unwrap_or(3);

    let (mut starts, mut stops) = (Vec::new(), Vec::new());
    for run in 1..=runs {
        let started = Instant::now();
        let env = TestEnv::builder()
            .with_controller_manager(controller_manager)
            .start()
            .await?;
        let start = started.elapsed();
        if rss && run == 1 {
            tokio::time::sleep(Duration::from_secs(5)).await;
            for pid in env.process_ids() {
                let status =
                    std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
                let field = |key: &str| {
                    status
                        .lines()
                        .find(|line| line.starts_with(key))
                        .map_or("?", |line| line[key.len()..].trim())
                        .to_owned()
                };
                println!("pid {pid} {}: {}", field("Name:"), field("VmRSS:"));
            }
        }
        let stopped = Instant::now();
        env.stop()?;
        let stop = stopped.elapsed();
        println!("run {run}: start {start:.2?}, stop {stop:.2?}");
        starts.push(start);
        stops.push(stop);
    }
    let mean = |times: &[Duration]| times.iter().sum::<Duration>() / times.len().max(1) as u32;
    println!(
        "mean of {runs}: start {:.2?}, stop {:.2?} (controller manager: {controller_manager})",
        mean(&starts),
        mean(&stops)
    );
    Ok(())
}
