//! What a plugin declares about itself, from either contract version, checked.

use std::sync::Arc;
use std::time::Duration;

use kube::api::GroupVersionKind;

use super::bindings::{v0_1, v0_2};
use crate::selector::{LabelSelector, Operator, check_qualified_name};

/// Reconciles a 0.2.0 plugin runs at once unless it says otherwise (controller-runtime's
/// default is 1; kube-rs's is unbounded).
pub(crate) const DEFAULT_MAX_CONCURRENT_RECONCILES: u32 = 4;
/// The shortest resync period a plugin may ask for.
const MIN_RESYNC: Duration = Duration::from_secs(1);

/// The version of the plugin contract a component was built against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Contract {
    /// `wasm-reconciler:plugin@0.1.0`: reconcile only; reads are live.
    V0_1,
    /// `wasm-reconciler:plugin@0.2.0`: finalizers, selectors, watches, cached reads.
    V0_2,
}

impl Contract {
    /// The package name and version, as in the WIT.
    pub(crate) fn package(self) -> &'static str {
        match self {
            Contract::V0_1 => "wasm-reconciler:plugin@0.1.0",
            Contract::V0_2 => "wasm-reconciler:plugin@0.2.0",
        }
    }
}

/// How a change to a watched object maps to the reconciled objects to requeue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WatchMapping {
    /// Every owner of the reconciled kind, by any owner reference.
    OwnerReferences,
    /// The value of this label names the reconciled object.
    Label(String),
    /// Every reconciled object in the watched object's namespace.
    SameNamespace,
}

/// Another kind whose changes requeue reconciled objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Watch {
    pub(crate) kind: GroupVersionKind,
    pub(crate) mapping: WatchMapping,
}

/// What a plugin declared about itself, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Metadata {
    pub(crate) contract: Contract,
    pub(crate) name: Arc<str>,
    pub(crate) reconciles: GroupVersionKind,
    pub(crate) owns: Vec<GroupVersionKind>,
    pub(crate) reads: Vec<GroupVersionKind>,
    pub(crate) watches: Vec<Watch>,
    /// Only reconciled objects that match are watched, cached and reconciled.
    pub(crate) selector: Option<LabelSelector>,
    /// Only these namespaces are watched and cached; empty for all.
    pub(crate) namespaces: Vec<String>,
    pub(crate) finalizer: Option<String>,
    /// `None` for a 0.1.0 plugin: as many as its share of instances.
    pub(crate) max_concurrent_reconciles: Option<u32>,
    pub(crate) resync: Option<Duration>,
}

impl Metadata {
    /// Checks what a 0.1.0 plugin said about itself.
    pub(crate) fn from_v0_1(raw: v0_1::types::PluginMetadata) -> Result<Self, String> {
        check_name(&raw.name)?;
        Ok(Self {
            contract: Contract::V0_1,
            name: Arc::from(raw.name),
            reconciles: gvk_of_v0_1(raw.reconciles)?,
            owns: raw
                .owns
                .into_iter()
                .map(gvk_of_v0_1)
                .collect::<Result<_, _>>()?,
            reads: raw
                .reads
                .into_iter()
                .map(gvk_of_v0_1)
                .collect::<Result<_, _>>()?,
            watches: Vec::new(),
            selector: None,
            namespaces: Vec::new(),
            finalizer: None,
            max_concurrent_reconciles: None,
            resync: None,
        })
    }

    /// Checks what a 0.2.0 plugin said about itself.
    pub(crate) fn from_v0_2(raw: v0_2::types::PluginMetadata) -> Result<Self, String> {
        check_name(&raw.name)?;
        let reconciles = gvk_of_v0_2(raw.reconciles)?;
        let watches = raw
            .watches
            .into_iter()
            .map(|watch| {
                let kind = gvk_of_v0_2(watch.kind)?;
                if kind == reconciles {
                    return Err(format!(
                        "watches the reconciled kind {}: changes to it already requeue it",
                        kind.kind
                    ));
                }
                let mapping = match watch.mapping {
                    v0_2::types::WatchMapping::OwnerReferences => WatchMapping::OwnerReferences,
                    v0_2::types::WatchMapping::Label(key) => {
                        check_qualified_name(&key)
                            .map_err(|why| format!("watch label {key:?}: {why}"))?;
                        WatchMapping::Label(key)
                    }
                    v0_2::types::WatchMapping::SameNamespace => WatchMapping::SameNamespace,
                };
                Ok(Watch { kind, mapping })
            })
            .collect::<Result<_, String>>()?;
        let selector = raw
            .selector
            .map(|selector| selector_of_v0_2(selector).map_err(|why| format!("selector: {why}")))
            .transpose()?;
        let mut namespaces = raw.namespaces;
        for namespace in &namespaces {
            if !crate::recorder::is_dns1123_label(namespace) {
                return Err(format!("namespace {namespace:?} is not a DNS-1123 label"));
            }
        }
        namespaces.sort();
        if namespaces.windows(2).any(|pair| pair[0] == pair[1]) {
            return Err("a namespace is listed twice".into());
        }
        if let Some(finalizer) = &raw.finalizer {
            if !finalizer.contains('/') {
                return Err(format!(
                    "finalizer {finalizer:?} needs a domain prefix, like example.com/cleanup"
                ));
            }
            check_qualified_name(finalizer)
                .map_err(|why| format!("finalizer {finalizer:?}: {why}"))?;
        }
        if raw.max_concurrent_reconciles == Some(0) {
            return Err("max-concurrent-reconciles must be at least 1".into());
        }
        let resync = raw.resync_after_ms.map(Duration::from_millis);
        if resync.is_some_and(|every| every < MIN_RESYNC) {
            return Err(format!("resync-after-ms must be at least {MIN_RESYNC:?}"));
        }
        Ok(Self {
            contract: Contract::V0_2,
            name: Arc::from(raw.name),
            reconciles,
            owns: raw
                .owns
                .into_iter()
                .map(gvk_of_v0_2)
                .collect::<Result<_, _>>()?,
            reads: raw
                .reads
                .into_iter()
                .map(gvk_of_v0_2)
                .collect::<Result<_, _>>()?,
            watches,
            selector,
            namespaces,
            finalizer: raw.finalizer,
            max_concurrent_reconciles: Some(
                raw.max_concurrent_reconciles
                    .unwrap_or(DEFAULT_MAX_CONCURRENT_RECONCILES),
            ),
            resync,
        })
    }
}

/// A 0.2.0 label selector, checked.
pub(crate) fn selector_of_v0_2(
    selector: v0_2::types::LabelSelector,
) -> Result<LabelSelector, String> {
    LabelSelector::new(
        selector.match_labels,
        selector
            .match_expressions
            .into_iter()
            .map(|requirement| {
                let operator = match requirement.operator {
                    v0_2::types::SelectorOperator::In => Operator::In,
                    v0_2::types::SelectorOperator::NotIn => Operator::NotIn,
                    v0_2::types::SelectorOperator::Exists => Operator::Exists,
                    v0_2::types::SelectorOperator::DoesNotExist => Operator::DoesNotExist,
                };
                (requirement.key, operator, requirement.values)
            })
            .collect(),
    )
}

fn check_name(name: &str) -> Result<(), String> {
    if crate::recorder::is_dns1123_label(name) {
        Ok(())
    } else {
        Err(format!(
            "name {name:?} must be a DNS-1123 label: lowercase letters, digits and '-', at most 63 characters"
        ))
    }
}

fn gvk(group: String, version: String, kind: String) -> Result<GroupVersionKind, String> {
    if version.is_empty() || kind.is_empty() {
        return Err(format!(
            "kind {group:?}/{version:?}/{kind:?} needs a version and a kind"
        ));
    }
    Ok(GroupVersionKind::gvk(&group, &version, &kind))
}

fn gvk_of_v0_1(kind: v0_1::types::GroupVersionKind) -> Result<GroupVersionKind, String> {
    gvk(kind.group, kind.version, kind.kind)
}

fn gvk_of_v0_2(kind: v0_2::types::GroupVersionKind) -> Result<GroupVersionKind, String> {
    gvk(kind.group, kind.version, kind.kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(group: &str, version: &str, kind: &str) -> v0_2::types::GroupVersionKind {
        v0_2::types::GroupVersionKind {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
        }
    }

    fn raw_v0_1(name: &str) -> v0_1::types::PluginMetadata {
        let gvk = |group: &str, version: &str, kind: &str| v0_1::types::GroupVersionKind {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
        };
        v0_1::types::PluginMetadata {
            name: name.into(),
            reconciles: gvk("mygroup.example.com", "v1alpha1", "MyResource"),
            owns: vec![gvk("apps", "v1", "Deployment")],
            reads: vec![gvk("", "v1", "ConfigMap")],
        }
    }

    fn raw_v0_2() -> v0_2::types::PluginMetadata {
        v0_2::types::PluginMetadata {
            name: "mirror".into(),
            reconciles: kind("", "v1", "ConfigMap"),
            owns: vec![kind("", "v1", "ConfigMap")],
            reads: vec![],
            watches: vec![v0_2::types::Watch {
                kind: kind("", "v1", "Secret"),
                mapping: v0_2::types::WatchMapping::Label("example.com/for".into()),
            }],
            selector: Some(v0_2::types::LabelSelector {
                match_labels: vec![("mirror".into(), "true".into())],
                match_expressions: vec![],
            }),
            namespaces: vec!["b".into(), "a".into()],
            finalizer: Some("example.com/cleanup".into()),
            max_concurrent_reconciles: None,
            resync_after_ms: Some(60_000),
        }
    }

    #[test]
    fn metadata_with_a_dns_label_name_and_complete_kinds_is_accepted() {
        let metadata = Metadata::from_v0_1(raw_v0_1("my-plugin")).expect("valid metadata");
        assert_eq!(&*metadata.name, "my-plugin");
        assert_eq!(metadata.owns[0].kind, "Deployment");
        assert_eq!(metadata.reads[0].group, "");
        assert_eq!(metadata.contract, Contract::V0_1);
        assert_eq!(metadata.max_concurrent_reconciles, None);
    }

    #[test]
    fn metadata_with_a_bad_name_or_kind_is_refused() {
        for name in ["", "My-Plugin", "a_b", "-a", &"a".repeat(64)] {
            assert!(Metadata::from_v0_1(raw_v0_1(name)).is_err(), "{name:?}");
        }
        let mut no_kind = raw_v0_1("ok");
        no_kind.owns[0].kind.clear();
        assert!(Metadata::from_v0_1(no_kind).is_err());
    }

    #[test]
    fn v0_2_metadata_is_checked_and_defaulted() {
        let metadata = Metadata::from_v0_2(raw_v0_2()).expect("valid");
        assert_eq!(metadata.namespaces, ["a", "b"]);
        assert_eq!(
            metadata.max_concurrent_reconciles,
            Some(DEFAULT_MAX_CONCURRENT_RECONCILES)
        );
        assert_eq!(metadata.resync, Some(Duration::from_secs(60)));
        assert_eq!(
            metadata.selector.map(|s| s.to_string()).as_deref(),
            Some("mirror=true")
        );

        let refuse = |change: fn(&mut v0_2::types::PluginMetadata)| {
            let mut raw = raw_v0_2();
            change(&mut raw);
            Metadata::from_v0_2(raw).expect_err("refused")
        };
        refuse(|raw| raw.finalizer = Some("cleanup".into()));
        refuse(|raw| raw.finalizer = Some("example.com/clean up".into()));
        refuse(|raw| raw.namespaces = vec!["a".into(), "a".into()]);
        refuse(|raw| raw.namespaces = vec!["Not_A_Label".into()]);
        refuse(|raw| raw.max_concurrent_reconciles = Some(0));
        refuse(|raw| raw.resync_after_ms = Some(10));
        refuse(|raw| raw.watches[0].kind = kind("", "v1", "ConfigMap"));
        refuse(|raw| {
            raw.watches[0].mapping = v0_2::types::WatchMapping::Label("bad key!".into());
        });
        refuse(|raw| {
            if let Some(selector) = &mut raw.selector {
                selector.match_labels[0].1 = "not valid!".into();
            }
        });
    }
}
