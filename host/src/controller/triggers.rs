//! What requeues a plugin's objects: the caches of the kinds it declared, and how a change in
//! each maps to the reconciled objects (the object itself, the owners of an owned object, the
//! mapping of a watch).

use std::collections::HashMap;
use std::sync::Arc;

use futures::channel::mpsc;
use kube::api::ApiResource;
use kube::runtime::reflector::ObjectRef;
use tokio::sync::broadcast;

use crate::cache::{CacheScope, CachedObject, Caches, Change, KindCache, PluginCaches};
use crate::kinds::DeclaredKinds;
use crate::plugin::{Contract, Metadata, WatchMapping};

/// The caches one plugin's controller triggers on and its reads are served from.
pub(crate) struct ControllerCaches {
    /// The reconciled kind, within the plugin's selector and namespaces.
    pub(crate) reconciled: Arc<KindCache>,
    /// The owned kinds: a change requeues the controlling owner.
    pub(crate) owned: Vec<Arc<KindCache>>,
    /// The watched kinds, each with its mapping.
    pub(crate) watched: Vec<(Arc<KindCache>, WatchMapping)>,
    /// What the client reads from: every declared kind for a 0.2.0 plugin, none (live reads)
    /// for a 0.1.0 one or one whose calls are made as its own ServiceAccount.
    pub(crate) reads: Arc<PluginCaches>,
}

impl ControllerCaches {
    /// Takes (or starts) the caches `metadata` asks for. With `impersonated`, the plugin's
    /// reads are not served from the caches, which are filled as the host: they go to the
    /// API server as the plugin's ServiceAccount, so that its RBAC applies to them.
    pub(crate) fn open(
        caches: &Caches,
        kinds: &DeclaredKinds,
        metadata: &Metadata,
        impersonated: bool,
    ) -> Self {
        let namespaces = &metadata.namespaces;
        let cache_of = |kind: &crate::kinds::ResolvedKind| {
            caches.get(
                &kind.resource,
                kind.namespaced,
                CacheScope::new(None, namespaces, kind.namespaced),
            )
        };
        let reconciled = caches.get(
            &kinds.reconciles.resource,
            kinds.reconciles.namespaced,
            CacheScope::new(
                metadata.selector.as_ref(),
                namespaces,
                kinds.reconciles.namespaced,
            ),
        );
        let owned: Vec<_> = kinds.owns.iter().map(cache_of).collect();
        let watched: Vec<_> = kinds
            .watches
            .iter()
            .zip(&metadata.watches)
            .map(|(kind, watch)| (cache_of(kind), watch.mapping.clone()))
            .collect();
        let mut reads = PluginCaches::default();
        if metadata.contract >= Contract::V0_2 && !impersonated {
            // A kind declared as owned, read or watched is read from its cache of every
            // object, even when it is also the reconciled kind, whose cache holds only the
            // objects in the plugin's selector.
            for (kind, cache) in kinds.owns.iter().zip(&owned) {
                reads.insert(kind.gvk.clone(), cache.clone());
            }
            for (kind, (cache, _)) in kinds.watches.iter().zip(&watched) {
                reads.insert(kind.gvk.clone(), cache.clone());
            }
            for kind in &kinds.reads {
                if reads.of(&kind.gvk).is_none() {
                    reads.insert(kind.gvk.clone(), cache_of(kind));
                }
            }
            reads.insert(kinds.reconciles.gvk.clone(), reconciled.clone());
        }
        Self {
            reconciled,
            owned,
            watched,
            reads: Arc::new(reads),
        }
    }

    /// Every cache the controller depends on, the reconciled kind's first; a cache read and
    /// owned (or watched) comes once for reads.
    pub(crate) fn all(&self) -> Vec<Arc<KindCache>> {
        let mut all = vec![self.reconciled.clone()];
        all.extend(self.owned.iter().cloned());
        all.extend(self.watched.iter().map(|(cache, _)| cache.clone()));
        for cache in self.reads.all() {
            if !all.iter().any(|seen| Arc::ptr_eq(seen, cache)) {
                all.push(cache.clone());
            }
        }
        all
    }
}

/// Where the triggers of one controller go.
#[derive(Clone)]
pub(crate) struct Requeue {
    /// Objects to reconcile.
    pub(crate) objects: mpsc::UnboundedSender<ObjectRef<CachedObject>>,
    /// Reconcile every object.
    pub(crate) all: mpsc::UnboundedSender<()>,
}

impl Requeue {
    pub(crate) fn object(&self, key: ObjectRef<CachedObject>) {
        let _ = self.objects.unbounded_send(key);
    }

    pub(crate) fn everything(&self) {
        let _ = self.all.unbounded_send(());
    }
}

/// The next change of a subscription: a lag (changes lost) reads as a relist. `None` once
/// the cache is gone.
pub(crate) async fn next_change(changes: &mut broadcast::Receiver<Change>) -> Option<Change> {
    match changes.recv().await {
        Ok(change) => Some(change),
        Err(broadcast::error::RecvError::Lagged(missed)) => {
            tracing::debug!(
                missed,
                "fell behind a cache's changes; reconciling every object"
            );
            Some(Change::Relisted)
        }
        Err(broadcast::error::RecvError::Closed) => None,
    }
}

/// Passes a change of a reconciled object on when its generation changed or it started being
/// deleted (controller-runtime's `GenerationChangedPredicate`, which lets the plugin's own
/// status writes and metadata changes go by), and always for kinds without a generation.
#[derive(Default)]
pub(crate) struct GenerationFilter {
    seen: HashMap<ObjectRef<CachedObject>, (Option<i64>, bool)>,
}

impl GenerationFilter {
    /// Whether `object`'s change should requeue it.
    pub(crate) fn passes(&mut self, key: &ObjectRef<CachedObject>, object: &CachedObject) -> bool {
        let Some(generation) = object.metadata.generation else {
            return true;
        };
        let now = (
            Some(generation),
            object.metadata.deletion_timestamp.is_some(),
        );
        self.seen.insert(key.clone(), now) != Some(now)
    }

    /// Forgets a deleted object.
    pub(crate) fn forget(&mut self, key: &ObjectRef<CachedObject>) {
        self.seen.remove(key);
    }
}

/// Requeues the owners of `object` (changed or deleted) that are of the reconciled kind:
/// only its controller for an owned kind, every owner for a watch by owner references.
pub(crate) fn requeue_owners(
    object: &CachedObject,
    reconciled: &ApiResource,
    reconciled_namespaced: bool,
    controller_only: bool,
    requeue: &Requeue,
) {
    for owner in object.metadata.owner_references.iter().flatten() {
        if controller_only && owner.controller != Some(true) {
            continue;
        }
        let group = owner
            .api_version
            .split_once('/')
            .map_or("", |(group, _)| group);
        if owner.kind != reconciled.kind || group != reconciled.group {
            continue;
        }
        let mut key = ObjectRef::new_with(&owner.name, reconciled.clone());
        if reconciled_namespaced {
            // A namespaced owner is always in its dependent's namespace.
            match &object.metadata.namespace {
                Some(namespace) => key = key.within(namespace),
                None => continue,
            }
        }
        requeue.object(key);
    }
}

/// Requeues what a change to a watched `object` maps to.
pub(crate) fn requeue_mapped(
    object: &CachedObject,
    mapping: &WatchMapping,
    reconciled: &KindCache,
    requeue: &Requeue,
) {
    let resource = reconciled.resource();
    match mapping {
        WatchMapping::OwnerReferences => {
            requeue_owners(object, resource, reconciled.namespaced(), false, requeue);
        }
        WatchMapping::Label(key) => {
            let Some(name) = object.metadata.labels.as_ref().and_then(|l| l.get(key)) else {
                return;
            };
            if crate::client::check_object_name(name).is_err() {
                return;
            }
            let mut key = ObjectRef::new_with(name, resource.clone());
            if reconciled.namespaced() {
                match &object.metadata.namespace {
                    Some(namespace) => key = key.within(namespace),
                    None => return,
                }
            }
            requeue.object(key);
        }
        WatchMapping::SameNamespace => {
            let namespace = object.metadata.namespace.as_deref();
            for candidate in reconciled.store().state() {
                if namespace.is_none() || candidate.metadata.namespace.as_deref() == namespace {
                    requeue.object(ObjectRef::from_obj_with(
                        candidate.as_ref(),
                        resource.clone(),
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt as _;
    use serde_json::json;

    use super::*;

    fn resource() -> ApiResource {
        ApiResource::erase::<k8s_openapi::api::core::v1::ConfigMap>(&())
    }

    fn object(value: serde_json::Value) -> CachedObject {
        CachedObject::from_value(value).expect("object")
    }

    fn requeue() -> (
        Requeue,
        mpsc::UnboundedReceiver<ObjectRef<CachedObject>>,
        mpsc::UnboundedReceiver<()>,
    ) {
        let (objects, requeued) = mpsc::unbounded();
        let (all, everything) = mpsc::unbounded();
        (Requeue { objects, all }, requeued, everything)
    }

    fn drain(requeued: &mut mpsc::UnboundedReceiver<ObjectRef<CachedObject>>) -> Vec<String> {
        let mut names = Vec::new();
        while let Ok(key) = requeued.try_recv() {
            names.push(format!(
                "{}/{}",
                key.namespace.unwrap_or_default(),
                key.name
            ));
        }
        names
    }

    #[test]
    fn owned_objects_requeue_their_controller_watches_any_owner_of_the_kind() {
        let owned = object(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "s", "namespace": "ns", "ownerReferences": [
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "controller", "uid": "1", "controller": true},
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "other-owner", "uid": "2"},
                {"apiVersion": "apps/v1", "kind": "ConfigMap", "name": "other-group", "uid": "3"},
                {"apiVersion": "v1", "kind": "Pod", "name": "other-kind", "uid": "4"},
            ]},
        }));
        let (requeue, mut requeued, _) = requeue();
        requeue_owners(&owned, &resource(), true, true, &requeue);
        assert_eq!(drain(&mut requeued), ["ns/controller"]);
        requeue_owners(&owned, &resource(), true, false, &requeue);
        assert_eq!(drain(&mut requeued), ["ns/controller", "ns/other-owner"]);
    }

    #[test]
    fn the_generation_filter_passes_spec_changes_and_deletion_only() {
        let mut filter = GenerationFilter::default();
        let key = ObjectRef::new_with("x", resource()).within("ns");
        let at = |generation: i64, deleting: bool| {
            let mut metadata = json!({"name": "x", "namespace": "ns", "generation": generation});
            if deleting {
                metadata["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
            }
            object(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata}))
        };
        assert!(filter.passes(&key, &at(1, false)));
        assert!(
            !filter.passes(&key, &at(1, false)),
            "a status or metadata write"
        );
        assert!(filter.passes(&key, &at(2, false)));
        assert!(filter.passes(&key, &at(2, true)), "deletion started");
        filter.forget(&key);
        assert!(filter.passes(&key, &at(2, true)));
        let no_generation =
            object(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}));
        assert!(filter.passes(&key, &no_generation));
        assert!(filter.passes(&key, &no_generation));
    }

    #[tokio::test]
    async fn a_subscriber_that_falls_behind_reconciles_everything() {
        let (sender, mut changes) = broadcast::channel(2);
        for _ in 0..3 {
            let _ = sender.send(Change::Relisted);
        }
        assert!(matches!(
            next_change(&mut changes).await,
            Some(Change::Relisted)
        ));
        drop(sender);
        let rest: Vec<_> = futures::stream::unfold(changes, |mut changes| async move {
            next_change(&mut changes)
                .await
                .map(|change| (change, changes))
        })
        .collect()
        .await;
        assert_eq!(rest.len(), 2, "the two kept after the lag, then the end");
    }
}
