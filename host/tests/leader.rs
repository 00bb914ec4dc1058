//! Leader election with real host processes on a real control plane: only the leader
//! reconciles; a killed leader is replaced within the lease duration and a retry period; a
//! leader stopped cleanly hands over at once.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use crate::hostile::{Arena, NS};
use crate::util::{built_plugin, eventually, free_address, http_get, metric, plugins_dir};

/// controller-runtime's defaults, which the host's flags default to.
const LEASE_DURATION: Duration = Duration::from_secs(15);
const RETRY_PERIOD: Duration = Duration::from_secs(2);

/// One `wasm-reconciler run --leader-elect` process.
struct Replica {
    name: &'static str,
    child: Child,
    health: SocketAddr,
    metrics: SocketAddr,
}

impl Replica {
    fn start(name: &'static str, arena: &Arena, plugins: &Path, cache: &Path) -> Replica {
        let (health, metrics) = (free_address(), free_address());
        let child = Command::new(env!("CARGO_BIN_EXE_wasm-reconciler"))
            .arg("run")
            .arg("--plugins")
            .arg(plugins)
            .arg("--cache-dir")
            .arg(cache)
            .arg("--kubeconfig")
            .arg(arena.env.kubeconfig_path())
            .args(["--leader-elect", "--leader-election-namespace", NS])
            .arg(format!("--health-addr={health}"))
            .arg(format!("--metrics-addr={metrics}"))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start the host binary");
        Replica {
            name,
            child,
            health,
            metrics,
        }
    }

    async fn metric(&self, name_and_labels: &str) -> Option<f64> {
        let (_, body) = http_get(self.metrics, "/metrics").await?;
        Some(metric(&body, name_and_labels))
    }

    async fn leads(&self) -> bool {
        self.metric("leader_election_master_status{name=\"wasm-reconciler\"}")
            .await
            == Some(1.0)
    }

    async fn reconciles(&self) -> f64 {
        self.metric("wasm_reconciler_reconciles_total{plugin=\"myresource\",result=\"success\"}")
            .await
            .unwrap_or(0.0)
    }

    async fn ready(&self) {
        eventually(&format!("{} to be ready", self.name), || async {
            (http_get(self.health, "/readyz").await?.0 == 200).then_some(())
        })
        .await;
    }

    /// Waits until this replica leads, and returns how long that took from `since`.
    async fn takes_over(&self, since: Instant) -> Duration {
        eventually(&format!("{} to lead", self.name), || async {
            self.leads().await.then_some(())
        })
        .await;
        since.elapsed()
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("the replica runs").to_string();
        let status = std::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {signal} {pid}");
    }
}

#[tokio::test]
async fn only_the_leader_reconciles_and_a_successor_takes_over_when_it_dies_or_stops() {
    let arena = Arena::new().await;
    let plugins = plugins_dir(&[&built_plugin("myresource")]);
    let cache = tempfile::tempdir().expect("cache dir");

    let mut first = Replica::start("first", &arena, plugins.path(), cache.path());
    first.takes_over(Instant::now()).await;
    let second = Replica::start("second", &arena, plugins.path(), cache.path());
    // Ready to serve with its plugins loaded, but not leading.
    second.ready().await;
    assert!(!second.leads().await, "two leaders");
    arena.example_converges("under-the-first").await;
    assert!(first.reconciles().await >= 1.0);
    assert_eq!(second.reconciles().await, 0.0, "the follower reconciled");

    // kill -9: no release, the Lease must expire.
    first.signal("-KILL");
    let killed = Instant::now();
    let _ = first.child.wait().await;
    let failover = second.takes_over(killed).await;
    eprintln!("failover after kill -9: {failover:?}");
    assert!(
        failover <= LEASE_DURATION + RETRY_PERIOD + Duration::from_secs(3),
        "failover took {failover:?}"
    );
    arena.example_converges("under-the-second").await;

    // SIGTERM: the leader drains, releases the Lease, and the next takes over at its next try.
    let mut second = second;
    let third = Replica::start("third", &arena, plugins.path(), cache.path());
    third.ready().await;
    assert!(!third.leads().await, "two leaders");
    second.signal("-TERM");
    let stopped = Instant::now();
    let status = second.child.wait().await.expect("wait for the second");
    assert!(status.success(), "a clean stop exits 0: {status}");
    let drained = stopped.elapsed();
    let handover = third.takes_over(stopped).await;
    eprintln!("handover after SIGTERM: {handover:?} (the leader stopped in {drained:?})");
    assert!(
        handover <= drained + RETRY_PERIOD + Duration::from_secs(1),
        "handover took {handover:?} after a stop of {drained:?}"
    );
    arena.example_converges("under-the-third").await;
    assert!(third.reconciles().await >= 1.0);
}
