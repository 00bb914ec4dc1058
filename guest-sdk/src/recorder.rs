//! Kubernetes Events about the reconciled object, like controller-runtime's `EventRecorder`.
//!
//! Every event is about the object of the current reconcile; the host posts it as an
//! `events.k8s.io/v1` Event that `kubectl describe` shows. [`eventf!`](crate::eventf) and
//! [`annotated_eventf!`](crate::annotated_eventf) are the `Eventf`/`AnnotatedEventf`
//! formatting helpers. The validation functions here are the rules the host applies, so the
//! [test kit](crate::testkit) can refuse what the host would refuse.

use std::borrow::Cow;
use std::fmt;
use std::rc::Rc;

/// The type of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// Something expected happened (`corev1.EventTypeNormal`).
    Normal,
    /// Something someone should look at (`corev1.EventTypeWarning`).
    Warning,
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Normal => "Normal",
            Self::Warning => "Warning",
        })
    }
}

/// Why the host refused an event. Nothing is sent for a refused event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// The reason is not 1-128 characters of UpperCamelCase (`^[A-Z][A-Za-z0-9]*$`).
    #[error("invalid event reason: {0}")]
    InvalidReason(String),
    /// An annotation key or value is not valid as a Kubernetes annotation.
    #[error("invalid event annotation: {0}")]
    InvalidAnnotation(String),
    /// There is no object to attach the event to: recorded outside of `reconcile`.
    #[error("no object to record an event about: events can only be recorded during reconcile")]
    NoObject,
}

/// One event, as handed to an [`EventSink`].
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Event<'a> {
    /// Normal or Warning.
    pub event_type: EventType,
    /// The UpperCamelCase reason, e.g. `Created`.
    pub reason: &'a str,
    /// The human-readable message.
    pub message: &'a str,
    /// Annotations for the Event object; empty for a plain event.
    pub annotations: &'a [(String, String)],
}

/// Where a [`Recorder`] sends events: the host's `event-recorder` import in a plugin, a
/// [`FakeRecorder`](crate::testkit::FakeRecorder) in tests.
pub trait EventSink {
    /// Records one event about the reconciled object.
    ///
    /// # Errors
    ///
    /// An [`EventError`] if the event is refused; nothing is recorded then.
    fn record(&self, event: &Event<'_>) -> Result<(), EventError>;
}

/// Records Events about the reconciled object, like controller-runtime's `EventRecorder`.
///
/// Recording does not wait for the API server: the host validates the event, queues it and
/// delivers it in the background, folding repeats together the way client-go does. Only when
/// new Events pile up faster than the API server takes them does recording a new one wait
/// for room in the queue rather than drop it: in turn, for as long as Events are being
/// written (the host drops it only after about 10 s without any written).
///
/// ```
/// # use wasm_reconciler_sdk::{eventf, Context, Error, EventType};
/// # fn reconcile(ctx: &Context) -> Result<(), Error> {
/// # let name = "demo";
/// let recorder = ctx.recorder();
/// recorder.event(EventType::Normal, "Synced", "Everything is up to date")?;
/// eventf!(recorder, Normal, "Created", "Created deployment {name}")?;
/// recorder.annotated_event([("example.com/trace-id", "abc123")], EventType::Warning, "Degraded", "1 of 3 replicas ready")?;
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// Each method returns the host's verdict. A refused event is a bug in the plugin (a
/// lowercase reason, an annotation key with a space), so [`EventError`] converts into a
/// terminal [`Error`](crate::Error) with `?`; `let _ =` ignores it the way Go code does.
#[derive(Clone)]
pub struct Recorder {
    sink: Rc<dyn EventSink>,
}

impl Recorder {
    /// A recorder that sends events to `sink`.
    pub fn new(sink: Rc<dyn EventSink>) -> Self {
        Self { sink }
    }

    /// Records an event (`Event(object, type, reason, message)`). A message over
    /// 1024 bytes is truncated on a character boundary and ends with `" ..."`.
    ///
    /// # Errors
    ///
    /// [`EventError::InvalidReason`] unless `reason` is 1-128 characters of UpperCamelCase.
    pub fn event(
        &self,
        event_type: EventType,
        reason: &str,
        message: &str,
    ) -> Result<(), EventError> {
        self.sink.record(&Event {
            event_type,
            reason,
            message,
            annotations: &[],
        })
    }

    /// Records an event with a formatted message (`Eventf`); usually written with
    /// [`eventf!`](crate::eventf).
    ///
    /// # Errors
    ///
    /// As for [`Recorder::event`].
    pub fn eventf(
        &self,
        event_type: EventType,
        reason: &str,
        message: fmt::Arguments<'_>,
    ) -> Result<(), EventError> {
        self.event(event_type, reason, &format_message(message))
    }

    /// Records an event with annotations on the Event object (`AnnotatedEventf`).
    ///
    /// # Errors
    ///
    /// As for [`Recorder::event`], and [`EventError::InvalidAnnotation`] unless every key is
    /// a valid annotation key (`example.com/name`), no key comes twice, and all of them fit
    /// in 256 KiB.
    pub fn annotated_event<I, K, V>(
        &self,
        annotations: I,
        event_type: EventType,
        reason: &str,
        message: &str,
    ) -> Result<(), EventError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let annotations: Vec<(String, String)> = annotations
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        self.sink.record(&Event {
            event_type,
            reason,
            message,
            annotations: &annotations,
        })
    }

    /// Records an annotated event with a formatted message; usually written with
    /// [`annotated_eventf!`](crate::annotated_eventf).
    ///
    /// # Errors
    ///
    /// As for [`Recorder::annotated_event`].
    pub fn annotated_eventf<I, K, V>(
        &self,
        annotations: I,
        event_type: EventType,
        reason: &str,
        message: fmt::Arguments<'_>,
    ) -> Result<(), EventError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        self.annotated_event(annotations, event_type, reason, &format_message(message))
    }
}

impl fmt::Debug for Recorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recorder").finish_non_exhaustive()
    }
}

fn format_message(message: fmt::Arguments<'_>) -> Cow<'static, str> {
    match message.as_str() {
        Some(literal) => Cow::Borrowed(literal),
        None => Cow::Owned(message.to_string()),
    }
}

/// Records an event with a formatted message, like controller-runtime's `Eventf`.
///
/// `eventf!(recorder, type, reason, format, args...)`, where `type` is `Normal`, `Warning`
/// or an [`EventType`] expression, and the rest is as for [`format!`]. It returns the
/// recorder's `Result<(), EventError>`.
///
/// ```
/// # use wasm_reconciler_sdk::{eventf, Context, Error};
/// # fn reconcile(ctx: &Context) -> Result<(), Error> {
/// # let (name, from, to) = ("demo", 1, 3);
/// eventf!(ctx.recorder(), Normal, "Scaled", "Scaled deployment {name} from {from} to {to}")?;
/// # Ok(()) }
/// ```
#[macro_export]
macro_rules! eventf {
    ($recorder:expr, Normal, $reason:expr, $($format:tt)+) => {
        $recorder.eventf($crate::EventType::Normal, $reason, ::core::format_args!($($format)+))
    };
    ($recorder:expr, Warning, $reason:expr, $($format:tt)+) => {
        $recorder.eventf($crate::EventType::Warning, $reason, ::core::format_args!($($format)+))
    };
    ($recorder:expr, $type:expr, $reason:expr, $($format:tt)+) => {
        $recorder.eventf($type, $reason, ::core::format_args!($($format)+))
    };
}

/// Records an annotated event with a formatted message, like controller-runtime's
/// `AnnotatedEventf`.
///
/// `annotated_eventf!(recorder, annotations, type, reason, format, args...)`: as
/// [`eventf!`](crate::eventf), with annotations (any iterator of key-value pairs) first.
///
/// ```
/// # use wasm_reconciler_sdk::{annotated_eventf, Context, Error};
/// # fn reconcile(ctx: &Context) -> Result<(), Error> {
/// # let (name, revision) = ("demo", 4);
/// annotated_eventf!(
///     ctx.recorder(),
///     [("example.com/revision", revision.to_string())],
///     Normal,
///     "RolledOut",
///     "Rolled out revision {revision} of {name}",
/// )?;
/// # Ok(()) }
/// ```
#[macro_export]
macro_rules! annotated_eventf {
    ($recorder:expr, $annotations:expr, Normal, $reason:expr, $($format:tt)+) => {
        $recorder.annotated_eventf($annotations, $crate::EventType::Normal, $reason, ::core::format_args!($($format)+))
    };
    ($recorder:expr, $annotations:expr, Warning, $reason:expr, $($format:tt)+) => {
        $recorder.annotated_eventf($annotations, $crate::EventType::Warning, $reason, ::core::format_args!($($format)+))
    };
    ($recorder:expr, $annotations:expr, $type:expr, $reason:expr, $($format:tt)+) => {
        $recorder.annotated_eventf($annotations, $type, $reason, ::core::format_args!($($format)+))
    };
}

/// The longest reason the host accepts, in characters.
pub const MAX_REASON_LEN: usize = 128;

/// The longest message the host posts, in bytes; longer ones are truncated.
pub const MAX_MESSAGE_BYTES: usize = 1024;

/// The most the keys and values of an event's annotations may add up to, in bytes (the API
/// server's limit for an object's annotations).
pub const MAX_ANNOTATIONS_BYTES: usize = 256 * 1024;

/// Checks a reason the way the host does: 1-128 characters matching `^[A-Z][A-Za-z0-9]*$`.
///
/// ```
/// use wasm_reconciler_sdk::recorder::validate_reason;
///
/// assert!(validate_reason("Created").is_ok());
/// assert!(validate_reason("created").is_err());
/// assert!(validate_reason("Not Created").is_err());
/// ```
///
/// # Errors
///
/// [`EventError::InvalidReason`], saying what is wrong.
pub fn validate_reason(reason: &str) -> Result<(), EventError> {
    let problem = if reason.is_empty() {
        "it is empty".to_owned()
    } else if reason.len() > MAX_REASON_LEN {
        format!(
            "it is {} characters long, over {MAX_REASON_LEN}",
            reason.len()
        )
    } else if !reason.starts_with(|c: char| c.is_ascii_uppercase()) {
        format!("{reason:?} does not start with an uppercase letter A-Z")
    } else if let Some(c) = reason.chars().find(|c| !c.is_ascii_alphanumeric()) {
        format!("{reason:?} contains {c:?}; only A-Z, a-z and 0-9 are allowed (UpperCamelCase)")
    } else {
        return Ok(());
    };
    Err(EventError::InvalidReason(problem))
}

/// Checks annotations the way the host does: every key a Kubernetes qualified name
/// (`[prefix/]name`, the prefix a DNS subdomain of at most 253 characters, the name at most
/// 63 characters of `[A-Za-z0-9_.-]` starting and ending alphanumeric), no key twice, and
/// keys plus values at most [`MAX_ANNOTATIONS_BYTES`].
///
/// # Errors
///
/// [`EventError::InvalidAnnotation`], naming the key and what is wrong with it.
pub fn validate_annotations(annotations: &[(String, String)]) -> Result<(), EventError> {
    let mut total = 0usize;
    let mut seen = std::collections::BTreeSet::new();
    for (key, value) in annotations {
        crate::names::validate_qualified_name(key, false)
            .map_err(|problem| EventError::InvalidAnnotation(format!("key {key:?}: {problem}")))?;
        if !seen.insert(key.as_str()) {
            return Err(EventError::InvalidAnnotation(format!(
                "duplicate key {key:?}"
            )));
        }
        total = total.saturating_add(key.len()).saturating_add(value.len());
    }
    if total > MAX_ANNOTATIONS_BYTES {
        return Err(EventError::InvalidAnnotation(format!(
            "annotations take {total} bytes, over the limit of {MAX_ANNOTATIONS_BYTES}"
        )));
    }
    Ok(())
}

/// Truncates a message the way the host does: over [`MAX_MESSAGE_BYTES`] bytes, it is cut
/// on a character boundary and ends with `" ..."`, the whole within the limit.
///
/// ```
/// use wasm_reconciler_sdk::recorder::{truncate_message, MAX_MESSAGE_BYTES};
///
/// assert_eq!(truncate_message("short"), "short");
/// let long = "é".repeat(MAX_MESSAGE_BYTES);
/// let cut = truncate_message(&long);
/// assert!(cut.len() <= MAX_MESSAGE_BYTES && cut.ends_with(" ..."));
/// ```
pub fn truncate_message(message: &str) -> Cow<'_, str> {
    const ELLIPSIS: &str = " ...";
    if message.len() <= MAX_MESSAGE_BYTES {
        return Cow::Borrowed(message);
    }
    let mut end = MAX_MESSAGE_BYTES - ELLIPSIS.len();
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}{ELLIPSIS}", &message[..end]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotation(key: &str) -> Vec<(String, String)> {
        vec![(key.to_owned(), "v".to_owned())]
    }

    #[test]
    fn reasons_must_be_upper_camel_case_within_128_characters() {
        for good in ["Created", "A", "Scaled2Replicas", &"A".repeat(128)] {
            assert_eq!(validate_reason(good), Ok(()), "{good:?}");
        }
        for bad in [
            "",
            "created",
            "1Created",
            "Not Created",
            "Not-Created",
            "Créé",
            &"A".repeat(129),
        ] {
            assert!(
                matches!(validate_reason(bad), Err(EventError::InvalidReason(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn annotation_keys_must_be_qualified_names() {
        for good in [
            "a",
            "example.com/trace-id",
            "A_b.c-D",
            "x/y",
            &"n".repeat(63),
        ] {
            assert_eq!(validate_annotations(&annotation(good)), Ok(()), "{good:?}");
        }
        for bad in [
            "",
            "/a",
            "a/",
            "Example.com/a",
            "a b",
            "-a",
            "a-",
            "a/b/c",
            &"n".repeat(64),
        ] {
            assert!(
                matches!(
                    validate_annotations(&annotation(bad)),
                    Err(EventError::InvalidAnnotation(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn duplicate_annotation_keys_are_refused() {
        let twice = vec![
            ("a".to_owned(), "1".to_owned()),
            ("a".to_owned(), "2".to_owned()),
        ];
        assert!(
            matches!(validate_annotations(&twice), Err(EventError::InvalidAnnotation(m)) if m.contains("duplicate"))
        );
    }

    #[test]
    fn annotations_over_256_kib_are_refused() {
        let big = vec![("a".to_owned(), "v".repeat(MAX_ANNOTATIONS_BYTES))];
        assert!(validate_annotations(&big).is_err());
        let fits = vec![("a".to_owned(), "v".repeat(MAX_ANNOTATIONS_BYTES - 1))];
        assert_eq!(validate_annotations(&fits), Ok(()));
    }

    #[test]
    fn format_macros_accept_type_names_and_expressions() {
        let fake = crate::testkit::FakeRecorder::new();
        let recorder = Recorder::new(Rc::new(fake.clone()));
        let (name, event_type) = ("demo", EventType::Warning);

        crate::eventf!(recorder, Normal, "Created", "Created {name}").unwrap();
        crate::eventf!(
            recorder,
            event_type,
            "Failed",
            "{} failed {} times",
            name,
            2
        )
        .unwrap();
        crate::annotated_eventf!(recorder, [("a", "1")], Warning, "Slow", "took {}s", 3).unwrap();
        crate::annotated_eventf!(
            recorder,
            Vec::<(String, String)>::new(),
            EventType::Normal,
            "Done",
            "done"
        )
        .unwrap();

        let events: Vec<_> = fake
            .events()
            .into_iter()
            .map(|e| (e.event_type, e.reason, e.message))
            .collect();
        assert_eq!(
            events,
            [
                (EventType::Normal, "Created".into(), "Created demo".into()),
                (
                    EventType::Warning,
                    "Failed".into(),
                    "demo failed 2 times".into()
                ),
                (EventType::Warning, "Slow".into(), "took 3s".into()),
                (EventType::Normal, "Done".into(), "done".into()),
            ]
        );
        assert_eq!(
            fake.events()[2].annotations,
            [("a".to_owned(), "1".to_owned())]
        );
    }

    #[test]
    fn long_messages_are_cut_on_a_character_boundary() {
        let exact = "x".repeat(MAX_MESSAGE_BYTES);
        assert_eq!(truncate_message(&exact), exact.as_str());

        let long = format!("{}{}", "x".repeat(MAX_MESSAGE_BYTES - 5), "ü".repeat(10));
        let cut = truncate_message(&long);
        assert!(cut.len() <= MAX_MESSAGE_BYTES);
        assert!(cut.ends_with("x ..."), "{cut}");
    }
}
