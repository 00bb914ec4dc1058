//! The manifests in `deploy/` against a real API server: every kustomization passes a
//! server-side dry run; the host, with nothing but the deployed ServiceAccount's own token,
//! runs the example end to end (the RBAC is enough) and is refused everything else (it is no
//! broader than needed); and the real binary finds the cluster the way it does in a pod
//! (service environment variables, mounted token and CA).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::authorization::v1::{SelfSubjectRulesReview, SelfSubjectRulesReviewSpec};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret, ServiceAccount};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tempfile::TempDir;
use testenv::TestEnv;
use wasm_reconciler::{Host, LeaderElection};

use crate::util::{
    MYRESOURCE, RunningHost, built_plugin, controlled_deployment, demo_my_resource, dynamic_api,
    events_regarding, eventually, free_address,
};

/// The host's namespace and ServiceAccount in `deploy/base`.
const NAMESPACE: &str = "wasm-reconciler";
const SERVICE_ACCOUNT: &str = "wasm-reconciler";
/// The overlay with the example plugin.
const EXAMPLE: &str = "example";

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// A copy of `deploy/` with each plugin Component's `.wasm` in place, as
/// `docs/operations.md` says to put it (it is a build output, not in the repository).
fn staged_deploy() -> TempDir {
    let staged = tempfile::tempdir().expect("temp dir");
    copy_dir(&deploy_dir(), staged.path());
    let components = staged.path().join("plugins");
    for entry in std::fs::read_dir(&components).expect("deploy/plugins") {
        let dir = entry.expect("deploy/plugins entry").path();
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .expect("UTF-8 name");
        std::fs::copy(built_plugin(name), dir.join(format!("{name}.wasm"))).expect("copy plugin");
    }
    staged
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

/// Every directory below `root` with a `kustomization.yaml` that is not a Component (those
/// only build as part of an overlay), relative to `root`.
fn kustomizations(root: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, found: &mut Vec<PathBuf>) {
        let file = dir.join("kustomization.yaml");
        if let Ok(text) = std::fs::read_to_string(&file)
            && !text.lines().any(|line| line.trim() == "kind: Component")
        {
            found.push(dir.strip_prefix(root).expect("below root").to_owned());
        }
        for entry in std::fs::read_dir(dir).expect("read dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                walk(root, &path, found);
            }
        }
    }
    let mut found = Vec::new();
    walk(root, root, &mut found);
    found.sort();
    found
}

fn path_arg(path: &Path) -> &str {
    path.to_str().expect("temp paths are UTF-8")
}

/// Runs the real kubectl as the admin and returns its output, whether it succeeded or not.
async fn kubectl_output(env: &TestEnv, args: &[&str]) -> Output {
    let mut command = tokio::process::Command::from(env.kubectl().expect("kubectl is available"));
    command.args(args).output().await.expect("kubectl runs")
}

/// Runs the real kubectl as the admin, fails the test unless it succeeds, returns stdout.
async fn kubectl(env: &TestEnv, args: &[&str]) -> String {
    let output = kubectl_output(env, args).await;
    assert!(
        output.status.success(),
        "kubectl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `deploy/example` applied for real (the Deployment is stored; with no scheduler or kubelet
/// it never runs), and a token of its ServiceAccount from the TokenRequest API.
struct Installed {
    staged: TempDir,
    token: String,
}

async fn install(env: &TestEnv) -> Installed {
    let staged = staged_deploy();
    kubectl(
        env,
        &[
            "apply",
            "--server-side",
            "-k",
            path_arg(&staged.path().join(EXAMPLE)),
        ],
    )
    .await;
    kubectl(
        env,
        &[
            "wait",
            "--for=condition=Established",
            "crd/myresources.mygroup.example.com",
            "--timeout=60s",
        ],
    )
    .await;
    let request = TokenRequest {
        spec: TokenRequestSpec {
            // Empty: the API server's own audience, as for a projected token in a pod.
            audiences: Vec::new(),
            expiration_seconds: Some(3600),
            ..TokenRequestSpec::default()
        },
        ..TokenRequest::default()
    };
    let token = Api::<ServiceAccount>::namespaced(env.client(), NAMESPACE)
        .create_token_request(SERVICE_ACCOUNT, &PostParams::default(), &request)
        .await
        .expect("TokenRequest for the host's ServiceAccount")
        .status
        .expect("TokenRequest status")
        .token;
    Installed { staged, token }
}

/// The plugins directory as the kubelet would project it into the pod: every key of every
/// ConfigMap in the Deployment's `plugins` volume, read back from the API server.
async fn projected_plugins(admin: &kube::Client) -> TempDir {
    let deployment = Api::<Deployment>::namespaced(admin.clone(), NAMESPACE)
        .get("wasm-reconciler")
        .await
        .expect("the host's Deployment");
    let volume = deployment
        .spec
        .and_then(|spec| spec.template.spec)
        .and_then(|pod| pod.volumes)
        .and_then(|volumes| volumes.into_iter().find(|v| v.name == "plugins"))
        .expect("a `plugins` volume");
    let sources = volume
        .projected
        .and_then(|projected| projected.sources)
        .unwrap_or_default();
    let dir = tempfile::tempdir().expect("temp dir");
    let config_maps: Api<ConfigMap> = Api::namespaced(admin.clone(), NAMESPACE);
    for source in sources {
        let name = source.config_map.expect("a ConfigMap source").name;
        let config_map = config_maps.get(&name).await.expect("plugin ConfigMap");
        for (key, bytes) in config_map.binary_data.unwrap_or_default() {
            std::fs::write(dir.path().join(key), bytes.0).expect("write plugin");
        }
    }
    assert!(
        dir.path().join("myresource.wasm").is_file(),
        "the example plugin reaches /plugins/myresource.wasm"
    );
    dir
}

/// A namespace for the example with a MyResource `demo` in it, created as the admin (as a
/// user would); returns its uid.
async fn create_demo(admin: &kube::Client, namespace: &str) -> String {
    Api::<Namespace>::all(admin.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": namespace}})).expect("namespace"),
        )
        .await
        .expect("create namespace");
    let demo: DynamicObject = demo_my_resource();
    dynamic_api(admin, namespace, MYRESOURCE)
        .create(&PostParams::default(), &demo)
        .await
        .expect("create MyResource")
        .metadata
        .uid
        .expect("uid")
}

/// Waits for the example's Deployment (controlled by `demo`), its `Created` event, and its
/// status; returns the event.
async fn assert_example_converges(admin: &kube::Client, namespace: &str, uid: &str) -> Event {
    controlled_deployment(admin, namespace, "demo", uid).await;
    let created = eventually("the Created event", || async {
        events_regarding(admin, namespace, uid)
            .await
            .into_iter()
            .find(|event| event.reason.as_deref() == Some("Created"))
    })
    .await;
    assert_eq!(created.reporting_controller.as_deref(), Some("myresource"));

    let resources = dynamic_api(admin, namespace, MYRESOURCE);
    eventually("the status", || async {
        let object = resources.get("demo").await.expect("get MyResource");
        let status = object.data.get("status")?;
        (status.get("observedGeneration") == Some(&json!(1))
            && status.get("deployment") == Some(&json!("demo")))
        .then_some(())
    })
    .await;
    created
}

#[test]
fn the_deployed_crd_is_the_example_plugins_own() {
    let source =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/myresource/manifests/crd.yaml");
    let copy = deploy_dir().join("plugins/myresource/crd.yaml");
    assert_eq!(
        std::fs::read_to_string(&copy).expect("deploy copy"),
        std::fs::read_to_string(&source).expect("plugin CRD"),
        "{} must be a copy of {}: copy it again",
        copy.display(),
        source.display()
    );
}

#[tokio::test]
async fn every_kustomization_passes_a_server_side_dry_run() {
    let env = TestEnv::start().await.expect("control plane starts");
    let staged = staged_deploy();
    let found = kustomizations(staged.path());
    for expected in ["base", EXAMPLE] {
        assert!(
            found.contains(&PathBuf::from(expected)),
            "deploy/{expected} is a kustomization: {found:?}"
        );
    }

    // A dry run creates nothing, so the objects in the namespace would be checked against a
    // namespace that does not exist: create it (with its Pod Security labels) for real.
    kubectl(
        &env,
        &[
            "apply",
            "--server-side",
            "-f",
            path_arg(&staged.path().join("base/namespace.yaml")),
        ],
    )
    .await;

    for kustomization in &found {
        let dir = staged.path().join(kustomization);
        // Server-side: a plugin's ConfigMap is larger than the 256 KiB that client-side
        // apply's last-applied annotation may hold.
        let output = kubectl_output(
            &env,
            &[
                "apply",
                "--server-side",
                "--dry-run=server",
                "-k",
                path_arg(&dir),
            ],
        )
        .await;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "dry run of deploy/{} failed:\n{stderr}",
            kustomization.display()
        );
        // The namespace enforces and warns on the `restricted` Pod Security level: a
        // Deployment whose pods would be refused gets a warning here.
        assert!(
            !stderr.contains("Warning"),
            "dry run of deploy/{} warned:\n{stderr}",
            kustomization.display()
        );
        assert!(
            stdout.contains("deployment.apps/wasm-reconciler serverside-applied (server dry run)"),
            "deploy/{}:\n{stdout}",
            kustomization.display()
        );
    }

    // It was a dry run: nothing but the namespace exists.
    let deployments: Api<Deployment> = Api::namespaced(env.client(), NAMESPACE);
    assert!(
        deployments
            .get_opt("wasm-reconciler")
            .await
            .expect("get")
            .is_none()
    );
}

#[tokio::test]
async fn the_deployed_service_account_is_enough_to_run_the_example() {
    let env = TestEnv::start().await.expect("control plane starts");
    let admin = env.client();
    let installed = install(&env).await;
    let host_client =
        kube::Client::try_from(env.config_for_token(&installed.token)).expect("token client");

    let plugins = projected_plugins(&admin).await;
    // With leader election, as the Deployment runs it (`--leader-elect`, the pod's namespace).
    let host = RunningHost::start(
        Host::new(plugins.path())
            .leader_election(LeaderElection::new(NAMESPACE, "wasm-reconciler")),
        host_client,
    );
    let uid = create_demo(&admin, "team-a").await;
    assert_example_converges(&admin, "team-a", &uid).await;
    let lease = Api::<Lease>::namespaced(admin.clone(), NAMESPACE)
        .get("wasm-reconciler")
        .await
        .expect("the host took its Lease");
    assert!(
        lease
            .spec
            .and_then(|spec| spec.holder_identity)
            .is_some_and(|holder| !holder.is_empty()),
        "the Lease has a holder"
    );
    // As docs/operations.md shows it.
    let events = kubectl(
        &env,
        &["events", "-n", "team-a", "--for", "myresource/demo"],
    )
    .await;
    assert!(events.contains("Created deployment demo"), "{events}");
    let events = kubectl(
        &env,
        &[
            "get",
            "events",
            "-A",
            "--field-selector",
            "reportingComponent=myresource",
        ],
    )
    .await;
    assert!(events.contains("Created deployment demo"), "{events}");

    host.stop().await.expect("host ran and stopped cleanly");
    drop(installed.staged);
}

/// The (apiGroup, resource, verb) triples a rules review grants, without the self-review
/// rules that `system:basic-user` gives every authenticated user.
async fn granted(client: &kube::Client, namespace: &str) -> BTreeSet<(String, String, String)> {
    let review = SelfSubjectRulesReview {
        spec: SelfSubjectRulesReviewSpec {
            namespace: Some(namespace.to_owned()),
        },
        ..SelfSubjectRulesReview::default()
    };
    let status = Api::<SelfSubjectRulesReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await
        .expect("rules review")
        .status
        .expect("rules review status");
    assert!(!status.incomplete, "{:?}", status.evaluation_error);
    let mut triples = BTreeSet::new();
    for rule in status.resource_rules {
        for group in rule.api_groups.unwrap_or_default() {
            for resource in rule.resources.clone().unwrap_or_default() {
                if resource.starts_with("selfsubject") {
                    continue;
                }
                for verb in &rule.verbs {
                    triples.insert((group.clone(), resource.clone(), verb.clone()));
                }
            }
        }
    }
    triples
}

fn triples(rules: &[(&str, &str, &[&str])]) -> BTreeSet<(String, String, String)> {
    rules
        .iter()
        .flat_map(|(group, resource, verbs)| {
            verbs.iter().map(|verb| {
                (
                    (*group).to_owned(),
                    (*resource).to_owned(),
                    (*verb).to_owned(),
                )
            })
        })
        .collect()
}

/// Fails unless `result` is the API server's 403.
fn assert_forbidden<T: std::fmt::Debug>(what: &str, result: Result<T, kube::Error>) {
    match result {
        Err(kube::Error::Api(status)) if status.code == 403 => {}
        other => panic!("{what}: expected 403 Forbidden, got {other:?}"),
    }
}

#[tokio::test]
async fn the_deployed_service_account_may_do_nothing_else() {
    let env = TestEnv::start().await.expect("control plane starts");
    let admin = env.client();
    let installed = install(&env).await;
    let host_client =
        kube::Client::try_from(env.config_for_token(&installed.token)).expect("token client");
    // A MyResource to be refused changes to. (Authorization comes before lookup, so the
    // Deployment that is refused deletion need not exist.)
    create_demo(&admin, "team-a").await;

    // Exactly these rules, anywhere: the host's events, the example plugin's kinds ...
    let everywhere: &[(&str, &str, &[&str])] = &[
        ("events.k8s.io", "events", &["create", "patch"]),
        (
            "mygroup.example.com",
            "myresources",
            &["get", "list", "watch"],
        ),
        ("mygroup.example.com", "myresources/status", &["patch"]),
        ("mygroup.example.com", "myresources/finalizers", &["update"]),
        (
            "apps",
            "deployments",
            &["get", "list", "watch", "create", "patch", "delete"],
        ),
    ];
    assert_eq!(granted(&host_client, "team-a").await, triples(everywhere));
    // ... and leases for leader election in its own namespace only.
    let mut own = triples(everywhere);
    own.extend(triples(&[(
        "coordination.k8s.io",
        "leases",
        &["get", "create", "update"],
    )]));
    assert_eq!(granted(&host_client, NAMESPACE).await, own);

    // The rules review is the API server's own account; these are the refusals themselves.
    let lease = |namespace: &str| -> Lease {
        serde_json::from_value(
            json!({"metadata": {"name": "wasm-reconciler", "namespace": namespace}}),
        )
        .expect("lease")
    };
    Api::<Lease>::namespaced(host_client.clone(), NAMESPACE)
        .create(&PostParams::default(), &lease(NAMESPACE))
        .await
        .expect("a lease in the host's namespace is allowed");
    Api::<Lease>::namespaced(admin.clone(), NAMESPACE)
        .create(&PostParams::default(), &{
            let mut other = lease(NAMESPACE);
            other.metadata.name = Some("someone-elses".to_owned());
            other
        })
        .await
        .expect("admin creates another lease");
    assert_forbidden(
        "read another lease in the host's namespace",
        Api::<Lease>::namespaced(host_client.clone(), NAMESPACE)
            .get("someone-elses")
            .await,
    );
    assert_forbidden(
        "create a lease in another namespace",
        Api::<Lease>::namespaced(host_client.clone(), "team-a")
            .create(&PostParams::default(), &lease("team-a"))
            .await,
    );
    assert_forbidden(
        "list secrets in the host's namespace",
        Api::<Secret>::namespaced(host_client.clone(), NAMESPACE)
            .list(&ListParams::default())
            .await,
    );
    assert_forbidden(
        "list pods",
        Api::<Pod>::all(host_client.clone())
            .list(&ListParams::default())
            .await,
    );
    assert_forbidden(
        "create a config map",
        Api::<ConfigMap>::namespaced(host_client.clone(), "team-a")
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": "x"}})).expect("config map"),
            )
            .await,
    );
    assert_forbidden(
        "delete a MyResource (its owner's job)",
        dynamic_api(&host_client, "team-a", MYRESOURCE)
            .delete("demo", &DeleteParams::default())
            .await,
    );
    assert_forbidden(
        "change a MyResource's spec",
        dynamic_api(&host_client, "team-a", MYRESOURCE)
            .patch(
                "demo",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"replicas": 9}})),
            )
            .await,
    );
    assert_forbidden(
        "create a core/v1 event",
        Api::<k8s_openapi::api::core::v1::Event>::namespaced(host_client.clone(), "team-a")
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({
                    "metadata": {"name": "x"},
                    "involvedObject": {"kind": "MyResource", "name": "demo", "namespace": "team-a"},
                    "reason": "Test",
                }))
                .expect("core event"),
            )
            .await,
    );
    assert_forbidden(
        "delete a namespace",
        Api::<Namespace>::all(host_client.clone())
            .delete("team-a", &DeleteParams::default())
            .await,
    );
    assert_forbidden(
        "bind itself cluster-admin",
        Api::<ClusterRoleBinding>::all(host_client.clone())
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({
                    "metadata": {"name": "escalate"},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
                    "subjects": [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": NAMESPACE}],
                }))
                .expect("binding"),
            )
            .await,
    );
}

/// Whether this process runs as root (then `unshare --mount` needs no user namespace).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Uid:"))
                .and_then(|uids| uids.split_whitespace().nth(1).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// Mounts the token, CA and namespace where kube-client reads them in a pod, in a mount
/// namespace of its own (nothing changes outside it), then runs the host. `/var/run` (or
/// what it links to) gets an empty tmpfs first, so that the mount point can be made without
/// touching the real file system. Arguments after the script go to `run`.
const IN_POD: &str = r#"set -eu
run=$(readlink -f /var/run)
mount -t tmpfs -o mode=755 in-pod "$run"
mkdir -p /var/run/secrets/kubernetes.io/serviceaccount
mount --bind -o ro "$SERVICE_ACCOUNT_DIR" /var/run/secrets/kubernetes.io/serviceaccount
exec "$HOST_BINARY" run --plugins "$PLUGINS_DIR" "$@"
"#;

/// Prints the host's log if the test fails while it is alive.
struct ShowOnPanic<'a>(&'a Path);

impl Drop for ShowOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.0).unwrap_or_default();
            eprintln!("--- host log ---\n{log}--- end of host log ---");
        }
    }
}

#[tokio::test]
async fn the_binary_finds_the_cluster_as_in_a_pod() {
    let env = TestEnv::start().await.expect("control plane starts");
    let admin = env.client();
    let installed = install(&env).await;
    let plugins = projected_plugins(&admin).await;

    // What the kubelet mounts for a ServiceAccount token volume.
    let scratch = tempfile::tempdir().expect("temp dir");
    let service_account = scratch.path().join("serviceaccount");
    std::fs::create_dir(&service_account).expect("mkdir");
    std::fs::write(service_account.join("token"), &installed.token).expect("token");
    std::fs::write(
        service_account.join("ca.crt"),
        env.ca_pem().expect("testenv has a CA"),
    )
    .expect("ca.crt");
    std::fs::write(service_account.join("namespace"), NAMESPACE).expect("namespace");
    let home = scratch.path().join("home");
    std::fs::create_dir(&home).expect("mkdir");
    let log_path = scratch.path().join("host.log");
    let log = std::fs::File::create(&log_path).expect("log file");

    let port = env.apiserver_url().port_u16().expect("API server port");
    let mut command = tokio::process::Command::new("unshare");
    if !is_root() {
        command.args(["--user", "--map-root-user"]);
    }
    command
        .args(["--mount", "sh", "-c", IN_POD, "in-pod"])
        // Loopback ports of its own, not the defaults (8080, 8081) another process may hold.
        .args(["--health-addr", &free_address().to_string()])
        .args(["--metrics-addr", &free_address().to_string()])
        // Nothing from this environment: no KUBECONFIG, and a HOME without ~/.kube.
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &home)
        .env("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        .env("KUBERNETES_SERVICE_PORT", port.to_string())
        // As the Deployment sets it.
        .env("POD_NAME", "wasm-reconciler-in-pod")
        .env("RUST_LOG", "info")
        .env("SERVICE_ACCOUNT_DIR", &service_account)
        .env("HOST_BINARY", env!("CARGO_BIN_EXE_wasm-reconciler"))
        .env("PLUGINS_DIR", plugins.path())
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log file"))
        .stderr(log)
        .kill_on_drop(true);
    let mut host = command.spawn().expect("unshare runs (util-linux)");
    let _show_log_on_failure = ShowOnPanic(&log_path);

    let uid = create_demo(&admin, "team-b").await;
    let converged = tokio::select! {
        event = assert_example_converges(&admin, "team-b", &uid) => event,
        exit = host.wait() => panic!("the host exited early: {exit:?}"),
    };
    assert_eq!(
        converged.reporting_instance.as_deref(),
        Some("myresource-wasm-reconciler-in-pod"),
        "the Event names the pod"
    );

    // `unshare` and `sh` exec the host, so this is the host's own process id.
    let pid = host.id().expect("host is running").to_string();
    let kill = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .expect("kill runs");
    assert!(kill.success());
    let status = tokio::time::timeout(Duration::from_secs(30), host.wait())
        .await
        .expect("the host stops within 30 s of SIGTERM")
        .expect("wait for the host");
    assert!(
        status.success(),
        "the host exits 0 on SIGTERM, got {status}"
    );
}
