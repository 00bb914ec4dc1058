//! What a reconcile may use: the event recorder, the client and the log.

use std::rc::Rc;

use crate::{Client, EventSink, LogSink, Logger, ObjectClient, Recorder};

/// The capabilities the host gives one reconcile: an event [`Recorder`], a scoped
/// [`Client`] and a [`Logger`].
///
/// In a plugin the SDK builds it from the host's imports. Behind each capability is a trait
/// object ([`EventSink`], [`ObjectClient`], [`LogSink`]), so the same reconciler runs
/// natively against the fakes of the [test kit](crate::testkit), or against your own.
#[derive(Debug, Clone)]
pub struct Context {
    recorder: Recorder,
    client: Client,
    log: Logger,
}

impl Context {
    /// A context over the given implementations.
    pub fn new(
        events: Rc<dyn EventSink>,
        client: Rc<dyn ObjectClient>,
        log: Rc<dyn LogSink>,
    ) -> Self {
        Self {
            recorder: Recorder::new(events),
            client: Client::new(client),
            log: Logger::new(log),
        }
    }

    /// Records Events about the reconciled object.
    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// Reads and writes the objects the plugin declared.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Writes to the host's log.
    pub fn log(&self) -> &Logger {
        &self.log
    }
}
