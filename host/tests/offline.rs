//! `wasm-reconciler reconcile`: the built binary runs one reconcile of the example plugin
//! offline, and its output is compared with golden files in `golden/reconcile/`, beside the
//! input files. No control plane.
//!
//! When the output changes on purpose, regenerate the golden files and review the diff:
//!
//! ```sh
//! WASM_RECONCILER_BLESS=1 cargo test -p wasm-reconciler --test tests offline::
//! ```

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::util::{MYRESOURCE_CRD, built_plugin};

/// Set to write the actual outputs into the golden files instead of comparing.
const BLESS: &str = "WASM_RECONCILER_BLESS";
/// The example's MyResource, as the guide runs it.
const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../plugins/myresource/manifests/sample.yaml"
);

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/reconcile")
}

/// Runs `wasm-reconciler reconcile` with `args` in the golden directory.
fn reconcile(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_wasm-reconciler"))
        .arg("reconcile")
        .args(args)
        .current_dir(golden_dir())
        // Errors read the same with or without a backtrace in the environment.
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .output()
        .expect("run wasm-reconciler reconcile")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs the example plugin with `args`, expects exit 0 and stdout equal to `golden`.
fn assert_golden(golden: &str, args: &[&str]) {
    assert_golden_of("myresource", golden, args);
}

/// Runs `plugin` with `args`, expects exit 0 and stdout equal to `golden`.
fn assert_golden_of(plugin: &str, golden: &str, args: &[&str]) {
    let plugin = built_plugin(plugin);
    let plugin = plugin.to_str().expect("plugin path is UTF-8");
    let mut all = vec!["--plugin", plugin];
    all.extend_from_slice(args);
    let output = reconcile(&all);
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(output.status.code(), Some(0), "stderr: {stderr}");
    let path = golden_dir().join(golden);
    if std::env::var_os(BLESS).is_some() {
        std::fs::write(&path, &stdout).expect("write golden file");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|error| {
        panic!(
            "{}: {error}; run with {BLESS}=1 to create it",
            path.display()
        )
    });
    assert_eq!(
        stdout, expected,
        "output differs from {golden}; if the change is meant, run with {BLESS}=1 and review \
         the diff (stderr: {stderr})"
    );
}

/// Runs the example plugin with `args`, expects exit 1 and `reason` on stderr.
fn assert_refused(args: &[&str], reason: &str) {
    let plugin = built_plugin("myresource");
    let plugin = plugin.to_str().expect("plugin path is UTF-8");
    let mut all = vec!["--plugin", plugin];
    all.extend_from_slice(args);
    let output = reconcile(&all);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert!(
        output.stdout.is_empty(),
        "nothing on stdout: {:?}",
        text(&output.stdout)
    );
    assert!(stderr.contains(reason), "{reason:?} not in: {stderr}");
}

#[test]
fn a_valid_my_resource_gets_its_deployment_a_created_event_and_its_status() {
    assert_golden("demo.out.yaml", &["-f", MYRESOURCE_CRD, "-f", SAMPLE]);
    assert_golden(
        "demo.out.json",
        &["-f", MYRESOURCE_CRD, "-f", SAMPLE, "--output", "json"],
    );
}

#[test]
fn an_invalid_spec_gets_an_invalid_spec_warning_and_a_terminal_error() {
    // No CRD: the kind is taken as namespaced, as it is.
    assert_golden("invalid-spec.out.yaml", &["-f", "invalid-spec.yaml"]);
}

#[test]
fn an_existing_deployment_is_read_and_updated() {
    assert_golden(
        "update.out.yaml",
        &["-f", "update.yaml", "--namespace", "team-b"],
    );
}

#[test]
fn the_mirror_example_lists_and_deletes_a_stale_mirror() {
    assert_golden_of(
        "configmap_mirror",
        "mirror-stale.out.yaml",
        &["-f", "mirror-stale.yaml"],
    );
}

#[test]
fn a_deleting_object_with_the_plugins_finalizer_is_cleaned_up() {
    assert_golden_of(
        "configmap_mirror",
        "mirror-cleanup.out.yaml",
        &["-f", "mirror-cleanup.yaml"],
    );
}

#[test]
fn malformed_yaml_is_refused_with_the_file_and_document() {
    assert_refused(
        &["-f", "malformed.yaml"],
        "Error: malformed.yaml: document 1 is not valid YAML",
    );
}

#[test]
fn files_without_an_object_of_the_reconciled_kind_are_refused() {
    assert_refused(
        &["-f", "deployment-only.yaml"],
        "Error: no object in the files is a mygroup.example.com/v1alpha1 MyResource, the kind \
         plugin myresource reconciles; the files hold: apps/v1 Deployment demo",
    );
}

#[test]
fn a_missing_file_or_an_invalid_plugin_is_refused() {
    assert_refused(&["-f", "missing.yaml"], "Error: cannot read missing.yaml");
    let output = reconcile(&["--plugin", "update.yaml", "-f", SAMPLE]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr)
            .contains("Error: update.yaml could not be compiled as a WebAssembly component"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn a_plugin_that_traps_is_reported_and_the_command_succeeds() {
    let stdout = reconcile_config_map("hostile", "{mode: panic}");
    assert!(
        stdout.contains("outcome:\n  result: failed\n  reason: trap\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("hostile plugin panicked on purpose"),
        "{stdout}"
    );
}

/// Runs `plugin` on one ConfigMap with `data`; expects exit 0 and returns stdout.
fn reconcile_config_map(plugin: &str, data: &str) -> String {
    let scratch = tempfile::tempdir().expect("temp dir");
    let object = scratch.path().join("config-map.yaml");
    std::fs::write(
        &object,
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: target}}\ndata: {data}\n"),
    )
    .expect("write object");
    let plugin = built_plugin(plugin);
    let output = reconcile(&[
        "--plugin",
        plugin.to_str().expect("UTF-8"),
        "-f",
        object.to_str().expect("UTF-8"),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    text(&output.stdout)
}

#[test]
fn events_are_reported_as_the_host_writes_them() {
    // Repeats are one Event with a count.
    let repeats = reconcile_config_map("event_storm", "{events: '5'}");
    assert!(
        repeats.contains(
            "events:\n- type: Normal\n  reason: Storm\n  message: storm\n  count: 5\napplied:"
        ),
        "{repeats}"
    );

    // New Events past the spam filter's burst of 25 are dropped, and counted; the rest are
    // in the order recorded.
    let storm = reconcile_config_map("event_storm", "{events: '30', distinct-reasons: 'true'}");
    let reasons: Vec<&str> = storm
        .lines()
        .filter_map(|line| line.strip_prefix("  reason: "))
        .collect();
    let expected: Vec<String> = (0..25).map(|i| format!("Storm{i}")).collect();
    assert_eq!(reasons, expected, "{storm}");
    assert!(storm.contains("\nfilteredEvents: 5\n"), "{storm}");

    // Events the host refuses never reach the API server; the report counts them.
    let refused = reconcile_config_map(
        "hostile",
        "{mode: invalid-reasons, count: '3', bytes: '10'}",
    );
    assert!(
        refused.contains("events: []\nrefusedEvents: 3\n"),
        "{refused}"
    );
}

#[test]
fn the_guide_shows_the_output_of_the_valid_my_resource() {
    let guide = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/writing-a-plugin.md"
    ))
    .expect("read the guide");
    let command = "    -f plugins/myresource/manifests/crd.yaml -f plugins/myresource/manifests/sample.yaml\n";
    let shown = guide
        .split_once(command)
        .and_then(|(_, rest)| rest.split_once("```\n"))
        .map(|(output, _)| output)
        .expect("the guide runs `reconcile` on the example's sample");
    let golden =
        std::fs::read_to_string(golden_dir().join("demo.out.yaml")).expect("read the golden file");
    assert_eq!(
        shown, golden,
        "update the guide's example from demo.out.yaml"
    );
}
