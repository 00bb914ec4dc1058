//! Hostile plugins through the real `Host` on a real control plane, each beside the example
//! plugin: one test per class of attack. Each asserts that the host stays up, that the attack
//! fails with a clear error where it is made, and that the example plugin still converges
//! within a few seconds (it takes well under one second here when alone).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DynamicObject, PostParams};
use serde_json::json;
use testenv::TestEnv;
use wasm_reconciler::{Host, SandboxConfig};

use crate::util::{
    MYRESOURCE, MYRESOURCE_CRD, RunningHost, built_plugin, dynamic_api, eventually, free_address,
    http_get, kubectl, metric, plugins_dir,
};

/// The namespace of every object the tests create.
pub const NS: &str = "arena";
/// How long the example plugin may take to converge while a hostile plugin attacks: it takes
/// well under a second alone, and 20 s when starved before the per-plugin slots.
pub const CONVERGE_UNDER_ATTACK: Duration = Duration::from_secs(10);

/// A control plane with the example's CRD and the test namespace.
pub struct Arena {
    pub env: TestEnv,
}

impl Arena {
    /// A control plane with the CRD and the namespace.
    pub async fn new() -> Self {
        let arena = Self::without_crd().await;
        arena.install_crd().await;
        arena
    }

    /// A control plane with the namespace only.
    pub async fn without_crd() -> Self {
        let env = TestEnv::start().await.expect("control plane starts");
        let namespaces: Api<Namespace> = Api::all(env.client());
        namespaces
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": NS}})).expect("namespace"),
            )
            .await
            .expect("create namespace");
        Self { env }
    }

    /// Applies the example's CRD and waits until it is served.
    pub async fn install_crd(&self) {
        kubectl(&self.env, &["apply", "-f", MYRESOURCE_CRD]).await;
        kubectl(
            &self.env,
            &[
                "wait",
                "--for=condition=Established",
                "crd/myresources.mygroup.example.com",
                "--timeout=60s",
            ],
        )
        .await;
    }

    pub fn client(&self) -> kube::Client {
        self.env.client()
    }

    /// Asks the hostile plugin for `mode` (with parameters) on a new ConfigMap `name`.
    pub async fn attack(&self, name: &str, mode: &str, settings: &[(&str, &str)]) {
        let mut data: BTreeMap<String, String> = settings
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        data.insert("mode".into(), mode.into());
        let mut config_map = ConfigMap::default();
        config_map.metadata.name = Some(name.to_owned());
        config_map.data = Some(data);
        Api::<ConfigMap>::namespaced(self.client(), NS)
            .create(&PostParams::default(), &config_map)
            .await
            .expect("create ConfigMap");
    }

    /// What the hostile plugin reported about `name`.
    pub async fn report(&self, name: &str) -> BTreeMap<String, String> {
        let reports: Api<ConfigMap> = Api::namespaced(self.client(), NS);
        let report_name = format!("{name}-report");
        eventually(&format!("the report of {name}"), || async {
            reports
                .get_opt(&report_name)
                .await
                .expect("get report")
                .and_then(|report| report.data)
        })
        .await
    }

    /// Waits for an Event in the test namespace with `reason`, and returns it.
    pub async fn event_with_reason(&self, reason: &str) -> k8s_openapi::api::events::v1::Event {
        let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(self.client(), NS);
        eventually(&format!("an Event with reason {reason}"), || async {
            events
                .list(&Default::default())
                .await
                .expect("list events")
                .items
                .into_iter()
                .find(|event| event.reason.as_deref() == Some(reason))
        })
        .await
    }

    /// Creates the MyResource `name` and returns how long the example plugin took to converge
    /// on it (its status observes its generation).
    pub async fn example_converges(&self, name: &str) -> Duration {
        let resources = dynamic_api(&self.client(), NS, MYRESOURCE);
        let object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "mygroup.example.com/v1alpha1",
            "kind": "MyResource",
            "metadata": {"name": name},
            "spec": {"image": "nginx:1.27", "replicas": 1},
        }))
        .expect("MyResource");
        let started = Instant::now();
        resources
            .create(&PostParams::default(), &object)
            .await
            .expect("create MyResource");
        eventually(&format!("MyResource {name} to converge"), || async {
            let object = resources.get(name).await.expect("get MyResource");
            let observed = object.data["status"]["observedGeneration"].as_i64();
            (observed.is_some() && observed == object.metadata.generation).then_some(())
        })
        .await;
        let took = started.elapsed();
        eprintln!("the example converged on {name} in {took:?}");
        took
    }
}

/// The host running the example and the hostile plugin, with its probes on `probes`.
pub struct HostUnderTest {
    pub host: RunningHost,
    pub metrics: std::sync::Arc<wasm_reconciler::Metrics>,
    pub probes: std::net::SocketAddr,
    plugins: tempfile::TempDir,
}

impl HostUnderTest {
    pub async fn start(arena: &Arena, plugins: &[&Path], host: impl FnOnce(Host) -> Host) -> Self {
        let dir = plugins_dir(plugins);
        let probes = free_address();
        let host = host(Host::new(dir.path()).health_addr(probes));
        let metrics = host.metrics();
        let host = RunningHost::start(host, arena.client());
        Self {
            host,
            metrics,
            probes,
            plugins: dir,
        }
    }

    /// The example and the hostile plugin.
    pub async fn pair(arena: &Arena, host: impl FnOnce(Host) -> Host) -> Self {
        let running = Self::start(
            arena,
            &[&built_plugin("myresource"), &built_plugin("hostile")],
            host,
        )
        .await;
        running.ready().await;
        running
    }

    /// The host's plugins directory.
    pub fn plugins_dir(&self) -> &Path {
        self.plugins.path()
    }

    pub async fn ready(&self) {
        eventually("/readyz to answer 200", || async {
            (http_get(self.probes, "/readyz").await?.0 == 200).then_some(())
        })
        .await;
    }

    pub fn metric(&self, name_and_labels: &str) -> f64 {
        metric(&self.metrics.encode(), name_and_labels)
    }

    /// Stops the host, which must have kept running.
    pub async fn stop(self) {
        self.host
            .stop()
            .await
            .expect("the host ran and stopped cleanly");
    }
}

#[tokio::test]
async fn names_that_would_change_the_request_path_are_refused_before_any_request() {
    let arena = Arena::new().await;
    let host = HostUnderTest::pair(&arena, |host| host).await;
    arena.attack("escape", "scope-escape", &[]).await;
    let report = arena.report("escape").await;
    assert_eq!(report.len(), 7, "{report:?}");
    for (call, verdict) in &report {
        assert!(
            verdict.starts_with("Invalid(") && verdict.contains("is not valid"),
            "{call}: {verdict}"
        );
    }
    assert!(arena.example_converges("demo").await < CONVERGE_UNDER_ATTACK);
    host.stop().await;
}

#[tokio::test]
async fn a_plugin_that_sleeps_in_every_reconcile_cannot_starve_another() {
    let arena = Arena::new().await;
    let host = HostUnderTest::pair(&arena, |host| host).await;
    // More sleepers than the whole host has slots: they can only fill the hostile's share.
    for i in 0..40 {
        arena
            .attack(&format!("sleeper-{i}"), "sleep", &[("secs", "60")])
            .await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let took = arena.example_converges("demo").await;
    assert!(took < CONVERGE_UNDER_ATTACK, "took {took:?}");
    assert_eq!(
        host.metric(r#"wasm_reconciler_plugin_instance_slots{plugin="hostile"}"#),
        16.0
    );
    host.stop().await;
}

#[tokio::test]
async fn immediate_requeues_are_rate_limited_per_plugin() {
    let arena = Arena::new().await;
    let host = HostUnderTest::pair(&arena, |host| host).await;
    arena.attack("spinner-a", "requeue-now", &[]).await;
    arena.attack("spinner-b", "requeue-now", &[]).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let reconciles =
        host.metric(r#"wasm_reconciler_reconciles_total{plugin="hostile",result="success"}"#);
    // Unthrottled, two objects made 500 reconciles per second; per-object backoff and the
    // plugin's bucket leave a few dozen in five seconds (plus one per other ConfigMap).
    assert!(reconciles < 100.0, "{reconciles} reconciles in 5 s");
    assert!(host.metric(r#"wasm_reconciler_requeues_throttled_total{plugin="hostile"}"#) > 0.0);
    assert!(arena.example_converges("demo").await < CONVERGE_UNDER_ATTACK);
    host.stop().await;
}

#[tokio::test]
async fn a_reconcile_looping_on_the_api_is_cut_off_with_429() {
    let arena = Arena::new().await;
    let host = HostUnderTest::pair(&arena, |host| host.max_api_calls(50)).await;
    arena.attack("looper", "get-loop", &[]).await;
    let note = arena.event_with_reason("LoopReport").await.note;
    let note = note.unwrap_or_default();
    // 50 reads went through; the 51st was refused with 429, and the loop ended.
    assert!(note.starts_with("calls=50 "), "{note}");
    assert!(note.contains("429"), "{note}");
    assert!(host.metric(r#"wasm_reconciler_api_calls_refused_total{plugin="hostile"}"#) >= 1.0);
    assert!(arena.example_converges("demo").await < CONVERGE_UNDER_ATTACK);
    host.stop().await;
}

#[tokio::test]
async fn a_plugin_that_keeps_hitting_limits_is_suspended_and_says_so() {
    let arena = Arena::new().await;
    let limits = SandboxConfig::default().cpu_limit(Duration::from_millis(100));
    let host = HostUnderTest::pair(&arena, |host| host.sandbox(limits)).await;
    for i in 0..6 {
        arena.attack(&format!("spin-{i}"), "spin", &[]).await;
    }
    eventually("the hostile plugin to be suspended", || async {
        (host.metric(r#"wasm_reconciler_plugin_suspensions_total{plugin="hostile"}"#) >= 1.0)
            .then_some(())
    })
    .await;
    let (code, body) = http_get(host.probes, "/readyz").await.expect("/readyz");
    assert_eq!(
        code, 200,
        "a suspended plugin does not make the host unready"
    );
    assert!(
        body.contains("[-]plugin/hostile/breaker: suspended for 10s"),
        "{body}"
    );
    assert_eq!(
        host.metric(r#"wasm_reconciler_plugin_suspended{plugin="hostile"}"#),
        1.0
    );
    // The objects whose reconcile was stopped say why.
    let warned = arena.event_with_reason("ReconcileFailed").await;
    assert_eq!(warned.type_.as_deref(), Some("Warning"));
    assert!(
        warned
            .note
            .as_deref()
            .is_some_and(|note| note.contains("CPU limit")),
        "{warned:?}"
    );
    assert!(arena.example_converges("demo").await < CONVERGE_UNDER_ATTACK);
    host.stop().await;
}

#[tokio::test]
async fn an_impostor_cannot_take_a_plugins_name() {
    let arena = Arena::new().await;
    let host = HostUnderTest::start(
        &arena,
        &[
            &built_plugin("myresource"),
            &built_plugin("impostor"),
            &built_plugin("hostile"),
        ],
        |host| host,
    )
    .await;
    let (code, body) = eventually("/readyz to name the contested plugin", || async {
        let (code, body) = http_get(host.probes, "/readyz").await?;
        (body.contains("[-]file/impostor.wasm:") && body.contains("[-]file/myresource.wasm:"))
            .then_some((code, body))
    })
    .await;
    assert_eq!(code, 503, "{body}");
    assert!(
        body.contains("the name \"myresource\" is claimed by") && body.contains("none is loaded"),
        "{body}"
    );
    assert_eq!(
        host.metric("wasm_reconciler_plugin_load_failures_total"),
        2.0
    );
    assert_eq!(host.metric("wasm_reconciler_plugins_loaded"), 1.0);
    host.stop().await;
}

#[tokio::test]
async fn a_plugin_whose_metadata_never_returns_delays_no_other() {
    let arena = Arena::new().await;
    let started = Instant::now();
    let host = HostUnderTest::start(
        &arena,
        &[&built_plugin("slow_metadata"), &built_plugin("myresource")],
        |host| host,
    )
    .await;
    let took = arena.example_converges("demo").await;
    assert!(
        started.elapsed() < CONVERGE_UNDER_ATTACK,
        "the example converged {:?} after the host started ({took:?} after its object)",
        started.elapsed()
    );
    let body = eventually("/readyz to name the slow plugin", || async {
        let (_, body) = http_get(host.probes, "/readyz").await?;
        body.contains("[-]file/slow_metadata.wasm:").then_some(body)
    })
    .await;
    assert!(body.contains("timeout"), "{body}");
    host.stop().await;
}

#[tokio::test]
async fn impersonated_plugins_get_only_what_their_service_account_may() {
    let arena = Arena::new().await;
    let admin = arena.client();
    // The hostile plugin's ServiceAccount may manage ConfigMaps in the arena, nothing else.
    for manifest in [
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "plugins"}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
               "metadata": {"name": "hostile", "namespace": "plugins"}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
               "metadata": {"name": "hostile", "namespace": NS},
               "rules": [{"apiGroups": [""], "resources": ["configmaps"],
                          "verbs": ["get", "create", "patch"]}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": "hostile", "namespace": NS},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "hostile"},
               "subjects": [{"kind": "ServiceAccount", "name": "hostile", "namespace": "plugins"}]}),
    ] {
        let object: DynamicObject = serde_json::from_value(manifest).expect("manifest");
        let file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(file.path(), serde_json::to_vec(&object).expect("json")).expect("write");
        kubectl(
            &arena.env,
            &["apply", "-f", &file.path().display().to_string()],
        )
        .await;
    }
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(admin.clone(), NS);
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "topsecret"},
                                           "stringData": {"password": "hunter2"}}))
            .expect("secret"),
        )
        .await
        .expect("create secret");

    let host = HostUnderTest::start(&arena, &[&built_plugin("hostile")], |host| {
        host.impersonate_plugins("plugins")
    })
    .await;
    host.ready().await;
    arena
        .attack("reader", "read-secret", &[("secret", "topsecret")])
        .await;
    let report = arena.report("reader").await;
    let verdict = report.get("secret").cloned().unwrap_or_default();
    assert!(verdict.starts_with("Api { code: 403"), "{verdict}");
    assert!(
        verdict.contains("system:serviceaccount:plugins:hostile"),
        "{verdict}"
    );
    host.stop().await;
}

/// Peak resident memory of process `pid` (`VmHWM`), in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| {
            value
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .expect("VmHWM")
        * 1024
}

#[tokio::test]
async fn the_host_stays_within_its_memory_budget_under_every_memory_attack() {
    const BUDGET_MIB: u64 = 256;
    let arena = Arena::new().await;
    let scratch = tempfile::tempdir().expect("temp dir");
    let kubeconfig = scratch.path().join("kubeconfig");
    arena
        .env
        .write_kubeconfig(arena.env.config(), &kubeconfig)
        .expect("kubeconfig");
    let plugins = plugins_dir(&[&built_plugin("myresource"), &built_plugin("hostile")]);
    let log_path = scratch.path().join("host.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let metrics_addr = free_address();
    let mut host = tokio::process::Command::new(env!("CARGO_BIN_EXE_wasm-reconciler"))
        .arg("run")
        .args(["--plugins", &plugins.path().display().to_string()])
        .args(["--kubeconfig", &kubeconfig.display().to_string()])
        .args(["--memory-budget-mib", &BUDGET_MIB.to_string()])
        .args(["--max-instances", "8"])
        .args(["--health-addr", &metrics_addr.to_string()])
        .args(["--metrics-addr", &metrics_addr.to_string()])
        .env("RUST_LOG", "info")
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().expect("log file"))
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("the host starts");
    let pid = host.id().expect("host pid");
    eventually("/readyz to answer 200", || async {
        (http_get(metrics_addr, "/readyz").await?.0 == 200).then_some(())
    })
    .await;

    // Reconciles that each hold 20 MiB, more at once than the plugin's share holds.
    for i in 0..6 {
        arena
            .attack(
                &format!("hold-{i}"),
                "hold",
                &[("mib", "20"), ("secs", "3")],
            )
            .await;
    }
    // Strings past the host-call limit through every import, and some just under it.
    for target in [
        "apply",
        "status",
        "reason",
        "message",
        "annotation",
        "log",
        "name",
    ] {
        arena
            .attack(
                &format!("huge-{target}"),
                "huge",
                &[("target", target), ("kib", "4096")],
            )
            .await;
        arena
            .attack(
                &format!("big-{target}"),
                "huge",
                &[("target", target), ("kib", "2048")],
            )
            .await;
    }
    // Thousands of distinct invalid reasons of 64 KiB, and a log flood with forged lines.
    arena
        .attack(
            "reasons",
            "invalid-reasons",
            &[("count", "2000"), ("bytes", "65536")],
        )
        .await;
    arena
        .attack(
            "flood",
            "log-flood",
            &[("lines", "2000"), ("bytes", "65536")],
        )
        .await;

    let metrics = |text: &str, labels: &str| metric(text, labels);
    let text = eventually("every attack to have been answered", || async {
        let (_, text) = http_get(metrics_addr, "/metrics").await?;
        let failures = |limit: &str| {
            metrics(
                &text,
                &format!(r#"wasm_reconciler_plugin_limit_failures_total{{plugin="hostile",limit="{limit}"}}"#),
            )
        };
        let invalid = metrics(
            &text,
            r#"wasm_reconciler_events_total{plugin="hostile",reason="_invalid",outcome="invalid"}"#,
        );
        (failures("plugin_memory") >= 1.0 && failures("data") >= 5.0 && invalid >= 2000.0)
            .then_some(text)
    })
    .await;
    assert!(arena.example_converges("demo").await < CONVERGE_UNDER_ATTACK);
    assert!(
        metrics(
            &text,
            r#"wasm_reconciler_plugin_log_lines_dropped_total{plugin="hostile"}"#
        ) > 0.0
    );
    assert!(text.len() < 256 << 10, "/metrics is {} bytes", text.len());

    // Still the same process, within its budget at its peak.
    assert!(
        host.try_wait().expect("host status").is_none(),
        "the host died"
    );
    let peak = peak_rss(pid);
    eprintln!(
        "peak RSS under attack: {} MiB of a {BUDGET_MIB} MiB budget",
        peak >> 20
    );
    assert!(peak <= BUDGET_MIB << 20, "peak RSS {} MiB", peak >> 20);

    let log = std::fs::read_to_string(&log_path).expect("host log");
    assert!(
        !log.lines()
            .any(|line| line.starts_with("2026-12-03T00:00:00Z")),
        "a plugin forged a host log line"
    );
    assert!(
        log.len() < 8 << 20,
        "the host wrote {} bytes of log",
        log.len()
    );
    host.kill().await.expect("kill the host");
}
