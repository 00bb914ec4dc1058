//! What a plugin declares about itself: its name and the kinds it may touch.

use crate::Gvk;

/// What a plugin declares about itself, returned by [`Reconciler::metadata`].
///
/// The host reads it once, when it loads the plugin, and from then on refuses every client
/// call on a kind the plugin did not declare here. It is the controller-runtime builder's
/// `For(..).Owns(..)` written down as data:
///
/// | `Metadata`          | controller-runtime         | the plugin may                     |
/// |---------------------|----------------------------|------------------------------------|
/// | `new(name, kind)`   | `Named(name).For(kind)`    | get it, patch its status           |
/// | `.owns(kind)`       | `Owns(kind)`               | get and apply; changes requeue the owner |
/// | `.reads(kind)`      | a cached client read       | get                                |
///
/// ```
/// use wasm_reconciler_sdk::{Gvk, Metadata};
///
/// let metadata = Metadata::new("myresource", Gvk::new("mygroup.example.com", "v1alpha1", "MyResource"))
///     .owns(Gvk::new("apps", "v1", "Deployment"))
///     .reads(Gvk::new("", "v1", "ConfigMap"));
/// assert!(metadata.validate().is_ok());
/// ```
///
/// [`Reconciler::metadata`]: crate::Reconciler::metadata
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    name: String,
    reconciles: Gvk,
    owns: Vec<Gvk>,
    reads: Vec<Gvk>,
}

impl Metadata {
    /// A plugin called `name` that reconciles objects of kind `reconciles`.
    ///
    /// `name` must be a DNS-1123 label (see [`Metadata::validate`]): it names the
    /// controller, the server-side-apply field manager and the `reportingController` of
    /// every Event the plugin records.
    pub fn new(name: impl Into<String>, reconciles: Gvk) -> Self {
        Self {
            name: name.into(),
            reconciles,
            owns: Vec::new(),
            reads: Vec::new(),
        }
    }

    /// Declares a kind the plugin creates and owns, like controller-runtime's `Owns`.
    ///
    /// The plugin may get and apply objects of this kind; the host sets the controller
    /// owner reference on every apply, and a change to an owned object requeues its owner.
    #[must_use]
    pub fn owns(mut self, kind: Gvk) -> Self {
        self.owns.push(kind);
        self
    }

    /// Declares a kind the plugin may only read with [`Client::get`](crate::Client::get).
    #[must_use]
    pub fn reads(mut self, kind: Gvk) -> Self {
        self.reads.push(kind);
        self
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The kind the plugin reconciles.
    pub fn reconciled_kind(&self) -> &Gvk {
        &self.reconciles
    }

    /// The kinds the plugin owns.
    pub fn owned_kinds(&self) -> &[Gvk] {
        &self.owns
    }

    /// The kinds the plugin only reads.
    pub fn read_kinds(&self) -> &[Gvk] {
        &self.reads
    }

    /// Whether the plugin may `get` objects of `kind`: the reconciled kind, an owned kind
    /// or a read kind.
    pub fn may_get(&self, kind: &Gvk) -> bool {
        self.reconciles == *kind || self.may_apply(kind) || self.reads.contains(kind)
    }

    /// Whether the plugin may `apply` objects of `kind`: only owned kinds.
    pub fn may_apply(&self, kind: &Gvk) -> bool {
        self.owns.contains(kind)
    }

    /// Checks what the host checks when it loads the plugin.
    ///
    /// # Errors
    ///
    /// - [`MetadataError::InvalidName`] unless the name is a DNS-1123 label: 1-63
    ///   lowercase letters, digits and `-`, starting and ending with a letter or digit.
    /// - [`MetadataError::InvalidKind`] if a declared kind has an empty version or kind.
    pub fn validate(&self) -> Result<(), MetadataError> {
        if !is_dns1123_label(&self.name) {
            return Err(MetadataError::InvalidName(self.name.clone()));
        }
        let kinds = std::iter::once(&self.reconciles)
            .chain(&self.owns)
            .chain(&self.reads);
        for kind in kinds {
            if kind.version().is_empty() || kind.kind().is_empty() {
                return Err(MetadataError::InvalidKind(kind.clone()));
            }
        }
        Ok(())
    }
}

/// Why [`Metadata::validate`] refused a plugin's metadata.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// The plugin name is not a DNS-1123 label.
    #[error(
        "plugin name {0:?} is not a DNS-1123 label (1-63 of a-z, 0-9 and '-', alphanumeric at both ends)"
    )]
    InvalidName(String),
    /// A declared kind has an empty version or kind.
    #[error("declared kind {0} has an empty version or kind")]
    InvalidKind(Gvk),
}

/// `^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`, at most 63 characters.
pub(crate) fn is_dns1123_label(s: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = s.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(&first), Some(&last)) => {
            bytes.len() <= 63
                && alnum(first)
                && alnum(last)
                && bytes.iter().all(|&b| alnum(b) || b == b'-')
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind() -> Gvk {
        Gvk::new("mygroup.example.com", "v1alpha1", "MyResource")
    }

    #[test]
    fn dns1123_labels_are_checked_like_the_api_server() {
        for good in ["a", "myresource", "my-resource-2", "0", &"a".repeat(63)] {
            assert!(is_dns1123_label(good), "{good:?} should be a label");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "My",
            "my_resource",
            "my.resource",
            &"a".repeat(64),
        ] {
            assert!(!is_dns1123_label(bad), "{bad:?} should not be a label");
        }
    }

    #[test]
    fn permissions_follow_the_declarations() {
        let deployment = Gvk::new("apps", "v1", "Deployment");
        let config_map = Gvk::new("", "v1", "ConfigMap");
        let secret = Gvk::new("", "v1", "Secret");
        let metadata = Metadata::new("p", kind())
            .owns(deployment.clone())
            .reads(config_map.clone());

        assert!(metadata.may_get(&kind()) && !metadata.may_apply(&kind()));
        assert!(metadata.may_get(&deployment) && metadata.may_apply(&deployment));
        assert!(metadata.may_get(&config_map) && !metadata.may_apply(&config_map));
        assert!(!metadata.may_get(&secret) && !metadata.may_apply(&secret));
    }

    #[test]
    fn validate_rejects_bad_names_and_empty_kinds() {
        assert_eq!(
            Metadata::new("MyResource", kind()).validate(),
            Err(MetadataError::InvalidName("MyResource".into()))
        );
        let empty = Gvk::new("apps", "", "Deployment");
        assert_eq!(
            Metadata::new("ok", kind()).owns(empty.clone()).validate(),
            Err(MetadataError::InvalidKind(empty))
        );
        assert_eq!(Metadata::new("ok", kind()).validate(), Ok(()));
    }
}
