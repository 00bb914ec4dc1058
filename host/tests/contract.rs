//! Contract 0.2.0 through the real `Host` on a real control plane: finalizers and cleanup,
//! selectors, watches with mappers, `list` from the caches, `delete` of controlled objects
//! only, one watch per kind shared by plugins, the `configmap-mirror` example end to end, and
//! a plugin built against 0.1.0 beside them.
//!
//! Most of it is seen through `contract-probe` (test-plugins/), which records an Event with a
//! nonce on every call: counting its Events counts its calls.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, ServiceAccount};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::hostile::{Arena, CONVERGE_UNDER_ATTACK, HostUnderTest, NS};
use crate::util::{built_plugin, events_regarding, eventually};

const FINALIZER: &str = "probe.wasm-reconciler.dev/cleanup";
const MIRROR_FINALIZER: &str = "mirror.wasm-reconciler.dev/cleanup";
/// How long a test watches for a call that must not come.
const QUIET: Duration = Duration::from_secs(3);

fn config_maps(arena: &Arena) -> Api<ConfigMap> {
    Api::namespaced(arena.client(), NS)
}

/// Creates the ConfigMap `name` with `labels` and `data`; returns its uid.
async fn create_config_map(
    arena: &Arena,
    name: &str,
    labels: &[(&str, &str)],
    data: &[(&str, &str)],
) -> String {
    let object: ConfigMap = serde_json::from_value(json!({
        "metadata": {
            "name": name,
            "labels": labels.iter().copied().collect::<BTreeMap<_, _>>(),
        },
        "data": data.iter().copied().collect::<BTreeMap<_, _>>(),
    }))
    .expect("ConfigMap");
    config_maps(arena)
        .create(&PostParams::default(), &object)
        .await
        .expect("create ConfigMap")
        .metadata
        .uid
        .expect("uid")
}

async fn merge_patch(arena: &Arena, name: &str, patch: serde_json::Value) {
    config_maps(arena)
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patch ConfigMap");
}

/// The messages of the Events with `reason` about the object with `uid`, oldest first.
async fn messages(arena: &Arena, uid: &str, reason: &str) -> Vec<String> {
    let mut events: Vec<_> = events_regarding(&arena.client(), NS, uid)
        .await
        .into_iter()
        .filter(|event| event.reason.as_deref() == Some(reason))
        .collect();
    events.sort_by(|a, b| {
        a.event_time
            .as_ref()
            .map(|t| t.0)
            .cmp(&b.event_time.as_ref().map(|t| t.0))
    });
    events.into_iter().filter_map(|event| event.note).collect()
}

/// How many times an Event with `reason` was recorded about `uid`: repeats of one message
/// are one Event with a count.
async fn occurrences(arena: &Arena, uid: &str, reason: &str) -> i32 {
    events_regarding(&arena.client(), NS, uid)
        .await
        .into_iter()
        .filter(|event| event.reason.as_deref() == Some(reason))
        .map(|event| {
            event
                .series
                .map_or(event.deprecated_count.unwrap_or(1).max(1), |s| s.count)
        })
        .sum()
}

/// Waits until there are at least `count` Events with `reason` about `uid`.
async fn at_least(arena: &Arena, uid: &str, reason: &str, count: usize) -> Vec<String> {
    eventually(&format!("{count} {reason} Events"), || async {
        let found = messages(arena, uid, reason).await;
        (found.len() >= count).then_some(found)
    })
    .await
}

/// Waits until the probe's calls on `uid` stop coming for a while; returns how many there were.
async fn settled(arena: &Arena, uid: &str) -> usize {
    let mut last = messages(arena, uid, "Reconciled").await.len();
    loop {
        tokio::time::sleep(QUIET).await;
        let now = messages(arena, uid, "Reconciled").await.len();
        if now == last && now > 0 {
            return now;
        }
        last = now;
    }
}

async fn finalizers(arena: &Arena, name: &str) -> Option<Vec<String>> {
    config_maps(arena)
        .get_opt(name)
        .await
        .expect("get ConfigMap")
        .map(|object| object.metadata.finalizers.unwrap_or_default())
}

async fn gone(arena: &Arena, name: &str) {
    eventually(&format!("{name} to be gone"), || async {
        finalizers(arena, name).await.is_none().then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_finalizer_goes_on_first_cleanup_runs_on_delete_and_failures_are_retried() {
    let arena = Arena::new().await;
    let host = HostUnderTest::start(
        &arena,
        &[&built_plugin("contract_probe"), &built_plugin("myresource")],
        |host| host,
    )
    .await;
    host.ready().await;
    let outsider = create_config_map(&arena, "outsider", &[], &[]).await;

    // Before its first reconcile, the object carries the finalizer: every call saw it.
    let first = create_config_map(&arena, "first", &[("probe", "true")], &[]).await;
    let seen = at_least(&arena, &first, "Reconciled", 1).await;
    assert!(
        seen.iter().all(|message| message.contains(FINALIZER)),
        "{seen:?}"
    );
    assert_eq!(
        finalizers(&arena, "first").await,
        Some(vec![FINALIZER.into()])
    );

    // Deleted: cleanup runs (its Event on the object), the finalizer goes, so does the object.
    config_maps(&arena)
        .delete("first", &DeleteParams::default())
        .await
        .expect("delete");
    at_least(&arena, &first, "CleanedUp", 1).await;
    gone(&arena, "first").await;

    // A failing cleanup is retried, with backoff, and the object waits for it.
    let failing = create_config_map(
        &arena,
        "failing",
        &[("probe", "true")],
        &[("cleanup", "fail")],
    )
    .await;
    at_least(&arena, &failing, "Reconciled", 1).await;
    config_maps(&arena)
        .delete("failing", &DeleteParams::default())
        .await
        .expect("delete");
    at_least(&arena, &failing, "CleanupFailed", 3).await;
    assert_eq!(
        finalizers(&arena, "failing").await,
        Some(vec![FINALIZER.into()]),
        "the object stays while its cleanup fails"
    );
    let reconciles = messages(&arena, &failing, "Reconciled").await.len();
    merge_patch(&arena, "failing", json!({"data": {"cleanup": "ok"}})).await;
    at_least(&arena, &failing, "CleanedUp", 1).await;
    gone(&arena, "failing").await;
    assert_eq!(
        messages(&arena, &failing, "Reconciled").await.len(),
        reconciles,
        "reconcile is never called on an object being deleted"
    );

    // An object whose labels stop matching the selector leaves the plugin: cleaned up and
    // released, though it stays.
    let leaving = create_config_map(&arena, "leaving", &[("probe", "true")], &[]).await;
    at_least(&arena, &leaving, "Reconciled", 1).await;
    merge_patch(
        &arena,
        "leaving",
        json!({"metadata": {"labels": {"probe": null}}}),
    )
    .await;
    at_least(&arena, &leaving, "CleanedUp", 1).await;
    eventually("the finalizer to leave with the object", || async {
        (finalizers(&arena, "leaving").await == Some(Vec::new())).then_some(())
    })
    .await;

    // The selector kept the unlabelled ConfigMap out all along.
    assert_eq!(finalizers(&arena, "outsider").await, Some(Vec::new()));
    assert!(
        events_regarding(&arena.client(), NS, &outsider)
            .await
            .is_empty()
    );
    let took = arena.example_converges("beside-the-probe").await;
    assert!(took < CONVERGE_UNDER_ATTACK, "{took:?}");
    host.stop().await;
}

#[tokio::test]
async fn watches_and_owned_objects_requeue_exactly_the_objects_they_map_to() {
    let arena = Arena::new().await;
    let host = HostUnderTest::start(&arena, &[&built_plugin("contract_probe")], |host| host).await;
    host.ready().await;
    let a = create_config_map(&arena, "a", &[("probe", "true")], &[]).await;
    let b = create_config_map(&arena, "b", &[("probe", "true")], &[]).await;
    let (mut calls_a, mut calls_b) = (settled(&arena, &a).await, settled(&arena, &b).await);

    // By label: a Secret naming `a` requeues `a` only, and `a` lists it from the cache.
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "for-a", "labels": {"probe.wasm-reconciler.dev/for": "a"}},
        "stringData": {"k": "v"},
    }))
    .expect("Secret");
    Api::<Secret>::namespaced(arena.client(), NS)
        .create(&PostParams::default(), &secret)
        .await
        .expect("create Secret");
    let seen = at_least(&arena, &a, "Reconciled", calls_a + 1).await;
    assert!(
        seen.last().is_some_and(|m| m.contains("secrets=[for-a@")),
        "{seen:?}"
    );
    calls_a = settled(&arena, &a).await;
    assert_eq!(messages(&arena, &b, "Reconciled").await.len(), calls_b);

    // By owner reference, not a controller one: a ServiceAccount owned by `b` requeues `b`.
    let account: ServiceAccount = serde_json::from_value(json!({
        "metadata": {"name": "owned-by-b", "ownerReferences": [{
            "apiVersion": "v1", "kind": "ConfigMap", "name": "b", "uid": b,
        }]},
    }))
    .expect("ServiceAccount");
    Api::<ServiceAccount>::namespaced(arena.client(), NS)
        .create(&PostParams::default(), &account)
        .await
        .expect("create ServiceAccount");
    at_least(&arena, &b, "Reconciled", calls_b + 1).await;
    calls_b = settled(&arena, &b).await;
    assert_eq!(messages(&arena, &a, "Reconciled").await.len(), calls_a);

    // An owned object changed behind the plugin's back requeues its owner only.
    merge_patch(&arena, "a-owned", json!({"data": {"touched": "1"}})).await;
    let seen = at_least(&arena, &a, "Reconciled", calls_a + 1).await;
    assert!(seen.iter().any(|m| m.contains("owned=\"1\"")), "{seen:?}");
    calls_a = settled(&arena, &a).await;
    assert_eq!(messages(&arena, &b, "Reconciled").await.len(), calls_b);

    // By namespace: a Lease requeues every probe in its namespace.
    let lease: Lease = serde_json::from_value(json!({"metadata": {"name": "any"}})).expect("Lease");
    Api::<Lease>::namespaced(arena.client(), NS)
        .create(&PostParams::default(), &lease)
        .await
        .expect("create Lease");
    at_least(&arena, &a, "Reconciled", calls_a + 1).await;
    at_least(&arena, &b, "Reconciled", calls_b + 1).await;
    host.stop().await;
}

#[tokio::test]
async fn delete_takes_only_objects_the_reconciled_object_controls() {
    let arena = Arena::new().await;
    let host = HostUnderTest::start(&arena, &[&built_plugin("contract_probe")], |host| host).await;
    host.ready().await;
    create_config_map(&arena, "victim", &[], &[]).await;
    let thief = create_config_map(
        &arena,
        "thief",
        &[("probe", "true")],
        &[("delete", "victim")],
    )
    .await;
    let results = at_least(&arena, &thief, "DeleteResult", 1).await;
    assert!(
        results[0].contains("delete victim failed: forbidden"),
        "{results:?}"
    );
    assert!(
        finalizers(&arena, "victim").await.is_some(),
        "victim survives"
    );

    let owner = create_config_map(&arena, "owner", &[("probe", "true")], &[]).await;
    at_least(&arena, &owner, "Reconciled", 1).await;
    assert!(finalizers(&arena, "owner-owned").await.is_some());
    merge_patch(&arena, "owner", json!({"data": {"delete": "owner-owned"}})).await;
    let results = at_least(&arena, &owner, "DeleteResult", 1).await;
    assert!(
        results[0].contains("deleted owner-owned: existed=true"),
        "{results:?}"
    );
    gone(&arena, "owner-owned").await;

    // Nor can an object be made to own itself, which would keep it from ever going.
    let narcissus = create_config_map(
        &arena,
        "narcissus",
        &[("probe", "true")],
        &[("apply-self", "yes")],
    )
    .await;
    let results = at_least(&arena, &narcissus, "ApplySelfResult", 1).await;
    assert!(
        results[0].contains("apply itself failed: invalid")
            && results[0].contains("cannot own itself"),
        "{results:?}"
    );
    let stored = config_maps(&arena).get("narcissus").await.expect("get");
    assert_eq!(stored.metadata.owner_references, None);
    host.stop().await;
}

#[tokio::test]
async fn the_mirror_example_mirrors_deletes_and_cleans_up() {
    let arena = Arena::new().await;
    let host = HostUnderTest::start(
        &arena,
        &[
            &built_plugin("configmap_mirror"),
            &built_plugin("myresource"),
        ],
        |host| host,
    )
    .await;
    host.ready().await;
    let source = create_config_map(&arena, "source", &[("mirror", "true")], &[("k", "v1")]).await;
    let mirror = eventually("the mirror", || async {
        config_maps(&arena)
            .get_opt("source-mirror")
            .await
            .expect("get")
    })
    .await;
    assert_eq!(
        mirror
            .data
            .as_ref()
            .and_then(|d| d.get("k"))
            .map(String::as_str),
        Some("v1")
    );
    assert_eq!(
        finalizers(&arena, "source").await,
        Some(vec![MIRROR_FINALIZER.into()])
    );

    // A change is mirrored.
    merge_patch(&arena, "source", json!({"data": {"k": "v2"}})).await;
    eventually("the mirror to follow", || async {
        let mirror = config_maps(&arena).get("source-mirror").await.expect("get");
        (mirror.data.and_then(|d| d.get("k").cloned()).as_deref() == Some("v2")).then_some(())
    })
    .await;

    // Too large: a Warning.
    let large = "x".repeat(2048);
    let big = create_config_map(&arena, "big", &[("mirror", "true")], &[("k", &large)]).await;
    at_least(&arena, &big, "TooLarge", 1).await;
    assert!(finalizers(&arena, "big-mirror").await.is_none());

    // The label removed: the mirror goes, the source is released and stays.
    merge_patch(
        &arena,
        "source",
        json!({"metadata": {"labels": {"mirror": null}}}),
    )
    .await;
    gone(&arena, "source-mirror").await;
    at_least(&arena, &source, "MirrorRemoved", 1).await;
    eventually("the source to be released", || async {
        (finalizers(&arena, "source").await == Some(Vec::new())).then_some(())
    })
    .await;

    // Mirrored again, then deleted: cleanup records an Event and the source goes.
    merge_patch(
        &arena,
        "source",
        json!({"metadata": {"labels": {"mirror": "true"}}}),
    )
    .await;
    eventually("the mirror again", || async {
        config_maps(&arena)
            .get_opt("source-mirror")
            .await
            .expect("get")
    })
    .await;
    config_maps(&arena)
        .delete("source", &DeleteParams::default())
        .await
        .expect("delete");
    gone(&arena, "source").await;
    eventually("a second MirrorRemoved", || async {
        (occurrences(&arena, &source, "MirrorRemoved").await >= 2).then_some(())
    })
    .await;
    gone(&arena, "source-mirror").await;
    let took = arena.example_converges("beside-the-mirror").await;
    assert!(took < CONVERGE_UNDER_ATTACK, "{took:?}");
    host.stop().await;
}

#[tokio::test]
async fn a_plugin_built_against_0_1_0_still_works() {
    let arena = Arena::new().await;
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/myresource-0.1.0.wasm");
    let host = HostUnderTest::start(
        &arena,
        &[&fixture, &built_plugin("configmap_mirror")],
        |host| host,
    )
    .await;
    host.ready().await;
    let took = arena.example_converges("built-against-0-1-0").await;
    assert!(took < CONVERGE_UNDER_ATTACK, "{took:?}");
    // The 0.1.0 plugin declares no finalizer: the host adds none.
    let resources = crate::util::dynamic_api(&arena.client(), NS, crate::util::MYRESOURCE);
    let object = resources.get("built-against-0-1-0").await.expect("get");
    assert!(object.metadata.finalizers.is_none(), "{object:?}");
    host.stop().await;
}

/// The API server's open cluster-wide WATCH requests on `resource`, from its own metrics
/// (the API server itself watches a few ConfigMaps in one namespace).
async fn open_watches(arena: &Arena, resource: &str) -> f64 {
    let request = http::Request::get("/metrics")
        .body(Vec::new())
        .expect("request");
    let text = arena
        .client()
        .request_text(request)
        .await
        .expect("API server metrics");
    text.lines()
        .filter(|line| line.starts_with("apiserver_longrunning_requests{"))
        .filter(|line| line.contains(&format!("resource=\"{resource}\"")))
        .filter(|line| line.contains("verb=\"WATCH\""))
        .filter(|line| line.contains("scope=\"cluster\""))
        .filter_map(|line| line.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn plugins_declaring_the_same_kind_share_one_watch() {
    let arena = Arena::new().await;
    let before = open_watches(&arena, "configmaps").await;
    // Both reconcile every ConfigMap: one cache, so one watch, between them.
    let host = HostUnderTest::start(
        &arena,
        &[&built_plugin("greeter"), &built_plugin("event_storm")],
        |host| host,
    )
    .await;
    host.ready().await;
    let watches = eventually("the ConfigMap watch to be open", || async {
        let open = open_watches(&arena, "configmaps").await - before;
        (open > 0.0).then_some(open)
    })
    .await;
    // Give a second watch, if there were one, the time to open.
    tokio::time::sleep(QUIET).await;
    let watches = watches.max(open_watches(&arena, "configmaps").await - before);
    assert_eq!(watches, 1.0, "two plugins, one watch on ConfigMaps");
    host.stop().await;
}

async fn create_namespace(arena: &Arena, name: &str) {
    let namespace: k8s_openapi::api::core::v1::Namespace =
        serde_json::from_value(json!({"metadata": {"name": name}})).expect("Namespace");
    Api::all(arena.client())
        .create(&PostParams::default(), &namespace)
        .await
        .expect("create namespace");
}

#[tokio::test]
async fn objects_outside_the_declared_namespaces_never_reach_the_plugin() {
    let arena = Arena::new().await;
    create_namespace(&arena, "second").await;
    create_namespace(&arena, "outside").await;
    let host = HostUnderTest::start(&arena, &[&built_plugin("contract_probe")], |host| host).await;
    host.ready().await;
    let labelled: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "p", "labels": {"probe": "true"}}}))
            .expect("ConfigMap");
    let mut uids = BTreeMap::new();
    for namespace in ["outside", "second"] {
        let created = Api::<ConfigMap>::namespaced(arena.client(), namespace)
            .create(&PostParams::default(), &labelled)
            .await
            .expect("create ConfigMap");
        uids.insert(namespace, created.metadata.uid.expect("uid"));
    }
    let reconciled = |namespace: &'static str| {
        let (client, uid) = (arena.client(), uids[namespace].clone());
        async move {
            events_regarding(&client, namespace, &uid)
                .await
                .into_iter()
                .any(|event| event.reason.as_deref() == Some("Reconciled"))
        }
    };
    eventually(
        "the probe in a declared namespace to be reconciled",
        || async { reconciled("second").await.then_some(()) },
    )
    .await;
    tokio::time::sleep(QUIET).await;
    assert!(
        !reconciled("outside").await,
        "outside the plugin's namespaces"
    );
    let outside = Api::<ConfigMap>::namespaced(arena.client(), "outside")
        .get("p")
        .await
        .expect("get");
    assert_eq!(outside.metadata.finalizers, None);
    host.stop().await;
}

#[tokio::test]
async fn a_plugin_that_asks_for_a_resync_is_reconciled_again_without_changes() {
    let arena = Arena::new().await;
    let host = HostUnderTest::start(&arena, &[&built_plugin("resync_probe")], |host| host).await;
    host.ready().await;
    let uid = create_config_map(&arena, "again", &[("resync", "true")], &[]).await;
    // Created: one reconcile. Nothing changes after that, so every further one is a resync
    // (every 2 s).
    at_least(&arena, &uid, "Resynced", 3).await;
    host.stop().await;
}
