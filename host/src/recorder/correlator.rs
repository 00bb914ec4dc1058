//! Decides what each recorded event becomes, and which Event writes are due: the recorder's
//! memory. Pure state driven by an explicit clock, so its timing rules are unit-tested.
//!
//! - **Series.** A repeat of an event (same plugin, object, type, reason and message) within
//!   [`CorrelatorConfig::series_window`] of the last one raises the count of the existing
//!   Event instead of creating another. The first two occurrences are written at once (create,
//!   then a patch to count 2, as client-go does); after that a series is written at most once
//!   per [`CorrelatorConfig::min_write_interval`], with the latest count, so a storm of any
//!   size costs a few writes per second and ends with the exact count on the server.
//! - **Aggregation.** When [`CorrelatorConfig::aggregate_distinct`] or more distinct messages
//!   with the same plugin, object, type and reason arrive within
//!   [`CorrelatorConfig::aggregate_window`], further ones fold into one Event whose message
//!   starts with `(combined from similar events): ` (client-go's `EventAggregator`).
//! - **Spam filter.** Creating a new Event object takes a token from a bucket per (plugin,
//!   object, type): burst 25, one token back every 300 s (client-go's defaults). Repeats never
//!   take tokens: they only raise a count, whose writes are already rate limited.
//!
//! - **Bounds.** The caches are bounded in entries and the series in bytes
//!   ([`CorrelatorConfig::max_bytes`]); new Events waiting for their first write are bounded
//!   in number ([`CorrelatorConfig::max_pending_creates`]), and so is the list of finished
//!   series that still owe a write. Bookkeeping costs at most O(log n) per event and per
//!   write: counters are kept as state changes and due writes in order of their due time,
//!   never found by a scan of the caches.
//!
//! The message is part of the series key on purpose: `kubectl describe` shows one row per
//! Event, and a key without the message (as in client-go's `tools/events`) would show a
//! changed message under the first one's text. Many distinct messages are bounded by
//! aggregation instead.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::hash::{BuildHasher, Hash};
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::jiff::Timestamp;
use lru::LruCache;

use super::EventType;
use crate::object::ReconciledObject;

/// Prefix of the message of an aggregated event, as client-go writes it.
pub(crate) const COMBINED_PREFIX: &str = "(combined from similar events): ";

/// The correlator's numbers; the defaults are client-go's.
#[derive(Debug, Clone)]
pub(crate) struct CorrelatorConfig {
    pub(crate) series_window: Duration,
    pub(crate) min_write_interval: Duration,
    pub(crate) aggregate_window: Duration,
    pub(crate) aggregate_distinct: usize,
    pub(crate) spam_burst: u32,
    pub(crate) spam_refill: Duration,
    pub(crate) cache_size: NonZeroUsize,
    pub(crate) max_bytes: usize,
    pub(crate) max_pending_creates: usize,
    pub(crate) max_attempts: u32,
    pub(crate) retry_interval: Duration,
}

impl Default for CorrelatorConfig {
    fn default() -> Self {
        Self {
            series_window: Duration::from_secs(6 * 60),
            min_write_interval: Duration::from_secs(1),
            aggregate_window: Duration::from_secs(600),
            aggregate_distinct: 10,
            spam_burst: 25,
            spam_refill: Duration::from_secs(300),
            cache_size: NonZeroUsize::new(4096).unwrap_or(NonZeroUsize::MIN),
            max_bytes: 16 << 20,
            max_pending_creates: 4096,
            max_attempts: 12,
            retry_interval: Duration::from_secs(10),
        }
    }
}

/// One validated event as the plugin recorded it.
#[derive(Debug, Clone)]
pub(crate) struct Occurrence {
    pub(crate) plugin: Arc<str>,
    pub(crate) regarding: Arc<ReconciledObject>,
    pub(crate) event_type: EventType,
    pub(crate) reason: String,
    pub(crate) message: String,
    pub(crate) annotations: BTreeMap<String, String>,
    pub(crate) time: Timestamp,
}

/// What became of an occurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Observed {
    /// It starts a new Event.
    New,
    /// It raised the count of an existing Event.
    Repeat,
    /// It starts a new Event that folds distinct messages together.
    Aggregated,
    /// The spam filter dropped it.
    Filtered,
    /// Too many new Events (or bytes) are waiting to be written; it was not taken.
    QueueFull,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SeriesKey {
    plugin: Arc<str>,
    uid: String,
    event_type: EventType,
    reason: String,
    /// The message, or [`COMBINED_PREFIX`] for the aggregate series.
    note: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct AggregateKey {
    plugin: Arc<str>,
    uid: String,
    event_type: EventType,
    reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SpamKey {
    plugin: Arc<str>,
    uid: String,
    event_type: EventType,
}

/// A series' identity for as long as it is in memory, live or retired.
type SeriesId = u64;

/// One Event object and what the server knows of it.
#[derive(Debug, Clone)]
struct Series {
    /// The first occurrence: what the Event object is about and says.
    first: Occurrence,
    /// The Event object's name (client-go's `<object>.<unix nanos in hex>`).
    name: String,
    count: u32,
    last_time: Timestamp,
    last_seen: Instant,
    /// The count the server holds; 0 until the Event is created.
    written_count: u32,
    last_write: Option<Instant>,
    failed_attempts: u32,
    retry_at: Option<Instant>,
    /// A write of this series is with the API server: no other until it returns.
    in_flight: bool,
    /// Pushed out of the live cache (expired or evicted) while it still owed a write.
    retired: bool,
    /// When its next write is due: its entry in [`Correlator::due`], if it has one.
    due_at: Option<Instant>,
    /// What this entry costs in memory, roughly, for the byte bound.
    bytes: usize,
}

impl Series {
    fn is_pending(&self) -> bool {
        self.count > self.written_count
    }

    /// Pending, and not yet on the server at all.
    fn is_pending_create(&self) -> bool {
        self.written_count == 0 && self.is_pending()
    }

    /// When the next write is due, if one is owed and none is in flight: after a failure, at
    /// the retry time; the first two (and a retired series' last) at once; after that, one
    /// interval after the last write. A write already due keeps its place in line.
    fn next_write(&self, now: Instant, interval: Duration) -> Option<Instant> {
        if !self.is_pending() || self.in_flight {
            return None;
        }
        if let Some(retry_at) = self.retry_at {
            return Some(retry_at);
        }
        let at_once = self.due_at.filter(|due| *due <= now).unwrap_or(now);
        if self.retired || self.written_count <= 1 {
            return Some(at_once);
        }
        Some(self.last_write.map_or(at_once, |at| at + interval))
    }
}

/// A write to perform: a snapshot, so that the state can change while it is in flight.
#[derive(Debug, Clone)]
pub(crate) struct Write {
    series: SeriesId,
    pub(crate) create: bool,
    pub(crate) name: String,
    pub(crate) first: Occurrence,
    pub(crate) note: String,
    pub(crate) count: u32,
    pub(crate) last_time: Timestamp,
}

/// How a write went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteResult {
    /// The server has the count now.
    Written,
    /// A patch found no Event (it expired): create it again.
    NotFound,
    /// The server refused it (4xx): retrying would not help; the pending count is dropped.
    Rejected,
    /// The server could not be reached: retry later, up to the attempt limit.
    Failed,
}

/// What a finished write means for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteOutcome {
    Created,
    Patched,
    /// Will be retried.
    Retrying,
    /// Given up: this many occurrences never reached the server.
    Dropped(u32),
}

#[derive(Debug)]
struct TokenBucket {
    tokens: f64,
    updated: Instant,
}

#[derive(Debug)]
struct Aggregate {
    window_start: Instant,
    /// Hashes of the distinct messages seen: 8 bytes each, whatever the message.
    messages: HashSet<u64>,
}

/// Occurrences whose pending counts were given up without a write, by plugin and reason.
pub(crate) type Lost = Vec<(Arc<str>, String, u32)>;

/// The recorder's state. See the module docs for the rules.
///
/// Every series in memory lives in `series`, by id; the live ones are also in `live` (by key,
/// least recently seen first) and the retired ones in `retired`. A series that owes a write
/// and has none in flight is in `due`, ordered by when the write is due, so that finding the
/// due writes costs what they are, not what the cache holds.
#[derive(Debug)]
pub(crate) struct Correlator {
    config: CorrelatorConfig,
    series: HashMap<SeriesId, Series>,
    live: LruCache<SeriesKey, SeriesId>,
    /// Retired series, oldest first; ids of series since forgotten are skipped (and compacted
    /// away when they outnumber the rest).
    retired: VecDeque<SeriesId>,
    /// Retired series still in memory: at most `cache_size`.
    retired_len: usize,
    due: BTreeSet<(Instant, SeriesId)>,
    next_id: SeriesId,
    /// Series with a write in flight.
    in_flight: usize,
    aggregates: LruCache<AggregateKey, Aggregate>,
    buckets: LruCache<SpamKey, TokenBucket>,
    /// Series (live or retired) not yet created on the server.
    pending_creates: usize,
    /// Bytes of all series, live and retired.
    bytes: usize,
    /// Given up without a write since the last [`Correlator::take_lost`].
    lost: Lost,
    hasher: std::collections::hash_map::RandomState,
}

impl Correlator {
    pub(crate) fn new(config: CorrelatorConfig) -> Self {
        Self {
            series: HashMap::new(),
            live: LruCache::new(config.cache_size),
            retired: VecDeque::new(),
            retired_len: 0,
            due: BTreeSet::new(),
            next_id: 0,
            in_flight: 0,
            aggregates: LruCache::new(config.cache_size),
            buckets: LruCache::new(config.cache_size),
            pending_creates: 0,
            bytes: 0,
            lost: Vec::new(),
            hasher: std::collections::hash_map::RandomState::new(),
            config,
        }
    }

    /// Changes a series through `change`, then brings the counters and its place in `due` up
    /// to date. Every change to a series in memory goes through here.
    fn update<R>(
        &mut self,
        id: SeriesId,
        now: Instant,
        change: impl FnOnce(&mut Series) -> R,
    ) -> Option<R> {
        let series = self.series.get_mut(&id)?;
        let (was_pending_create, was_in_flight) = (series.is_pending_create(), series.in_flight);
        let result = change(series);
        match (was_pending_create, series.is_pending_create()) {
            (true, false) => self.pending_creates = self.pending_creates.saturating_sub(1),
            (false, true) => self.pending_creates += 1,
            _ => {}
        }
        match (was_in_flight, series.in_flight) {
            (true, false) => self.in_flight = self.in_flight.saturating_sub(1),
            (false, true) => self.in_flight += 1,
            _ => {}
        }
        let next = series.next_write(now, self.config.min_write_interval);
        let previous = std::mem::replace(&mut series.due_at, next);
        if previous != next {
            if let Some(previous) = previous {
                self.due.remove(&(previous, id));
            }
            if let Some(next) = next {
                self.due.insert((next, id));
            }
        }
        Some(result)
    }

    /// Drops a series from memory, live or retired, whatever it still owes.
    fn forget(&mut self, id: SeriesId) -> Option<Series> {
        let series = self.series.remove(&id)?;
        self.bytes = self.bytes.saturating_sub(series.bytes);
        if series.is_pending_create() {
            self.pending_creates = self.pending_creates.saturating_sub(1);
        }
        if series.in_flight {
            self.in_flight = self.in_flight.saturating_sub(1);
        }
        if let Some(due_at) = series.due_at {
            self.due.remove(&(due_at, id));
        }
        if series.retired {
            self.retired_len = self.retired_len.saturating_sub(1);
        }
        Some(series)
    }

    /// Takes a series out of the live cache's hands: kept as retired if it still owes a write
    /// (or has one in flight), forgotten otherwise. Past the bound on retired series, the
    /// oldest gives up what it owes (counted as lost).
    fn retire(&mut self, id: SeriesId, now: Instant) {
        let owes = self
            .series
            .get(&id)
            .is_some_and(|series| series.is_pending() || series.in_flight);
        if !owes {
            self.forget(id);
            return;
        }
        self.update(id, now, |series| series.retired = true);
        self.retired.push_back(id);
        self.retired_len += 1;
        while self.retired_len > self.config.cache_size.get() {
            let Some(oldest) = self.retired.pop_front() else {
                break;
            };
            if let Some(oldest) = self.forget(oldest) {
                let lost = oldest.count - oldest.written_count;
                self.lost.push((
                    oldest.first.plugin.clone(),
                    oldest.first.reason.clone(),
                    lost,
                ));
            }
        }
        if self.retired.len() > 2 * self.retired_len + 64 {
            let series = &self.series;
            self.retired.retain(|id| series.contains_key(id));
        }
    }

    /// Makes room for `bytes` more by dropping least recently used series that owe nothing.
    fn make_room(&mut self, bytes: usize) -> bool {
        while self.bytes + bytes > self.config.max_bytes {
            let Some((_, &oldest)) = self.live.peek_lru() else {
                return false;
            };
            if self
                .series
                .get(&oldest)
                .is_some_and(|series| series.is_pending() || series.in_flight)
            {
                return false;
            }
            self.live.pop_lru();
            self.forget(oldest);
        }
        true
    }

    /// Forgets the live series that are over and owe nothing. The least recently seen come
    /// first, so this stops at the first one still in its window or still owing a write.
    fn sweep(&mut self, now: Instant) {
        let window = self.config.series_window;
        while let Some((_, &oldest)) = self.live.peek_lru() {
            let over = self.series.get(&oldest).is_none_or(|series| {
                !series.is_pending()
                    && !series.in_flight
                    && now.saturating_duration_since(series.last_seen) >= window
            });
            if !over {
                break;
            }
            self.live.pop_lru();
            self.forget(oldest);
        }
    }

    /// Occurrences given up without a write since the last call.
    pub(crate) fn take_lost(&mut self) -> Lost {
        std::mem::take(&mut self.lost)
    }

    /// Takes one occurrence into account. With `admit_new` false, an occurrence that would
    /// start a new Event is refused as [`Observed::QueueFull`] (others wait before it).
    pub(crate) fn observe(
        &mut self,
        occurrence: Occurrence,
        now: Instant,
        admit_new: bool,
    ) -> Observed {
        let aggregated = self.aggregate(&occurrence, now);
        let key = SeriesKey {
            plugin: occurrence.plugin.clone(),
            uid: occurrence.regarding.uid.clone(),
            event_type: occurrence.event_type,
            reason: occurrence.reason.clone(),
            note: if aggregated {
                COMBINED_PREFIX.to_owned()
            } else {
                occurrence.message.clone()
            },
        };

        let window = self.config.series_window;
        if let Some(&id) = self.live.get(&key) {
            let repeat = self.update(id, now, |series| {
                if now.saturating_duration_since(series.last_seen) >= window {
                    return false;
                }
                series.count = series.count.saturating_add(1);
                series.last_time = occurrence.time;
                series.last_seen = now;
                true
            });
            if repeat == Some(true) {
                return Observed::Repeat;
            }
            // The series is over: a new Event starts; the old one keeps what it has to write.
            self.live.pop(&key);
            self.retire(id, now);
        }

        let bytes = series_bytes(&occurrence);
        if !admit_new
            || self.pending_creates >= self.config.max_pending_creates
            || !self.make_room(bytes)
        {
            return Observed::QueueFull;
        }
        if !self.take_token(&occurrence, now) {
            return Observed::Filtered;
        }
        let mut first = occurrence;
        if aggregated {
            first.message = format!("{COMBINED_PREFIX}{}", first.message);
        }
        let id = self.next_id;
        self.next_id += 1;
        let series = Series {
            name: format!("{}.{:x}", first.regarding.name, first.time.as_nanosecond()),
            // Counted up by `update` below, which also counts it as a pending create.
            count: 0,
            last_time: first.time,
            last_seen: now,
            written_count: 0,
            last_write: None,
            failed_attempts: 0,
            retry_at: None,
            in_flight: false,
            retired: false,
            due_at: None,
            bytes,
            first,
        };
        self.bytes += bytes;
        self.series.insert(id, series);
        self.update(id, now, |series| series.count = 1);
        if let Some((_, evicted)) = self.live.push(key, id) {
            self.retire(evicted, now);
        }
        if aggregated {
            Observed::Aggregated
        } else {
            Observed::New
        }
    }

    /// Whether this occurrence joins the aggregate of its (plugin, object, type, reason).
    fn aggregate(&mut self, occurrence: &Occurrence, now: Instant) -> bool {
        let key = AggregateKey {
            plugin: occurrence.plugin.clone(),
            uid: occurrence.regarding.uid.clone(),
            event_type: occurrence.event_type,
            reason: occurrence.reason.clone(),
        };
        let window = self.config.aggregate_window;
        let limit = self.config.aggregate_distinct;
        let aggregate = self.aggregates.get_or_insert_mut(key, || Aggregate {
            window_start: now,
            messages: HashSet::new(),
        });
        if now.saturating_duration_since(aggregate.window_start) >= window {
            aggregate.window_start = now;
            aggregate.messages.clear();
        }
        // Past the limit only the count matters: stop storing messages.
        if aggregate.messages.len() < limit {
            aggregate
                .messages
                .insert(self.hasher.hash_one(&occurrence.message));
        }
        aggregate.messages.len() >= limit
    }

    fn take_token(&mut self, occurrence: &Occurrence, now: Instant) -> bool {
        let key = SpamKey {
            plugin: occurrence.plugin.clone(),
            uid: occurrence.regarding.uid.clone(),
            event_type: occurrence.event_type,
        };
        let burst = f64::from(self.config.spam_burst);
        let refill = self.config.spam_refill.as_secs_f64();
        let bucket = self.buckets.get_or_insert_mut(key, || TokenBucket {
            tokens: burst,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        if refill > 0.0 {
            bucket.tokens = (bucket.tokens + elapsed / refill).min(burst);
        } else {
            bucket.tokens = burst;
        }
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Up to `max` writes due at `now`, earliest due first; with `flushing`, every pending
    /// one regardless of intervals and retry times. Each is marked in flight until
    /// [`Correlator::write_done`].
    pub(crate) fn due_writes(&mut self, now: Instant, flushing: bool, max: usize) -> Vec<Write> {
        self.sweep(now);
        let mut writes = Vec::new();
        while writes.len() < max {
            let Some(&(due_at, id)) = self.due.first() else {
                break;
            };
            if due_at > now && !flushing {
                break;
            }
            let write = self.update(id, now, |series| {
                series.in_flight = true;
                write_of(id, series)
            });
            match write {
                Some(write) => writes.push(write),
                // Not in memory any more: a stale entry (never expected); drop it.
                None => {
                    self.due.remove(&(due_at, id));
                }
            }
        }
        writes
    }

    /// Records how `write` went, and what that means.
    pub(crate) fn write_done(
        &mut self,
        write: &Write,
        result: WriteResult,
        now: Instant,
    ) -> WriteOutcome {
        let config = &self.config;
        let (max_attempts, retry_interval) = (config.max_attempts, config.retry_interval);
        let outcome = self.update(write.series, now, |series| {
            series.in_flight = false;
            match result {
                WriteResult::Written => {
                    series.written_count = write.count;
                    series.last_write = Some(now);
                    series.failed_attempts = 0;
                    series.retry_at = None;
                    if write.create {
                        WriteOutcome::Created
                    } else {
                        WriteOutcome::Patched
                    }
                }
                WriteResult::NotFound => {
                    // Expired on the server: the next write creates it again, with the full count.
                    series.written_count = 0;
                    series.last_write = None;
                    WriteOutcome::Retrying
                }
                WriteResult::Failed if series.failed_attempts + 1 < max_attempts => {
                    series.failed_attempts += 1;
                    series.retry_at =
                        Some(now + jittered(retry_interval, series.failed_attempts, &series.name));
                    WriteOutcome::Retrying
                }
                WriteResult::Failed | WriteResult::Rejected => {
                    let lost = series.count - series.written_count;
                    // Give up on what is pending, and keep counting from here.
                    series.written_count = series.count;
                    series.failed_attempts = 0;
                    series.retry_at = None;
                    WriteOutcome::Dropped(lost)
                }
            }
        });
        // The series was forgotten while the write was in flight (the retired bound).
        let Some(outcome) = outcome else {
            return WriteOutcome::Retrying;
        };
        if self
            .series
            .get(&write.series)
            .is_some_and(|series| series.retired && !series.is_pending())
        {
            self.forget(write.series);
        }
        outcome
    }

    /// Whether anything is waiting to be written or being written.
    pub(crate) fn has_pending(&self) -> bool {
        !self.due.is_empty() || self.in_flight > 0
    }

    /// New Events waiting for their first write.
    pub(crate) fn pending_creates(&self) -> usize {
        self.pending_creates
    }

    /// Entries in the series, aggregation and spam caches.
    pub(crate) fn cache_sizes(&self) -> (usize, usize, usize) {
        (self.live.len(), self.aggregates.len(), self.buckets.len())
    }

    /// Bytes the series hold, live and retired.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

/// What a series about `occurrence` costs in memory, roughly: its strings (the key repeats
/// the reason and message) and a fixed overhead for the rest.
fn series_bytes(occurrence: &Occurrence) -> usize {
    let annotations: usize = occurrence
        .annotations
        .iter()
        .map(|(key, value)| key.len() + value.len() + 48)
        .sum();
    256 + 2 * (occurrence.reason.len() + occurrence.message.len() + occurrence.regarding.uid.len())
        + occurrence.regarding.name.len()
        + annotations
}

fn write_of(id: SeriesId, series: &Series) -> Write {
    Write {
        series: id,
        create: series.written_count == 0,
        name: series.name.clone(),
        note: series.first.message.clone(),
        first: series.first.clone(),
        count: series.count,
        last_time: series.last_time,
    }
}

/// `base` plus up to a second, spread by attempt and Event so that retries do not align.
fn jittered(base: Duration, attempt: u32, name: &str) -> Duration {
    let seed = name.bytes().fold(
        u64::from(attempt).wrapping_mul(0x9e37_79b9_7f4a_7c15),
        |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3),
    );
    base + Duration::from_millis(seed % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(uid: &str) -> Arc<ReconciledObject> {
        Arc::new(ReconciledObject {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: Some("default".into()),
            name: format!("object-{uid}"),
            uid: uid.into(),
            resource_version: None,
        })
    }

    fn occurrence(uid: &str, reason: &str, message: &str) -> Occurrence {
        Occurrence {
            plugin: Arc::from("plugin"),
            regarding: object(uid),
            event_type: EventType::Normal,
            reason: reason.into(),
            message: message.into(),
            annotations: BTreeMap::new(),
            time: Timestamp::now(),
        }
    }

    /// Performs every due write successfully; returns them.
    fn write_all(correlator: &mut Correlator, now: Instant) -> Vec<Write> {
        let writes = correlator.due_writes(now, false, usize::MAX);
        for write in &writes {
            correlator.write_done(write, WriteResult::Written, now);
        }
        writes
    }

    #[test]
    fn a_storm_in_one_instant_costs_two_writes_and_ends_exact() {
        let mut correlator = Correlator::new(CorrelatorConfig::default());
        let start = Instant::now();
        assert_eq!(
            correlator.observe(occurrence("a", "Storm", "same"), start, true),
            Observed::New
        );
        for _ in 1..10_000 {
            assert_eq!(
                correlator.observe(occurrence("a", "Storm", "same"), start, true),
                Observed::Repeat
            );
        }
        let writes = write_all(&mut correlator, start);
        assert_eq!(writes.len(), 1);
        assert!(writes[0].create);
        assert_eq!(
            writes[0].count, 10_000,
            "the create carries the whole count"
        );
        assert!(!correlator.has_pending());
    }

    #[test]
    fn a_long_storm_is_written_at_most_once_per_second_after_the_first_two() {
        let mut correlator = Correlator::new(CorrelatorConfig::default());
        let start = Instant::now();
        let mut writes = 0;
        // 10,000 identical events over 10 s, the writer looking every 200 ms.
        for i in 0..10_000u64 {
            let now = start + Duration::from_millis(i);
            correlator.observe(occurrence("a", "Storm", "same"), now, true);
            if i % 200 == 0 {
                writes += write_all(&mut correlator, now).len();
            }
        }
        let end = start + Duration::from_secs(11);
        writes += write_all(&mut correlator, end).len();
        assert!(writes <= 2 + 10 + 1, "{writes} writes");
        assert!(!correlator.has_pending(), "the final count was written");
        let last = correlator.series.values().next().map(|s| s.written_count);
        assert_eq!(last, Some(10_000));
    }

    #[test]
    fn a_thousand_reconciles_recording_one_event_each_cost_one_write_per_second() {
        let mut correlator = Correlator::new(CorrelatorConfig::default());
        let start = Instant::now();
        let mut writes = 0;
        // One event every 10 ms for 10 s, as a thousand quick reconciles would record them.
        for i in 0..1_000u64 {
            let now = start + Duration::from_millis(i * 10);
            correlator.observe(occurrence("a", "Reconciled", "same"), now, true);
            writes += write_all(&mut correlator, now).len();
        }
        writes += write_all(&mut correlator, start + Duration::from_secs(11)).len();
        assert!(writes <= 2 + 10 + 1, "{writes} writes");
        assert!(!correlator.has_pending());
    }

    #[test]
    fn the_second_occurrence_is_written_at_once() {
        let mut correlator = Correlator::new(CorrelatorConfig::default());
        let now = Instant::now();
        correlator.observe(occurrence("a", "Seen", "m"), now, true);
        assert!(write_all(&mut correlator, now)[0].create);
        correlator.observe(occurrence("a", "Seen", "m"), now, true);
        let second = write_all(&mut correlator, now);
        assert_eq!(
            (second.len(), second[0].create, second[0].count),
            (1, false, 2)
        );
        correlator.observe(occurrence("a", "Seen", "m"), now, true);
        assert!(
            write_all(&mut correlator, now).is_empty(),
            "the third waits for the interval"
        );
        assert_eq!(
            write_all(&mut correlator, now + Duration::from_secs(1))[0].count,
            3
        );
    }

    #[test]
    fn a_repeat_after_the_series_window_starts_a_new_event() {
        let mut correlator = Correlator::new(CorrelatorConfig::default());
        let start = Instant::now();
        correlator.observe(occurrence("a", "Seen", "m"), start, true);
        write_all(&mut correlator, start);
        let later = start + Duration::from_secs(6 * 60 + 1);
        assert_eq!(
            correlator.observe(occurrence("a", "Seen", "m"), later, true),
            Observed::New
        );
    }

    #[test]
    fn a_different_message_is_a_different_event() {
        let mut correlator = Correlator::new(CorrelatorConfig::default());
        let now = Instant::now();
        assert_eq!(
            correlator.observe(occurrence("a", "Updated", "x -> y"), now, true),
            Observed::New
        );
        assert_eq!(
            correlator.observe(occurrence("a", "Updated", "y -> z"), now, true),
            Observed::New
        );
    }

    #[test]
    fn ten_distinct_messages_fold_into_a_combined_event() {
        let mut correlator = Correlator::new(CorrelatorConfig::default());
        let now = Instant::now();
        let observed: Vec<_> = (0..12)
            .map(|i| correlator.observe(occurrence("a", "Scaled", &format!("to {i}")), now, true))
            .collect();
        assert!(
            observed[..9].iter().all(|o| *o == Observed::New),
            "{observed:?}"
        );
        assert_eq!(observed[9], Observed::Aggregated);
        assert_eq!(&observed[10..], [Observed::Repeat, Observed::Repeat]);
        let writes = write_all(&mut correlator, now);
        assert_eq!(writes.len(), 10);
        let combined: Vec<_> = writes
            .iter()
            .filter(|w| w.note.starts_with(COMBINED_PREFIX))
            .collect();
        assert_eq!(combined.len(), 1);
        assert_eq!(combined[0].note, format!("{COMBINED_PREFIX}to 9"));
        assert_eq!(combined[0].count, 3);
    }

    #[test]
    fn aggregation_starts_over_after_its_window() {
        let mut correlator = Correlator::new(CorrelatorConfig::default());
        let start = Instant::now();
        for i in 0..9 {
            correlator.observe(occurrence("a", "Scaled", &format!("to {i}")), start, true);
        }
        let later = start + Duration::from_secs(601);
        assert_eq!(
            correlator.observe(occurrence("a", "Scaled", "to 9"), later, true),
            Observed::New
        );
    }

    #[test]
    fn the_spam_filter_allows_a_burst_of_25_new_events_then_one_per_300_seconds() {
        let mut correlator = Correlator::new(CorrelatorConfig::default());
        let now = Instant::now();
        let observed: Vec<_> = (0..30)
            .map(|i| correlator.observe(occurrence("a", &format!("Reason{i}"), "m"), now, true))
            .collect();
        assert_eq!(observed.iter().filter(|o| **o == Observed::New).count(), 25);
        assert_eq!(
            observed
                .iter()
                .filter(|o| **o == Observed::Filtered)
                .count(),
            5
        );
        // Repeats of admitted events are not spam.
        assert_eq!(
            correlator.observe(occurrence("a", "Reason0", "m"), now, true),
            Observed::Repeat
        );
        // Another object has its own bucket.
        assert_eq!(
            correlator.observe(occurrence("b", "Reason99", "m"), now, true),
            Observed::New
        );
        let refilled = now + Duration::from_secs(300);
        assert_eq!(
            correlator.observe(occurrence("a", "Late1", "m"), refilled, true),
            Observed::New
        );
        assert_eq!(
            correlator.observe(occurrence("a", "Late2", "m"), refilled, true),
            Observed::Filtered
        );
    }

    #[test]
    fn an_expired_event_is_created_again_with_the_full_count() {
        let mut correlator = Correlator::new(CorrelatorConfig::default());
        let now = Instant::now();
        correlator.observe(occurrence("a", "Seen", "m"), now, true);
        write_all(&mut correlator, now);
        correlator.observe(occurrence("a", "Seen", "m"), now, true);
        let patch = correlator.due_writes(now, false, usize::MAX);
        assert!(!patch[0].create);
        correlator.write_done(&patch[0], WriteResult::NotFound, now);
        let again = correlator.due_writes(now, false, usize::MAX);
        assert_eq!((again[0].create, again[0].count), (true, 2));
    }

    #[test]
    fn transport_failures_are_retried_twelve_times_then_counted_as_dropped() {
        let mut correlator = Correlator::new(CorrelatorConfig::default());
        let mut now = Instant::now();
        correlator.observe(occurrence("a", "Seen", "m"), now, true);
        let mut attempts = 0;
        loop {
            let writes = correlator.due_writes(now, false, usize::MAX);
            if let Some(write) = writes.first() {
                attempts += 1;
                match correlator.write_done(write, WriteResult::Failed, now) {
                    WriteOutcome::Retrying => {}
                    WriteOutcome::Dropped(lost) => {
                        assert_eq!(lost, 1);
                        break;
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
            assert!(attempts <= 12, "more than 12 attempts");
            now += Duration::from_secs(1);
        }
        assert_eq!(attempts, 12);
        assert!(!correlator.has_pending());
    }

    #[test]
    fn retries_wait_about_ten_seconds() {
        let mut correlator = Correlator::new(CorrelatorConfig::default());
        let now = Instant::now();
        correlator.observe(occurrence("a", "Seen", "m"), now, true);
        let write = correlator.due_writes(now, false, usize::MAX).remove(0);
        correlator.write_done(&write, WriteResult::Failed, now);
        assert!(
            correlator
                .due_writes(now + Duration::from_secs(9), false, usize::MAX)
                .is_empty()
        );
        assert_eq!(
            correlator
                .due_writes(now + Duration::from_secs(11), false, usize::MAX)
                .len(),
            1
        );
    }

    #[test]
    fn an_evicted_series_still_writes_what_it_owes() {
        let config = CorrelatorConfig {
            cache_size: NonZeroUsize::new(2).unwrap_or(NonZeroUsize::MIN),
            ..CorrelatorConfig::default()
        };
        let mut correlator = Correlator::new(config);
        let now = Instant::now();
        for uid in ["a", "b", "c"] {
            correlator.observe(occurrence(uid, "Seen", "m"), now, true);
        }
        assert_eq!(correlator.cache_sizes().0, 2, "the cache stays bounded");
        let writes = write_all(&mut correlator, now);
        assert_eq!(writes.len(), 3, "the evicted one is written too");
        assert!(!correlator.has_pending());
    }

    #[test]
    fn new_events_past_the_queue_bound_are_dropped() {
        let config = CorrelatorConfig {
            max_pending_creates: 2,
            ..CorrelatorConfig::default()
        };
        let mut correlator = Correlator::new(config);
        let now = Instant::now();
        assert_eq!(
            correlator.observe(occurrence("a", "One", "m"), now, true),
            Observed::New
        );
        assert_eq!(
            correlator.observe(occurrence("a", "Two", "m"), now, true),
            Observed::New
        );
        assert_eq!(
            correlator.observe(occurrence("a", "Three", "m"), now, true),
            Observed::QueueFull
        );
        assert_eq!(
            correlator.observe(occurrence("a", "One", "m"), now, true),
            Observed::Repeat
        );
        write_all(&mut correlator, now);
        assert_eq!(
            correlator.observe(occurrence("a", "Three", "m"), now, true),
            Observed::New
        );
    }

    #[test]
    fn a_retired_series_that_fails_waits_for_its_retry() {
        let config = CorrelatorConfig {
            cache_size: NonZeroUsize::new(1).unwrap_or(NonZeroUsize::MIN),
            ..CorrelatorConfig::default()
        };
        let mut correlator = Correlator::new(config);
        let now = Instant::now();
        correlator.observe(occurrence("a", "Seen", "m"), now, true);
        correlator.observe(occurrence("b", "Seen", "m"), now, true);
        let writes = correlator.due_writes(now, false, usize::MAX);
        assert_eq!(writes.len(), 2, "the retired one and the live one");
        for write in &writes {
            correlator.write_done(write, WriteResult::Failed, now);
        }
        assert!(correlator.due_writes(now, false, usize::MAX).is_empty());
        assert_eq!(
            correlator
                .due_writes(now + Duration::from_secs(11), false, usize::MAX)
                .len(),
            2
        );
    }

    /// Recounts everything the correlator keeps as running totals and indexes.
    fn assert_consistent(correlator: &Correlator) {
        let series = &correlator.series;
        let recount = |f: fn(&Series) -> bool| series.values().filter(|s| f(s)).count();
        assert_eq!(
            correlator.pending_creates,
            recount(Series::is_pending_create)
        );
        assert_eq!(correlator.in_flight, recount(|s| s.in_flight));
        assert_eq!(correlator.retired_len, recount(|s| s.retired));
        assert_eq!(
            correlator.bytes,
            series.values().map(|s| s.bytes).sum::<usize>()
        );
        let due: BTreeSet<_> = series
            .iter()
            .filter_map(|(id, s)| s.due_at.map(|at| (at, *id)))
            .collect();
        assert_eq!(correlator.due, due);
        for (id, s) in series {
            assert_eq!(
                s.due_at.is_some(),
                s.is_pending() && !s.in_flight,
                "series {id} is due exactly when it owes a write and has none in flight"
            );
        }
        let live: HashSet<_> = correlator.live.iter().map(|(_, id)| *id).collect();
        assert!(
            live.iter()
                .all(|id| series.get(id).is_some_and(|s| !s.retired))
        );
        assert_eq!(live.len() + correlator.retired_len, series.len());
        assert!(correlator.retired_len <= correlator.config.cache_size.get());
    }

    #[test]
    fn counters_and_the_due_index_match_a_recount_after_any_sequence() {
        let config = CorrelatorConfig {
            cache_size: NonZeroUsize::new(8).unwrap_or(NonZeroUsize::MIN),
            max_pending_creates: 12,
            max_attempts: 3,
            ..CorrelatorConfig::default()
        };
        let mut correlator = Correlator::new(config);
        let mut now = Instant::now();
        let mut in_flight: Vec<Write> = Vec::new();
        // A fixed pseudo-random walk (xorshift), so a failure replays.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move |bound: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % bound
        };
        for _ in 0..20_000 {
            match next(10) {
                0..=4 => {
                    let uid = format!("{}", next(12));
                    let reason = format!("Reason{}", next(3));
                    let message = format!("m{}", next(4));
                    correlator.observe(occurrence(&uid, &reason, &message), now, true);
                }
                5 | 6 => {
                    let flushing = next(20) == 0;
                    in_flight.extend(correlator.due_writes(now, flushing, 4));
                }
                7 | 8 if !in_flight.is_empty() => {
                    let index = usize::try_from(next(in_flight.len() as u64)).unwrap_or(0);
                    let write = in_flight.swap_remove(index);
                    let result = match next(8) {
                        0 => WriteResult::Failed,
                        1 => WriteResult::NotFound,
                        2 => WriteResult::Rejected,
                        _ => WriteResult::Written,
                    };
                    correlator.write_done(&write, result, now);
                }
                _ => now += Duration::from_millis(next(30_000)),
            }
            assert_consistent(&correlator);
        }
    }
}
