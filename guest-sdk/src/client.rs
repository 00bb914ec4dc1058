//! The Kubernetes client a plugin gets: scoped to its declared kinds and its object's namespace.

use std::fmt;
use std::rc::Rc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{Gvk, LabelSelector};

/// Why a client call failed.
///
/// The first four variants come from the host; [`ClientError::Decode`] is the SDK's own,
/// when a typed call cannot turn the host's JSON into the type asked for. See
/// [`Error`](crate::Error) for how each converts with `?`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The plugin did not declare this kind (or may not use this verb on it) in its
    /// metadata, the object is outside the reconciled object's namespace, or (for
    /// [`delete`](Client::delete)) the reconciled object does not control it.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The JSON, name or selector given was not valid for this call.
    #[error("invalid: {0}")]
    Invalid(String),
    /// The API server refused the request, e.g. a conflict (409) or a failed validation
    /// (422); or the host did, with 429, because this reconcile made all the API calls one
    /// reconcile may make.
    #[error("API server refused the request ({code}): {message}")]
    Api {
        /// The HTTP status code.
        code: u16,
        /// The API server's message.
        message: String,
    },
    /// The API server could not be reached; retrying later may help.
    #[error("API server unavailable: {0}")]
    Unavailable(String),
    /// The host's answer did not fit the type asked for.
    #[error("cannot decode the object returned by the host: {0}")]
    Decode(String),
}

impl ClientError {
    /// Whether the API server answered 409 Conflict.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Api { code: 409, .. })
    }
}

/// What happens to the dependents of a deleted object (`propagationPolicy`), for
/// [`Client::delete`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Propagation {
    /// The object goes at once; the garbage collector deletes its dependents after.
    #[default]
    Background,
    /// The object stays, with a `foregroundDeletion` finalizer, until its dependents that
    /// block owner deletion are gone.
    Foreground,
    /// The dependents are kept, their owner references to the object removed.
    Orphan,
}

/// The calls behind a [`Client`]: the host's `client` import in a plugin, a
/// [`FakeClient`](crate::testkit::FakeClient) in tests. Objects cross as JSON text.
///
/// `get_live`, `list` and `delete` came with contract 0.2.0 and have defaults, so an
/// implementation written for 0.1.0 still compiles: `get_live` calls `get`, and `list` and
/// `delete` refuse with [`ClientError::Forbidden`]. Implement them to serve those calls.
pub trait ObjectClient {
    /// Reads one object of a declared kind in the reconciled object's namespace, from the
    /// host's cache; `None` if it does not exist.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    fn get(&self, kind: &Gvk, name: &str) -> Result<Option<String>, ClientError>;

    /// As [`get`](ObjectClient::get), from the API server rather than the cache.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    fn get_live(&self, kind: &Gvk, name: &str) -> Result<Option<String>, ClientError> {
        self.get(kind, name)
    }

    /// Lists the objects of a declared kind in the reconciled object's namespace that match
    /// `selector` (all, for `None`), sorted by namespace and name.
    ///
    /// # Errors
    ///
    /// See [`ClientError`]. The default refuses with [`ClientError::Forbidden`].
    fn list(
        &self,
        kind: &Gvk,
        selector: Option<&LabelSelector>,
    ) -> Result<Vec<String>, ClientError> {
        let _ = selector;
        Err(ClientError::Forbidden(format!(
            "this client does not implement list (of {kind})"
        )))
    }

    /// Deletes an object of an owned kind that the reconciled object controls; `false` if
    /// it did not exist.
    ///
    /// # Errors
    ///
    /// See [`ClientError`]. The default refuses with [`ClientError::Forbidden`].
    fn delete(
        &self,
        kind: &Gvk,
        name: &str,
        propagation: Propagation,
    ) -> Result<bool, ClientError> {
        let _ = propagation;
        Err(ClientError::Forbidden(format!(
            "this client does not implement delete (of {kind} {name})"
        )))
    }

    /// Creates or updates an object of an owned kind by server-side apply; returns the
    /// object as stored.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    fn apply(&self, object: &str) -> Result<String, ClientError>;

    /// Merges `status` (a JSON object) into the reconciled object's status as a JSON merge
    /// patch; returns the object as stored.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    fn patch_status(&self, status: &str) -> Result<String, ClientError>;
}

/// A Kubernetes client scoped to what the plugin declared in its
/// [`Metadata`](crate::Metadata) and to the reconciled object's namespace.
///
/// Reads ([`get`](Client::get), [`list`](Client::list)) are served from the host's caches:
/// one watch per kind, shared by every plugin that declares the kind. A cache can lag a write
/// by the time the watch takes to deliver it, so a `get` right after an `apply` may still
/// return the old object; [`get_live`](Client::get_live) reads from the API server where that
/// matters. Writes ([`apply`](Client::apply), [`delete`](Client::delete),
/// [`patch_status`](Client::patch_status)) go to the API server, through the host's checks.
///
/// Each call has a typed form (any `Serialize`/`DeserializeOwned` type: your own structs,
/// `serde_json::Value`, `k8s-openapi` types) and a `_raw` form on JSON text.
///
/// ```
/// # use serde_json::{json, Value};
/// # use wasm_reconciler_sdk::{Context, Error, Gvk};
/// # fn reconcile(ctx: &Context) -> Result<(), Error> {
/// const CONFIG_MAP: Gvk = Gvk::from_static("", "v1", "ConfigMap");
///
/// let client = ctx.client();
/// if client.get::<Value>(&CONFIG_MAP, "settings")?.is_none() {
///     client.apply(&json!({
///         "apiVersion": "v1",
///         "kind": "ConfigMap",
///         "metadata": {"name": "settings"},
///         "data": {"mode": "fast"},
///     }))?;
/// }
/// client.patch_status(&json!({"ready": true}))?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Rc<dyn ObjectClient>,
}

impl Client {
    /// A client that makes its calls through `inner`.
    pub fn new(inner: Rc<dyn ObjectClient>) -> Self {
        Self { inner }
    }

    /// Reads the object `name` of kind `kind` as a `T`; `None` if it does not exist.
    ///
    /// `kind` must be the reconciled kind or one the plugin owns, reads or watches. The
    /// object is in the reconciled object's namespace (the namespace is ignored for
    /// cluster-scoped kinds).
    ///
    /// The read is served from the host's cache, which may lag the plugin's own writes: an
    /// object just applied or deleted may still read as it was. Use
    /// [`get_live`](Client::get_live) when the next step depends on seeing that write.
    ///
    /// # Errors
    ///
    /// [`ClientError::Forbidden`] for an undeclared kind, [`ClientError::Invalid`] for a name
    /// that is not a plain object name, [`ClientError::Decode`] if the object does not fit
    /// `T`, and what the API server says.
    pub fn get<T: DeserializeOwned>(
        &self,
        kind: &Gvk,
        name: &str,
    ) -> Result<Option<T>, ClientError> {
        self.get_raw(kind, name)?
            .map(|json| decode(&json))
            .transpose()
    }

    /// Reads an object as JSON text; `None` if it does not exist.
    ///
    /// # Errors
    ///
    /// As for [`Client::get`], without decoding.
    pub fn get_raw(&self, kind: &Gvk, name: &str) -> Result<Option<String>, ClientError> {
        self.inner.get(kind, name)
    }

    /// As [`get`](Client::get), from the API server rather than the host's cache: for the
    /// rare read that must see a write the cache may not have yet. It counts against the
    /// reconcile's API calls.
    ///
    /// # Errors
    ///
    /// As for [`Client::get`].
    pub fn get_live<T: DeserializeOwned>(
        &self,
        kind: &Gvk,
        name: &str,
    ) -> Result<Option<T>, ClientError> {
        self.get_live_raw(kind, name)?
            .map(|json| decode(&json))
            .transpose()
    }

    /// Reads an object from the API server as JSON text; `None` if it does not exist.
    ///
    /// # Errors
    ///
    /// As for [`Client::get`], without decoding.
    pub fn get_live_raw(&self, kind: &Gvk, name: &str) -> Result<Option<String>, ClientError> {
        self.inner.get_live(kind, name)
    }

    /// Lists the objects of kind `kind` in the reconciled object's namespace (every object,
    /// for a cluster-scoped kind) whose labels match `selector` (all of them for `None`),
    /// sorted by namespace and name, from the host's cache (see [`get`](Client::get)).
    ///
    /// `kind` must be the reconciled kind or one the plugin owns, reads or watches, like
    /// controller-runtime's `List` with `client.MatchingLabels`:
    ///
    /// ```
    /// # use serde_json::Value;
    /// # use wasm_reconciler_sdk::{Context, Error, Gvk, LabelSelector};
    /// # fn reconcile(ctx: &Context) -> Result<(), Error> {
    /// const CONFIG_MAP: Gvk = Gvk::from_static("", "v1", "ConfigMap");
    ///
    /// let selector = LabelSelector::new().match_label("app.kubernetes.io/part-of", "shop");
    /// let parts: Vec<Value> = ctx.client().list(&CONFIG_MAP, Some(&selector))?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`ClientError::Forbidden`] for an undeclared kind, [`ClientError::Invalid`] for a
    /// selector the host refuses (see [`LabelSelector::validate`]), [`ClientError::Decode`]
    /// if an object does not fit `T`, and what the API server says.
    pub fn list<T: DeserializeOwned>(
        &self,
        kind: &Gvk,
        selector: Option<&LabelSelector>,
    ) -> Result<Vec<T>, ClientError> {
        self.list_raw(kind, selector)?
            .iter()
            .map(|json| decode(json))
            .collect()
    }

    /// Lists objects as JSON text.
    ///
    /// # Errors
    ///
    /// As for [`Client::list`], without decoding.
    pub fn list_raw(
        &self,
        kind: &Gvk,
        selector: Option<&LabelSelector>,
    ) -> Result<Vec<String>, ClientError> {
        self.inner.list(kind, selector)
    }

    /// Deletes the object `name` of an owned kind, with a precondition on its uid; returns
    /// `false` if it did not exist (like controller-runtime's `Delete` with
    /// `client.IgnoreNotFound`).
    ///
    /// The host deletes only objects that the reconciled object controls: their
    /// `metadata.ownerReferences` has a reference with `controller: true` to it, as every
    /// object the plugin [applied](Client::apply) has. `propagation` says what happens to the
    /// deleted object's own dependents; [`Propagation::default()`] is `Background`.
    ///
    /// # Errors
    ///
    /// [`ClientError::Forbidden`] for a kind the plugin does not own or an object the
    /// reconciled object does not control, [`ClientError::Invalid`] for a name that is not
    /// a plain object name, and what the API server says.
    pub fn delete(
        &self,
        kind: &Gvk,
        name: &str,
        propagation: Propagation,
    ) -> Result<bool, ClientError> {
        self.inner.delete(kind, name, propagation)
    }

    /// Creates or updates `object` by server-side apply, with the plugin's name as field
    /// manager, and returns it as stored.
    ///
    /// Send what you want to be true: `apiVersion`, `kind`, `metadata.name`, and the fields
    /// you manage. The host sets `metadata.namespace` to the reconciled object's and adds a
    /// controller owner reference to it, so garbage collection deletes the object with its
    /// owner. The kind must be one the plugin [owns](crate::Metadata::owns).
    ///
    /// # Errors
    ///
    /// [`ClientError::Forbidden`] for a kind the plugin does not own,
    /// [`ClientError::Invalid`] if `object` does not serialize to a JSON object or its name
    /// is not a plain object name, and what the API server says.
    pub fn apply<T: Serialize + ?Sized>(&self, object: &T) -> Result<Value, ClientError> {
        let stored = self.apply_raw(&encode(object)?)?;
        decode(&stored)
    }

    /// Applies an object given as JSON text; returns it as stored, as JSON text.
    ///
    /// # Errors
    ///
    /// As for [`Client::apply`].
    pub fn apply_raw(&self, object: &str) -> Result<String, ClientError> {
        self.inner.apply(object)
    }

    /// Merges `status` into the reconciled object's status subresource as a JSON merge
    /// patch (RFC 7386): fields given replace, fields set to `null` are removed, fields not
    /// given are kept. Returns the object as stored.
    ///
    /// # Errors
    ///
    /// [`ClientError::Invalid`] if `status` does not serialize to a JSON object, and what
    /// the API server says.
    pub fn patch_status<T: Serialize + ?Sized>(&self, status: &T) -> Result<Value, ClientError> {
        let stored = self.patch_status_raw(&encode(status)?)?;
        decode(&stored)
    }

    /// Merges a status given as JSON text; returns the object as stored, as JSON text.
    ///
    /// # Errors
    ///
    /// As for [`Client::patch_status`].
    pub fn patch_status_raw(&self, status: &str) -> Result<String, ClientError> {
        self.inner.patch_status(status)
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client").finish_non_exhaustive()
    }
}

fn encode<T: Serialize + ?Sized>(value: &T) -> Result<String, ClientError> {
    serde_json::to_string(value).map_err(|e| ClientError::Invalid(format!("cannot serialize: {e}")))
}

fn decode<T: DeserializeOwned>(json: &str) -> Result<T, ClientError> {
    serde_json::from_str(json).map_err(|e| ClientError::Decode(e.to_string()))
}
