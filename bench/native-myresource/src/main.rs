//! `native-myresource`: the example plugin's logic (`plugins/myresource`) as a plain kube-rs
//! controller, the baseline that `cargo xtask bench` measures the host against.
//!
//! It is wired like the host wires a plugin: one `Controller` on `MyResource` that sees only
//! generation changes (so its own status writes do not trigger it again), owns Deployments,
//! runs at most `--concurrency` reconciles at once (the host's `--max-instances` default), and
//! answers `/readyz` once its cache holds the initial list. The logic is in [`reconcile`].

mod reconcile;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::controller::{self, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::{WatchStreamExt, predicates, reflector, watcher};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

/// How often readiness re-checks whether the cache is synced.
const CACHE_SYNC_POLL: Duration = Duration::from_millis(200);

/// Reconciles MyResources into Deployments, natively with kube-rs.
#[derive(Debug, Parser)]
#[command(name = "native-myresource", about)]
struct Args {
    /// Kubeconfig to use; by default `KUBECONFIG`, `~/.kube/config`, or the in-cluster
    /// service account.
    #[arg(long, value_name = "PATH")]
    kubeconfig: Option<PathBuf>,

    /// Most reconciles running at once.
    #[arg(long, default_value_t = 32, value_name = "N")]
    concurrency: u16,

    /// The group of the `MyResource` kind to reconcile: the benchmark's fleet runs one
    /// controller per group.
    #[arg(long, default_value = "mygroup.example.com", value_name = "GROUP")]
    group: String,

    /// Where to serve `/healthz` and `/readyz` (default: nowhere).
    #[arg(long, value_name = "ADDR")]
    health_addr: Option<SocketAddr>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let client = client(args.kubeconfig.as_deref()).await?;

    let gvk = GroupVersionKind::gvk(&args.group, "v1alpha1", "MyResource");
    let resource = ApiResource::from_gvk_with_plural(&gvk, "myresources");
    let writer = reflector::store::Writer::new(resource.clone());
    let reader = writer.as_reader();
    let trigger = watcher(
        Api::<DynamicObject>::all_with(client.clone(), &resource),
        watcher::Config::default(),
    )
    .default_backoff()
    .reflect(writer)
    .applied_objects()
    .predicate_filter(predicates::generation, Default::default());

    let ready = Arc::new(AtomicBool::new(false));
    if let Some(address) = args.health_addr {
        let listener = TcpListener::bind(address)
            .await
            .with_context(|| format!("cannot listen on {address}"))?;
        tokio::spawn(serve_probes(listener, ready.clone()));
    }
    let cache = reader.clone();
    tokio::spawn(async move {
        // The store wakes only its latest waiter, and the controller waits on it too: poll
        // again now and then, or this wait may never wake (the host does the same).
        loop {
            match tokio::time::timeout(CACHE_SYNC_POLL, cache.wait_until_ready()).await {
                Ok(Ok(())) => {
                    ready.store(true, Ordering::Relaxed);
                    tracing::info!("cache synced: ready");
                    return;
                }
                // The watch ended before syncing (shutdown): never ready.
                Ok(Err(_)) => return,
                Err(_) => {}
            }
        }
    });

    let reporter = Reporter {
        controller: reconcile::MANAGER.to_owned(),
        instance: None,
    };
    let ctx = Arc::new(reconcile::Context {
        client: client.clone(),
        resource: resource.clone(),
        recorder: Recorder::new(client.clone(), reporter),
    });
    Controller::for_stream_with(trigger, reader, resource)
        .owns(Api::<Deployment>::all(client), watcher::Config::default())
        .with_config(controller::Config::default().concurrency(args.concurrency))
        .shutdown_on_signal()
        .run(reconcile::reconcile, reconcile::error_policy, ctx)
        .for_each(|result| {
            if let Err(error) = result {
                tracing::debug!(%error, "reconcile did not complete");
            }
            std::future::ready(())
        })
        .await;
    Ok(())
}

/// A client from `kubeconfig`, or from kube's usual inference without one.
async fn client(kubeconfig: Option<&Path>) -> anyhow::Result<kube::Client> {
    let config = match kubeconfig {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("failed to read kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                .await
                .context("invalid kubeconfig")?
        }
        None => kube::Config::infer()
            .await
            .context("no kubeconfig and not running in a cluster")?,
    };
    kube::Client::try_from(config).context("failed to build the client")
}

/// Serves `/healthz` (always `200`) and `/readyz` (`200` once `ready` is set, `503` before) on
/// `listener`: enough for probes and the benchmark, without an HTTP server dependency.
async fn serve_probes(listener: TcpListener, ready: Arc<AtomicBool>) {
    loop {
        let mut stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                // E.g. out of file descriptors: wait instead of spinning.
                tracing::warn!(%error, "probe listener cannot accept");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let ready = ready.clone();
        tokio::spawn(async move {
            // The request line fits in one read: `GET /readyz HTTP/1.1`.
            let mut request = [0_u8; 1024];
            let read = stream.read(&mut request).await.unwrap_or(0);
            let path = std::str::from_utf8(&request[..read])
                .ok()
                .and_then(|request| request.split(' ').nth(1));
            let (status, body) = match path {
                Some("/healthz") => ("200 OK", "ok\n"),
                Some("/readyz") if ready.load(Ordering::Relaxed) => ("200 OK", "ok\n"),
                Some("/readyz") => ("503 Service Unavailable", "cache not synced\n"),
                _ => ("404 Not Found", "not found\n"),
            };
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}
