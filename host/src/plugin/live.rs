//! The version of a plugin that serves new reconciles, which a hot reload swaps while the
//! plugin's controller keeps running.

use std::sync::{Arc, PoisonError, RwLock};

use tokio::sync::watch;

use super::Plugin;

/// One plugin's current version. Each reconcile takes the version current when it starts and
/// keeps it to the end, so that a swap lets running reconciles finish on the old version.
pub(crate) struct LivePlugin {
    name: Arc<str>,
    current: RwLock<Arc<Plugin>>,
    /// Counts swaps, for the controller to reconcile everything on the new version.
    swaps: watch::Sender<u64>,
}

impl LivePlugin {
    pub(crate) fn new(plugin: Arc<Plugin>) -> Arc<Self> {
        Arc::new(Self {
            name: plugin.name().clone(),
            current: RwLock::new(plugin),
            swaps: watch::Sender::new(0),
        })
    }

    /// The plugin's name, the same for every version.
    pub(crate) fn name(&self) -> &Arc<str> {
        &self.name
    }

    /// The version new reconciles run on.
    pub(crate) fn current(&self) -> Arc<Plugin> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Makes `plugin` the version new reconciles run on; returns the one it replaces.
    ///
    /// # Panics
    ///
    /// In debug builds, if `plugin` has another name: a swap keeps the name.
    pub(crate) fn swap(&self, plugin: Arc<Plugin>) -> Arc<Plugin> {
        debug_assert_eq!(plugin.name(), &self.name);
        let old = {
            let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
            std::mem::replace(&mut *current, plugin)
        };
        self.swaps.send_modify(|swaps| *swaps += 1);
        old
    }

    /// Changes whenever a new version is swapped in.
    pub(crate) fn swaps(&self) -> watch::Receiver<u64> {
        self.swaps.subscribe()
    }
}
