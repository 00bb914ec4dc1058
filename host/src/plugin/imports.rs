//! The host side of the WIT imports of every contract version: event recorder, scoped client
//! and log. Each version's import functions convert its own WIT types and call one shared
//! implementation here.
//!
//! Every import answers the guest with a WIT error value rather than trapping: a plugin that
//! asks for something it may not have gets told why, and can record it or give up. Time spent
//! in an import is not charged to the guest's CPU limit.

use std::time::Instant;

use kube::api::GroupVersionKind;

use super::bindings::{v0_1, v0_2};
use super::log::{LineVerdict, MAX_LINE_BYTES, escape};
use super::state::GuestState;

use crate::client::{ClientError, Propagation, ScopedClient, strip_managed_fields};
use crate::recorder::{EventType, InvalidEvent, RecordError};

/// Why the host refused an event, in either version's terms.
enum EventRefusal {
    InvalidReason(String),
    InvalidAnnotation(String),
    NoObject,
}

/// The log levels of every version.
enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl GuestState {
    async fn record(
        &mut self,
        event_type: EventType,
        reason: String,
        message: String,
        annotations: Vec<(String, String)>,
    ) -> Result<(), EventRefusal> {
        let Some(scope) = &self.scope else {
            return Err(EventRefusal::NoObject);
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
            Err(RecordError::Invalid(InvalidEvent::Reason(reason))) => {
                Err(EventRefusal::InvalidReason(format!(
                    "reason {reason:?} must be 1-128 characters matching ^[A-Z][A-Za-z0-9]*$"
                )))
            }
            Err(RecordError::Invalid(invalid)) => {
                Err(EventRefusal::InvalidAnnotation(invalid.to_string()))
            }
        }
    }

    /// Runs `call` with this reconcile's client; the time it takes is not the guest's.
    async fn with_client<T>(
        &mut self,
        call: impl AsyncFnOnce(ScopedClient) -> Result<T, ClientError>,
    ) -> Result<T, ClientError> {
        let Some(scope) = &self.scope else {
            return Err(ClientError::Forbidden(
                "the client is only available in reconcile and cleanup".into(),
            ));
        };
        let client = scope.client.clone();
        let started = Instant::now();
        let result = call(client).await;
        self.cpu.add_import_time(started.elapsed());
        result
    }

    fn write_log(&mut self, level: Level, message: &str) {
        let suppressed = match self.log.admit(Instant::now()) {
            LineVerdict::Write { suppressed } => suppressed,
            LineVerdict::Drop => return,
        };
        if suppressed > 0 {
            tracing::warn!(
                target: "plugin",
                suppressed,
                "plugin log lines dropped: the plugin writes faster than its log rate limit"
            );
        }
        // The reconcile span around the call carries plugin, kind, namespace and name.
        let message = escape(message, MAX_LINE_BYTES);
        match level {
            Level::Trace => tracing::trace!(target: "plugin", "{message}"),
            Level::Debug => tracing::debug!(target: "plugin", "{message}"),
            Level::Info => tracing::info!(target: "plugin", "{message}"),
            Level::Warn => tracing::warn!(target: "plugin", "{message}"),
            Level::Error => tracing::error!(target: "plugin", "{message}"),
        }
    }
}

/// The imports every contract version has unchanged (types, event recorder, log, and the
/// client's error), implemented once for the bindings of `$version`; `$shared` names the
/// module that holds them.
macro_rules! same_in_every_version {
    ($version:ident, $shared:ident) => {
        mod $shared {
            use super::*;
            use $version::{client, event_recorder, log, types};

            impl types::Host for GuestState {}

            fn event_type(event_type: event_recorder::EventType) -> EventType {
                match event_type {
                    event_recorder::EventType::Normal => EventType::Normal,
                    event_recorder::EventType::Warning => EventType::Warning,
                }
            }

            fn event_error(refusal: EventRefusal) -> event_recorder::EventError {
                match refusal {
                    EventRefusal::InvalidReason(m) => event_recorder::EventError::InvalidReason(m),
                    EventRefusal::InvalidAnnotation(m) => {
                        event_recorder::EventError::InvalidAnnotation(m)
                    }
                    EventRefusal::NoObject => event_recorder::EventError::NoObject,
                }
            }

            impl event_recorder::Host for GuestState {
                async fn event(
                    &mut self,
                    kind: event_recorder::EventType,
                    reason: String,
                    message: String,
                ) -> wasmtime::Result<Result<(), event_recorder::EventError>> {
                    let recorded = self
                        .record(event_type(kind), reason, message, Vec::new())
                        .await;
                    Ok(recorded.map_err(event_error))
                }

                async fn annotated_event(
                    &mut self,
                    annotations: Vec<(String, String)>,
                    kind: event_recorder::EventType,
                    reason: String,
                    message: String,
                ) -> wasmtime::Result<Result<(), event_recorder::EventError>> {
                    let recorded = self
                        .record(event_type(kind), reason, message, annotations)
                        .await;
                    Ok(recorded.map_err(event_error))
                }
            }

            impl log::Host for GuestState {
                async fn log(
                    &mut self,
                    level: log::Level,
                    message: String,
                ) -> wasmtime::Result<()> {
                    let level = match level {
                        log::Level::Trace => Level::Trace,
                        log::Level::Debug => Level::Debug,
                        log::Level::Info => Level::Info,
                        log::Level::Warn => Level::Warn,
                        log::Level::Error => Level::Error,
                    };
                    self.write_log(level, &message);
                    Ok(())
                }
            }

            /// The host's client error as this version's.
            pub(super) fn client_error(error: ClientError) -> client::ClientError {
                match error {
                    ClientError::Forbidden(message) => client::ClientError::Forbidden(message),
                    ClientError::Invalid(message) => client::ClientError::Invalid(message),
                    ClientError::Api { code, message } => client::ClientError::Api((code, message)),
                    ClientError::Unavailable(message) => client::ClientError::Unavailable(message),
                }
            }
        }
    };
}

same_in_every_version!(v0_1, v0_1_shared);
same_in_every_version!(v0_2, v0_2_shared);

/// `wasm-reconciler:plugin@0.1.0`: reads are live GETs, as they always were.
mod v0_1_imports {
    use super::v0_1_shared::client_error;
    use super::*;
    use v0_1::{client, types};

    impl client::Host for GuestState {
        async fn get(
            &mut self,
            kind: types::GroupVersionKind,
            name: String,
        ) -> wasmtime::Result<Result<Option<String>, client::ClientError>> {
            let gvk = GroupVersionKind::gvk(&kind.group, &kind.version, &kind.kind);
            let result = self
                .with_client(async |client| client.get(&gvk, &name).await)
                .await;
            Ok(result.map_err(client_error))
        }

        async fn apply(
            &mut self,
            object: String,
        ) -> wasmtime::Result<Result<String, client::ClientError>> {
            let result = self
                .with_client(async |client| client.apply(&object).await)
                .await;
            Ok(result.map_err(client_error))
        }

        async fn patch_status(
            &mut self,
            status: String,
        ) -> wasmtime::Result<Result<String, client::ClientError>> {
            let result = self
                .with_client(async |client| client.patch_status(&status).await)
                .await;
            Ok(result.map_err(client_error))
        }
    }
}

/// `wasm-reconciler:plugin@0.2.0`: reads from the caches, `get-live`, `list` and `delete`.
mod v0_2_imports {
    use super::v0_2_shared::client_error;
    use super::*;
    use v0_2::{client, types};

    fn gvk(kind: &types::GroupVersionKind) -> GroupVersionKind {
        GroupVersionKind::gvk(&kind.group, &kind.version, &kind.kind)
    }

    /// Where a `get` reads from.
    enum Read {
        /// The host's cache of the kind (the API server when there is none).
        Cached,
        /// The API server.
        Live,
    }

    /// One object, without managedFields whichever way it was read.
    async fn read(
        state: &mut GuestState,
        kind: &types::GroupVersionKind,
        name: &str,
        from: Read,
    ) -> Result<Option<String>, client::ClientError> {
        let gvk = gvk(kind);
        state
            .with_client(async |client| match from {
                Read::Cached => client.get_cached(&gvk, name).await,
                Read::Live => client
                    .get(&gvk, name)
                    .await?
                    .map(|json| strip_managed_fields(&json))
                    .transpose(),
            })
            .await
            .map_err(client_error)
    }

    impl client::Host for GuestState {
        async fn get(
            &mut self,
            kind: types::GroupVersionKind,
            name: String,
        ) -> wasmtime::Result<Result<Option<String>, client::ClientError>> {
            Ok(read(self, &kind, &name, Read::Cached).await)
        }

        async fn get_live(
            &mut self,
            kind: types::GroupVersionKind,
            name: String,
        ) -> wasmtime::Result<Result<Option<String>, client::ClientError>> {
            Ok(read(self, &kind, &name, Read::Live).await)
        }

        async fn list(
            &mut self,
            kind: types::GroupVersionKind,
            selector: Option<types::LabelSelector>,
        ) -> wasmtime::Result<Result<Vec<String>, client::ClientError>> {
            let gvk = gvk(&kind);
            let selector = match selector.map(crate::plugin::selector_of_v0_2).transpose() {
                Ok(selector) => selector,
                Err(why) => {
                    return Ok(Err(client::ClientError::Invalid(format!(
                        "label selector: {why}"
                    ))));
                }
            };
            let result = self
                .with_client(async |client| client.list(&gvk, selector.as_ref()).await)
                .await;
            Ok(result.map_err(client_error))
        }

        async fn apply(
            &mut self,
            object: String,
        ) -> wasmtime::Result<Result<String, client::ClientError>> {
            let result = self
                .with_client(async |client| strip_managed_fields(&client.apply(&object).await?))
                .await;
            Ok(result.map_err(client_error))
        }

        async fn delete(
            &mut self,
            kind: types::GroupVersionKind,
            name: String,
            propagation: client::PropagationPolicy,
        ) -> wasmtime::Result<Result<bool, client::ClientError>> {
            let gvk = gvk(&kind);
            let propagation = match propagation {
                client::PropagationPolicy::Background => Propagation::Background,
                client::PropagationPolicy::Foreground => Propagation::Foreground,
                client::PropagationPolicy::Orphan => Propagation::Orphan,
            };
            let result = self
                .with_client(async |client| client.delete(&gvk, &name, propagation).await)
                .await;
            Ok(result.map_err(client_error))
        }

        async fn patch_status(
            &mut self,
            status: String,
        ) -> wasmtime::Result<Result<String, client::ClientError>> {
            let result = self
                .with_client(async |client| {
                    strip_managed_fields(&client.patch_status(&status).await?)
                })
                .await;
            Ok(result.map_err(client_error))
        }
    }
}
