//! Kubernetes kinds as group, version and kind.

use std::borrow::Cow;
use std::fmt;

/// A Kubernetes kind: group, version and kind, like apimachinery's `GroupVersionKind`.
///
/// The core group is the empty string: `Gvk::new("", "v1", "ConfigMap")`. Kinds a plugin
/// uses often can be constants:
///
/// ```
/// use wasm_reconciler_sdk::Gvk;
///
/// const DEPLOYMENT: Gvk = Gvk::from_static("apps", "v1", "Deployment");
/// assert_eq!(DEPLOYMENT.api_version(), "apps/v1");
/// assert_eq!(Gvk::new("", "v1", "ConfigMap").api_version(), "v1");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Gvk {
    group: Cow<'static, str>,
    version: Cow<'static, str>,
    kind: Cow<'static, str>,
}

impl Gvk {
    /// A kind from its group (empty for the core group), version and kind.
    pub fn new(
        group: impl Into<Cow<'static, str>>,
        version: impl Into<Cow<'static, str>>,
        kind: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
        }
    }

    /// The same as [`Gvk::new`], usable in a `const`.
    pub const fn from_static(
        group: &'static str,
        version: &'static str,
        kind: &'static str,
    ) -> Self {
        Self {
            group: Cow::Borrowed(group),
            version: Cow::Borrowed(version),
            kind: Cow::Borrowed(kind),
        }
    }

    /// A kind from an object's `apiVersion` (`"apps/v1"`, or `"v1"` for the core group) and
    /// `kind`.
    ///
    /// ```
    /// use wasm_reconciler_sdk::Gvk;
    ///
    /// assert_eq!(Gvk::from_api_version("apps/v1", "Deployment"), Gvk::new("apps", "v1", "Deployment"));
    /// assert_eq!(Gvk::from_api_version("v1", "Pod"), Gvk::new("", "v1", "Pod"));
    /// ```
    pub fn from_api_version(api_version: &str, kind: &str) -> Self {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        Self::new(group.to_owned(), version.to_owned(), kind.to_owned())
    }

    /// The group; empty for the core group.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// The version, e.g. `v1`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The kind, e.g. `Deployment`.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The `apiVersion` an object of this kind carries: `group/version`, or `version` alone
    /// for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

/// Formats like apimachinery: `apps/v1, Kind=Deployment`.
impl fmt::Display for Gvk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}, Kind={}", self.api_version(), self.kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_version_round_trips_for_named_and_core_groups() {
        for gvk in [
            Gvk::new("apps", "v1", "Deployment"),
            Gvk::new("", "v1", "Secret"),
        ] {
            assert_eq!(Gvk::from_api_version(&gvk.api_version(), gvk.kind()), gvk);
        }
    }

    #[test]
    fn static_and_owned_kinds_are_equal() {
        assert_eq!(
            Gvk::from_static("apps", "v1", "Deployment"),
            Gvk::new("apps".to_owned(), "v1", "Deployment")
        );
    }

    #[test]
    fn display_matches_apimachinery() {
        assert_eq!(
            Gvk::new("apps", "v1", "Deployment").to_string(),
            "apps/v1, Kind=Deployment"
        );
        assert_eq!(Gvk::new("", "v1", "Pod").to_string(), "v1, Kind=Pod");
    }
}
