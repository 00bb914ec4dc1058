//! `wasm-reconciler reconcile`: runs one reconcile offline, against an API server in memory
//! seeded from files, and reports what the plugin did.
//!
//! The plugin runs through the host's own code: [`Plugin::load`], a [`CallScope`] with the
//! scoped client and the event recorder, [`Plugin::reconcile`] under the sandbox's limits. Only
//! the API server is replaced ([`api`]), and API discovery with it ([`catalog`]). So the
//! plugin's calls meet the checks they meet in a cluster (declared kinds, namespace scope,
//! names, owner references, payload sizes, Event validation, series and spam filter), and the
//! report shows what the host would have sent.
//!
//! The reconciled object is the first object in the files, in order, of the kind the plugin
//! reconciles; every object in the files (that one included) is what `get` sees.

mod api;
mod catalog;
mod manifests;
mod report;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use kube::api::DynamicObject;
use tracing::Instrument as _;

use crate::budget::PluginShare;
use crate::cli::CallLimitArgs;
use crate::kinds::ResolvedKind;
use crate::object::ReconciledObject;
use crate::plugin::{
    self, CallScope, Compiler, LoadError, Plugin, PluginLimits, Sandbox, SandboxConfig, ScopeParts,
};
use crate::recorder::{Recorder, RecorderConfig};
use api::FakeApi;
pub use catalog::CatalogError;
use manifests::Manifest;
pub use manifests::ManifestError;
use report::{OutcomeReport, Report};
pub use report::{OutputFormat, RenderError};

/// How long the recorder may take to write the Events of the reconcile to the in-memory API.
const EVENT_FLUSH: Duration = Duration::from_secs(10);
/// The recorder's `reportingInstance` host part (not printed; fixed so runs are alike).
const HOST_NAME: &str = "offline";

/// Arguments of `reconcile`.
#[derive(Debug, clap::Args)]
pub struct ReconcileArgs {
    /// The plugin (`*.wasm`).
    #[arg(long, value_name = "PLUGIN")]
    pub plugin: PathBuf,

    /// YAML or JSON files of objects (several documents each; `-` reads stdin). The first
    /// object of the kind the plugin reconciles is reconciled; every object is what the
    /// plugin's `get` sees. CustomResourceDefinitions among them give their kinds' plural
    /// and scope.
    #[arg(short = 'f', long = "filename", required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// Namespace of the namespaced objects that do not name one.
    #[arg(short, long, default_value = "default", value_name = "NAMESPACE")]
    pub namespace: String,

    /// How to print the report.
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Yaml)]
    pub output: OutputFormat,

    /// The call's limits, as `run` sets them.
    #[command(flatten)]
    pub limits: CallLimitArgs,
}

impl ReconcileArgs {
    fn sandbox(&self) -> SandboxConfig {
        self.limits.sandbox(1)
    }
}

/// Why `reconcile` could not run the reconcile. What the plugin does once called (errors,
/// traps, limits) is its outcome, not one of these.
#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    /// The files could not be read as objects.
    #[error(transparent)]
    Files(#[from] ManifestError),
    /// The engine could not be created.
    #[error("cannot create the engine")]
    Engine(#[source] wasmtime::Error),
    /// The plugin could not be loaded.
    #[error(transparent)]
    Plugin(#[from] LoadError),
    /// A kind could not be resolved offline.
    #[error(transparent)]
    Kind(#[from] CatalogError),
    /// An object in the files cannot be stored or reconciled as it is (given twice, say).
    #[error("{at}: {reason}")]
    Object {
        /// Where the object is.
        at: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No object in the files is of the kind the plugin reconciles.
    #[error(
        "no object in the files is a {kind}, the kind plugin {plugin} reconciles; the files hold: {found}"
    )]
    NothingToReconcile {
        /// The plugin's name.
        plugin: String,
        /// The kind it reconciles.
        kind: String,
        /// What the files hold.
        found: String,
    },
    /// The report could not be written out.
    #[error(transparent)]
    Render(#[from] RenderError),
}

/// Runs one reconcile as `args` say and returns the report, as text in the chosen format.
///
/// # Errors
///
/// When the reconcile cannot run: unreadable or malformed files, an invalid plugin, no object
/// of the kind the plugin reconciles. Whatever the plugin does once called is in the report.
pub async fn reconcile(args: &ReconcileArgs) -> Result<String, OfflineError> {
    let manifests = manifests::read_all(&args.files).await?;
    let sandbox = Sandbox::new(args.sandbox()).map_err(OfflineError::Engine)?;
    let linker = plugin::linker(&sandbox).map_err(OfflineError::Engine)?;
    let mut plugin = Plugin::load(
        &sandbox,
        &linker,
        &Compiler::uncached(&sandbox),
        &args.plugin,
    )
    .await?;
    // One plugin and one instance: its share is that instance and one write in flight.
    plugin.set_limits(
        PluginLimits::new(PluginShare {
            memory: u64::try_from(sandbox.config.memory_limit_bytes()).unwrap_or(u64::MAX),
            payload: u64::try_from(
                crate::client::MAX_PAYLOAD_BYTES * crate::client::PAYLOAD_COPIES,
            )
            .unwrap_or(u64::MAX),
            slots: 1,
        }),
        Default::default(),
    );

    let catalog = catalog::Catalog::from_manifests(&manifests)?;
    let (kinds, assumed) = catalog.declared(plugin.metadata())?;
    let kinds = Arc::new(kinds);
    let mut api = FakeApi::default();
    for kind in std::iter::once(&kinds.reconciles)
        .chain(&kinds.owns)
        .chain(&kinds.reads)
    {
        api.know(kind);
    }
    let mut assumed: BTreeSet<String> = assumed.iter().map(describe_assumed).collect();
    let found: Vec<String> = manifests.iter().map(Manifest::describe).collect();
    let mut reconciled = None;
    for manifest in manifests {
        let (kind, basis) = catalog.resolve(&manifest.gvk)?;
        if basis == catalog::Basis::Assumed {
            assumed.insert(describe_assumed(&kind));
        }
        let is_reconciled = reconciled.is_none() && manifest.gvk == kinds.reconciles.gvk;
        let source = manifest.source;
        let stored = api
            .seed(&kind, manifest.object, &args.namespace)
            .map_err(|duplicate| OfflineError::Object {
                at: source.clone(),
                reason: duplicate.to_string(),
            })?;
        if is_reconciled {
            reconciled = Some((source, stored));
        }
    }
    for note in &assumed {
        tracing::info!("{note}");
    }
    let Some((source, stored)) = reconciled else {
        return Err(OfflineError::NothingToReconcile {
            plugin: plugin.name().to_string(),
            kind: format!(
                "{} {}",
                kinds.reconciles.gvk.api_version(),
                kinds.reconciles.gvk.kind
            ),
            found: found.join(", "),
        });
    };
    let invalid = |reason: String| OfflineError::Object {
        at: source.clone(),
        reason,
    };
    let mut object: DynamicObject =
        serde_json::from_value(stored).map_err(|error| invalid(error.to_string()))?;
    // As the host's cache holds it.
    object.metadata.managed_fields = None;
    let Some(identity) = ReconciledObject::from_meta(&object.metadata, &kinds.reconciles.resource)
    else {
        return Err(invalid("the object has no name or uid".to_owned()));
    };

    let api = Arc::new(Mutex::new(api));
    let client = api::client(api.clone());
    let metrics = crate::metrics::Metrics::new();
    let (recorder, recorder_task) = Recorder::start(
        client.clone(),
        // One write at a time: Events reach the API in the order they were recorded.
        RecorderConfig::default()
            .concurrent_writes(1)
            .host_name(HOST_NAME),
        metrics.clone(),
    );
    let finalizer = plugin.metadata().finalizer.clone();
    let cleans_up = finalizer.as_deref().is_some_and(|finalizer| {
        object
            .metadata
            .finalizers
            .iter()
            .flatten()
            .any(|f| f == finalizer)
    });
    let outcome = if object.metadata.deletion_timestamp.is_some() && !cleans_up {
        // As the host's controller does: without the plugin's finalizer on the object, there
        // is nothing to call the plugin for.
        OutcomeReport::NotCalled {
            message: "the object is being deleted (metadata.deletionTimestamp is set) and does \
                      not carry the plugin's finalizer: the host does not call the plugin, \
                      owned objects are garbage-collected"
                .to_owned(),
        }
    } else {
        let object_json =
            serde_json::to_string(&object).map_err(|error| invalid(error.to_string()))?;
        let span = tracing::info_span!(
            "reconcile",
            plugin = %plugin.name(),
            kind = %identity.kind,
            namespace = identity.namespace.as_deref().unwrap_or(""),
            name = %identity.name,
        );
        let scope = CallScope::new(
            identity.clone(),
            &ScopeParts {
                plugin: plugin.name(),
                kinds: &kinds,
                client: &client,
                recorder: &recorder,
                max_api_calls: args.limits.max_api_calls,
                api_calls_refused: Default::default(),
                payload_bytes: &plugin.limits().payload_bytes,
                impersonate: None,
                // No caches: reads go to the in-memory API server.
                caches: &Arc::default(),
            },
        );
        if object.metadata.deletion_timestamp.is_some() {
            // Being deleted with the plugin's finalizer on it: the host calls `cleanup`.
            OutcomeReport::of(plugin.cleanup(scope, object_json).instrument(span).await)
        } else {
            OutcomeReport::of(plugin.reconcile(scope, object_json).instrument(span).await)
        }
    };
    // Every Event recorded is written before the report is made.
    drop(recorder);
    recorder_task.flush(EVENT_FLUSH).await;

    let api = api.lock().unwrap_or_else(PoisonError::into_inner);
    let report = Report::new(
        plugin.name(),
        &identity,
        outcome,
        api.calls(),
        api.events(),
        &metrics.encode(),
    );
    Ok(report.render(args.output)?)
}

/// A note that `kind` was resolved by convention.
fn describe_assumed(kind: &ResolvedKind) -> String {
    format!(
        "no CustomResourceDefinition for {} {} among the files: taken as namespaced, plural {:?}",
        kind.gvk.api_version(),
        kind.gvk.kind,
        kind.resource.plural
    )
}

#[cfg(test)]
mod tests {
    use crate::recorder::EventType;

    use super::*;

    /// Events recorded through the host's recorder reach the in-memory API in the order they
    /// were recorded, repeats folded into a count, once the recorder is flushed.
    #[tokio::test]
    async fn a_flushed_recorder_has_written_every_event_in_order_to_the_api() {
        let api = Arc::new(Mutex::new(FakeApi::default()));
        let metrics = crate::metrics::Metrics::new();
        let (recorder, task) = Recorder::start(
            api::client(api.clone()),
            RecorderConfig::default()
                .concurrent_writes(1)
                .host_name(HOST_NAME),
            metrics.clone(),
        );
        let plugin: Arc<str> = Arc::from("p");
        let object = Arc::new(ReconciledObject::test_config_map());
        for (reason, message) in [
            ("First", "one"),
            ("Second", "two"),
            ("First", "one"),
            ("bad reason", "refused"),
            ("Third", "three"),
        ] {
            let _ = recorder
                .record(
                    &plugin,
                    &object,
                    EventType::Normal,
                    reason.into(),
                    message.into(),
                    Vec::new(),
                )
                .await;
        }
        drop(recorder);
        task.flush(EVENT_FLUSH).await;

        let api = api.lock().unwrap_or_else(PoisonError::into_inner);
        let written: Vec<(&str, u64)> = api
            .events()
            .iter()
            .map(|event| {
                (
                    event["reason"].as_str().unwrap_or_default(),
                    event["series"]["count"].as_u64().unwrap_or(1),
                )
            })
            .collect();
        assert_eq!(written, [("First", 2), ("Second", 1), ("Third", 1)]);
        let report = Report::new(
            "p",
            &object,
            OutcomeReport::Done {
                requeue_after: None,
            },
            api.calls(),
            api.events(),
            &metrics.encode(),
        );
        let yaml = report.render(OutputFormat::Yaml).expect("renders");
        assert!(yaml.contains("refusedEvents: 1\n"), "{yaml}");
        assert!(yaml.contains("  count: 2\n"), "{yaml}");
    }
}
