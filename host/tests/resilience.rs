//! The host through an API server outage and a CRD that arrives late: it reports what it is
//! waiting for on `/readyz`, and serves again within seconds, without a restart.

use std::time::{Duration, Instant};

use crate::hostile::{Arena, HostUnderTest};
use crate::util::{built_plugin, eventually, http_get};

/// How soon after the API server is back the host must reconcile again: watches retry at most
/// every 4 s, and a recovered watch reconciles everything at once.
const BACK_WITHIN: Duration = Duration::from_secs(10);

#[tokio::test]
async fn after_an_api_server_outage_the_host_reconciles_again_within_seconds() {
    let mut arena = Arena::new().await;
    let host = HostUnderTest::start(&arena, &[&built_plugin("myresource")], |host| host).await;
    host.ready().await;
    arena.example_converges("before").await;

    // Watch /readyz while the API server is gone.
    let probes = host.probes;
    let watcher = tokio::spawn(async move {
        let deadline = Instant::now() + Duration::from_secs(12);
        while Instant::now() < deadline {
            if let Some((503, body)) = http_get(probes, "/readyz").await
                && body.contains("watch failing")
            {
                return Some(body);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        None
    });
    arena
        .env
        .restart_apiserver(Duration::from_secs(12))
        .await
        .expect("the API server comes back");
    let back = Instant::now();
    let outage = watcher.await.expect("watcher task");
    assert!(outage.is_some(), "/readyz never reported the failing watch");

    let took = arena.example_converges("after").await;
    let since_back = back.elapsed();
    eventually("/readyz to answer 200 again", || async {
        (http_get(host.probes, "/readyz").await?.0 == 200).then_some(())
    })
    .await;
    eprintln!("after a 12 s outage: converged {since_back:?} after the API server was back");
    assert!(
        since_back < BACK_WITHIN,
        "converged {since_back:?} after the API server came back ({took:?} after creation)"
    );
    host.stop().await;
}

#[tokio::test]
async fn a_crd_created_after_the_host_started_is_served_without_a_restart() {
    let arena = Arena::without_crd().await;
    let host = HostUnderTest::start(&arena, &[&built_plugin("myresource")], |host| host).await;
    let body = eventually("/readyz to say what the plugin waits for", || async {
        let (code, body) = http_get(host.probes, "/readyz").await?;
        (code == 503 && body.contains("[-]plugin/myresource/kinds:")).then_some(body)
    })
    .await;
    assert!(body.contains("MyResource"), "{body}");

    arena.install_crd().await;
    host.ready().await;
    arena.example_converges("late").await;
    host.stop().await;
}
