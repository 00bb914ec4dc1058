//! The kinds a plugin declared in its metadata, resolved against the API server.

use kube::api::{ApiResource, GroupVersionKind};
use kube::discovery::{self, Scope};

/// A declared kind, with what discovery says about it.
#[derive(Debug, Clone)]
pub(crate) struct ResolvedKind {
    pub(crate) gvk: GroupVersionKind,
    pub(crate) resource: ApiResource,
    pub(crate) namespaced: bool,
}

/// Every kind one plugin may touch, and how.
#[derive(Debug, Clone)]
pub(crate) struct DeclaredKinds {
    /// The reconciled kind: readable, and its status patchable.
    pub(crate) reconciles: ResolvedKind,
    /// Owned kinds: readable and appliable.
    pub(crate) owns: Vec<ResolvedKind>,
    /// Read-only kinds.
    pub(crate) reads: Vec<ResolvedKind>,
    /// Watched kinds (read-only), in the order of the plugin's watches.
    pub(crate) watches: Vec<ResolvedKind>,
}

impl DeclaredKinds {
    /// Resolves every declared kind by API discovery.
    ///
    /// # Errors
    ///
    /// Fails on the first kind the API server does not serve, naming it.
    pub(crate) async fn resolve(
        client: &kube::Client,
        metadata: &crate::plugin::Metadata,
    ) -> Result<Self, ResolveError> {
        let reconciles = resolve_one(client, &metadata.reconciles).await?;
        let owns = resolve_all(client, &metadata.owns).await?;
        let reads = resolve_all(client, &metadata.reads).await?;
        let watched: Vec<GroupVersionKind> = metadata
            .watches
            .iter()
            .map(|watch| watch.kind.clone())
            .collect();
        let watches = resolve_all(client, &watched).await?;
        Ok(Self {
            reconciles,
            owns,
            reads,
            watches,
        })
    }

    /// The kind if the plugin may read it: the reconciled kind, an owned, read or watched
    /// kind.
    pub(crate) fn readable(&self, gvk: &GroupVersionKind) -> Option<&ResolvedKind> {
        self.all().find(|kind| &kind.gvk == gvk)
    }

    /// Every declared kind, the reconciled one first; a kind declared twice comes twice.
    pub(crate) fn all(&self) -> impl Iterator<Item = &ResolvedKind> {
        std::iter::once(&self.reconciles)
            .chain(&self.owns)
            .chain(&self.reads)
            .chain(&self.watches)
    }

    /// The kind if the plugin owns it, and so may apply it.
    pub(crate) fn owned(&self, gvk: &GroupVersionKind) -> Option<&ResolvedKind> {
        self.owns.iter().find(|kind| &kind.gvk == gvk)
    }
}

/// A declared kind could not be resolved.
#[derive(Debug, thiserror::Error)]
#[error("could not resolve kind {group}/{version}/{kind} through API discovery")]
pub(crate) struct ResolveError {
    group: String,
    version: String,
    kind: String,
    #[source]
    source: kube::Error,
}

async fn resolve_all(
    client: &kube::Client,
    kinds: &[GroupVersionKind],
) -> Result<Vec<ResolvedKind>, ResolveError> {
    let mut resolved = Vec::with_capacity(kinds.len());
    for gvk in kinds {
        resolved.push(resolve_one(client, gvk).await?);
    }
    Ok(resolved)
}

async fn resolve_one(
    client: &kube::Client,
    gvk: &GroupVersionKind,
) -> Result<ResolvedKind, ResolveError> {
    let (resource, capabilities) = discovery::pinned_kind(client, gvk)
        .await
        .map_err(|source| ResolveError {
            group: gvk.group.clone(),
            version: gvk.version.clone(),
            kind: gvk.kind.clone(),
            source,
        })?;
    Ok(ResolvedKind {
        gvk: gvk.clone(),
        resource,
        namespaced: capabilities.scope == Scope::Namespaced,
    })
}

/// Parses an `apiVersion` (`group/version`, or `version` for the core group) and a kind.
pub(crate) fn gvk_of(api_version: &str, kind: &str) -> GroupVersionKind {
    match api_version.split_once('/') {
        Some((group, version)) => GroupVersionKind::gvk(group, version, kind),
        None => GroupVersionKind::gvk("", api_version, kind),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_group_api_version_has_an_empty_group() {
        let gvk = gvk_of("v1", "ConfigMap");
        assert_eq!((gvk.group.as_str(), gvk.version.as_str()), ("", "v1"));
    }

    #[test]
    fn grouped_api_version_splits_on_the_slash() {
        let gvk = gvk_of("apps/v1", "Deployment");
        assert_eq!((gvk.group.as_str(), gvk.version.as_str()), ("apps", "v1"));
        assert_eq!(gvk.kind, "Deployment");
    }
}
