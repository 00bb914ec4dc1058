//! Example wasm-reconciler plugin: mirrors each ConfigMap labelled `mirror=true` into `<name>-mirror`.
//!
//! It shows the parts of contract 0.2.0 a plain `Owns` example does not: a label
//! [selector](Metadata::selector) that scopes the reconciled kind, a
//! [finalizer](Metadata::finalizer) with [`cleanup`](Reconciler::cleanup), and the client's
//! `list` and `delete`.
//!
//! ```yaml
//! apiVersion: v1
//! kind: ConfigMap
//! metadata: {name: app-config, namespace: default, labels: {mirror: "true"}}
//! data: {mode: fast}
//! ```
//!
//! gets a ConfigMap `app-config-mirror` in the same namespace with the same `data` and
//! `binaryData`, labelled `mirror.wasm-reconciler.dev/of: app-config` and controlled by the
//! source (the host sets the owner reference).
//!
//! - **Reconcile** applies the mirror when it differs from the cached one, records
//!   `Normal Mirrored` only then, and deletes any other ConfigMap labelled as a mirror of the
//!   source (found with `list`), e.g. one left behind by an earlier version.
//! - **Too large**: a source whose `data` and `binaryData` take more than [`MAX_SOURCE_BYTES`]
//!   (see [`source_size`]) gets `Warning TooLarge`, loses its mirrors, and the reconcile ends
//!   with a terminal error: like an invalid spec, only a change to the source can fix it, and
//!   the error shows in the host's log and metrics.
//! - **Names**: a source whose mirror name would be over 253 characters, or whose name does
//!   not fit in a label value (63 characters), gets `Warning NameTooLong` and a terminal error.
//! - **Cleanup** runs when the source is deleted or loses its `mirror=true` label (it leaves
//!   the plugin's scope): it deletes the mirrors and records `Normal MirrorRemoved`; then the
//!   host removes the finalizer.
//!
//! A mirror has no `mirror=true` label, so it is never mirrored itself; the selector also
//! leaves out any ConfigMap that carries the mirror label, so labelling a mirror
//! `mirror=true` by hand does not start a chain.
//!
//! Build: `cargo build --target wasm32-wasip2 --release -p configmap-mirror`, then put
//! `configmap_mirror.wasm` in the host's plugins directory.

use std::collections::BTreeMap;

use serde::Deserialize;
use wasm_reconciler_sdk::prelude::*;
use wasm_reconciler_sdk::serde_json::{Value, json};

/// The kind this plugin reconciles, and owns: the mirrors are ConfigMaps too.
pub const CONFIG_MAP: Gvk = Gvk::from_static("", "v1", "ConfigMap");

/// The plugin's name: its controller, field manager and event source.
pub const PLUGIN_NAME: &str = "configmap-mirror";

/// The finalizer the host adds to every source, so that [`cleanup`](Reconciler::cleanup)
/// runs before a source goes.
pub const FINALIZER: &str = "mirror.wasm-reconciler.dev/cleanup";

/// The label that marks a ConfigMap as a source to mirror, with the value `true`.
pub const SOURCE_LABEL: &str = "mirror";

/// The label on each mirror, whose value is the name of its source.
pub const MIRROR_OF_LABEL: &str = "mirror.wasm-reconciler.dev/of";

/// What a source's name gets to name its mirror.
pub const MIRROR_SUFFIX: &str = "-mirror";

/// The most a source's `data` and `binaryData` may take to be mirrored, in bytes (1 KiB), as
/// [`source_size`] counts them.
pub const MAX_SOURCE_BYTES: usize = 1024;

/// The longest object name Kubernetes accepts (a DNS-1123 subdomain).
const MAX_NAME_LEN: usize = 253;

/// The longest label value Kubernetes accepts.
const MAX_LABEL_VALUE_LEN: usize = 63;

/// Mirrors labelled ConfigMaps.
pub struct ConfigMapMirror;

wasm_reconciler_sdk::export_reconciler!(ConfigMapMirror);

impl Reconciler for ConfigMapMirror {
    fn metadata() -> Metadata {
        Metadata::new(PLUGIN_NAME, CONFIG_MAP)
            .owns(CONFIG_MAP)
            .selector(
                LabelSelector::new()
                    .match_label(SOURCE_LABEL, "true")
                    .does_not_exist(MIRROR_OF_LABEL),
            )
            .finalizer(FINALIZER)
    }

    fn reconcile(ctx: &Context, request: Request) -> Result<Response, Error> {
        let source = request.name();
        let mirror = match mirror_name(source) {
            Ok(mirror) => mirror,
            Err(problem) => {
                eventf!(ctx.recorder(), Warning, "NameTooLong", "{problem}")?;
                return Err(Error::terminal(problem));
            }
        };
        let view: ConfigMapView = request.object()?;

        let size = source_size(&view);
        if size > MAX_SOURCE_BYTES {
            eventf!(
                ctx.recorder(),
                Warning,
                "TooLarge",
                "data and binaryData take {size} bytes, over the {MAX_SOURCE_BYTES} a mirror may \
                 hold; the mirror is removed"
            )?;
            let _ = ctx
                .client()
                .delete(&CONFIG_MAP, &mirror, Propagation::Background)
                .with_context(|| format!("delete mirror {mirror}"))?;
            delete_other_mirrors(ctx, source, &mirror)?;
            return Err(Error::terminal(format!(
                "{source} is too large to mirror: {size} bytes, over {MAX_SOURCE_BYTES}"
            )));
        }

        // The cache may lag our own last apply; then the mirror is applied again, unchanged,
        // and `Mirrored` is recorded twice. Server-side apply makes that harmless.
        let cached: Option<ConfigMapView> = ctx
            .client()
            .get(&CONFIG_MAP, &mirror)
            .with_context(|| format!("get mirror {mirror}"))?;
        let up_to_date = cached.is_some_and(|cached| cached.mirrors(source, request.uid(), &view));
        if up_to_date {
            ctx.log()
                .debug(format_args!("mirror {mirror} is up to date"));
        } else {
            ctx.client()
                .apply(&desired_mirror(source, &mirror, &view))
                .with_context(|| format!("apply mirror {mirror}"))?;
            eventf!(ctx.recorder(), Normal, "Mirrored", "Mirrored to {mirror}")?;
        }

        delete_other_mirrors(ctx, source, &mirror)?;
        Ok(Response::await_change())
    }

    fn cleanup(ctx: &Context, request: Request) -> Result<(), Error> {
        let source = request.name();
        let Ok(mirror) = mirror_name(source) else {
            // Reconcile refused this name: there has never been a mirror.
            return Ok(());
        };
        let mut mirrors = vec![mirror];
        for listed in listed_mirrors(ctx, source)? {
            if !mirrors.contains(&listed) {
                mirrors.push(listed);
            }
        }
        let mut removed = Vec::new();
        for name in mirrors {
            // Someone else's object that only looks like a mirror must not hold up the
            // source's deletion: leave it, and say so in the log.
            match ctx
                .client()
                .delete(&CONFIG_MAP, &name, Propagation::Background)
            {
                Ok(true) => removed.push(name),
                Ok(false) => {}
                Err(ClientError::Forbidden(why)) => {
                    ctx.log().warn(format_args!("left {name} alone: {why}"));
                }
                Err(error) => {
                    return Err(Error::from(error).context(format!("delete mirror {name}")));
                }
            }
        }
        if !removed.is_empty() {
            eventf!(
                ctx.recorder(),
                Normal,
                "MirrorRemoved",
                "Removed mirror {}",
                removed.join(", ")
            )?;
        }
        Ok(())
    }
}

/// The name of `source`'s mirror, `<source>-mirror`.
///
/// # Errors
///
/// Why there can be no mirror: its name would be over 253 characters, or the source's name
/// does not fit in the value of [`MIRROR_OF_LABEL`] (63 characters).
pub fn mirror_name(source: &str) -> Result<String, String> {
    let mirror = format!("{source}{MIRROR_SUFFIX}");
    if mirror.len() > MAX_NAME_LEN {
        return Err(format!(
            "the mirror's name would be {} characters, over the {MAX_NAME_LEN} Kubernetes allows",
            mirror.len()
        ));
    }
    if source.len() > MAX_LABEL_VALUE_LEN {
        return Err(format!(
            "the name is {} characters, over the {MAX_LABEL_VALUE_LEN} the label \
             {MIRROR_OF_LABEL} can hold",
            source.len()
        ));
    }
    Ok(mirror)
}

/// How many bytes a ConfigMap's payload takes, as this plugin counts it: for every entry of
/// `data` and of `binaryData`, the bytes of its key plus the bytes of its value, a
/// `binaryData` value counted as the base64 text the object holds (not the bytes it
/// decodes to). Metadata does not count.
pub fn source_size(config_map: &ConfigMapView) -> usize {
    config_map
        .data
        .iter()
        .chain(&config_map.binary_data)
        .map(|(key, value)| key.len() + value.len())
        .sum()
}

/// The mirror of `source`, as applied. The host adds the namespace and the controller owner
/// reference.
fn desired_mirror(source: &str, mirror: &str, view: &ConfigMapView) -> Value {
    let mut object = json!({
        "apiVersion": CONFIG_MAP.api_version(),
        "kind": CONFIG_MAP.kind(),
        "metadata": {"name": mirror, "labels": {MIRROR_OF_LABEL: source}},
    });
    // A field left out is removed from the mirror by server-side apply, as from the source.
    if !view.data.is_empty() {
        object["data"] = json!(view.data);
    }
    if !view.binary_data.is_empty() {
        object["binaryData"] = json!(view.binary_data);
    }
    object
}

/// The names of the ConfigMaps labelled as mirrors of `source`, from the cache.
fn listed_mirrors(ctx: &Context, source: &str) -> Result<Vec<String>, Error> {
    let selector = LabelSelector::new().match_label(MIRROR_OF_LABEL, source);
    let mirrors: Vec<ConfigMapView> = ctx
        .client()
        .list(&CONFIG_MAP, Some(&selector))
        .with_context(|| format!("list mirrors of {source} ({selector})"))?;
    Ok(mirrors.into_iter().map(|m| m.metadata.name).collect())
}

/// Deletes the ConfigMaps labelled as mirrors of `source` other than `mirror`. One the
/// source does not control is refused by the host, and the error ends the reconcile.
fn delete_other_mirrors(ctx: &Context, source: &str, mirror: &str) -> Result<(), Error> {
    for stale in listed_mirrors(ctx, source)? {
        if stale == mirror {
            continue;
        }
        if ctx
            .client()
            .delete(&CONFIG_MAP, &stale, Propagation::Background)
            .with_context(|| format!("delete stale mirror {stale}"))?
        {
            ctx.log().info(format_args!("deleted stale mirror {stale}"));
        }
    }
    Ok(())
}

/// The fields of a ConfigMap this plugin reads; everything else is ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ConfigMapView {
    metadata: MetadataView,
    /// `data`: UTF-8 values.
    pub data: BTreeMap<String, String>,
    /// `binaryData`: base64-encoded values.
    pub binary_data: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct MetadataView {
    name: String,
    labels: BTreeMap<String, String>,
    owner_references: Vec<OwnerReferenceView>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct OwnerReferenceView {
    uid: String,
    controller: Option<bool>,
}

impl ConfigMapView {
    /// Whether this ConfigMap is already the mirror of `source` (with uid `source_uid`)
    /// holding `view`'s payload: the same data, the mirror label, and controlled by the
    /// source.
    fn mirrors(&self, source: &str, source_uid: Option<&str>, view: &ConfigMapView) -> bool {
        let controlled = self.metadata.owner_references.iter().any(|reference| {
            reference.controller == Some(true) && Some(reference.uid.as_str()) == source_uid
        });
        controlled
            && self
                .metadata
                .labels
                .get(MIRROR_OF_LABEL)
                .map(String::as_str)
                == Some(source)
            && self.data == view.data
            && self.binary_data == view.binary_data
    }
}

#[cfg(test)]
mod tests {
    use wasm_reconciler_sdk::testkit::{Called, ObjectKey, Outcome, RecordedEvent, TestKit};

    use super::*;

    const SOURCE_UID: &str = "uid-source";

    fn source(name: &str, data: Value) -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": name, "namespace": "default", "uid": SOURCE_UID,
                "labels": {"mirror": "true", "team": "a"},
            },
            "data": data,
        })
    }

    fn app_config() -> Value {
        source("app-config", json!({"mode": "fast", "level": "3"}))
    }

    fn stored_mirror(kit: &TestKit) -> Option<Value> {
        kit.client().object(&CONFIG_MAP, "app-config-mirror")
    }

    /// A kit where `app-config` has been reconciled once: it carries the finalizer and has
    /// its mirror.
    fn mirrored() -> (TestKit, Outcome) {
        let mut kit = TestKit::new();
        let outcome = kit.reconcile::<ConfigMapMirror>(app_config());
        assert!(outcome.result().is_ok(), "{:?}", outcome.result());
        (kit, outcome)
    }

    /// A ConfigMap labelled as a mirror of `app-config`, controlled by `owner_uid`.
    fn labelled_mirror(name: &str, owner_uid: &str) -> Value {
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {
                "name": name, "namespace": "default",
                "labels": {MIRROR_OF_LABEL: "app-config"},
                "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "x",
                                     "uid": owner_uid, "controller": true}],
            },
            "data": {"old": "yes"},
        })
    }

    #[test]
    fn metadata_is_valid_and_scoped_to_labelled_sources() {
        let metadata = ConfigMapMirror::metadata();
        assert_eq!(metadata.validate(), Ok(()));
        assert_eq!(metadata.owned_kinds(), [CONFIG_MAP]);
        assert_eq!(metadata.finalizer_name(), Some(FINALIZER));
        assert_eq!(
            metadata
                .label_selector()
                .map(ToString::to_string)
                .as_deref(),
            Some("mirror=true,!mirror.wasm-reconciler.dev/of")
        );
    }

    #[test]
    fn mirror_is_created_after_the_finalizer_is_added() {
        let (kit, outcome) = mirrored();

        assert_eq!(outcome.called(), Called::Reconcile);
        assert!(outcome.finalizer_added());
        assert_eq!(
            outcome.object()["metadata"]["finalizers"],
            json!([FINALIZER])
        );
        assert_eq!(
            outcome.applied(),
            [json!({
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "app-config-mirror", "labels": {MIRROR_OF_LABEL: "app-config"}},
                "data": {"level": "3", "mode": "fast"},
            })]
        );
        assert_eq!(
            outcome.events(),
            [RecordedEvent::normal(
                "Mirrored",
                "Mirrored to app-config-mirror"
            )]
        );
        let mirror = stored_mirror(&kit).unwrap();
        assert_eq!(mirror["metadata"]["namespace"], "default");
        assert_eq!(mirror["metadata"]["ownerReferences"][0]["uid"], SOURCE_UID);
    }

    #[test]
    fn unchanged_source_is_reconciled_without_an_event() {
        let (mut kit, first) = mirrored();
        let second = kit.reconcile::<ConfigMapMirror>(first.object().clone());

        assert_eq!(second.called(), Called::Reconcile);
        assert!(!second.finalizer_added());
        assert!(second.result().is_ok());
        assert!(second.events().is_empty(), "{:?}", second.events());
        assert!(second.applied().is_empty());
        assert!(second.deleted().is_empty());
    }

    #[test]
    fn changed_data_updates_the_mirror() {
        let (mut kit, first) = mirrored();
        let mut changed = first.object().clone();
        changed["data"] = json!({"mode": "slow"});
        changed["binaryData"] = json!({"logo": "iVBORw0KGgo="});

        let outcome = kit.reconcile::<ConfigMapMirror>(changed);
        assert_eq!(
            outcome.events(),
            [RecordedEvent::normal(
                "Mirrored",
                "Mirrored to app-config-mirror"
            )]
        );
        let mirror = stored_mirror(&kit).unwrap();
        assert_eq!(mirror["data"], json!({"mode": "slow"}));
        assert_eq!(mirror["binaryData"], json!({"logo": "iVBORw0KGgo="}));
    }

    #[test]
    fn size_counts_keys_and_values_of_data_and_binary_data() {
        let view: ConfigMapView = wasm_reconciler_sdk::serde_json::from_value(json!({
            "metadata": {"name": "x", "labels": {"a-long-label": "is not counted"}},
            "data": {"ab": "cde"},
            "binaryData": {"f": "Zm9v"},
        }))
        .unwrap();
        assert_eq!(source_size(&view), 2 + 3 + 1 + 4);
    }

    #[test]
    fn exactly_one_kib_is_mirrored() {
        // Key "k" (1 byte) and a value of 1023 bytes: 1024 in all.
        let outcome = TestKit::new()
            .reconcile::<ConfigMapMirror>(source("app-config", json!({"k": "v".repeat(1023)})));
        assert!(outcome.result().is_ok());
        assert_eq!(outcome.applied().len(), 1);
    }

    #[test]
    fn too_large_source_loses_its_mirror_and_fails_terminally() {
        let (mut kit, first) = mirrored();
        let mut large = first.object().clone();
        large["data"] = json!({"k": "v".repeat(1000)});
        large["binaryData"] = json!({"b": "A".repeat(23)});

        let outcome = kit.reconcile::<ConfigMapMirror>(large);
        assert_eq!(
            outcome.events(),
            [RecordedEvent::warning(
                "TooLarge",
                "data and binaryData take 1025 bytes, over the 1024 a mirror may hold; the mirror is removed"
            )]
        );
        assert_eq!(
            outcome.deleted(),
            [(CONFIG_MAP, "app-config-mirror".to_owned())]
        );
        assert!(outcome.applied().is_empty());
        let error = outcome.error().expect("a terminal error");
        assert_eq!(error.kind(), ErrorKind::Terminal);
        assert!(error.message().contains("too large"), "{error}");
        assert_eq!(stored_mirror(&kit), None);
    }

    #[test]
    fn names_whose_mirror_cannot_exist_are_refused_with_a_warning() {
        for (length, problem) in [
            (
                250,
                "the mirror's name would be 257 characters, over the 253 Kubernetes allows",
            ),
            (
                64,
                "the name is 64 characters, over the 63 the label mirror.wasm-reconciler.dev/of can hold",
            ),
        ] {
            let name = "a".repeat(length);
            let outcome =
                TestKit::new().reconcile::<ConfigMapMirror>(source(&name, json!({"k": "v"})));
            assert_eq!(
                outcome.events(),
                [RecordedEvent::warning("NameTooLong", problem)]
            );
            assert!(outcome.error().is_some_and(|e| e.is_terminal()));
            assert!(outcome.applied().is_empty());
        }
        assert_eq!(mirror_name(&"a".repeat(63)).map(|m| m.len()), Ok(70));
    }

    #[test]
    fn deletion_runs_cleanup_which_removes_the_mirror_and_the_finalizer() {
        let (mut kit, first) = mirrored();
        let mut deleting = first.object().clone();
        deleting["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");

        let outcome = kit.reconcile::<ConfigMapMirror>(deleting);
        assert_eq!(outcome.called(), Called::Cleanup);
        assert!(outcome.result().is_ok());
        assert_eq!(
            outcome.deleted(),
            [(CONFIG_MAP, "app-config-mirror".to_owned())]
        );
        assert_eq!(
            outcome.events(),
            [RecordedEvent::normal(
                "MirrorRemoved",
                "Removed mirror app-config-mirror"
            )]
        );
        assert!(outcome.finalizer_removed());
        assert_eq!(outcome.object()["metadata"]["finalizers"], json!([]));
        assert_eq!(stored_mirror(&kit), None);
        // With its last finalizer gone, the API server deletes the source.
        assert_eq!(kit.client().object(&CONFIG_MAP, "app-config"), None);
    }

    #[test]
    fn removing_the_label_runs_cleanup_and_releases_the_source() {
        let (mut kit, first) = mirrored();
        let mut unlabelled = first.object().clone();
        unlabelled["metadata"]["labels"] = json!({"team": "a"});

        let outcome = kit.reconcile::<ConfigMapMirror>(unlabelled);
        assert_eq!(outcome.called(), Called::Cleanup);
        assert_eq!(
            outcome.deleted(),
            [(CONFIG_MAP, "app-config-mirror".to_owned())]
        );
        assert!(outcome.finalizer_removed());
        let source = kit.client().object(&CONFIG_MAP, "app-config").unwrap();
        assert_eq!(source["metadata"]["finalizers"], json!([]));
    }

    #[test]
    fn stale_mirrors_found_by_label_are_deleted() {
        let mut kit = TestKit::new().with_object(labelled_mirror("app-config-copy", SOURCE_UID));
        let outcome = kit.reconcile::<ConfigMapMirror>(app_config());

        assert!(outcome.result().is_ok(), "{:?}", outcome.result());
        assert_eq!(
            outcome.deleted(),
            [(CONFIG_MAP, "app-config-copy".to_owned())]
        );
        assert!(stored_mirror(&kit).is_some());
        assert_eq!(kit.client().object(&CONFIG_MAP, "app-config-copy"), None);
    }

    #[test]
    fn a_mirror_the_source_does_not_control_is_refused_and_surfaces() {
        let mut kit = TestKit::new().with_object(labelled_mirror("impostor", "uid-someone-else"));
        let outcome = kit.reconcile::<ConfigMapMirror>(app_config());

        let error = outcome
            .error()
            .expect("the refused delete fails the reconcile");
        assert_eq!(error.kind(), ErrorKind::Terminal);
        assert!(
            error
                .message()
                .starts_with("delete stale mirror impostor: forbidden:"),
            "{error}"
        );
        assert!(
            error
                .message()
                .contains("not controlled by the reconciled object"),
            "{error}"
        );
        assert!(outcome.deleted().is_empty());
        assert!(kit.client().object(&CONFIG_MAP, "impostor").is_some());
    }

    #[test]
    fn cleanup_leaves_a_mirror_it_does_not_control_and_still_succeeds() {
        let (mut kit, first) = mirrored();
        kit.client()
            .insert(labelled_mirror("impostor", "uid-someone-else"));
        let mut deleting = first.object().clone();
        deleting["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");

        let outcome = kit.reconcile::<ConfigMapMirror>(deleting);
        assert!(outcome.result().is_ok(), "{:?}", outcome.result());
        assert_eq!(
            outcome.deleted(),
            [(CONFIG_MAP, "app-config-mirror".to_owned())]
        );
        assert!(outcome.finalizer_removed());
        assert!(kit.client().object(&CONFIG_MAP, "impostor").is_some());
        assert!(outcome.logs()[0].message.starts_with("left impostor alone"));
    }

    #[test]
    fn the_mirror_is_never_mirrored() {
        let (mut kit, _) = mirrored();
        let mut mirror = stored_mirror(&kit).unwrap();
        assert_eq!(
            kit.reconcile::<ConfigMapMirror>(mirror.clone()).called(),
            Called::Nothing
        );

        // Not even when someone labels it `mirror=true`.
        mirror["metadata"]["labels"]["mirror"] = json!("true");
        assert_eq!(
            kit.reconcile::<ConfigMapMirror>(mirror).called(),
            Called::Nothing
        );
    }

    #[test]
    fn a_change_to_the_mirror_requeues_its_source() {
        let (kit, _) = mirrored();
        let mirror = stored_mirror(&kit).unwrap();
        assert_eq!(
            kit.requests_for::<ConfigMapMirror>(mirror),
            [ObjectKey::namespaced("default", "app-config")]
        );
    }
}
