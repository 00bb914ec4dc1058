//! Starting, using and stopping a control plane.

use std::time::{Duration, Instant};

use k8s_openapi::api::{
    authentication::v1::{TokenRequest, TokenRequestSpec},
    core::v1::{ConfigMap, Namespace, ServiceAccount},
    rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject},
};
use kube::{
    Api, Client,
    api::{ObjectMeta, PostParams},
};
use testenv::{Error, TestEnv};

use crate::util::{eventually, process_exists};

fn config_map(name: &str, data: &[(&str, &str)]) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        data: Some(
            data.iter()
                .map(|(key, value)| (key.to_string(), value.to_string()))
                .collect(),
        ),
        ..ConfigMap::default()
    }
}

#[tokio::test]
async fn start_use_with_kube_and_kubectl_then_stop_leaves_nothing_behind() {
    let started = Instant::now();
    let env = TestEnv::start().await.expect("start control plane");
    eprintln!("started in {:?}: {env:?}", started.elapsed());
    assert!(!env.is_existing_cluster());

    let namespaces: Api<Namespace> = Api::all(env.client());
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some("smoke".to_owned()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    namespaces
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap();

    let config_maps: Api<ConfigMap> = Api::namespaced(env.client(), "smoke");
    config_maps
        .create(
            &PostParams::default(),
            &config_map("settings", &[("colour", "blue")]),
        )
        .await
        .unwrap();
    let read = config_maps.get("settings").await.unwrap();
    assert_eq!(read.data.unwrap()["colour"], "blue");

    let output = env
        .kubectl()
        .unwrap()
        .args([
            "get",
            "configmaps",
            "--namespace",
            "smoke",
            "--output",
            "name",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "kubectl failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.lines().any(|line| line == "configmap/settings"),
        "{stdout}"
    );

    // The kubeconfig is also usable without the helper.
    let kubeconfig = std::fs::read_to_string(env.kubeconfig_path()).unwrap();
    assert!(kubeconfig.contains(&env.apiserver_url().to_string()));
    assert!(
        env.ca_pem()
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE-----")
    );

    let pids = env.process_ids();
    let data_dir = env.data_dir().to_owned();
    assert_eq!(pids.len(), 2, "etcd and kube-apiserver");
    assert!(pids.iter().all(|&pid| process_exists(pid)));
    assert!(data_dir.join("kube-apiserver.log").is_file());

    let stopping = Instant::now();
    env.stop().expect("clean stop");
    eprintln!("stopped in {:?}", stopping.elapsed());
    for pid in pids {
        assert!(!process_exists(pid), "process {pid} survived the stop");
    }
    assert!(
        !data_dir.exists(),
        "{} survived the stop",
        data_dir.display()
    );
}

#[tokio::test]
async fn a_panicking_test_still_cleans_up() {
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let env = TestEnv::start().await.expect("start control plane");
        let _ = sender.send((env.process_ids(), env.data_dir().to_owned()));
        panic!("a failing assertion in a test");
    });
    let err = task.await.unwrap_err();
    assert!(err.is_panic());

    let (pids, data_dir) = receiver.await.unwrap();
    assert_eq!(pids.len(), 2);
    for pid in pids {
        assert!(!process_exists(pid), "process {pid} survived the panic");
    }
    assert!(
        !data_dir.exists(),
        "{} survived the panic",
        data_dir.display()
    );
}

#[tokio::test]
async fn a_failed_start_quotes_the_log_and_cleans_up() {
    let err = TestEnv::builder()
        .apiserver_arg("--no-such-flag=1")
        .start()
        .await
        .unwrap_err();
    let Error::Exited {
        process, log, tail, ..
    } = &err
    else {
        panic!("expected Exited, got {err}");
    };
    assert_eq!(*process, "kube-apiserver");
    assert!(tail.contains("unknown flag: --no-such-flag"), "{err}");
    assert!(err.to_string().contains("unknown flag"), "{err}");
    let data_dir = log.parent().unwrap();
    assert!(
        !data_dir.exists(),
        "{} survived the failed start",
        data_dir.display()
    );
}

#[tokio::test]
async fn a_start_timeout_is_reported_with_the_log() {
    let err = TestEnv::builder()
        .start_timeout(Duration::from_millis(1))
        .start()
        .await
        .unwrap_err();
    let Error::StartTimeout {
        waiting_for, log, ..
    } = &err
    else {
        panic!("expected StartTimeout, got {err}");
    };
    assert_eq!(*waiting_for, "kube-apiserver");
    assert!(err.to_string().contains("start_timeout"), "{err}");
    assert!(!log.parent().unwrap().exists());
}

#[tokio::test]
async fn other_identities_get_only_what_rbac_grants() {
    let env = TestEnv::start().await.expect("start control plane");
    let admin = env.client();

    // A ServiceAccount token: proves the service-account signing key and issuer are set up.
    let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), "default");
    let mut account = ServiceAccount::default();
    account.metadata.name = Some("reader".to_owned());
    accounts
        .create(&PostParams::default(), &account)
        .await
        .unwrap();
    let token_request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec![],
            expiration_seconds: Some(600),
            ..TokenRequestSpec::default()
        },
        ..TokenRequest::default()
    };
    let token = accounts
        .create_token_request("reader", &PostParams::default(), &token_request)
        .await
        .unwrap()
        .status
        .unwrap()
        .token;
    let as_reader = Client::try_from(env.config_for_token(&token)).unwrap();
    let as_jane = Client::try_from(env.config_for_user("jane", &["devs"]).unwrap()).unwrap();

    let list = |client: Client| async move {
        Api::<ConfigMap>::namespaced(client, "default")
            .list(&Default::default())
            .await
    };
    for client in [as_reader.clone(), as_jane.clone()] {
        match list(client).await {
            Err(kube::Error::Api(status)) => assert_eq!(status.code, 403, "{status:?}"),
            other => panic!("expected 403 Forbidden, got {other:?}"),
        }
    }

    let role = Role {
        metadata: ObjectMeta {
            name: Some("configmap-reader".to_owned()),
            ..ObjectMeta::default()
        },
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["configmaps".to_owned()]),
            verbs: vec!["get".to_owned(), "list".to_owned()],
            ..PolicyRule::default()
        }]),
    };
    Api::<Role>::namespaced(admin.clone(), "default")
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    let binding = RoleBinding {
        metadata: ObjectMeta {
            name: Some("configmap-readers".to_owned()),
            ..ObjectMeta::default()
        },
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".to_owned(),
            kind: "Role".to_owned(),
            name: "configmap-reader".to_owned(),
        },
        subjects: Some(vec![
            Subject {
                kind: "ServiceAccount".to_owned(),
                name: "reader".to_owned(),
                namespace: Some("default".to_owned()),
                ..Subject::default()
            },
            Subject {
                kind: "Group".to_owned(),
                name: "devs".to_owned(),
                api_group: Some("rbac.authorization.k8s.io".to_owned()),
                ..Subject::default()
            },
        ]),
    };
    Api::<RoleBinding>::namespaced(admin, "default")
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    // The RBAC authorizer reads bindings from an informer cache: allow it to catch up.
    let allowed = |client: Client| async move {
        eventually(Duration::from_secs(10), || async {
            list(client.clone()).await.is_ok()
        })
        .await
    };
    assert!(
        allowed(as_reader).await,
        "the bound ServiceAccount may list"
    );
    assert!(
        allowed(as_jane).await,
        "a member of the bound group may list"
    );

    // A kubeconfig for another identity works with kubectl too.
    let kubeconfig = env.data_dir().join("jane.kubeconfig");
    env.write_kubeconfig(
        &env.config_for_user("jane", &["devs"]).unwrap(),
        &kubeconfig,
    )
    .unwrap();
    let can_i = |verb: &str| {
        let output = env
            .kubectl()
            .unwrap()
            .arg(format!("--kubeconfig={}", kubeconfig.display()))
            .args([
                "auth",
                "can-i",
                verb,
                "configmaps",
                "--namespace",
                "default",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    };
    assert_eq!(can_i("list"), "yes");
    assert_eq!(can_i("delete"), "no");
}

#[tokio::test]
async fn a_taken_port_makes_start_try_again_with_new_ports() {
    // A stand-in etcd that fails like one whose port was taken between choosing and binding.
    use std::os::unix::fs::PermissionsExt;
    let assets = tempfile::tempdir().unwrap();
    let etcd = assets.path().join("etcd");
    std::fs::write(
        &etcd,
        "#!/bin/sh\necho 'listen tcp 127.0.0.1:2379: bind: address already in use' >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&etcd, std::fs::Permissions::from_mode(0o755)).unwrap();
    let apiserver = testenv::find_binary(testenv::Binary::KubeApiserver, |name| {
        std::env::var_os(name)
    })
    .unwrap();

    let err = TestEnv::builder()
        .env(crate::util::env_of(&[
            ("TEST_ASSET_ETCD", &etcd),
            ("TEST_ASSET_KUBE_APISERVER", &apiserver),
        ]))
        .start()
        .await
        .unwrap_err();
    let Error::PortsInUse {
        process, attempts, ..
    } = &err
    else {
        panic!("expected PortsInUse, got {err}");
    };
    assert_eq!((*process, *attempts), ("etcd", 3));
}

#[tokio::test]
async fn use_existing_cluster_starts_nothing_and_uses_the_kubeconfig() {
    let local = TestEnv::start().await.expect("start control plane");
    let kubectl =
        testenv::find_binary(testenv::Binary::Kubectl, |name| std::env::var_os(name)).unwrap();
    let existing = TestEnv::builder()
        .env(crate::util::env_of(&[
            ("USE_EXISTING_CLUSTER", std::path::Path::new("true")),
            ("KUBECONFIG", local.kubeconfig_path()),
            ("TEST_ASSET_KUBECTL", &kubectl),
        ]))
        .start()
        .await
        .expect("use the local control plane as an existing cluster");
    assert!(existing.is_existing_cluster());
    assert!(existing.process_ids().is_empty());
    assert_eq!(existing.apiserver_url(), local.apiserver_url());
    assert_eq!(existing.ca_pem(), local.ca_pem());

    Api::<ConfigMap>::namespaced(existing.client(), "default")
        .create(&PostParams::default(), &config_map("via-existing", &[]))
        .await
        .unwrap();
    let output = existing
        .kubectl()
        .unwrap()
        .args(["get", "configmap", "via-existing", "--output", "name"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "configmap/via-existing"
    );

    // Dropping the handle leaves the cluster alone.
    let data_dir = existing.data_dir().to_owned();
    drop(existing);
    assert!(!data_dir.exists());
    assert!(local.process_ids().into_iter().all(process_exists));
    Api::<ConfigMap>::namespaced(local.client(), "default")
        .get("via-existing")
        .await
        .unwrap();
}
