//! One watch and cache per kind and scope, shared by every plugin that declares the kind.
//!
//! A [`KindCache`] runs one watch (list, then watch, relisting after an outage), strips
//! `managedFields` from every object before storing it, and tells each subscriber what changed.
//! Subscribers never slow the watch: a subscriber that falls behind is told it lagged and
//! reconciles everything, which level-triggered reconcilers are built for. The cache lives
//! while a plugin holds it: the last plugin to let go stops the watch.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, Weak};

use futures::StreamExt as _;
use kube::ResourceExt as _;
use kube::api::{Api, ApiResource, GroupVersionKind};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt as _, watcher};
use tokio::sync::{broadcast, watch};

use crate::controller::{WatchBackoff, relisting_watcher};
use crate::selector::LabelSelector;

mod object;

pub(crate) use object::CachedObject;

/// Changes a subscriber may fall behind by before it is told it lagged.
const CHANGES_BUFFERED: usize = 4096;

/// Which objects of a kind a cache holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct CacheScope {
    /// Objects whose labels match, in the API server's selector syntax; empty for all.
    pub(crate) selector: String,
    /// Objects in these namespaces, sorted; empty for all (always empty for a cluster-scoped
    /// kind).
    pub(crate) namespaces: Vec<String>,
}

impl CacheScope {
    /// Every object of the kind, in `namespaces` (all when empty) for a namespaced kind.
    pub(crate) fn new(
        selector: Option<&LabelSelector>,
        namespaces: &[String],
        namespaced: bool,
    ) -> Self {
        let mut namespaces = if namespaced {
            namespaces.to_vec()
        } else {
            Vec::new()
        };
        namespaces.sort();
        namespaces.dedup();
        Self {
            selector: selector.map(ToString::to_string).unwrap_or_default(),
            namespaces,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CacheKey {
    group: String,
    version: String,
    plural: String,
    scope: CacheScope,
}

/// What changed in a cache.
#[derive(Debug, Clone)]
pub(crate) enum Change {
    /// The object was added or modified; it is in the cache as given.
    Applied(Arc<CachedObject>),
    /// The object was deleted, or left the cache's scope (its labels stopped matching); as
    /// it was last seen.
    Deleted(Arc<CachedObject>),
    /// The watch listed everything afresh after an outage: changes may have been missed.
    Relisted,
}

/// The shared caches of the host, by kind and scope.
pub(crate) struct Caches {
    client: kube::Client,
    running: Mutex<HashMap<CacheKey, Weak<KindCache>>>,
}

impl Caches {
    pub(crate) fn new(client: kube::Client) -> Arc<Self> {
        Arc::new(Self {
            client,
            running: Mutex::new(HashMap::new()),
        })
    }

    /// The cache of `resource` objects in `scope`: the running one if another plugin holds
    /// it, else a new one, whose watch starts now.
    pub(crate) fn get(
        &self,
        resource: &ApiResource,
        namespaced: bool,
        scope: CacheScope,
    ) -> Arc<KindCache> {
        let key = CacheKey {
            group: resource.group.clone(),
            version: resource.version.clone(),
            plural: resource.plural.clone(),
            scope,
        };
        let mut running = self
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        running.retain(|_, cache| cache.strong_count() > 0);
        if let Some(cache) = running.get(&key).and_then(Weak::upgrade) {
            return cache;
        }
        let cache = KindCache::start(self.client.clone(), resource, namespaced, &key.scope);
        running.insert(key, Arc::downgrade(&cache));
        cache
    }
}

/// The caches one plugin's reads are served from, by kind.
#[derive(Default)]
pub(crate) struct PluginCaches {
    kinds: Vec<(GroupVersionKind, Arc<KindCache>)>,
}

impl PluginCaches {
    /// Reads of `gvk` are served from `cache` from now on.
    pub(crate) fn insert(&mut self, gvk: GroupVersionKind, cache: Arc<KindCache>) {
        if self.of(&gvk).is_none() {
            self.kinds.push((gvk, cache));
        }
    }

    /// Every cache reads are served from.
    pub(crate) fn all(&self) -> impl Iterator<Item = &Arc<KindCache>> {
        self.kinds.iter().map(|(_, cache)| cache)
    }

    /// The cache of `gvk`, if reads of it are cached.
    pub(crate) fn of(&self, gvk: &GroupVersionKind) -> Option<&Arc<KindCache>> {
        self.kinds
            .iter()
            .find(|(kind, _)| kind == gvk)
            .map(|(_, cache)| cache)
    }
}

/// One kind's cache and the watch that fills it.
pub(crate) struct KindCache {
    resource: ApiResource,
    namespaced: bool,
    store: Store<CachedObject>,
    /// The names in the store by namespace, for lists within one namespace.
    names: Arc<NamespaceIndex>,
    changes: broadcast::Sender<Change>,
    /// `Some(error)` while the watch fails.
    health: watch::Receiver<Option<String>>,
    task: tokio::task::AbortHandle,
}

impl Drop for KindCache {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl KindCache {
    fn start(
        client: kube::Client,
        resource: &ApiResource,
        namespaced: bool,
        scope: &CacheScope,
    ) -> Arc<Self> {
        // One namespace: watch only it. Several: watch all and keep only theirs, since the
        // API server has no selector for a set of namespaces.
        let api = match scope.namespaces.as_slice() {
            [namespace] => Api::<CachedObject>::namespaced_with(client, namespace, resource),
            _ => Api::<CachedObject>::all_with(client, resource),
        };
        let keep: Option<BTreeSet<String>> =
            (scope.namespaces.len() > 1).then(|| scope.namespaces.iter().cloned().collect());
        let mut config = watcher::Config::default();
        if !scope.selector.is_empty() {
            config = config.labels(&scope.selector);
        }
        let (changes, _) = broadcast::channel(CHANGES_BUFFERED);
        let (health_tx, health) = watch::channel(None);
        let mut filler = Filler::new(resource.clone(), changes.clone());
        let (store, names) = (filler.reader.clone(), filler.names.clone());
        let watch = async move {
            let mut events =
                std::pin::pin!(relisting_watcher(api, config).backoff(WatchBackoff::default()));
            while let Some(event) = events.next().await {
                let event = match event {
                    Ok(event) => {
                        health_tx.send_if_modified(|failing| failing.take().is_some());
                        event
                    }
                    Err(error) => {
                        let error = error.to_string();
                        health_tx.send_if_modified(|failing| {
                            let changed = failing.as_deref() != Some(error.as_str());
                            *failing = Some(error);
                            changed
                        });
                        continue;
                    }
                };
                if let Some(keep) = &keep
                    && !event_in_namespaces(&event, keep)
                {
                    continue;
                }
                filler.apply(&event);
            }
        };
        let task = tokio::spawn(watch).abort_handle();
        Arc::new(Self {
            resource: resource.clone(),
            namespaced,
            store,
            names,
            changes,
            health,
            task,
        })
    }

    /// The kind's API resource.
    pub(crate) fn resource(&self) -> &ApiResource {
        &self.resource
    }

    /// Whether the kind is namespaced.
    pub(crate) fn namespaced(&self) -> bool {
        self.namespaced
    }

    /// The cached objects, for lookups.
    pub(crate) fn store(&self) -> &Store<CachedObject> {
        &self.store
    }

    /// Changes from now on.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    /// The watch's health: `Some(error)` while it fails.
    pub(crate) fn health(&self) -> watch::Receiver<Option<String>> {
        self.health.clone()
    }

    /// Waits until the first list is in the cache.
    pub(crate) async fn ready(&self) {
        // The store's readiness keeps only the waker of its latest waiter: poll now and then,
        // as several controllers may wait on one cache.
        loop {
            let wait = tokio::time::timeout(
                std::time::Duration::from_millis(200),
                self.store.wait_until_ready(),
            );
            match wait.await {
                Ok(Ok(())) => return,
                Ok(Err(_)) => std::future::pending::<()>().await,
                Err(_) => {}
            }
        }
    }

    /// The cached object `name` in `namespace` (`None` for cluster-scoped kinds).
    pub(crate) fn get(&self, namespace: Option<&str>, name: &str) -> Option<Arc<CachedObject>> {
        let mut key = ObjectRef::new_with(name, self.resource.clone());
        if self.namespaced {
            key = key.within(namespace.unwrap_or_default());
        }
        self.store.get(&key)
    }

    /// The cached objects in `namespace` (every object for a cluster-scoped kind) whose
    /// labels match `selector`, sorted by namespace and name.
    pub(crate) fn list(
        &self,
        namespace: Option<&str>,
        selector: Option<&LabelSelector>,
    ) -> Vec<Arc<CachedObject>> {
        let matches = |object: &Arc<CachedObject>| {
            selector.is_none_or(|selector| selector.matches(object.labels()))
        };
        if self.namespaced {
            // Only the objects of one namespace, in order of name: no scan of the others.
            let namespace = namespace.unwrap_or_default();
            return self
                .names
                .names_in(namespace)
                .into_iter()
                .filter_map(|name| self.get(Some(namespace), &name))
                .filter(matches)
                .collect();
        }
        let mut objects: Vec<Arc<CachedObject>> =
            self.store.state().into_iter().filter(matches).collect();
        objects.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        objects
    }
}

/// The names of a cache's objects by namespace, kept beside the store by the watch task.
#[derive(Default)]
struct NamespaceIndex {
    names: std::sync::RwLock<HashMap<String, BTreeSet<String>>>,
}

impl NamespaceIndex {
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, BTreeSet<String>>> {
        self.names
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn insert(&self, object: &CachedObject) {
        let (Some(namespace), Some(name)) = (&object.metadata.namespace, &object.metadata.name)
        else {
            return;
        };
        self.write()
            .entry(namespace.clone())
            .or_default()
            .insert(name.clone());
    }

    fn remove(&self, object: &CachedObject) {
        let (Some(namespace), Some(name)) = (&object.metadata.namespace, &object.metadata.name)
        else {
            return;
        };
        let mut names = self.write();
        if let Some(in_namespace) = names.get_mut(namespace) {
            in_namespace.remove(name);
            if in_namespace.is_empty() {
                names.remove(namespace);
            }
        }
    }

    /// Starts over from `objects`, what a list found.
    fn rebuild(&self, objects: &[Arc<CachedObject>]) {
        let mut names = self.write();
        names.clear();
        for object in objects {
            if let (Some(namespace), Some(name)) =
                (&object.metadata.namespace, &object.metadata.name)
            {
                names
                    .entry(namespace.clone())
                    .or_default()
                    .insert(name.clone());
            }
        }
    }

    /// The names in `namespace`, sorted.
    fn names_in(&self, namespace: &str) -> Vec<String> {
        self.names
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(namespace)
            .map(|names| names.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// What a cache's watch task writes: the store, its namespace index, and the subscribers.
struct Filler {
    writer: reflector::store::Writer<CachedObject>,
    reader: Store<CachedObject>,
    names: Arc<NamespaceIndex>,
    dyntype: ApiResource,
    changes: broadcast::Sender<Change>,
    /// Whether the first list is in: the end of a later one is a relist.
    listed: bool,
}

impl Filler {
    fn new(dyntype: ApiResource, changes: broadcast::Sender<Change>) -> Self {
        let writer = reflector::store::Writer::new(dyntype.clone());
        Self {
            reader: writer.as_reader(),
            writer,
            names: Arc::default(),
            dyntype,
            changes,
            listed: false,
        }
    }

    /// Applies one watch event to the cache and tells subscribers what changed.
    fn apply(&mut self, event: &watcher::Event<CachedObject>) {
        match event {
            watcher::Event::Apply(object) => {
                self.writer.apply_watcher_event(event);
                self.names.insert(object);
                let key = ObjectRef::from_obj_with(object, self.dyntype.clone());
                if let Some(stored) = self.reader.get(&key) {
                    let _ = self.changes.send(Change::Applied(stored));
                }
            }
            watcher::Event::Delete(object) => {
                self.writer.apply_watcher_event(event);
                self.names.remove(object);
                let _ = self.changes.send(Change::Deleted(Arc::new(object.clone())));
            }
            watcher::Event::Init | watcher::Event::InitApply(_) => {
                self.writer.apply_watcher_event(event);
            }
            watcher::Event::InitDone => {
                let before = self.reader.state();
                self.writer.apply_watcher_event(event);
                self.names.rebuild(&self.reader.state());
                // What went while the watch was down is gone without a delete event.
                for object in before {
                    let key = ObjectRef::from_obj_with(object.as_ref(), self.dyntype.clone());
                    if self.reader.get(&key).is_none() {
                        let _ = self.changes.send(Change::Deleted(object));
                    }
                }
                if self.listed {
                    let _ = self.changes.send(Change::Relisted);
                }
                self.listed = true;
            }
        }
    }
}

fn event_in_namespaces(event: &watcher::Event<CachedObject>, keep: &BTreeSet<String>) -> bool {
    match event {
        watcher::Event::Apply(object)
        | watcher::Event::Delete(object)
        | watcher::Event::InitApply(object) => object
            .metadata
            .namespace
            .as_ref()
            .is_some_and(|namespace| keep.contains(namespace)),
        watcher::Event::Init | watcher::Event::InitDone => true,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn config_map(name: &str) -> CachedObject {
        CachedObject::from_value(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "ns", "uid": name},
        }))
        .expect("object")
    }

    #[test]
    fn a_relist_tells_subscribers_what_went_while_the_watch_was_down() {
        let resource = ApiResource::erase::<k8s_openapi::api::core::v1::ConfigMap>(&());
        let (sender, mut changes) = broadcast::channel(16);
        let mut filler = Filler::new(resource, sender);
        let (reader, names) = (filler.reader.clone(), filler.names.clone());
        let mut feed = |event: watcher::Event<CachedObject>| filler.apply(&event);
        feed(watcher::Event::Init);
        feed(watcher::Event::InitApply(config_map("a")));
        feed(watcher::Event::InitApply(config_map("b")));
        feed(watcher::Event::InitDone);
        assert!(changes.try_recv().is_err(), "the first list is no news");
        feed(watcher::Event::Apply(config_map("c")));
        assert!(
            matches!(changes.try_recv(), Ok(Change::Applied(o)) if o.metadata.name.as_deref() == Some("c"))
        );

        // After an outage, the relist no longer has `b`: it is reported deleted, then the relist.
        feed(watcher::Event::Init);
        feed(watcher::Event::InitApply(config_map("a")));
        feed(watcher::Event::InitApply(config_map("c")));
        feed(watcher::Event::InitDone);
        assert!(
            matches!(changes.try_recv(), Ok(Change::Deleted(o)) if o.metadata.name.as_deref() == Some("b"))
        );
        assert!(matches!(changes.try_recv(), Ok(Change::Relisted)));
        assert!(changes.try_recv().is_err());
        assert_eq!(reader.state().len(), 2);
        assert_eq!(
            names.names_in("ns"),
            ["a", "c"],
            "the index follows the relist"
        );
        assert!(names.names_in("other").is_empty());
    }

    #[test]
    fn a_cache_filtered_by_namespaces_keeps_only_theirs() {
        let keep: BTreeSet<String> = ["a".to_owned(), "b".to_owned()].into();
        let mut object = config_map("x");
        object.metadata.namespace = Some("b".into());
        assert!(event_in_namespaces(
            &watcher::Event::Apply(object.clone()),
            &keep
        ));
        object.metadata.namespace = Some("kube-system".into());
        assert!(!event_in_namespaces(
            &watcher::Event::Apply(object.clone()),
            &keep
        ));
        assert!(!event_in_namespaces(
            &watcher::Event::InitApply(object),
            &keep
        ));
        assert!(event_in_namespaces(&watcher::Event::InitDone, &keep));
    }
}
