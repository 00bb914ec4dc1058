//! What one plugin may hold at once: its instance slots, its share of linear memory and of
//! payload bytes. Each plugin has its own, so that no plugin can take what another needs, and
//! each draws on a host-wide total as well, so that the host's budget holds even while the
//! shares change (a plugin added or removed while the host runs).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{AcquireError, Semaphore, SemaphorePermit, watch};

use crate::budget::PluginShare;

/// Bytes of linear memory that all instances of one plugin hold together, bounded, and drawn
/// from a host-wide pool when there is one.
#[derive(Debug)]
pub(crate) struct MemoryPool {
    capacity: AtomicU64,
    used: AtomicU64,
    host: Option<Arc<MemoryPool>>,
    /// Bumped when memory is given back while someone waits for it.
    released: watch::Sender<u64>,
}

impl MemoryPool {
    pub(crate) fn new(capacity: u64) -> Arc<Self> {
        Self::within(capacity, None)
    }

    /// A pool of `capacity` whose takes also draw on `host`.
    pub(crate) fn within(capacity: u64, host: Option<Arc<MemoryPool>>) -> Arc<Self> {
        Arc::new(Self {
            capacity: AtomicU64::new(capacity),
            used: AtomicU64::new(0),
            host,
            released: watch::Sender::new(0),
        })
    }

    /// Takes `bytes` if they fit here and in the host's pool.
    pub(crate) fn try_take(&self, bytes: u64) -> bool {
        let taken = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes)
                    .filter(|&after| after <= self.capacity.load(Ordering::Acquire))
            })
            .is_ok();
        if !taken {
            return false;
        }
        if let Some(host) = &self.host
            && !host.try_take(bytes)
        {
            self.release(bytes);
            return false;
        }
        true
    }

    /// Returns `bytes` taken before.
    pub(crate) fn give_back(&self, bytes: u64) {
        self.release(bytes);
        if let Some(host) = &self.host {
            host.give_back(bytes);
        }
        if bytes > 0 && self.released.receiver_count() > 0 {
            self.released
                .send_modify(|count| *count = count.wrapping_add(1));
        }
    }

    /// Changes after this call whenever memory is given back: what a take that did not fit
    /// waits on before trying again.
    pub(crate) fn released(&self) -> watch::Receiver<u64> {
        self.released.subscribe()
    }

    fn release(&self, bytes: u64) {
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                Some(used.saturating_sub(bytes))
            });
    }

    /// Changes the capacity. What is held above a smaller capacity stays held until it is
    /// given back; no new take succeeds until then.
    pub(crate) fn resize(&self, capacity: u64) {
        self.capacity.store(capacity, Ordering::Release);
    }

    pub(crate) fn capacity(&self) -> u64 {
        self.capacity.load(Ordering::Acquire)
    }

    pub(crate) fn used(&self) -> u64 {
        self.used.load(Ordering::Acquire)
    }
}

/// A semaphore whose size can change while permits are out, drawing on a host-wide semaphore
/// when there is one. Shrinking takes the free permits back at once and the rest as they are
/// returned, so that the holder never has more than its new size for longer than its
/// longest-held permit.
#[derive(Debug)]
pub(crate) struct Quota {
    permits: Semaphore,
    sizes: Mutex<Sizes>,
    host: Option<Arc<Semaphore>>,
}

#[derive(Debug)]
struct Sizes {
    size: usize,
    /// Permits out that are to be forgotten, not returned, when they come back.
    debt: usize,
}

/// Permits of a [`Quota`] (and of its host semaphore); returned on drop.
#[derive(Debug)]
pub(crate) struct QuotaPermit<'a> {
    quota: &'a Quota,
    permit: Option<SemaphorePermit<'a>>,
    _host: Option<SemaphorePermit<'a>>,
}

impl Quota {
    pub(crate) fn new(size: usize, host: Option<Arc<Semaphore>>) -> Arc<Self> {
        let size = size.min(Semaphore::MAX_PERMITS);
        Arc::new(Self {
            permits: Semaphore::new(size),
            sizes: Mutex::new(Sizes { size, debt: 0 }),
            host,
        })
    }

    /// Waits for one permit.
    pub(crate) async fn acquire(&self) -> Result<QuotaPermit<'_>, AcquireError> {
        self.acquire_many(1).await
    }

    /// Waits for `n` permits here, then in the host's semaphore.
    pub(crate) async fn acquire_many(&self, n: u32) -> Result<QuotaPermit<'_>, AcquireError> {
        let permit = self.permits.acquire_many(n).await?;
        let host = match &self.host {
            Some(host) => Some(host.acquire_many(n).await?),
            None => None,
        };
        Ok(QuotaPermit {
            quota: self,
            permit: Some(permit),
            _host: host,
        })
    }

    /// Changes the size to `size`.
    pub(crate) fn resize(&self, size: usize) {
        let size = size.min(Semaphore::MAX_PERMITS);
        let mut sizes = self.sizes.lock().unwrap_or_else(PoisonError::into_inner);
        if size >= sizes.size {
            let grow = size - sizes.size;
            let repaid = grow.min(sizes.debt);
            sizes.debt -= repaid;
            self.permits.add_permits(grow - repaid);
        } else {
            let shrink = sizes.size - size;
            let taken = self.permits.forget_permits(shrink);
            sizes.debt += shrink - taken;
        }
        sizes.size = size;
    }

    /// The current size.
    pub(crate) fn size(&self) -> usize {
        self.sizes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .size
    }

    #[cfg(test)]
    fn available(&self) -> usize {
        self.permits.available_permits()
    }
}

impl Drop for QuotaPermit<'_> {
    fn drop(&mut self) {
        let Some(mut permit) = self.permit.take() else {
            return;
        };
        // Under the lock, so that a resize cannot slip between the check and the return.
        let mut sizes = self
            .quota
            .sizes
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let held = permit.num_permits();
        let repaid = held.min(sizes.debt);
        if repaid > 0 {
            sizes.debt -= repaid;
            if repaid == held {
                permit.forget();
                return;
            }
            if let Some(part) = permit.split(repaid) {
                part.forget();
            }
        }
        drop(permit);
    }
}

/// One plugin's slots, memory and payload bytes.
#[derive(Debug, Clone)]
pub(crate) struct PluginLimits {
    pub(crate) slots: Arc<Quota>,
    pub(crate) memory: Arc<MemoryPool>,
    pub(crate) payload_bytes: Arc<Quota>,
}

/// What the plugins' limits draw on together: the host-wide side of each.
#[derive(Debug, Clone)]
pub(crate) struct HostLimits {
    pub(crate) memory: Arc<MemoryPool>,
    pub(crate) payload_bytes: Arc<Semaphore>,
}

impl HostLimits {
    /// `memory` bytes of linear memory and `payload` bytes of payloads for all plugins.
    pub(crate) fn new(memory: u64, payload: u64) -> Self {
        Self {
            memory: MemoryPool::new(memory),
            payload_bytes: Arc::new(Semaphore::new(permits(payload))),
        }
    }
}

fn permits(bytes: u64) -> usize {
    usize::try_from(bytes)
        .unwrap_or(usize::MAX)
        .min(Semaphore::MAX_PERMITS)
}

impl PluginLimits {
    /// Limits sized by `share`, standing alone.
    pub(crate) fn new(share: PluginShare) -> Self {
        Self::within(share, None)
    }

    /// Limits sized by `share`, drawing on `host` too.
    pub(crate) fn within(share: PluginShare, host: Option<&HostLimits>) -> Self {
        Self {
            slots: Quota::new(usize::try_from(share.slots).unwrap_or(usize::MAX), None),
            memory: MemoryPool::within(share.memory, host.map(|host| host.memory.clone())),
            payload_bytes: Quota::new(
                permits(share.payload),
                host.map(|host| host.payload_bytes.clone()),
            ),
        }
    }

    /// Resizes every limit to `share`; what is held above the new sizes is taken back as it
    /// is returned.
    pub(crate) fn resize(&self, share: PluginShare) {
        self.slots
            .resize(usize::try_from(share.slots).unwrap_or(usize::MAX));
        self.memory.resize(share.memory);
        self.payload_bytes.resize(permits(share.payload));
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

    #[test]
    fn a_pool_within_a_host_pool_is_bounded_by_both_and_a_resize_holds_new_takes() {
        let host = MemoryPool::new(100);
        let a = MemoryPool::within(80, Some(host.clone()));
        let b = MemoryPool::within(80, Some(host.clone()));
        assert!(a.try_take(70));
        assert!(!b.try_take(40), "the host pool has 30 left");
        assert_eq!(b.used(), 0, "a refused take leaves nothing held");
        assert!(b.try_take(30));
        a.resize(50);
        a.give_back(10);
        assert!(!a.try_take(1), "still 60 held over a capacity of 50");
        a.give_back(20);
        assert!(a.try_take(10));
        assert_eq!((a.used(), b.used(), host.used()), (50, 30, 80));
    }

    #[tokio::test]
    async fn a_quota_shrinks_at_once_where_permits_are_free_and_later_where_they_are_held() {
        let quota = Quota::new(4, None);
        let first = quota.acquire().await.expect("permit");
        let second = quota.acquire_many(2).await.expect("permits");
        quota.resize(1);
        assert_eq!(quota.available(), 0, "the one free permit is taken back");
        drop(first);
        assert_eq!(quota.available(), 0, "a returned permit pays the debt");
        drop(second);
        assert_eq!(
            quota.available(),
            1,
            "one of two pays the debt, one is free"
        );
        quota.resize(3);
        assert_eq!(quota.available(), 3);
        assert_eq!(quota.size(), 3);
    }

    #[tokio::test]
    async fn growing_a_quota_in_debt_repays_the_debt_first() {
        let quota = Quota::new(2, None);
        let held = quota.acquire_many(2).await.expect("permits");
        quota.resize(0);
        quota.resize(1);
        drop(held);
        assert_eq!(quota.available(), 1, "the size is 1, whatever came back");
    }

    #[tokio::test]
    async fn a_quota_draws_on_its_host_semaphore_too() {
        let host = Arc::new(Semaphore::new(3));
        let a = Quota::new(2, Some(host.clone()));
        let b = Quota::new(2, Some(host.clone()));
        let _a = a.acquire_many(2).await.expect("permits");
        let _b = b.acquire().await.expect("permit");
        assert_eq!(host.available_permits(), 0);
        let blocked = tokio::time::timeout(std::time::Duration::from_millis(20), b.acquire());
        assert!(blocked.await.is_err(), "the host has nothing left");
        drop(_a);
        assert_eq!(host.available_permits(), 2);
    }
}
