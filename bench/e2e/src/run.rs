//! One run: a fresh control plane, one controller under test as a subprocess, N MyResources
//! created at once, and what converging them cost.
//!
//! In fleet mode (`--kinds K`, K > 1) there are K `MyResource` kinds, one per group
//! (`fleet0.example.com`, ...), with N objects of each in a namespace of their own
//! (`fleet-0`, ...): one host runs K plugins (`bench/fleet-plugin`), against K native
//! controllers, one process per kind. CPU and memory are then the sum over the processes.
//!
//! # Steps
//!
//! 1. Start etcd and kube-apiserver (testenv), install the CRD, start the controller with its
//!    `/readyz` on a free loopback port and wait until it answers `200` (the startup time).
//!    The host compiles its plugins (in child processes) into an empty compile cache of its
//!    own: every run is a cold start.
//! 2. Watch MyResources and Events (the driver's own watches, started before anything is
//!    created, so that timings are when the API server told the driver, not when a poll
//!    happened to look). Read the API server's `apiserver_request_total` and the CPU times.
//! 3. Create N MyResources, [`CREATES_IN_FLIGHT`] at a time. From the first create on, time
//!    until every object has `status.observedGeneration` (converged), and until every object
//!    has its `Created` Event (events.k8s.io, `regarding` the MyResource).
//! 4. Wait until the controller's API requests stop (the second reconcile each object gets
//!    when its Deployment appears), then read the counters again, the controller's CPU time
//!    and peak RSS, and count objects and Events with a list to confirm what the watches saw.
//! 5. Kill the controller, stop the control plane and remove its data.
//!
//! # Caveats
//!
//! - `apiserver_request_total` has no user label: the driver's own requests (creating the
//!   objects, its watches) are left out by their verb and resource (see [`crate::measure`]).
//! - A controller that never gets there (e.g. drops Events) does not fail the run: it is
//!   reported with how far it got, once nothing moved for [`CONVERGE_STALL`] or
//!   [`EVENTS_STALL`].

use std::collections::HashSet;
use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures::StreamExt;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::serde::de::DeserializeOwned;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use serde_json::json;
use testenv::TestEnv;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Child;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::measure::{Requests, cpu_of_all, peak_rss_kib, requests, rss_kib, scrape, settle};

/// Where the objects are created, with a single kind.
const NAMESPACE: &str = "default";
/// The example's group, with a single kind.
const GROUP: &str = "mygroup.example.com";
/// Creates in flight at once.
const CREATES_IN_FLIGHT: usize = 64;
/// The native controller's `--concurrency`: the host's `--max-instances` default.
const NATIVE_CONCURRENCY: usize = 32;
/// Both controllers log warnings and errors only, so that neither pays for per-reconcile lines.
const LOG_FILTER: &str = "warn";
/// Longest wait for the control plane, and then the controller, to be ready.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// A run gives up waiting for convergence after this long without one more object converging.
const CONVERGE_STALL: Duration = Duration::from_secs(120);
/// A run gives up waiting for Events after this long without one more `Created` Event.
const EVENTS_STALL: Duration = Duration::from_secs(60);

/// What every run needs: the binaries, the plugins, the CRD, where logs go.
pub(crate) struct Setup {
    pub(crate) host: PathBuf,
    pub(crate) native: PathBuf,
    pub(crate) plugins: PathBuf,
    /// The fleet's plugins, `fleet-0.wasm` and on, for runs with more than one kind.
    pub(crate) fleet_plugins: Option<PathBuf>,
    /// The host's `--max-instances` with a fleet, if not 32 per plugin.
    pub(crate) fleet_host_instances: Option<usize>,
    pub(crate) crd: PathBuf,
    pub(crate) log_dir: PathBuf,
    pub(crate) clock_ticks: f64,
}

/// The controller under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Controller {
    /// `wasm-reconciler run` with `myresource.wasm`.
    Host,
    /// `native-myresource`.
    Native,
}

impl Controller {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Controller::Host => "wasm-reconciler",
            Controller::Native => "native kube-rs",
        }
    }

    fn slug(self) -> &'static str {
        match self {
            Controller::Host => "host",
            Controller::Native => "native",
        }
    }
}

/// What one run measured.
#[derive(Debug, Clone)]
pub(crate) struct RunResult {
    pub(crate) controller: Controller,
    /// Objects of each kind.
    pub(crate) objects: usize,
    /// Kinds: plugins in the host, or native processes.
    pub(crate) kinds: usize,
    pub(crate) run: usize,
    /// From spawning the controller to `/readyz` answering `200`.
    pub(crate) startup: Duration,
    /// From the first create until the API server had accepted all of them.
    pub(crate) created: Duration,
    /// Objects with `status.observedGeneration`, and when the last one got it.
    pub(crate) converged: Progress,
    /// Objects with a `Created` Event, and when the last one got it.
    pub(crate) events: Progress,
    /// The controller's API requests, from just before the creates until it went quiet.
    pub(crate) requests: Requests,
    /// The controller's user + system CPU time over the same window.
    pub(crate) cpu: f64,
    /// The controller's resident memory (VmRSS) once ready, before the first create, in MiB.
    pub(crate) idle_rss_mib: f64,
    /// The controller's peak resident memory (VmHWM), in MiB.
    pub(crate) peak_rss_mib: f64,
    /// kube-apiserver's and etcd's CPU time over the same window.
    pub(crate) control_plane_cpu: f64,
    /// `/proc/loadavg` (1, 5, 15 minutes) when the run started: how busy the machine was.
    pub(crate) load: String,
}

impl RunResult {
    /// Objects in all: of each kind, times the kinds.
    pub(crate) fn total_objects(&self) -> usize {
        self.objects * self.kinds
    }

    /// One line for the progress output.
    pub(crate) fn summary(&self) -> String {
        let total = self.total_objects();
        format!(
            "converged {} ({}/{total}), events {} ({}/{total}), {} requests, CPU {:.2} s, \
             RSS idle {:.0} MiB, peak {:.0} MiB",
            seconds(self.converged.all_after),
            self.converged.done,
            seconds(self.events.all_after),
            self.events.done,
            self.requests.total(),
            self.cpu,
            self.idle_rss_mib,
            self.peak_rss_mib
        )
    }
}

/// `12.34 s`, or `-` for none.
pub(crate) fn seconds(duration: Option<Duration>) -> String {
    duration.map_or_else(|| "-".to_owned(), |d| format!("{:.2} s", d.as_secs_f64()))
}

/// How far something got: `done` objects, and the time until all of them, if all got there.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Progress {
    pub(crate) done: usize,
    pub(crate) all_after: Option<Duration>,
}

/// One `MyResource` kind of a run, and where its objects live.
pub(crate) struct Kind {
    group: String,
    namespace: String,
    resource: ApiResource,
}

impl Kind {
    /// Member `index` of `kinds`: the example's own kind when there is one.
    pub(crate) fn of(index: usize, kinds: usize) -> Kind {
        let (group, namespace) = if kinds == 1 {
            (GROUP.to_owned(), NAMESPACE.to_owned())
        } else {
            (
                format!("fleet{index}.example.com"),
                format!("fleet-{index}"),
            )
        };
        let resource = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(&group, "v1alpha1", "MyResource"),
            "myresources",
        );
        Kind {
            group,
            namespace,
            resource,
        }
    }

    fn api(&self, client: &kube::Client) -> Api<DynamicObject> {
        Api::namespaced_with(client.clone(), &self.namespace, &self.resource)
    }
}

/// Runs `controller` on `objects` fresh MyResources of each of `kinds` kinds; see the
/// [module docs](self).
pub(crate) async fn run(
    setup: &Setup,
    controller: Controller,
    objects: usize,
    kinds: usize,
    run: usize,
) -> anyhow::Result<RunResult> {
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    let (env, kinds) = start_control_plane(setup, kinds, START_TIMEOUT).await?;
    let client = env.client();
    let my_resources: Vec<Api<DynamicObject>> =
        kinds.iter().map(|kind| kind.api(&client)).collect();
    let events: Api<Event> = Api::all(client.clone());

    let label = if kinds.len() == 1 {
        format!("{objects}-objects")
    } else {
        format!("{}x{objects}-objects", kinds.len())
    };
    let spawned = Instant::now();
    let mut processes = spawn_all(
        setup,
        controller,
        &kinds,
        env.kubeconfig_path(),
        &label,
        run,
    )?;
    for process in &mut processes {
        wait_until_ready(process).await?;
    }
    let startup = spawned.elapsed();
    let pids: Vec<u32> = processes.iter().map(|process| process.pid).collect();
    let idle_rss_mib = sum_of(&pids, rss_kib)? / 1024.0;

    let (converged_tx, mut converged_rx) = watch::channel(Count::default());
    let (events_tx, mut events_rx) = watch::channel(Count::default());
    let trackers = [
        track(my_resources.clone(), converged_name, converged_tx).await?,
        track(vec![events.clone()], created_event_subject, events_tx).await?,
    ];

    let control_plane = env.process_ids();
    let requests_before = scrape(&client).await?;
    let cpu_before = cpu_of_all(&pids, setup.clock_ticks)?;
    let control_plane_before = cpu_of_all(&control_plane, setup.clock_ticks)?;

    // The first writes of a new kind are slow while the API server sets up its storage: warm
    // it up with a dry run, which the controller never sees.
    let warm_up = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    for (kind, api) in kinds.iter().zip(&my_resources) {
        api.create(&warm_up, &my_resource(&kind.resource, objects))
            .await
            .context("warming up with a dry-run create")?;
    }

    let total = objects * kinds.len();
    let started = Instant::now();
    create(&kinds, &my_resources, objects).await?;
    let created = started.elapsed();

    let converged = wait_for(&mut converged_rx, total, CONVERGE_STALL, &mut processes).await?;
    let created_events = wait_for(&mut events_rx, total, EVENTS_STALL, &mut processes).await?;
    let requests_after = settle(&client, &requests_before).await?;

    let cpu = cpu_of_all(&pids, setup.clock_ticks)? - cpu_before;
    let peak_rss_mib = sum_of(&pids, peak_rss_kib)? / 1024.0;
    let control_plane_cpu = cpu_of_all(&control_plane, setup.clock_ticks)? - control_plane_before;
    for tracker in trackers {
        tracker.abort();
    }
    // The watches may have missed nothing, but a list is the API server's word.
    let mut converged_listed = 0;
    for api in &my_resources {
        converged_listed += api
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .filter_map(converged_name)
            .count();
    }
    let events_listed = events
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .filter_map(created_event_subject)
        .collect::<HashSet<_>>()
        .len();

    for process in processes {
        process.stop().await;
    }
    env.stop().context("stopping the control plane")?;
    Ok(RunResult {
        controller,
        objects,
        kinds: kinds.len(),
        run,
        startup,
        created,
        converged: converged.progress(started, converged_listed, total),
        events: created_events.progress(started, events_listed, total),
        requests: requests(&requests_before, &requests_after),
        cpu,
        idle_rss_mib,
        peak_rss_mib,
        control_plane_cpu,
        load,
    })
}

/// A fresh control plane with the CRDs (and namespaces) of `kinds` kinds, served.
pub(crate) async fn start_control_plane(
    setup: &Setup,
    kinds: usize,
    timeout: Duration,
) -> anyhow::Result<(TestEnv, Vec<Kind>)> {
    let env = TestEnv::builder()
        .start_timeout(timeout)
        .start()
        .await
        .context("starting the control plane")?;
    let kinds: Vec<Kind> = (0..kinds).map(|index| Kind::of(index, kinds)).collect();
    for kind in &kinds {
        install_crd(&env, &setup.crd, kind).await?;
    }
    Ok((env, kinds))
}

/// The sum of `measure` over the processes.
fn sum_of(pids: &[u32], measure: fn(u32) -> anyhow::Result<f64>) -> anyhow::Result<f64> {
    pids.iter().map(|&pid| measure(pid)).sum()
}

/// Installs the example's CRD under `kind`'s group, creates its namespace, and waits until
/// the CRD is served.
pub(crate) async fn install_crd(env: &TestEnv, crd: &Path, kind: &Kind) -> anyhow::Result<()> {
    let manifest = std::fs::read_to_string(crd)
        .with_context(|| format!("reading {}", crd.display()))?
        .replace(GROUP, &kind.group);
    let crd_name = format!("crd/myresources.{}", kind.group);
    let namespace =
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": kind.namespace}});
    let manifest = format!("{manifest}\n---\n{namespace}\n");
    kubectl(env, &["apply", "-f", "-"], Some(&manifest)).await?;
    kubectl(
        env,
        &[
            "wait",
            "--for=condition=Established",
            &crd_name,
            "--timeout=60s",
        ],
        None,
    )
    .await
}

/// Runs kubectl against `env` with `input` on its stdin, failing with its stderr.
pub(crate) async fn kubectl(
    env: &TestEnv,
    args: &[&str],
    input: Option<&str>,
) -> anyhow::Result<()> {
    let mut command = tokio::process::Command::from(env.kubectl()?);
    command
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .with_context(|| format!("running kubectl {}", args.join(" ")))?;
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(input.as_bytes()).await?;
    }
    let output = child.wait_with_output().await?;
    if !output.status.success() {
        bail!(
            "kubectl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// The controller under test, running.
pub(crate) struct Process {
    child: Child,
    pid: u32,
    pub(crate) health: SocketAddr,
    log: PathBuf,
}

impl Process {
    /// Fails if the controller has exited, pointing at its log.
    pub(crate) fn check_running(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "the controller exited ({status}); see {}",
                self.log.display()
            );
        }
        Ok(())
    }

    pub(crate) async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// The controller under test for `kinds`: one host with a plugin per kind, or one native
/// process per kind.
fn spawn_all(
    setup: &Setup,
    controller: Controller,
    kinds: &[Kind],
    kubeconfig: &Path,
    label: &str,
    run: usize,
) -> anyhow::Result<Vec<Process>> {
    let log = |member: Option<usize>| {
        let member = member.map(|index| format!("-{index}")).unwrap_or_default();
        setup.log_dir.join(format!(
            "{label}-run-{run}-{}{member}.log",
            controller.slug()
        ))
    };
    match controller {
        Controller::Host => {
            let metrics = SocketAddr::from(([127, 0, 0, 1], free_port()?));
            // A cache of its own, empty: every run starts cold, compiling its plugins.
            let cache = setup
                .log_dir
                .join(format!("{label}-run-{run}-compile-cache"));
            if cache.exists() {
                std::fs::remove_dir_all(&cache)
                    .with_context(|| format!("cannot empty {}", cache.display()))?;
            }
            let mut command = tokio::process::Command::new(&setup.host);
            command
                .arg("run")
                .arg("--cache-dir")
                .arg(&cache)
                .arg("--metrics-addr")
                .arg(metrics.to_string());
            if kinds.len() == 1 {
                command.arg("--plugins").arg(&setup.plugins);
            } else {
                let plugins = setup
                    .fleet_plugins
                    .as_ref()
                    .context("a fleet run needs the fleet's plugins")?;
                // By default as many reconciles at once per plugin as each native controller
                // runs.
                let instances = setup
                    .fleet_host_instances
                    .unwrap_or(kinds.len() * NATIVE_CONCURRENCY);
                command
                    .arg("--plugins")
                    .arg(plugins)
                    .arg("--max-instances")
                    .arg(instances.to_string())
                    .arg("--memory-budget-mib")
                    .arg(fleet_budget_mib(kinds.len(), instances).to_string());
            }
            Ok(vec![spawn(command, controller, kubeconfig, &log(None))?])
        }
        Controller::Native => kinds
            .iter()
            .enumerate()
            .map(|(index, kind)| {
                let mut command = tokio::process::Command::new(&setup.native);
                command
                    .arg("--concurrency")
                    .arg(NATIVE_CONCURRENCY.to_string())
                    .arg("--group")
                    .arg(&kind.group);
                let member = (kinds.len() > 1).then_some(index);
                spawn(command, controller, kubeconfig, &log(member))
            })
            .collect(),
    }
}

/// A memory budget (`--memory-budget-mib`) that admits `instances` slots and gives each of
/// `plugins` plugins room for its share of them. The budget is a bound the host checks, not
/// memory it takes: peak RSS is what the run measures.
pub(crate) fn fleet_budget_mib(plugins: usize, instances: usize) -> usize {
    // The host's fixed parts (96 MiB base, 16 MiB recorder, 4 MiB a slot), then 4 MiB of
    // linear memory per instance, of which the plugins get three quarters.
    96 + 16 + 4 * instances + (4 * instances * 4).div_ceil(3) + 16 * plugins
}

pub(crate) fn spawn(
    mut command: tokio::process::Command,
    controller: Controller,
    kubeconfig: &Path,
    log: &Path,
) -> anyhow::Result<Process> {
    let health = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let file = File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
    command
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--health-addr")
        .arg(health.to_string())
        .env("RUST_LOG", LOG_FILTER)
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .kill_on_drop(true);
    let child = command
        .spawn()
        .with_context(|| format!("cannot start {}", controller.name()))?;
    let pid = child
        .id()
        .context("the controller exited before it could be measured")?;
    Ok(Process {
        child,
        pid,
        health,
        log: log.to_owned(),
    })
}

/// A loopback port nobody listened on a moment ago.
pub(crate) fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

async fn wait_until_ready(process: &mut Process) -> anyhow::Result<()> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        process.check_running()?;
        if is_ready(process.health).await {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "the controller was not ready within {START_TIMEOUT:?}; see {}",
                process.log.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether `GET /readyz` answers `200`.
pub(crate) async fn is_ready(address: SocketAddr) -> bool {
    http_get(address, "/readyz")
        .await
        .is_some_and(|(status, _)| status == 200)
}

/// `GET path` over plain HTTP/1.1, within 2 s: the status code and the whole response.
pub(crate) async fn http_get(address: SocketAddr, path: &str) -> Option<(u16, String)> {
    let get = async {
        let mut stream = tokio::net::TcpStream::connect(address).await?;
        let request =
            format!("GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await?;
        std::io::Result::Ok(response)
    };
    let response = tokio::time::timeout(Duration::from_secs(2), get)
        .await
        .ok()?
        .ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, response))
}

/// How many objects got somewhere, and when the count last grew.
#[derive(Debug, Clone, Copy, Default)]
struct Count {
    done: usize,
    last: Option<Instant>,
}

impl Count {
    /// The progress to report: `listed` is the count confirmed by a list at the end.
    fn progress(self, started: Instant, listed: usize, objects: usize) -> Progress {
        let all = self.done >= objects && listed >= objects;
        Progress {
            done: listed,
            all_after: self
                .last
                .filter(|_| all)
                .map(|last| last.saturating_duration_since(started)),
        }
    }
}

/// Watches every one of `apis` and counts the distinct names `key` returns, publishing each
/// new count with the moment it was seen. Returns once every initial list is in, so nothing
/// later is missed.
async fn track<K>(
    apis: Vec<Api<K>>,
    key: fn(&K) -> Option<String>,
    counts: watch::Sender<Count>,
) -> anyhow::Result<JoinHandle<()>>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let (listed_tx, listed) = oneshot::channel();
    let task = tokio::spawn(async move {
        let mut listed_tx = Some(listed_tx);
        let mut lists_pending = apis.len();
        let mut seen = HashSet::new();
        let mut stream = futures::stream::select_all(apis.into_iter().map(|api| {
            watcher(api, watcher::Config::default())
                .default_backoff()
                .boxed()
        }));
        while let Some(event) = stream.next().await {
            let object = match event {
                Ok(watcher::Event::Apply(object) | watcher::Event::InitApply(object)) => object,
                Ok(watcher::Event::InitDone) => {
                    lists_pending = lists_pending.saturating_sub(1);
                    if lists_pending == 0
                        && let Some(listed) = listed_tx.take()
                    {
                        let _ = listed.send(());
                    }
                    continue;
                }
                // Deletions do not happen here; errors are retried with backoff.
                Ok(watcher::Event::Delete(_) | watcher::Event::Init) | Err(_) => continue,
            };
            if let Some(name) = key(&object)
                && seen.insert(name)
            {
                counts.send_replace(Count {
                    done: seen.len(),
                    last: Some(Instant::now()),
                });
            }
        }
    });
    tokio::time::timeout(START_TIMEOUT, listed)
        .await
        .context("the driver's watch did not start")?
        .context("the driver's watch ended")?;
    Ok(task)
}

/// `namespace/name` of a MyResource whose status reports its current generation.
fn converged_name(object: &DynamicObject) -> Option<String> {
    let observed = object.data["status"]["observedGeneration"].as_i64()?;
    (Some(observed) == object.metadata.generation).then(|| {
        format!(
            "{}/{}",
            object.namespace().unwrap_or_default(),
            object.name_any()
        )
    })
}

/// `namespace/name` of the MyResource a `Created` Event is about.
fn created_event_subject(event: &Event) -> Option<String> {
    let regarding = event.regarding.as_ref()?;
    if event.reason.as_deref() != Some("Created") || regarding.kind.as_deref() != Some("MyResource")
    {
        return None;
    }
    let namespace = regarding.namespace.as_deref().unwrap_or_default();
    Some(format!("{namespace}/{}", regarding.name.as_deref()?))
}

/// Creates `bench-00000`, `bench-00001`, ... of every kind, all at once (the kinds
/// interleaved), [`CREATES_IN_FLIGHT`] at a time.
async fn create(kinds: &[Kind], apis: &[Api<DynamicObject>], objects: usize) -> anyhow::Result<()> {
    let all = (0..objects).flat_map(|index| kinds.iter().zip(apis).map(move |kind| (index, kind)));
    let results: Vec<_> = futures::stream::iter(all)
        .map(|(index, (kind, api))| {
            let object = my_resource(&kind.resource, index);
            async move { api.create(&PostParams::default(), &object).await }
        })
        .buffer_unordered(CREATES_IN_FLIGHT)
        .collect()
        .await;
    for result in results {
        result.context("creating a MyResource")?;
    }
    Ok(())
}

/// MyResource number `index`: `bench-00042`.
fn my_resource(resource: &ApiResource, index: usize) -> DynamicObject {
    DynamicObject::new(&format!("bench-{index:05}"), resource)
        .data(json!({"spec": {"image": "nginx:1.27", "replicas": 1}}))
}

/// Waits until `counts` reaches `target`, giving up (without an error) once it did not move
/// for `stall`; fails if a controller process exits meanwhile.
async fn wait_for(
    counts: &mut watch::Receiver<Count>,
    target: usize,
    stall: Duration,
    processes: &mut [Process],
) -> anyhow::Result<Count> {
    let mut last_move = Instant::now();
    let mut last_done = 0;
    loop {
        for process in processes.iter_mut() {
            process.check_running()?;
        }
        let count = *counts.borrow_and_update();
        if count.done >= target {
            return Ok(count);
        }
        if count.done != last_done {
            last_done = count.done;
            last_move = Instant::now();
        } else if last_move.elapsed() > stall {
            eprintln!(
                "    gave up waiting: {}/{target} after {stall:?} without progress",
                count.done
            );
            return Ok(count);
        }
        // Woken by the next change, or after a second to check on the controller.
        let _ = tokio::time::timeout(Duration::from_secs(1), counts.changed()).await;
    }
}
