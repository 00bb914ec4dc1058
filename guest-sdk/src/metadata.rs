//! What a plugin declares about itself: its name, the kinds it may touch, and how the host runs it.

use std::time::Duration;

use crate::names::{is_dns1123_label, validate_qualified_name};
use crate::{Gvk, LabelSelector, SelectorError};

/// What a plugin declares about itself, returned by [`Reconciler::metadata`].
///
/// The host reads it once, when it loads the plugin, and from then on refuses every client
/// call on a kind the plugin did not declare here. It is the controller-runtime builder
/// written down as data:
///
/// | `Metadata`                      | controller-runtime                          | the plugin may / the host does |
/// |---------------------------------|---------------------------------------------|--------------------------------|
/// | `new(name, kind)`               | `Named(name).For(kind)`                     | get and list it, patch its status |
/// | `.owns(kind)`                   | `Owns(kind)`                                | get, list, apply, delete; changes requeue the owner |
/// | `.reads(kind)`                  | a cached client read                        | get, list                      |
/// | `.watches(kind, mapping)`       | `Watches(kind, handler)`                    | get, list; changes requeue what `mapping` names |
/// | `.selector(selector)`           | a label predicate on `For`                  | only matching objects are reconciled |
/// | `.namespaces(names)`            | `cache.Options.DefaultNamespaces`           | only these namespaces are watched |
/// | `.finalizer(name)`              | `controllerutil.AddFinalizer` + a deletion branch | [`cleanup`](crate::Reconciler::cleanup) runs before deletion |
/// | `.max_concurrent_reconciles(n)` | `MaxConcurrentReconciles`                   | at most `n` reconciles at once |
/// | `.resync_every(d)`              | `SyncPeriod`                                | every object reconciled every `d` |
///
/// ```
/// use std::time::Duration;
/// use wasm_reconciler_sdk::{Gvk, LabelSelector, Metadata, WatchMapping};
///
/// let metadata = Metadata::new("myresource", Gvk::new("mygroup.example.com", "v1alpha1", "MyResource"))
///     .owns(Gvk::new("apps", "v1", "Deployment"))
///     .reads(Gvk::new("", "v1", "ConfigMap"))
///     .watches(Gvk::new("", "v1", "Secret"), WatchMapping::Label("example.com/used-by".into()))
///     .selector(LabelSelector::new().match_label("example.com/managed", "true"))
///     .finalizer("mygroup.example.com/cleanup")
///     .max_concurrent_reconciles(8)
///     .resync_every(Duration::from_secs(600));
/// assert!(metadata.validate().is_ok());
/// ```
///
/// [`Reconciler::metadata`]: crate::Reconciler::metadata
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    name: String,
    reconciles: Gvk,
    owns: Vec<Gvk>,
    reads: Vec<Gvk>,
    watches: Vec<Watch>,
    selector: Option<LabelSelector>,
    namespaces: Vec<String>,
    finalizer: Option<String>,
    max_concurrent_reconciles: Option<u32>,
    resync_every: Option<Duration>,
}

/// Another kind whose changes requeue reconciled objects, declared with
/// [`Metadata::watches`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watch {
    kind: Gvk,
    mapping: WatchMapping,
}

/// How a change to a watched object maps to the reconciled objects the host requeues (like
/// controller-runtime's `EnqueueRequestsFromMapFunc`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum WatchMapping {
    /// Every owner of the watched object of the reconciled kind, through its owner references
    /// (any owner reference, not only the controller's; like `EnqueueRequestForOwner`
    /// without `OnlyControllerOwner`).
    OwnerReferences,
    /// The watched object's label with this key names a reconciled object in the watched
    /// object's namespace (for a cluster-scoped reconciled kind: the object of that name).
    Label(String),
    /// Every reconciled object in the watched object's namespace (every reconciled object,
    /// when the watched kind is cluster-scoped).
    SameNamespace,
}

impl Watch {
    /// The watched kind.
    pub fn kind(&self) -> &Gvk {
        &self.kind
    }

    /// How its changes map to reconciled objects.
    pub fn mapping(&self) -> &WatchMapping {
        &self.mapping
    }
}

impl Metadata {
    /// A plugin called `name` that reconciles objects of kind `reconciles`.
    ///
    /// `name` must be a DNS-1123 label (see [`Metadata::validate`]): it names the
    /// controller, the server-side-apply field manager and the `reportingController` of
    /// every Event the plugin records.
    pub fn new(name: impl Into<String>, reconciles: Gvk) -> Self {
        Self {
            name: name.into(),
            reconciles,
            owns: Vec::new(),
            reads: Vec::new(),
            watches: Vec::new(),
            selector: None,
            namespaces: Vec::new(),
            finalizer: None,
            max_concurrent_reconciles: None,
            resync_every: None,
        }
    }

    /// Declares a kind the plugin creates and owns, like controller-runtime's `Owns`.
    ///
    /// The plugin may get, list, apply and delete objects of this kind. The host sets the
    /// controller owner reference on every apply, deletes only objects the reconciled object
    /// controls, and a change to an owned object requeues its controlling owner.
    #[must_use]
    pub fn owns(mut self, kind: Gvk) -> Self {
        self.owns.push(kind);
        self
    }

    /// Declares a kind the plugin may only read, with [`Client::get`](crate::Client::get)
    /// and [`Client::list`](crate::Client::list).
    #[must_use]
    pub fn reads(mut self, kind: Gvk) -> Self {
        self.reads.push(kind);
        self
    }

    /// Declares another kind whose changes requeue reconciled objects, like
    /// controller-runtime's `Watches` with a handler; `mapping` says which objects. A watched
    /// kind is readable too. It must not be the reconciled kind.
    #[must_use]
    pub fn watches(mut self, kind: Gvk, mapping: WatchMapping) -> Self {
        self.watches.push(Watch { kind, mapping });
        self
    }

    /// Scopes the plugin to objects of the reconciled kind whose labels match `selector`:
    /// only those are watched, cached and reconciled. An object whose labels stop matching
    /// leaves the plugin's scope; with a [finalizer](Metadata::finalizer), it is cleaned up
    /// and released then.
    #[must_use]
    pub fn selector(mut self, selector: LabelSelector) -> Self {
        self.selector = Some(selector);
        self
    }

    /// Scopes the plugin to these namespaces, for every kind it declares (cluster-scoped
    /// kinds are not affected). Without any, it sees all namespaces. May be called more
    /// than once; the names add up.
    #[must_use]
    pub fn namespaces<I, S>(mut self, namespaces: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.namespaces
            .extend(namespaces.into_iter().map(Into::into));
        self
    }

    /// Declares a finalizer (`domain/name`, e.g. `example.com/cleanup`), so that
    /// [`Reconciler::cleanup`](crate::Reconciler::cleanup) runs before an object goes away.
    ///
    /// The host adds it to each reconciled object before the object's first reconcile, calls
    /// `cleanup` instead of `reconcile` once the object is being deleted (or leaves the
    /// plugin's scope), and removes it when `cleanup` succeeds.
    #[must_use]
    pub fn finalizer(mut self, name: impl Into<String>) -> Self {
        self.finalizer = Some(name.into());
        self
    }

    /// Runs at most `n` reconciles of this plugin at once (controller-runtime's
    /// `MaxConcurrentReconciles`; the host's default is 4). The host may run fewer when its
    /// share of instances is smaller. Must be at least 1.
    #[must_use]
    pub fn max_concurrent_reconciles(mut self, n: u32) -> Self {
        self.max_concurrent_reconciles = Some(n);
        self
    }

    /// Reconciles every object again this often even if nothing changes
    /// (controller-runtime's `SyncPeriod`). At least one second; the host works in whole
    /// milliseconds, rounded up.
    #[must_use]
    pub fn resync_every(mut self, period: Duration) -> Self {
        self.resync_every = Some(period);
        self
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The kind the plugin reconciles.
    pub fn reconciled_kind(&self) -> &Gvk {
        &self.reconciles
    }

    /// The kinds the plugin owns.
    pub fn owned_kinds(&self) -> &[Gvk] {
        &self.owns
    }

    /// The kinds the plugin only reads.
    pub fn read_kinds(&self) -> &[Gvk] {
        &self.reads
    }

    /// The kinds the plugin watches, with their mappings.
    pub fn watched(&self) -> &[Watch] {
        &self.watches
    }

    /// The selector that scopes the reconciled kind, if any.
    pub fn label_selector(&self) -> Option<&LabelSelector> {
        self.selector.as_ref()
    }

    /// The namespaces the plugin is scoped to; empty for all.
    pub fn namespace_scope(&self) -> &[String] {
        &self.namespaces
    }

    /// The finalizer's name, if the plugin declares one.
    pub fn finalizer_name(&self) -> Option<&str> {
        self.finalizer.as_deref()
    }

    /// The most reconciles at once the plugin asks for; `None` for the host's default.
    pub fn max_concurrent(&self) -> Option<u32> {
        self.max_concurrent_reconciles
    }

    /// How often every object is reconciled again; `None` for never.
    pub fn resync_period(&self) -> Option<Duration> {
        self.resync_every
    }

    /// Whether the plugin may `get` objects of `kind`: the reconciled kind, an owned, read
    /// or watched kind.
    pub fn may_get(&self, kind: &Gvk) -> bool {
        self.reconciles == *kind
            || self.owns.contains(kind)
            || self.reads.contains(kind)
            || self.watches.iter().any(|watch| watch.kind == *kind)
    }

    /// Whether the plugin may `list` objects of `kind`: the same kinds as [`may_get`](Self::may_get).
    pub fn may_list(&self, kind: &Gvk) -> bool {
        self.may_get(kind)
    }

    /// Whether the plugin may `apply` objects of `kind`: only owned kinds.
    pub fn may_apply(&self, kind: &Gvk) -> bool {
        self.owns.contains(kind)
    }

    /// Whether the plugin may `delete` objects of `kind`: only owned kinds (and only objects
    /// the reconciled object controls).
    pub fn may_delete(&self, kind: &Gvk) -> bool {
        self.owns.contains(kind)
    }

    /// Whether an object of the reconciled kind with these labels and this namespace (`None`
    /// for cluster-scoped) is in the plugin's scope: it matches the selector and is in one
    /// of the namespaces.
    pub fn in_scope(
        &self,
        labels: &std::collections::BTreeMap<String, String>,
        namespace: Option<&str>,
    ) -> bool {
        self.selector
            .as_ref()
            .is_none_or(|selector| selector.matches(labels))
            && self.in_namespaces(namespace)
    }

    /// Whether `namespace` is one the plugin sees (`None`, cluster-scoped, always is).
    pub(crate) fn in_namespaces(&self, namespace: Option<&str>) -> bool {
        match namespace {
            Some(namespace) => {
                self.namespaces.is_empty() || self.namespaces.iter().any(|n| n == namespace)
            }
            None => true,
        }
    }

    /// Checks what the host checks when it loads the plugin.
    ///
    /// # Errors
    ///
    /// The first problem found:
    ///
    /// - [`MetadataError::InvalidName`] unless the name is a DNS-1123 label: 1-63
    ///   lowercase letters, digits and `-`, starting and ending with a letter or digit.
    /// - [`MetadataError::InvalidKind`] if a declared kind has an empty version or kind.
    /// - [`MetadataError::WatchesReconciledKind`] if a watched kind is the reconciled kind.
    /// - [`MetadataError::InvalidWatchLabel`] unless the key of a [`WatchMapping::Label`]
    ///   is a qualified name (`[prefix/]name`).
    /// - [`MetadataError::InvalidSelector`] unless the selector's keys are qualified names,
    ///   its values label values, `In`/`NotIn` have values and `Exists`/`DoesNotExist` none.
    /// - [`MetadataError::InvalidNamespace`] unless every namespace is a DNS-1123 label, and
    ///   [`MetadataError::DuplicateNamespace`] for one given twice.
    /// - [`MetadataError::InvalidFinalizer`] unless the finalizer is `prefix/name`, the
    ///   prefix a DNS-1123 subdomain and the name 1-63 of `[A-Za-z0-9_.-]`, alphanumeric at
    ///   both ends.
    /// - [`MetadataError::ZeroMaxConcurrentReconciles`] for a maximum of 0.
    /// - [`MetadataError::ResyncTooShort`] for a resync period under one second.
    pub fn validate(&self) -> Result<(), MetadataError> {
        if !is_dns1123_label(&self.name) {
            return Err(MetadataError::InvalidName(self.name.clone()));
        }
        let kinds = std::iter::once(&self.reconciles)
            .chain(&self.owns)
            .chain(&self.reads)
            .chain(self.watches.iter().map(|watch| &watch.kind));
        for kind in kinds {
            if kind.version().is_empty() || kind.kind().is_empty() {
                return Err(MetadataError::InvalidKind(kind.clone()));
            }
        }
        for watch in &self.watches {
            if watch.kind == self.reconciles {
                return Err(MetadataError::WatchesReconciledKind(watch.kind.clone()));
            }
            if let WatchMapping::Label(key) = &watch.mapping {
                validate_qualified_name(key, false).map_err(|problem| {
                    MetadataError::InvalidWatchLabel {
                        kind: watch.kind.clone(),
                        key: key.clone(),
                        problem,
                    }
                })?;
            }
        }
        if let Some(selector) = &self.selector {
            selector
                .validate()
                .map_err(MetadataError::InvalidSelector)?;
        }
        for (index, namespace) in self.namespaces.iter().enumerate() {
            if !is_dns1123_label(namespace) {
                return Err(MetadataError::InvalidNamespace(namespace.clone()));
            }
            if self.namespaces[..index].contains(namespace) {
                return Err(MetadataError::DuplicateNamespace(namespace.clone()));
            }
        }
        if let Some(finalizer) = &self.finalizer {
            validate_qualified_name(finalizer, true).map_err(|problem| {
                MetadataError::InvalidFinalizer {
                    finalizer: finalizer.clone(),
                    problem,
                }
            })?;
        }
        if self.max_concurrent_reconciles == Some(0) {
            return Err(MetadataError::ZeroMaxConcurrentReconciles);
        }
        if let Some(period) = self.resync_every
            && period < Duration::from_secs(1)
        {
            return Err(MetadataError::ResyncTooShort(period));
        }
        Ok(())
    }
}

/// Why [`Metadata::validate`] refused a plugin's metadata.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataError {
    /// The plugin name is not a DNS-1123 label.
    #[error(
        "plugin name {0:?} is not a DNS-1123 label (1-63 of a-z, 0-9 and '-', alphanumeric at both ends)"
    )]
    InvalidName(String),
    /// A declared kind has an empty version or kind.
    #[error("declared kind {0} has an empty version or kind")]
    InvalidKind(Gvk),
    /// A watched kind is the reconciled kind, whose changes requeue it anyway.
    #[error("watched kind {0} is the reconciled kind; its changes requeue it already")]
    WatchesReconciledKind(Gvk),
    /// The key of a [`WatchMapping::Label`] is not a qualified label key.
    #[error("the label key {key:?} of the watch of {kind} is not a qualified name: {problem}")]
    InvalidWatchLabel {
        /// The watched kind.
        kind: Gvk,
        /// The label key.
        key: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The selector is not valid.
    #[error("invalid selector: {0}")]
    InvalidSelector(#[source] SelectorError),
    /// A namespace is not a DNS-1123 label.
    #[error(
        "namespace {0:?} is not a DNS-1123 label (1-63 of a-z, 0-9 and '-', alphanumeric at both ends)"
    )]
    InvalidNamespace(String),
    /// A namespace is declared twice.
    #[error("namespace {0:?} is declared twice")]
    DuplicateNamespace(String),
    /// The finalizer is not a qualified name with a prefix.
    #[error("finalizer {finalizer:?} is not a qualified name `domain/name`: {problem}")]
    InvalidFinalizer {
        /// The finalizer.
        finalizer: String,
        /// What is wrong with it.
        problem: String,
    },
    /// `max_concurrent_reconciles` is 0.
    #[error("max_concurrent_reconciles must be at least 1")]
    ZeroMaxConcurrentReconciles,
    /// The resync period is under one second.
    #[error("the resync period must be at least 1 s, got {0:?}")]
    ResyncTooShort(Duration),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind() -> Gvk {
        Gvk::new("mygroup.example.com", "v1alpha1", "MyResource")
    }

    fn ok() -> Metadata {
        Metadata::new("ok", kind())
    }

    #[test]
    fn permissions_follow_the_declarations() {
        let deployment = Gvk::new("apps", "v1", "Deployment");
        let config_map = Gvk::new("", "v1", "ConfigMap");
        let secret = Gvk::new("", "v1", "Secret");
        let pod = Gvk::new("", "v1", "Pod");
        let metadata = Metadata::new("p", kind())
            .owns(deployment.clone())
            .reads(config_map.clone())
            .watches(secret.clone(), WatchMapping::SameNamespace);

        let verbs = |k: &Gvk| {
            [
                metadata.may_get(k),
                metadata.may_list(k),
                metadata.may_apply(k),
                metadata.may_delete(k),
            ]
        };
        assert_eq!(verbs(&kind()), [true, true, false, false]);
        assert_eq!(verbs(&deployment), [true, true, true, true]);
        assert_eq!(verbs(&config_map), [true, true, false, false]);
        assert_eq!(verbs(&secret), [true, true, false, false]);
        assert_eq!(verbs(&pod), [false, false, false, false]);
    }

    #[test]
    fn accessors_return_what_was_declared() {
        let selector = LabelSelector::new().match_label("a", "b");
        let metadata = ok()
            .watches(Gvk::new("", "v1", "Secret"), WatchMapping::OwnerReferences)
            .selector(selector.clone())
            .namespaces(["a", "b"])
            .namespaces(vec!["c".to_owned()])
            .finalizer("example.com/f")
            .max_concurrent_reconciles(2)
            .resync_every(Duration::from_secs(30));
        assert_eq!(metadata.watched()[0].kind(), &Gvk::new("", "v1", "Secret"));
        assert_eq!(
            metadata.watched()[0].mapping(),
            &WatchMapping::OwnerReferences
        );
        assert_eq!(metadata.label_selector(), Some(&selector));
        assert_eq!(metadata.namespace_scope(), ["a", "b", "c"]);
        assert_eq!(metadata.finalizer_name(), Some("example.com/f"));
        assert_eq!(metadata.max_concurrent(), Some(2));
        assert_eq!(metadata.resync_period(), Some(Duration::from_secs(30)));
        assert_eq!(metadata.validate(), Ok(()));
    }

    #[test]
    fn scope_is_the_selector_and_the_namespaces() {
        let metadata = ok()
            .selector(LabelSelector::new().match_label("a", "b"))
            .namespaces(["ns"]);
        let matching = [("a".to_owned(), "b".to_owned())].into();
        assert!(metadata.in_scope(&matching, Some("ns")));
        assert!(metadata.in_scope(&matching, None));
        assert!(!metadata.in_scope(&matching, Some("other")));
        assert!(!metadata.in_scope(&Default::default(), Some("ns")));
        assert!(ok().in_scope(&Default::default(), Some("any")));
    }

    #[test]
    fn validate_rejects_bad_names_and_empty_kinds() {
        assert_eq!(
            Metadata::new("MyResource", kind()).validate(),
            Err(MetadataError::InvalidName("MyResource".into()))
        );
        let empty = Gvk::new("apps", "", "Deployment");
        assert_eq!(
            ok().owns(empty.clone()).validate(),
            Err(MetadataError::InvalidKind(empty.clone()))
        );
        assert_eq!(
            ok().watches(empty.clone(), WatchMapping::SameNamespace)
                .validate(),
            Err(MetadataError::InvalidKind(empty))
        );
        assert_eq!(ok().validate(), Ok(()));
    }

    #[test]
    fn validate_checks_watches() {
        assert_eq!(
            ok().watches(kind(), WatchMapping::SameNamespace).validate(),
            Err(MetadataError::WatchesReconciledKind(kind()))
        );
        let secret = Gvk::new("", "v1", "Secret");
        for bad in ["", "a b", "Example.com/x", "x/"] {
            assert!(
                matches!(
                    ok().watches(secret.clone(), WatchMapping::Label(bad.into()))
                        .validate(),
                    Err(MetadataError::InvalidWatchLabel { .. })
                ),
                "{bad:?}"
            );
        }
        assert_eq!(
            ok().watches(secret, WatchMapping::Label("example.com/owner".into()))
                .validate(),
            Ok(())
        );
    }

    #[test]
    fn validate_checks_the_selector_and_namespaces() {
        assert!(matches!(
            ok().selector(LabelSelector::new().exists("bad key"))
                .validate(),
            Err(MetadataError::InvalidSelector(
                SelectorError::InvalidKey { .. }
            ))
        ));
        assert_eq!(
            ok().namespaces(["Default"]).validate(),
            Err(MetadataError::InvalidNamespace("Default".into()))
        );
        assert_eq!(
            ok().namespaces(["a", "b", "a"]).validate(),
            Err(MetadataError::DuplicateNamespace("a".into()))
        );
    }

    #[test]
    fn validate_checks_the_finalizer() {
        for bad in [
            "cleanup",
            "/cleanup",
            "Example.com/cleanup",
            "example.com/",
            "example.com/-x",
            "a/b/c",
        ] {
            assert!(
                matches!(
                    ok().finalizer(bad).validate(),
                    Err(MetadataError::InvalidFinalizer { .. })
                ),
                "{bad:?}"
            );
        }
        for good in [
            "example.com/cleanup",
            "a/B_c.d-1",
            "mirror.wasm-reconciler.dev/cleanup",
        ] {
            assert_eq!(ok().finalizer(good).validate(), Ok(()), "{good:?}");
        }
    }

    #[test]
    fn validate_checks_concurrency_and_resync() {
        assert_eq!(
            ok().max_concurrent_reconciles(0).validate(),
            Err(MetadataError::ZeroMaxConcurrentReconciles)
        );
        assert_eq!(ok().max_concurrent_reconciles(1).validate(), Ok(()));
        assert_eq!(
            ok().resync_every(Duration::from_millis(999)).validate(),
            Err(MetadataError::ResyncTooShort(Duration::from_millis(999)))
        );
        assert_eq!(ok().resync_every(Duration::from_secs(1)).validate(), Ok(()));
    }
}
