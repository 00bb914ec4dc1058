//! Status conditions (`metav1.Condition`) and apimachinery's helpers for them, like `meta.SetStatusCondition`.
//!
//! Conditions are the list under `status.conditions` that `kubectl describe` and
//! `kubectl wait --for=condition=Ready` read. Keep them in the plugin's status type, change
//! them with [`set_condition`], and patch the status when it returns `true`:
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use wasm_reconciler_sdk::conditions::{set_condition, Condition, ConditionStatus};
//! # use wasm_reconciler_sdk::{Context, Error, Request};
//!
//! #[derive(Default, Deserialize, Serialize)]
//! #[serde(rename_all = "camelCase")]
//! struct Status {
//!     #[serde(default)]
//!     conditions: Vec<Condition>,
//! }
//!
//! # fn reconcile(ctx: &Context, request: Request) -> Result<(), Error> {
//! let mut status: Status = request
//!     .object_value()
//!     .get("status")
//!     .map(|status| serde_json::from_value(status.clone()))
//!     .transpose()?
//!     .unwrap_or_default();
//! let ready = Condition::new("Ready", ConditionStatus::True, "Synced", "all replicas are ready")
//!     .with_observed_generation(request.generation());
//! if set_condition(&mut status.conditions, ready) {
//!     ctx.client().patch_status(&status)?;
//! }
//! # Ok(()) }
//! ```
//!
//! A new condition without a `lastTransitionTime` gets [`clock::now`],
//! which the [test kit](crate::testkit::TestKit) pins; [`set_condition_at`] takes the time
//! explicitly.

use std::fmt;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::clock;

/// One status condition, serialized like `metav1.Condition`:
/// `{"type", "status", "reason", "message", "lastTransitionTime", "observedGeneration"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// The condition's type, in UpperCamelCase: `Ready`, `Available`, `Degraded`.
    #[serde(rename = "type")]
    pub type_: String,
    /// Whether the condition holds.
    pub status: ConditionStatus,
    /// Why it is in this status, in UpperCamelCase (`Synced`, `InvalidSpec`).
    #[serde(default)]
    pub reason: String,
    /// Details for people.
    #[serde(default)]
    pub message: String,
    /// When the status last changed, in RFC 3339 (`2026-12-03T18:00:00Z`); empty for
    /// [`set_condition`] to fill in.
    #[serde(default)]
    pub last_transition_time: String,
    /// The `metadata.generation` the condition was set for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// Whether a [`Condition`] holds: serialized as `"True"`, `"False"` or `"Unknown"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ConditionStatus {
    /// The condition holds.
    True,
    /// The condition does not hold.
    False,
    /// Whether it holds cannot be told (yet).
    Unknown,
}

impl Condition {
    /// A condition with an empty `lastTransitionTime` (for [`set_condition`] to fill in)
    /// and no `observedGeneration`.
    pub fn new(
        type_: impl Into<String>,
        status: ConditionStatus,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            type_: type_.into(),
            status,
            reason: reason.into(),
            message: message.into(),
            last_transition_time: String::new(),
            observed_generation: None,
        }
    }

    /// The same condition, set for this `metadata.generation` (e.g.
    /// [`Request::generation`](crate::Request::generation)).
    #[must_use]
    pub fn with_observed_generation(mut self, generation: Option<i64>) -> Self {
        self.observed_generation = generation;
        self
    }

    /// The same condition, with this `lastTransitionTime`.
    #[must_use]
    pub fn with_last_transition_time(mut self, time: SystemTime) -> Self {
        self.last_transition_time = clock::rfc3339(time);
        self
    }
}

/// `True`, `False` or `Unknown`, as serialized.
impl fmt::Display for ConditionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::True => "True",
            Self::False => "False",
            Self::Unknown => "Unknown",
        })
    }
}

/// Sets `new` in `conditions`, like apimachinery's `meta.SetStatusCondition`; returns
/// whether anything changed. "Now" is [`clock::now`].
///
/// - If a condition of `new`'s type exists, its status, reason, message and
///   observedGeneration become `new`'s. Its `lastTransitionTime` is kept unless the status
///   changed; then it becomes `new`'s, or now if `new`'s is empty.
/// - Otherwise `new` is appended, with `lastTransitionTime` now if it is empty.
///
/// ```
/// use wasm_reconciler_sdk::conditions::{set_condition, Condition, ConditionStatus};
///
/// let mut conditions = Vec::new();
/// let ready = Condition::new("Ready", ConditionStatus::False, "Starting", "");
/// assert!(set_condition(&mut conditions, ready.clone()));
/// assert!(!set_condition(&mut conditions, ready), "setting the same again changes nothing");
/// assert!(!conditions[0].last_transition_time.is_empty());
/// ```
pub fn set_condition(conditions: &mut Vec<Condition>, new: Condition) -> bool {
    set_condition_at(conditions, new, clock::now())
}

/// [`set_condition`] with "now" given: `now` is the `lastTransitionTime` of a new or changed
/// condition that has none.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use wasm_reconciler_sdk::conditions::{set_condition_at, Condition, ConditionStatus};
///
/// let mut conditions = Vec::new();
/// let now = UNIX_EPOCH + Duration::from_secs(1_796_320_800);
/// set_condition_at(&mut conditions, Condition::new("Ready", ConditionStatus::True, "Synced", ""), now);
/// assert_eq!(conditions[0].last_transition_time, "2026-12-03T18:00:00Z");
/// ```
pub fn set_condition_at(conditions: &mut Vec<Condition>, new: Condition, now: SystemTime) -> bool {
    let Some(existing) = conditions.iter_mut().find(|c| c.type_ == new.type_) else {
        let mut new = new;
        if new.last_transition_time.is_empty() {
            new.last_transition_time = clock::rfc3339(now);
        }
        conditions.push(new);
        return true;
    };
    let mut changed = false;
    if existing.status != new.status {
        existing.status = new.status;
        existing.last_transition_time = if new.last_transition_time.is_empty() {
            clock::rfc3339(now)
        } else {
            new.last_transition_time
        };
        changed = true;
    }
    if existing.reason != new.reason {
        existing.reason = new.reason;
        changed = true;
    }
    if existing.message != new.message {
        existing.message = new.message;
        changed = true;
    }
    if existing.observed_generation != new.observed_generation {
        existing.observed_generation = new.observed_generation;
        changed = true;
    }
    changed
}

/// The condition of type `type_`, if any (`meta.FindStatusCondition`).
pub fn find_condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Removes the condition of type `type_`; returns whether there was one
/// (`meta.RemoveStatusCondition`).
pub fn remove_condition(conditions: &mut Vec<Condition>, type_: &str) -> bool {
    let before = conditions.len();
    conditions.retain(|c| c.type_ != type_);
    conditions.len() != before
}

/// Whether the condition of type `type_` is there with status `True`
/// (`meta.IsStatusConditionTrue`).
pub fn is_status_condition_true(conditions: &[Condition], type_: &str) -> bool {
    find_condition(conditions, type_).is_some_and(|c| c.status == ConditionStatus::True)
}

/// Whether the condition of type `type_` is there with status `False`
/// (`meta.IsStatusConditionFalse`).
pub fn is_status_condition_false(conditions: &[Condition], type_: &str) -> bool {
    find_condition(conditions, type_).is_some_and(|c| c.status == ConditionStatus::False)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use serde_json::json;

    use super::*;

    const T0: &str = "2026-12-03T18:00:00Z";
    const T1: &str = "2026-12-03T18:01:40Z";

    fn at(text: &str) -> SystemTime {
        let seconds = match text {
            T0 => 1_796_320_800,
            T1 => 1_796_320_900,
            _ => unreachable!("no such test time {text}"),
        };
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    fn ready(status: ConditionStatus, reason: &str) -> Condition {
        Condition::new("Ready", status, reason, "message")
    }

    #[test]
    fn absent_condition_is_appended_with_now() {
        let mut conditions = vec![Condition::new("Other", ConditionStatus::True, "R", "")];
        assert!(set_condition_at(
            &mut conditions,
            ready(ConditionStatus::True, "Synced"),
            at(T0)
        ));
        assert_eq!(conditions.len(), 2);
        assert_eq!(conditions[1].last_transition_time, T0);
    }

    #[test]
    fn given_transition_time_is_kept_on_append() {
        let mut conditions = Vec::new();
        let given = ready(ConditionStatus::True, "Synced").with_last_transition_time(at(T1));
        assert!(set_condition_at(&mut conditions, given, at(T0)));
        assert_eq!(conditions[0].last_transition_time, T1);
    }

    #[test]
    fn same_status_keeps_the_transition_time_but_updates_the_rest() {
        let mut conditions = Vec::new();
        set_condition_at(
            &mut conditions,
            ready(ConditionStatus::True, "Synced"),
            at(T0),
        );
        let newer = Condition::new("Ready", ConditionStatus::True, "StillSynced", "other")
            .with_observed_generation(Some(4));
        assert!(set_condition_at(&mut conditions, newer, at(T1)));
        assert_eq!(
            conditions,
            [Condition {
                type_: "Ready".into(),
                status: ConditionStatus::True,
                reason: "StillSynced".into(),
                message: "other".into(),
                last_transition_time: T0.into(),
                observed_generation: Some(4),
            }]
        );
    }

    #[test]
    fn status_change_moves_the_transition_time() {
        let mut conditions = Vec::new();
        set_condition_at(
            &mut conditions,
            ready(ConditionStatus::True, "Synced"),
            at(T0),
        );
        assert!(set_condition_at(
            &mut conditions,
            ready(ConditionStatus::False, "Synced"),
            at(T1)
        ));
        assert_eq!(conditions[0].status, ConditionStatus::False);
        assert_eq!(conditions[0].last_transition_time, T1);

        // A given time wins over now.
        let given = ready(ConditionStatus::Unknown, "Synced").with_last_transition_time(at(T0));
        assert!(set_condition_at(&mut conditions, given, at(T1)));
        assert_eq!(conditions[0].last_transition_time, T0);
    }

    #[test]
    fn nothing_changes_when_everything_is_equal() {
        let mut conditions = Vec::new();
        set_condition_at(
            &mut conditions,
            ready(ConditionStatus::True, "Synced"),
            at(T0),
        );
        let before = conditions.clone();
        // A different given time alone is not a change: the status did not move.
        let again = ready(ConditionStatus::True, "Synced").with_last_transition_time(at(T1));
        assert!(!set_condition_at(&mut conditions, again, at(T1)));
        assert_eq!(conditions, before);
    }

    #[test]
    fn find_remove_and_status_checks() {
        let mut conditions = vec![
            ready(ConditionStatus::True, "Synced"),
            Condition::new("Degraded", ConditionStatus::False, "Fine", ""),
        ];
        assert!(is_status_condition_true(&conditions, "Ready"));
        assert!(!is_status_condition_true(&conditions, "Degraded"));
        assert!(is_status_condition_false(&conditions, "Degraded"));
        assert!(!is_status_condition_true(&conditions, "Missing"));
        assert!(!is_status_condition_false(&conditions, "Missing"));
        assert_eq!(
            find_condition(&conditions, "Degraded").map(|c| c.reason.as_str()),
            Some("Fine")
        );
        assert!(remove_condition(&mut conditions, "Ready"));
        assert!(!remove_condition(&mut conditions, "Ready"));
        assert_eq!(conditions.len(), 1);
    }

    #[test]
    fn serializes_like_metav1_condition() {
        let condition = ready(ConditionStatus::Unknown, "Probing")
            .with_observed_generation(Some(2))
            .with_last_transition_time(at(T0));
        let json = serde_json::to_value(&condition).unwrap();
        assert_eq!(
            json,
            json!({
                "type": "Ready", "status": "Unknown", "reason": "Probing", "message": "message",
                "lastTransitionTime": T0, "observedGeneration": 2,
            })
        );
        assert_eq!(
            serde_json::from_value::<Condition>(json).unwrap(),
            condition
        );
        let minimal: Condition =
            serde_json::from_value(json!({"type": "Ready", "status": "True"})).unwrap();
        assert_eq!(minimal.observed_generation, None);
        assert!(
            serde_json::from_value::<Condition>(json!({"type": "Ready", "status": "yes"})).is_err()
        );
    }

    #[test]
    fn set_condition_uses_the_pinned_clock() {
        let _pin = clock::pin(at(T1));
        let mut conditions = Vec::new();
        set_condition(&mut conditions, ready(ConditionStatus::True, "Synced"));
        assert_eq!(conditions[0].last_transition_time, T1);
    }
}
