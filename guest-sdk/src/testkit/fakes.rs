//! A fake event recorder and log that record what a reconciler did and refuse what the host refuses.

use std::cell::RefCell;
use std::rc::Rc;

use crate::recorder::{truncate_message, validate_annotations, validate_reason};
use crate::{Event, EventError, EventSink, EventType, Level, LogSink};

/// An event a [`FakeRecorder`] accepted, as the host would post it (the message truncated
/// like the host truncates it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedEvent {
    /// Normal or Warning.
    pub event_type: EventType,
    /// The reason.
    pub reason: String,
    /// The message, truncated as the host would.
    pub message: String,
    /// The annotations, in the order given; empty for a plain event.
    pub annotations: Vec<(String, String)>,
}

impl RecordedEvent {
    /// A `Normal` event without annotations, for comparing in tests.
    pub fn normal(reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(EventType::Normal, reason, message)
    }

    /// A `Warning` event without annotations, for comparing in tests.
    pub fn warning(reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(EventType::Warning, reason, message)
    }

    /// An event without annotations.
    pub fn new(
        event_type: EventType,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            event_type,
            reason: reason.into(),
            message: message.into(),
            annotations: Vec::new(),
        }
    }

    /// The same event with one more annotation.
    #[must_use]
    pub fn with_annotation(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.annotations.push((key.into(), value.into()));
        self
    }
}

/// An event a [`FakeRecorder`] refused, and why: what the host would have refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedEvent {
    /// The event as the reconciler tried to record it.
    pub event: RecordedEvent,
    /// The error the reconciler got back.
    pub error: EventError,
}

/// An [`EventSink`] that keeps events in memory, after checking them with the host's rules
/// (reason UpperCamelCase of 1-128 characters, valid annotation keys). Clones share one
/// record.
#[derive(Debug, Clone, Default)]
pub struct FakeRecorder {
    state: Rc<RefCell<RecorderState>>,
}

#[derive(Debug, Default)]
struct RecorderState {
    events: Vec<RecordedEvent>,
    rejected: Vec<RejectedEvent>,
}

impl FakeRecorder {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    /// The events accepted so far, oldest first.
    pub fn events(&self) -> Vec<RecordedEvent> {
        self.state.borrow().events.clone()
    }

    /// The events refused so far, oldest first.
    pub fn rejected(&self) -> Vec<RejectedEvent> {
        self.state.borrow().rejected.clone()
    }
}

impl EventSink for FakeRecorder {
    fn record(&self, event: &Event<'_>) -> Result<(), EventError> {
        let checked =
            validate_reason(event.reason).and_then(|()| validate_annotations(event.annotations));
        let mut state = self.state.borrow_mut();
        let mut recorded = RecordedEvent {
            event_type: event.event_type,
            reason: event.reason.to_owned(),
            message: event.message.to_owned(),
            annotations: event.annotations.to_vec(),
        };
        match checked {
            Ok(()) => {
                recorded.message = truncate_message(event.message).into_owned();
                state.events.push(recorded);
                Ok(())
            }
            Err(error) => {
                state.rejected.push(RejectedEvent {
                    event: recorded,
                    error: error.clone(),
                });
                Err(error)
            }
        }
    }
}

/// A line written through a [`FakeLog`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// The level.
    pub level: Level,
    /// The message.
    pub message: String,
}

/// A [`LogSink`] that keeps lines in memory and also prints them to stderr, where the test
/// harness shows them for failed tests. Clones share one record.
#[derive(Debug, Clone, Default)]
pub struct FakeLog {
    lines: Rc<RefCell<Vec<LogLine>>>,
}

impl FakeLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// The lines written so far, oldest first.
    pub fn lines(&self) -> Vec<LogLine> {
        self.lines.borrow().clone()
    }
}

impl LogSink for FakeLog {
    fn log(&self, level: Level, message: &str) {
        eprintln!("[plugin {level}] {message}");
        self.lines.borrow_mut().push(LogLine {
            level,
            message: message.to_owned(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorder_refuses_what_the_host_refuses_and_keeps_it_apart() {
        let recorder = FakeRecorder::new();
        let ok = Event {
            event_type: EventType::Normal,
            reason: "Created",
            message: "m",
            annotations: &[],
        };
        let bad = Event {
            reason: "created",
            ..ok
        };
        assert_eq!(recorder.record(&ok), Ok(()));
        assert!(matches!(
            recorder.record(&bad),
            Err(EventError::InvalidReason(_))
        ));
        assert_eq!(recorder.events(), [RecordedEvent::normal("Created", "m")]);
        assert_eq!(recorder.rejected().len(), 1);
        assert_eq!(recorder.rejected()[0].event.reason, "created");
    }
}
