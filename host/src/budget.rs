//! The host's memory budget, and how it is split so that the parts add up: what the host
//! itself needs, what the event recorder may keep, what each instance slot costs beyond its
//! linear memory, and the rest shared out equally among the plugins.
//!
//! Every term is enforced where the memory is used: linear memory by each store's
//! `ResourceLimiter` against its plugin's share, payloads by a byte semaphore per plugin, the
//! recorder by its byte-bounded caches, slots by the pooling allocator. No plugin can use
//! another's share.

use std::path::Path;

const MIB: u64 = 1 << 20;

/// The memory limit of the shipped pod (`deploy/base/deployment.yaml`): the budget when the
/// host runs without a cgroup limit.
pub(crate) const DEFAULT_POD_LIMIT: u64 = 512 * MIB;
/// Share of the pod's limit the budget may use: the rest is slack for the allocator's
/// fragmentation and what the budget does not see (the kernel's socket buffers, say).
const BUDGET_PERCENT: u64 = 75;
/// The host without any plugin running: runtime, client, watch caches of a few thousand
/// objects, HTTP servers, compiled code of the loaded plugins (measured ~50-65 MiB).
pub(crate) const HOST_BASE: u64 = 96 * MIB;
/// What one instance slot may hold besides its linear memory: its async stack (touched pages
/// stay resident), the pages of linear memory and tables kept resident between instances (at
/// most 1 MiB each, and only what an instance touched), and the object, request and response
/// strings of one call.
pub(crate) const PER_SLOT: u64 = 4 * MIB;
/// Share of each plugin's part that goes to payloads in flight (client writes); the rest is
/// linear memory.
const PAYLOAD_PERCENT: u64 = 25;

/// Where the total came from, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BudgetSource {
    /// `--memory-budget-mib`.
    Flag,
    /// A share of the cgroup's memory limit.
    Cgroup,
    /// No limit found: a share of the shipped pod's limit.
    Default,
}

/// The host-wide split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Budget {
    pub(crate) total: u64,
    pub(crate) source: BudgetSource,
    pub(crate) recorder: u64,
    pub(crate) slots: u32,
    /// What the plugins share: `total - HOST_BASE - recorder - slots * PER_SLOT`.
    pub(crate) plugins: u64,
}

/// One plugin's part of [`Budget::plugins`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PluginShare {
    /// Bytes of linear memory all of the plugin's instances may hold together.
    pub(crate) memory: u64,
    /// Bytes of client payloads the plugin may have in flight.
    pub(crate) payload: u64,
    /// Instances (and so reconciles) of the plugin at once.
    pub(crate) slots: u32,
}

/// Why the budget cannot work.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "a memory budget of {total_mib} MiB leaves nothing for plugins: the host needs {base_mib} MiB, \
     the event recorder {recorder_mib} MiB and {slots} instance slots {slots_mib} MiB; \
     raise --memory-budget-mib or lower --max-instances"
)]
pub struct BudgetError {
    total_mib: u64,
    base_mib: u64,
    recorder_mib: u64,
    slots: u32,
    slots_mib: u64,
}

impl Budget {
    /// Splits `total` bytes for `slots` instance slots and a recorder of `recorder` bytes.
    pub(crate) fn new(
        total: u64,
        source: BudgetSource,
        recorder: u64,
        slots: u32,
    ) -> Result<Self, BudgetError> {
        let fixed = HOST_BASE + recorder + u64::from(slots) * PER_SLOT;
        // At least one default-sized instance's worth must be left for the plugins.
        match total.checked_sub(fixed) {
            Some(plugins) if plugins >= 16 * MIB => Ok(Self {
                total,
                source,
                recorder,
                slots,
                plugins,
            }),
            _ => Err(BudgetError {
                total_mib: total / MIB,
                base_mib: HOST_BASE / MIB,
                recorder_mib: recorder / MIB,
                slots,
                slots_mib: u64::from(slots) * PER_SLOT / MIB,
            }),
        }
    }

    /// The total from a flag (bytes), else from the cgroup limit, else from the shipped
    /// pod's limit.
    pub(crate) fn total_from(flag: Option<u64>) -> (u64, BudgetSource) {
        if let Some(bytes) = flag {
            return (bytes, BudgetSource::Flag);
        }
        match cgroup_memory_limit(Path::new("/sys/fs/cgroup")) {
            Some(limit) => (
                limit.saturating_mul(BUDGET_PERCENT) / 100,
                BudgetSource::Cgroup,
            ),
            None => (
                DEFAULT_POD_LIMIT * BUDGET_PERCENT / 100,
                BudgetSource::Default,
            ),
        }
    }

    /// Each of `plugins` plugins' equal part.
    pub(crate) fn share(&self, plugins: usize) -> PluginShare {
        let n = u64::try_from(plugins.max(1)).unwrap_or(u64::MAX);
        let part = self.plugins / n;
        let payload = part / 100 * PAYLOAD_PERCENT;
        let slots = u32::try_from(u64::from(self.slots) / n).unwrap_or(u32::MAX);
        PluginShare {
            memory: part - payload,
            payload,
            slots: slots.max(1),
        }
    }
}

/// The memory limit of the cgroup the host runs in, if it has one: v2's `memory.max`, or
/// v1's `memory/memory.limit_in_bytes` (where "no limit" is a huge number).
pub(crate) fn cgroup_memory_limit(root: &Path) -> Option<u64> {
    let read = |path: &Path| std::fs::read_to_string(path).ok();
    let limit = read(&root.join("memory.max"))
        .or_else(|| read(&root.join("memory").join("memory.limit_in_bytes")))?;
    let limit: u64 = limit.trim().parse().ok()?;
    // cgroup v1 reports "unlimited" as a page-rounded i64::MAX.
    (limit < 1 << 60).then_some(limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_pod_limit_leaves_room_for_plugins_at_the_default_slots() {
        let (total, source) = (
            DEFAULT_POD_LIMIT * BUDGET_PERCENT / 100,
            BudgetSource::Default,
        );
        let budget = Budget::new(total, source, 16 * MIB, 32).expect("fits");
        assert_eq!(budget.plugins, 384 * MIB - 96 * MIB - 16 * MIB - 128 * MIB);
        let share = budget.share(2);
        assert_eq!(share.slots, 16);
        assert_eq!(share.memory + share.payload, budget.plugins / 2);
    }

    #[test]
    fn the_parts_never_add_up_to_more_than_the_total() {
        for total_mib in [200u64, 384, 1000, 4096] {
            for slots in [1u32, 8, 32] {
                let Ok(budget) = Budget::new(total_mib * MIB, BudgetSource::Flag, 16 * MIB, slots)
                else {
                    continue;
                };
                for plugins in 1..=40 {
                    let share = budget.share(plugins);
                    let n = plugins as u64;
                    let sum = HOST_BASE
                        + budget.recorder
                        + u64::from(slots) * PER_SLOT
                        + n * (share.memory + share.payload);
                    assert!(sum <= budget.total, "{total_mib} MiB, {plugins} plugins");
                    if plugins as u32 <= slots {
                        assert!(u64::from(share.slots) * n <= u64::from(slots));
                    }
                }
            }
        }
    }

    #[test]
    fn a_budget_too_small_for_the_host_is_refused_with_the_numbers() {
        let error = Budget::new(100 * MIB, BudgetSource::Flag, 16 * MIB, 32).unwrap_err();
        assert!(error.to_string().contains("100 MiB"), "{error}");
        assert!(error.to_string().contains("--max-instances"), "{error}");
    }

    #[test]
    fn cgroup_limits_are_read_from_v2_or_v1_and_no_limit_is_none() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert_eq!(cgroup_memory_limit(dir.path()), None);
        std::fs::create_dir(dir.path().join("memory")).expect("mkdir");
        std::fs::write(
            dir.path().join("memory/memory.limit_in_bytes"),
            "9223372036854771712\n",
        )
        .expect("write");
        assert_eq!(cgroup_memory_limit(dir.path()), None);
        std::fs::write(dir.path().join("memory.max"), "max\n").expect("write");
        assert_eq!(cgroup_memory_limit(dir.path()), None);
        std::fs::write(dir.path().join("memory.max"), "536870912\n").expect("write");
        assert_eq!(cgroup_memory_limit(dir.path()), Some(512 * MIB));
    }
}
