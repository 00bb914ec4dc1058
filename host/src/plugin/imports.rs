//! The host side of the WIT imports: event recorder, scoped client and log.
//!
//! Every import answers the guest with a WIT error value rather than trapping: a plugin that
//! asks for something it may not have gets told why, and can record it or give up. Time spent
//! in an import is not charged to the guest's CPU limit.

use std::time::Instant;

use super::bindings::{client, event_recorder, log, types};
use super::log::{LineVerdict, MAX_LINE_BYTES, escape};
use super::state::GuestState;
use kube::api::GroupVersionKind;

use crate::client::ClientError;
use crate::recorder::{EventType, RecordError};

use event_recorder::EventError;

impl types::Host for GuestState {}

impl GuestState {
    async fn record(
        &mut self,
        event_type: event_recorder::EventType,
        reason: String,
        message: String,
        annotations: Vec<(String, String)>,
    ) -> Result<(), EventError> {
        let Some(scope) = &self.scope else {
            return Err(EventError::NoObject);
        };
        let event_type = match event_type {
            event_recorder::EventType::Normal => EventType::Normal,
            event_recorder::EventType::Warning => EventType::Warning,
        };
        let started = Instant::now();
        let recorded = scope
            .recorder
            .record(
                &self.plugin,
                &scope.object,
                event_type,
                reason,
                message,
                annotations,
            )
            .await;
        self.cpu.add_import_time(started.elapsed());
        match recorded {
            Ok(()) => Ok(()),
            Err(RecordError::Invalid(crate::recorder::InvalidEvent::Reason(reason))) => {
                Err(EventError::InvalidReason(format!(
                    "reason {reason:?} must be 1-128 characters matching ^[A-Z][A-Za-z0-9]*$"
                )))
            }
            Err(RecordError::Invalid(invalid)) => {
                Err(EventError::InvalidAnnotation(invalid.to_string()))
            }
        }
    }

    fn client_scope(&self) -> Result<crate::client::ScopedClient, client::ClientError> {
        self.scope
            .as_ref()
            .map(|scope| scope.client.clone())
            .ok_or_else(|| {
                client::ClientError::Forbidden("the client is only available in reconcile".into())
            })
    }
}

impl event_recorder::Host for GuestState {
    async fn event(
        &mut self,
        event_type: event_recorder::EventType,
        reason: String,
        message: String,
    ) -> wasmtime::Result<Result<(), EventError>> {
        Ok(self.record(event_type, reason, message, Vec::new()).await)
    }

    async fn annotated_event(
        &mut self,
        annotations: Vec<(String, String)>,
        event_type: event_recorder::EventType,
        reason: String,
        message: String,
    ) -> wasmtime::Result<Result<(), EventError>> {
        Ok(self.record(event_type, reason, message, annotations).await)
    }
}

impl From<ClientError> for client::ClientError {
    fn from(error: ClientError) -> Self {
        match error {
            ClientError::Forbidden(message) => client::ClientError::Forbidden(message),
            ClientError::Invalid(message) => client::ClientError::Invalid(message),
            ClientError::Api { code, message } => client::ClientError::Api((code, message)),
            ClientError::Unavailable(message) => client::ClientError::Unavailable(message),
        }
    }
}

impl client::Host for GuestState {
    async fn get(
        &mut self,
        kind: types::GroupVersionKind,
        name: String,
    ) -> wasmtime::Result<Result<Option<String>, client::ClientError>> {
        let scoped = match self.client_scope() {
            Ok(scoped) => scoped,
            Err(error) => return Ok(Err(error)),
        };
        let gvk = GroupVersionKind::gvk(&kind.group, &kind.version, &kind.kind);
        let started = Instant::now();
        let result = scoped.get(&gvk, &name).await.map_err(Into::into);
        self.cpu.add_import_time(started.elapsed());
        Ok(result)
    }

    async fn apply(
        &mut self,
        object: String,
    ) -> wasmtime::Result<Result<String, client::ClientError>> {
        let scoped = match self.client_scope() {
            Ok(scoped) => scoped,
            Err(error) => return Ok(Err(error)),
        };
        let started = Instant::now();
        let result = scoped.apply(&object).await.map_err(Into::into);
        self.cpu.add_import_time(started.elapsed());
        Ok(result)
    }

    async fn patch_status(
        &mut self,
        status: String,
    ) -> wasmtime::Result<Result<String, client::ClientError>> {
        let scoped = match self.client_scope() {
            Ok(scoped) => scoped,
            Err(error) => return Ok(Err(error)),
        };
        let started = Instant::now();
        let result = scoped.patch_status(&status).await.map_err(Into::into);
        self.cpu.add_import_time(started.elapsed());
        Ok(result)
    }
}

impl log::Host for GuestState {
    async fn log(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        let suppressed = match self.log.admit(Instant::now()) {
            LineVerdict::Write { suppressed } => suppressed,
            LineVerdict::Drop => return Ok(()),
        };
        if suppressed > 0 {
            tracing::warn!(
                target: "plugin",
                suppressed,
                "plugin log lines dropped: the plugin writes faster than its log rate limit"
            );
        }
        // The reconcile span around the call carries plugin, kind, namespace and name.
        let message = escape(&message, MAX_LINE_BYTES);
        match level {
            log::Level::Trace => tracing::trace!(target: "plugin", "{message}"),
            log::Level::Debug => tracing::debug!(target: "plugin", "{message}"),
            log::Level::Info => tracing::info!(target: "plugin", "{message}"),
            log::Level::Warn => tracing::warn!(target: "plugin", "{message}"),
            log::Level::Error => tracing::error!(target: "plugin", "{message}"),
        }
        Ok(())
    }
}
