//! Hot reload through the real `Host` on a real control plane: plugins added, upgraded (in
//! place, or with a new controller when the kinds change), refused and removed while the host
//! runs, each step checked while the example plugin keeps converging beside them.

use std::path::Path;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use wasm_reconciler::Host;

use crate::hostile::{Arena, CONVERGE_UNDER_ATTACK, HostUnderTest, NS};
use crate::util::{built_plugin, events_regarding, eventually, http_get};

/// Puts `from` in the plugins directory as `name`, the way to upgrade atomically: written to
/// a hidden temporary file, then renamed into place.
fn install(dir: &Path, from: &Path, name: &str) {
    let staged = dir.join(format!(".{name}.tmp"));
    std::fs::copy(from, &staged).expect("stage plugin");
    std::fs::rename(&staged, dir.join(name)).expect("rename plugin into place");
}

/// Writes `bytes` as `name` in place, as a careless copy would.
fn overwrite(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::write(dir.join(name), bytes).expect("write plugin file");
}

impl HostUnderTest {
    async fn changes(&self, change: &str, count: f64) {
        let metric = format!("wasm_reconciler_plugin_changes_total{{change=\"{change}\"}}");
        eventually(&format!("{metric} to reach {count}"), || async {
            (self.metric(&metric) >= count).then_some(())
        })
        .await;
    }

    async fn readyz(&self) -> (u16, String) {
        http_get(self.probes, "/readyz")
            .await
            .expect("/readyz answers")
    }
}

/// Creates a ConfigMap asking the greeter to greet it, and returns which version did.
async fn greeted_by(arena: &Arena, name: &str) -> String {
    let mut config_map = ConfigMap::default();
    config_map.metadata.name = Some(name.to_owned());
    config_map.data = Some([("greet".to_owned(), "yes".to_owned())].into());
    let created = Api::<ConfigMap>::namespaced(arena.client(), NS)
        .create(&PostParams::default(), &config_map)
        .await
        .expect("create ConfigMap");
    let uid = created.metadata.uid.expect("uid");
    eventually(&format!("a Greeted Event on {name}"), || async {
        greetings(arena, &uid).await.into_iter().next()
    })
    .await
}

/// The messages of the Greeted Events on the ConfigMap with `uid`.
async fn greetings(arena: &Arena, uid: &str) -> Vec<String> {
    events_regarding(&arena.client(), NS, uid)
        .await
        .into_iter()
        .filter(|event| event.reason.as_deref() == Some("Greeted"))
        .filter_map(|event| event.note)
        .collect()
}

/// Waits until the ConfigMap `name` has been greeted by `version`.
async fn regreeted(arena: &Arena, name: &str, version: &str) {
    let uid = Api::<ConfigMap>::namespaced(arena.client(), NS)
        .get(name)
        .await
        .expect("get ConfigMap")
        .metadata
        .uid
        .expect("uid");
    let message = format!("greeted by {version}");
    eventually(&format!("{name} to be greeted by {version}"), || async {
        greetings(arena, &uid)
            .await
            .contains(&message)
            .then_some(())
    })
    .await;
}

async fn example_still_converges(arena: &Arena, name: &str) {
    let took = arena.example_converges(name).await;
    assert!(took < CONVERGE_UNDER_ATTACK, "{name} took {took:?}");
}

#[tokio::test]
async fn plugins_are_added_upgraded_refused_and_removed_while_the_example_keeps_converging() {
    let arena = Arena::new().await;
    let host =
        HostUnderTest::start(&arena, &[&built_plugin("myresource")], |host: Host| host).await;
    host.ready().await;
    let dir = host.plugins_dir().to_owned();
    example_still_converges(&arena, "before").await;

    // A new file: loaded, and its controller started.
    install(&dir, &built_plugin("greeter"), "greeter.wasm");
    host.changes("added", 1.0).await;
    assert_eq!(greeted_by(&arena, "one").await, "greeted by v1");
    example_still_converges(&arena, "after-add").await;

    // A new version with the same kinds: swapped under the running controller, which
    // reconciles every object again on it.
    install(&dir, &built_plugin("greeter_v2"), "greeter.wasm");
    host.changes("swapped", 1.0).await;
    regreeted(&arena, "one", "v2").await;
    assert_eq!(greeted_by(&arena, "two").await, "greeted by v2");
    assert_eq!(
        host.metric("wasm_reconciler_plugin_changes_total{change=\"restarted\"}"),
        0.0
    );

    // A version that does not load, written in place: the running version keeps serving, and
    // the host stays ready.
    overwrite(&dir, "greeter.wasm", b"\0asm not a component");
    host.changes("failed", 1.0).await;
    assert_eq!(
        host.metric("wasm_reconciler_plugin_upgrade_failed{plugin=\"greeter\"}"),
        1.0
    );
    assert_eq!(greeted_by(&arena, "three").await, "greeted by v2");
    let (code, body) = host.readyz().await;
    assert_eq!(code, 200, "{body}");
    example_still_converges(&arena, "after-failed-upgrade").await;

    // A version with other kinds: a new controller, once the old one has stopped.
    install(&dir, &built_plugin("greeter_v3"), "greeter.wasm");
    host.changes("restarted", 1.0).await;
    regreeted(&arena, "one", "v3").await;
    assert_eq!(greeted_by(&arena, "four").await, "greeted by v3");
    assert_eq!(
        host.metric("wasm_reconciler_plugin_upgrade_failed{plugin=\"greeter\"}"),
        0.0
    );

    // A file claiming a running plugin's name: refused, the running plugin untouched; the
    // host is not ready while the directory holds a plugin it cannot run.
    install(&dir, &built_plugin("impostor"), "impostor.wasm");
    host.changes("failed", 2.0).await;
    let (code, body) = host.readyz().await;
    assert_eq!(code, 503, "{body}");
    assert!(
        body.contains("file/impostor.wasm") && body.contains("\"myresource\""),
        "{body}"
    );
    example_still_converges(&arena, "beside-impostor").await;
    std::fs::remove_file(dir.join("impostor.wasm")).expect("remove impostor");
    eventually("/readyz to be 200 again", || async {
        (host.readyz().await.0 == 200).then_some(())
    })
    .await;

    // A removed file: its controller stops; nothing greets any more.
    std::fs::remove_file(dir.join("greeter.wasm")).expect("remove greeter");
    host.changes("removed", 1.0).await;
    eventually("the greeter's version metric to go", || async {
        (!host.metrics.encode().contains("plugin=\"greeter\",file=")).then_some(())
    })
    .await;
    assert_eq!(host.metric("wasm_reconciler_plugins_loaded"), 1.0);
    example_still_converges(&arena, "after-remove").await;

    // Two files with one name: the second is refused while the first runs, and runs once the
    // first is gone.
    install(&dir, &built_plugin("greeter"), "a.wasm");
    host.changes("added", 2.0).await;
    install(&dir, &built_plugin("greeter_v2"), "b.wasm");
    host.changes("failed", 3.0).await;
    assert_eq!(greeted_by(&arena, "five").await, "greeted by v1");
    std::fs::remove_file(dir.join("a.wasm")).expect("remove a.wasm");
    host.changes("added", 3.0).await;
    assert_eq!(greeted_by(&arena, "six").await, "greeted by v2");

    host.stop().await;
}
