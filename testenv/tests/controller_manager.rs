//! The opt-in kube-controller-manager: owner-reference garbage collection and namespace
//! deletion work.

use std::time::{Duration, Instant};

use k8s_openapi::{
    api::core::v1::{ConfigMap, Namespace},
    apimachinery::pkg::apis::meta::v1::OwnerReference,
};
use kube::{
    Api,
    api::{DeleteParams, ObjectMeta, PostParams},
};
use testenv::TestEnv;

use crate::util::{eventually, process_exists};

#[tokio::test]
async fn deleting_an_owner_garbage_collects_its_dependents() {
    let started = Instant::now();
    let env = TestEnv::builder()
        .with_controller_manager(true)
        .start()
        .await
        .expect("start control plane with kube-controller-manager");
    eprintln!(
        "started with kube-controller-manager in {:?}",
        started.elapsed()
    );
    assert_eq!(env.process_ids().len(), 3);

    let config_maps: Api<ConfigMap> = Api::namespaced(env.client(), "default");
    let mut owner = ConfigMap::default();
    owner.metadata.name = Some("owner".to_owned());
    let owner = config_maps
        .create(&PostParams::default(), &owner)
        .await
        .unwrap();
    let dependent = ConfigMap {
        metadata: ObjectMeta {
            name: Some("dependent".to_owned()),
            owner_references: Some(vec![OwnerReference {
                api_version: "v1".to_owned(),
                kind: "ConfigMap".to_owned(),
                name: "owner".to_owned(),
                uid: owner.metadata.uid.clone().unwrap(),
                ..OwnerReference::default()
            }]),
            ..ObjectMeta::default()
        },
        ..ConfigMap::default()
    };
    config_maps
        .create(&PostParams::default(), &dependent)
        .await
        .unwrap();

    let deleting = Instant::now();
    config_maps
        .delete("owner", &DeleteParams::default())
        .await
        .unwrap();
    let collected = eventually(Duration::from_secs(60), || async {
        matches!(config_maps.get_opt("dependent").await, Ok(None))
    })
    .await;
    assert!(
        collected,
        "the dependent ConfigMap was not garbage-collected"
    );
    eprintln!(
        "dependent collected {:?} after deleting its owner",
        deleting.elapsed()
    );

    // The namespace controller finishes namespace deletion (without it, it stays Terminating).
    let namespaces: Api<Namespace> = Api::all(env.client());
    let mut namespace = Namespace::default();
    namespace.metadata.name = Some("doomed".to_owned());
    namespaces
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap();
    let mut content = ConfigMap::default();
    content.metadata.name = Some("content".to_owned());
    Api::<ConfigMap>::namespaced(env.client(), "doomed")
        .create(&PostParams::default(), &content)
        .await
        .unwrap();
    namespaces
        .delete("doomed", &DeleteParams::default())
        .await
        .unwrap();
    let gone = eventually(Duration::from_secs(60), || async {
        matches!(namespaces.get_opt("doomed").await, Ok(None))
    })
    .await;
    assert!(gone, "namespace `doomed` was not deleted");

    let pids = env.process_ids();
    drop(env);
    assert!(pids.into_iter().all(|pid| !process_exists(pid)));
}
