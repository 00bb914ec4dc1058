//! Log lines written to the host's log, inside the span of the current reconcile.

use std::fmt;
use std::rc::Rc;

/// How important a log line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Very detailed tracing.
    Trace,
    /// Detail for debugging.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected that the plugin handled.
    Warn,
    /// Something failed.
    Error,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Trace => "TRACE",
            Self::Debug => "DEBUG",
            Self::Info => "INFO",
            Self::Warn => "WARN",
            Self::Error => "ERROR",
        })
    }
}

/// Where a [`Logger`] writes: the host's `log` import in a plugin, a
/// [`FakeLog`](crate::testkit::FakeLog) in tests.
pub trait LogSink {
    /// Writes one line.
    fn log(&self, level: Level, message: &str);
}

/// Writes structured log lines to the host's log. The host files them under the span of the
/// reconcile (plugin, kind, namespace, name), so a message need not repeat those.
///
/// Each method takes anything that implements `Display`, including `format_args!`:
///
/// ```
/// # use wasm_reconciler_sdk::Context;
/// # fn reconcile(ctx: &Context) {
/// # let replicas = 3;
/// ctx.log().info("deployment is up to date");
/// ctx.log().debug(format_args!("want {replicas} replicas"));
/// # }
/// ```
#[derive(Clone)]
pub struct Logger {
    sink: Rc<dyn LogSink>,
}

impl Logger {
    /// A logger that writes to `sink`.
    pub fn new(sink: Rc<dyn LogSink>) -> Self {
        Self { sink }
    }

    /// Writes `message` at `level`.
    pub fn log(&self, level: Level, message: impl fmt::Display) {
        self.sink.log(level, &message.to_string());
    }

    /// Writes at [`Level::Trace`].
    pub fn trace(&self, message: impl fmt::Display) {
        self.log(Level::Trace, message);
    }

    /// Writes at [`Level::Debug`].
    pub fn debug(&self, message: impl fmt::Display) {
        self.log(Level::Debug, message);
    }

    /// Writes at [`Level::Info`].
    pub fn info(&self, message: impl fmt::Display) {
        self.log(Level::Info, message);
    }

    /// Writes at [`Level::Warn`].
    pub fn warn(&self, message: impl fmt::Display) {
        self.log(Level::Warn, message);
    }

    /// Writes at [`Level::Error`].
    pub fn error(&self, message: impl fmt::Display) {
        self.log(Level::Error, message);
    }
}

impl fmt::Debug for Logger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Logger").finish_non_exhaustive()
    }
}
