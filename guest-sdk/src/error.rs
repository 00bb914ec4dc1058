//! Why a reconcile failed, and whether retrying can help.

use std::fmt;

use crate::{ClientError, EventError};

/// Why a reconcile failed: a message, and whether retrying can help.
///
/// - [`Error::transient`]: something that may pass on its own (a conflict, an unavailable
///   API server). The host retries the object with per-object exponential backoff.
/// - [`Error::terminal`]: retrying cannot help until the object changes (an invalid spec).
///   The host waits for the next change to the object or one of its owned objects.
///
/// Errors from the SDK convert with `?`:
///
/// | from                                   | kind      | why                               |
/// |----------------------------------------|-----------|-----------------------------------|
/// | [`ClientError::Unavailable`]           | transient | the API server may come back      |
/// | [`ClientError::Api`]                   | transient | conflicts and throttling pass     |
/// | [`ClientError::Forbidden`]             | terminal  | the metadata will not change      |
/// | [`ClientError::Invalid`]/[`Decode`](ClientError::Decode) | terminal | the same input fails again |
/// | [`EventError`]                         | terminal  | a bad reason is a bug in the plugin |
/// | [`serde_json::Error`]                  | terminal  | the same JSON fails again         |
///
/// ```
/// use wasm_reconciler_sdk::{ClientError, Error, ErrorKind};
///
/// let error = Error::from(ClientError::Unavailable("connection refused".into()));
/// assert_eq!(error.kind(), ErrorKind::Transient);
/// assert!(Error::terminal("spec.image is empty").is_terminal());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

/// Whether retrying a failed reconcile can help; see [`Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Retry with backoff.
    Transient,
    /// Do not retry until the object changes.
    Terminal,
}

impl Error {
    /// A failure that may pass on its own: the host retries with backoff.
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Transient,
            message: message.into(),
        }
    }

    /// A failure that retrying cannot fix: the host waits for the object to change.
    pub fn terminal(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Terminal,
            message: message.into(),
        }
    }

    /// Whether this error is transient or terminal.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Whether the host will retry with backoff.
    pub fn is_transient(&self) -> bool {
        self.kind == ErrorKind::Transient
    }

    /// Whether the host will wait for the object to change.
    pub fn is_terminal(&self) -> bool {
        self.kind == ErrorKind::Terminal
    }

    /// The message, as the host logs and reports it.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Prefixes the message with what was being done, keeping the kind:
    /// `"get deployment demo: API server unavailable: ..."`.
    #[must_use]
    pub fn context(self, context: impl fmt::Display) -> Self {
        Self {
            kind: self.kind,
            message: format!("{context}: {}", self.message),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Transient => "transient",
            Self::Terminal => "terminal",
        })
    }
}

/// Adds what was being done to the error of a `Result`, converting it into an [`Error`]
/// (like anyhow's `Context`).
///
/// ```
/// use wasm_reconciler_sdk::{ClientError, Error, ResultExt};
///
/// let result: Result<(), ClientError> = Err(ClientError::Unavailable("timed out".into()));
/// let error = result.context("get deployment demo").unwrap_err();
/// assert_eq!(error.message(), "get deployment demo: API server unavailable: timed out");
/// assert!(error.is_transient());
/// ```
pub trait ResultExt<T> {
    /// Converts the error into an [`Error`] and prefixes its message with `context`.
    ///
    /// # Errors
    ///
    /// The converted error, if `self` is an error.
    fn context(self, context: impl fmt::Display) -> Result<T, Error>;

    /// As [`ResultExt::context`], building the context only on error.
    ///
    /// # Errors
    ///
    /// The converted error, if `self` is an error.
    fn with_context<C: fmt::Display>(self, context: impl FnOnce() -> C) -> Result<T, Error>;
}

impl<T, E: Into<Error>> ResultExt<T> for Result<T, E> {
    fn context(self, context: impl fmt::Display) -> Result<T, Error> {
        self.map_err(|error| error.into().context(context))
    }

    fn with_context<C: fmt::Display>(self, context: impl FnOnce() -> C) -> Result<T, Error> {
        self.map_err(|error| error.into().context(context()))
    }
}

impl From<ClientError> for Error {
    fn from(error: ClientError) -> Self {
        let message = error.to_string();
        match error {
            ClientError::Unavailable(_) | ClientError::Api { .. } => Self::transient(message),
            ClientError::Forbidden(_) | ClientError::Invalid(_) | ClientError::Decode(_) => {
                Self::terminal(message)
            }
        }
    }
}

impl From<EventError> for Error {
    fn from(error: EventError) -> Self {
        Self::terminal(error.to_string())
    }
}

impl From<serde_json::Error> for Error {
    fn from(error: serde_json::Error) -> Self {
        Self::terminal(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_errors_map_to_the_documented_kinds() {
        let kind = |e: ClientError| Error::from(e).kind();
        assert_eq!(
            kind(ClientError::Unavailable("down".into())),
            ErrorKind::Transient
        );
        assert_eq!(
            kind(ClientError::Api {
                code: 409,
                message: "conflict".into()
            }),
            ErrorKind::Transient
        );
        assert_eq!(
            kind(ClientError::Forbidden("no".into())),
            ErrorKind::Terminal
        );
        assert_eq!(
            kind(ClientError::Invalid("bad".into())),
            ErrorKind::Terminal
        );
        assert_eq!(kind(ClientError::Decode("bad".into())), ErrorKind::Terminal);
    }

    #[test]
    fn context_prefixes_the_message_and_keeps_the_kind() {
        let error = Error::transient("timed out").context("get deployment demo");
        assert_eq!(error.message(), "get deployment demo: timed out");
        assert!(error.is_transient());
    }
}
