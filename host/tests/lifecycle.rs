//! Loading plugins: the compile cache across restarts, and compiling in a child process.

use std::path::{Path, PathBuf};

use wasm_reconciler::CompileIn;

use crate::hostile::{Arena, HostUnderTest};
use crate::util::{built_plugin, eventually, http_get};

/// The host binary, as `wasm-reconciler run` would find itself to compile in a child.
fn compile_in_child() -> CompileIn {
    CompileIn::Child(PathBuf::from(env!("CARGO_BIN_EXE_wasm-reconciler")))
}

/// The compile cache's entries under `dir`.
fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir.join("compiled-v1"))
        .expect("the cache directory exists")
        .map(|entry| entry.expect("cache directory entry").path())
        .collect();
    entries.sort();
    entries
}

/// Runs the example with `cache`, compiling in a child, until it converges on `name`; returns
/// how many components came from the cache and from a compile.
async fn start_converge_stop(arena: &Arena, cache: &Path, name: &str) -> (f64, f64) {
    let host = HostUnderTest::start(arena, &[&built_plugin("myresource")], |host| {
        host.cache_dir(cache).compile_in(compile_in_child())
    })
    .await;
    host.ready().await;
    arena.example_converges(name).await;
    let counts = (
        host.metric("wasm_reconciler_plugin_components_total{from=\"cache\"}"),
        host.metric("wasm_reconciler_plugin_components_total{from=\"compile\"}"),
    );
    host.stop().await;
    counts
}

#[tokio::test]
async fn a_restart_loads_from_the_compile_cache_and_a_corrupt_entry_is_compiled_again() {
    let arena = Arena::new().await;
    let cache = tempfile::tempdir().expect("cache dir");

    // First start: compiled (in a child process), and stored.
    assert_eq!(
        start_converge_stop(&arena, cache.path(), "first").await,
        (0.0, 1.0)
    );
    let stored = entries(cache.path());
    assert_eq!(stored.len(), 1, "one entry for the one plugin: {stored:?}");
    let entry = stored[0].clone();
    let entry_bytes = std::fs::read(&entry).expect("read entry");

    // A restart loads it from the cache, and prunes what no plugin uses.
    let unused = entry.with_file_name("0000-0000.cwasm");
    std::fs::write(&unused, b"left by an older plugin").expect("write unused entry");
    assert_eq!(
        start_converge_stop(&arena, cache.path(), "second").await,
        (1.0, 0.0)
    );
    assert_eq!(
        entries(cache.path()),
        std::slice::from_ref(&entry),
        "the unused entry is pruned"
    );

    // A truncated entry is noticed, compiled again and replaced.
    std::fs::write(&entry, &entry_bytes[..entry_bytes.len() - 100]).expect("truncate entry");
    assert_eq!(
        start_converge_stop(&arena, cache.path(), "third").await,
        (0.0, 1.0)
    );
    assert_eq!(
        std::fs::read(&entry).expect("read entry").len(),
        entry_bytes.len(),
        "the entry is whole again"
    );
}

#[tokio::test]
async fn a_component_the_compiler_process_rejects_is_skipped_with_its_reason() {
    let arena = Arena::new().await;
    let cache = tempfile::tempdir().expect("cache dir");
    let scratch = tempfile::tempdir().expect("dir");
    let corrupt = scratch.path().join("corrupt.wasm");
    std::fs::write(&corrupt, b"\0asm not really").expect("write corrupt plugin");
    let host = HostUnderTest::start(&arena, &[&built_plugin("myresource"), &corrupt], |host| {
        host.cache_dir(cache.path()).compile_in(compile_in_child())
    })
    .await;
    let body = eventually("/readyz to name the corrupt file", || async {
        let (_, body) = http_get(host.probes, "/readyz").await?;
        body.contains("[-]file/corrupt.wasm: ").then_some(body)
    })
    .await;
    assert!(
        body.contains("could not be compiled") && body.contains("the compiler process exit status"),
        "{body}"
    );
    arena.example_converges("beside-corrupt").await;
    host.stop().await;
}

/// Runs `wasm-reconciler check` with `args` in `dir`; returns its exit code and stdout.
fn check(dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_wasm-reconciler"))
        .arg("check")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run wasm-reconciler check");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn check_describes_the_example_and_prints_the_rbac_deploy_ships_for_it() {
    let plugin = built_plugin("myresource");
    let dir = plugin.parent().expect("plugin directory");
    let (code, out) = check(dir, &["myresource.wasm"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(
        out,
        "myresource.wasm: ok
  contract:   wasm-reconciler:plugin@0.2.0
  name:       myresource
  reconciles: mygroup.example.com/v1alpha1 MyResource
  owns:       apps/v1 Deployment
  reads:      (none)
  watches:    (none)
  selector:   (all objects)
  namespaces: (all)
  finalizer:  (none)
  max concurrent reconciles: 4
  permissions the host needs:
    mygroup.example.com myresources: get, list, watch
    mygroup.example.com myresources/status: patch
    mygroup.example.com myresources/finalizers: update
    apps deployments: get, list, watch, create, patch, delete
"
    );

    // The rules `--rbac` prints are the ones deploy/ ships for the example.
    let (code, out) = check(dir, &["--rbac", "myresource.wasm"]);
    assert_eq!(code, Some(0), "{out}");
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/plugins/myresource/rbac.yaml"
    ))
    .expect("read the shipped RBAC");
    assert_eq!(rules_of(&out), rules_of(&shipped), "{out}");
    assert!(out.contains("kind: ClusterRoleBinding"), "{out}");
}

/// The (apiGroups, resources, verbs) lines of RBAC YAML, comments and quotes aside.
fn rules_of(yaml: &str) -> Vec<String> {
    yaml.lines()
        .map(str::trim)
        .filter(|line| {
            ["- apiGroups:", "resources:", "verbs:"]
                .iter()
                .any(|key| line.starts_with(key))
        })
        .map(|line| line.replace('"', ""))
        .collect()
}

#[test]
fn check_fails_on_an_invalid_plugin_and_says_why() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("corrupt.wasm"), b"\0asm not really").expect("write");
    let (code, out) = check(dir.path(), &["corrupt.wasm"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.starts_with("corrupt.wasm: invalid: corrupt.wasm could not be compiled"),
        "{out}"
    );
}
