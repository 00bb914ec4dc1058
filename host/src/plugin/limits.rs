//! What one plugin may hold at once: its instance slots, its share of linear memory and of
//! payload bytes. Each plugin has its own, so that no plugin can take what another needs.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Semaphore;

use crate::budget::PluginShare;

/// Bytes of linear memory that all instances of one plugin hold together, bounded.
#[derive(Debug)]
pub(crate) struct MemoryPool {
    capacity: u64,
    used: AtomicU64,
}

impl MemoryPool {
    pub(crate) fn new(capacity: u64) -> Arc<Self> {
        Arc::new(Self {
            capacity,
            used: AtomicU64::new(0),
        })
    }

    /// Takes `bytes` if they fit.
    pub(crate) fn try_take(&self, bytes: u64) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes)
                    .filter(|&after| after <= self.capacity)
            })
            .is_ok()
    }

    /// Returns `bytes` taken before.
    pub(crate) fn give_back(&self, bytes: u64) {
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                Some(used.saturating_sub(bytes))
            });
    }

    pub(crate) fn capacity(&self) -> u64 {
        self.capacity
    }

    #[cfg(test)]
    pub(crate) fn used(&self) -> u64 {
        self.used.load(Ordering::Acquire)
    }
}

/// One plugin's slots, memory and payload bytes.
#[derive(Debug, Clone)]
pub(crate) struct PluginLimits {
    pub(crate) slots: Arc<Semaphore>,
    pub(crate) memory: Arc<MemoryPool>,
    pub(crate) payload_bytes: Arc<Semaphore>,
    pub(crate) concurrency: u32,
}

impl PluginLimits {
    /// Limits sized by `share`.
    pub(crate) fn new(share: PluginShare) -> Self {
        let payload = usize::try_from(share.payload)
            .unwrap_or(usize::MAX)
            .min(Semaphore::MAX_PERMITS);
        Self {
            slots: Arc::new(Semaphore::new(
                usize::try_from(share.slots).unwrap_or(usize::MAX),
            )),
            memory: MemoryPool::new(share.memory),
            payload_bytes: Arc::new(Semaphore::new(payload)),
            concurrency: share.slots,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_gives_what_fits_and_takes_back_what_was_given() {
        let pool = MemoryPool::new(100);
        assert!(pool.try_take(60));
        assert!(!pool.try_take(41), "over capacity");
        assert!(pool.try_take(40));
        assert_eq!(pool.used(), 100);
        pool.give_back(60);
        assert!(pool.try_take(50));
        assert_eq!(pool.used(), 90);
    }
}
