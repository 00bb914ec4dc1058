//! The kinds `reconcile` knows without API discovery: Kubernetes' built-in kinds, the CRDs
//! among the files, and, for any other kind, kube's plural convention with a namespaced scope.

use kube::api::{ApiResource, GroupVersionKind};
use serde_json::Value;

use super::manifests::Manifest;
use crate::kinds::{DeclaredKinds, ResolvedKind};
use crate::plugin::Metadata;

/// Built-in object kinds of Kubernetes (1.34) by group and kind: their plural and whether they
/// are namespaced. Scope does not change between versions, so any version of these resolves.
/// One kind a line, so that the table reads as one.
#[rustfmt::skip]
const BUILT_IN: &[(&str, &str, &str, bool)] = &[
    ("", "Binding", "bindings", true),
    ("", "ConfigMap", "configmaps", true),
    ("", "Endpoints", "endpoints", true),
    ("", "Event", "events", true),
    ("", "LimitRange", "limitranges", true),
    ("", "Namespace", "namespaces", false),
    ("", "Node", "nodes", false),
    ("", "PersistentVolume", "persistentvolumes", false),
    ("", "PersistentVolumeClaim", "persistentvolumeclaims", true),
    ("", "Pod", "pods", true),
    ("", "PodTemplate", "podtemplates", true),
    ("", "ReplicationController", "replicationcontrollers", true),
    ("", "ResourceQuota", "resourcequotas", true),
    ("", "Secret", "secrets", true),
    ("", "Service", "services", true),
    ("", "ServiceAccount", "serviceaccounts", true),
    ("admissionregistration.k8s.io", "MutatingAdmissionPolicy", "mutatingadmissionpolicies", false),
    ("admissionregistration.k8s.io", "MutatingAdmissionPolicyBinding", "mutatingadmissionpolicybindings", false),
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration", "mutatingwebhookconfigurations", false),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy", "validatingadmissionpolicies", false),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding", "validatingadmissionpolicybindings", false),
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration", "validatingwebhookconfigurations", false),
    ("apiextensions.k8s.io", "CustomResourceDefinition", "customresourcedefinitions", false),
    ("apiregistration.k8s.io", "APIService", "apiservices", false),
    ("apps", "ControllerRevision", "controllerrevisions", true),
    ("apps", "DaemonSet", "daemonsets", true),
    ("apps", "Deployment", "deployments", true),
    ("apps", "ReplicaSet", "replicasets", true),
    ("apps", "StatefulSet", "statefulsets", true),
    ("autoscaling", "HorizontalPodAutoscaler", "horizontalpodautoscalers", true),
    ("batch", "CronJob", "cronjobs", true),
    ("batch", "Job", "jobs", true),
    ("certificates.k8s.io", "CertificateSigningRequest", "certificatesigningrequests", false),
    ("coordination.k8s.io", "Lease", "leases", true),
    ("coordination.k8s.io", "LeaseCandidate", "leasecandidates", true),
    ("discovery.k8s.io", "EndpointSlice", "endpointslices", true),
    ("events.k8s.io", "Event", "events", true),
    ("flowcontrol.apiserver.k8s.io", "FlowSchema", "flowschemas", false),
    ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration", "prioritylevelconfigurations", false),
    ("networking.k8s.io", "IPAddress", "ipaddresses", false),
    ("networking.k8s.io", "Ingress", "ingresses", true),
    ("networking.k8s.io", "IngressClass", "ingressclasses", false),
    ("networking.k8s.io", "NetworkPolicy", "networkpolicies", true),
    ("networking.k8s.io", "ServiceCIDR", "servicecidrs", false),
    ("node.k8s.io", "RuntimeClass", "runtimeclasses", false),
    ("policy", "PodDisruptionBudget", "poddisruptionbudgets", true),
    ("rbac.authorization.k8s.io", "ClusterRole", "clusterroles", false),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding", "clusterrolebindings", false),
    ("rbac.authorization.k8s.io", "Role", "roles", true),
    ("rbac.authorization.k8s.io", "RoleBinding", "rolebindings", true),
    ("resource.k8s.io", "DeviceClass", "deviceclasses", false),
    ("resource.k8s.io", "ResourceClaim", "resourceclaims", true),
    ("resource.k8s.io", "ResourceClaimTemplate", "resourceclaimtemplates", true),
    ("resource.k8s.io", "ResourceSlice", "resourceslices", false),
    ("scheduling.k8s.io", "PriorityClass", "priorityclasses", false),
    ("storage.k8s.io", "CSIDriver", "csidrivers", false),
    ("storage.k8s.io", "CSINode", "csinodes", false),
    ("storage.k8s.io", "CSIStorageCapacity", "csistoragecapacities", true),
    ("storage.k8s.io", "StorageClass", "storageclasses", false),
    ("storage.k8s.io", "VolumeAttachment", "volumeattachments", false),
    ("storage.k8s.io", "VolumeAttributesClass", "volumeattributesclasses", false),
];

/// How a kind's plural and scope were found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Basis {
    /// A built-in Kubernetes kind.
    BuiltIn,
    /// A CustomResourceDefinition among the files.
    Crd,
    /// Neither: kube's plural convention, and namespaced.
    Assumed,
}

/// A kind a CRD among the files defines.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CrdKind {
    group: String,
    kind: String,
    plural: String,
    namespaced: bool,
    /// Versions the CRD serves.
    served: Vec<String>,
}

/// Why a kind cannot be resolved offline.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// A CRD among the files is not one the API server would accept.
    #[error("{at}: invalid CustomResourceDefinition: {reason}")]
    InvalidCrd {
        /// Where the CRD is.
        at: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A CRD among the files defines the kind but does not serve the version.
    #[error(
        "{group}/{version} {kind} is not served: the CustomResourceDefinition among the files serves {served}"
    )]
    VersionNotServed {
        /// The kind's group.
        group: String,
        /// The version asked for.
        version: String,
        /// The kind.
        kind: String,
        /// The versions the CRD serves.
        served: String,
    },
}

/// The kinds known offline.
#[derive(Debug, Clone, Default)]
pub(crate) struct Catalog {
    crds: Vec<CrdKind>,
}

impl Catalog {
    /// Takes in the CustomResourceDefinitions among `manifests`.
    pub(crate) fn from_manifests(manifests: &[Manifest]) -> Result<Self, CatalogError> {
        let crds = manifests
            .iter()
            .filter(|m| {
                m.gvk.group == "apiextensions.k8s.io" && m.gvk.kind == "CustomResourceDefinition"
            })
            .map(crd_kind)
            .collect::<Result<_, _>>()?;
        Ok(Self { crds })
    }

    /// The plural and scope of `gvk`, and how they were found.
    pub(crate) fn resolve(
        &self,
        gvk: &GroupVersionKind,
    ) -> Result<(ResolvedKind, Basis), CatalogError> {
        let resolved = |plural: &str, namespaced: bool| ResolvedKind {
            gvk: gvk.clone(),
            resource: ApiResource::from_gvk_with_plural(gvk, plural),
            namespaced,
        };
        if let Some(crd) = self
            .crds
            .iter()
            .find(|crd| crd.group == gvk.group && crd.kind == gvk.kind)
        {
            if !crd.served.contains(&gvk.version) {
                return Err(CatalogError::VersionNotServed {
                    group: gvk.group.clone(),
                    version: gvk.version.clone(),
                    kind: gvk.kind.clone(),
                    served: crd.served.join(", "),
                });
            }
            return Ok((resolved(&crd.plural, crd.namespaced), Basis::Crd));
        }
        if let Some(&(_, _, plural, namespaced)) = BUILT_IN
            .iter()
            .find(|(group, kind, _, _)| *group == gvk.group && *kind == gvk.kind)
        {
            return Ok((resolved(plural, namespaced), Basis::BuiltIn));
        }
        let plural = ApiResource::from_gvk(gvk).plural;
        Ok((resolved(&plural, true), Basis::Assumed))
    }

    /// Every kind `metadata` declares, resolved, with the ones whose plural and scope were
    /// assumed.
    pub(crate) fn declared(
        &self,
        metadata: &Metadata,
    ) -> Result<(DeclaredKinds, Vec<ResolvedKind>), CatalogError> {
        let mut assumed = Vec::new();
        let mut resolve = |gvk: &GroupVersionKind| {
            let (kind, basis) = self.resolve(gvk)?;
            if basis == Basis::Assumed {
                assumed.push(kind.clone());
            }
            Ok::<_, CatalogError>(kind)
        };
        let reconciles = resolve(&metadata.reconciles)?;
        let owns = metadata
            .owns
            .iter()
            .map(&mut resolve)
            .collect::<Result<_, _>>()?;
        let reads = metadata
            .reads
            .iter()
            .map(&mut resolve)
            .collect::<Result<_, _>>()?;
        let watches = metadata
            .watches
            .iter()
            .map(|watch| resolve(&watch.kind))
            .collect::<Result<_, _>>()?;
        Ok((
            DeclaredKinds {
                reconciles,
                owns,
                reads,
                watches,
            },
            assumed,
        ))
    }
}

/// The kind a CRD defines, checked for the fields that matter here.
fn crd_kind(manifest: &Manifest) -> Result<CrdKind, CatalogError> {
    let spec = &manifest.object["spec"];
    let invalid = |reason: &str| CatalogError::InvalidCrd {
        at: manifest.source.clone(),
        reason: reason.to_owned(),
    };
    let text = |value: &Value, what: &str| {
        value
            .as_str()
            .filter(|text| !text.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| invalid(&format!("{what} is missing")))
    };
    let namespaced = match spec["scope"].as_str() {
        Some("Namespaced") => true,
        Some("Cluster") => false,
        _ => return Err(invalid("spec.scope must be Namespaced or Cluster")),
    };
    let served: Vec<String> = spec["versions"]
        .as_array()
        .map(|versions| {
            versions
                .iter()
                .filter(|version| version["served"].as_bool() != Some(false))
                .filter_map(|version| version["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if served.is_empty() {
        return Err(invalid("spec.versions serves no version"));
    }
    Ok(CrdKind {
        group: text(&spec["group"], "spec.group")?,
        kind: text(&spec["names"]["kind"], "spec.names.kind")?,
        plural: text(&spec["names"]["plural"], "spec.names.plural")?,
        namespaced,
        served,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::offline::manifests::parse;

    const CRD: &str = "
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: geese.birds.example.com}
spec:
  group: birds.example.com
  names: {kind: Goose, plural: geese}
  scope: Cluster
  versions:
    - {name: v1, served: true, storage: true}
    - {name: v1beta1, served: false, storage: false}
";

    fn catalog(text: &str) -> Catalog {
        Catalog::from_manifests(&parse(text, "crd.yaml").expect("valid YAML")).expect("valid CRD")
    }

    #[test]
    fn built_in_kinds_have_their_scope_in_any_version() {
        let catalog = Catalog::default();
        let (namespace, basis) = catalog
            .resolve(&GroupVersionKind::gvk("", "v1", "Namespace"))
            .expect("resolves");
        assert_eq!(basis, Basis::BuiltIn);
        assert!(!namespace.namespaced);
        assert_eq!(namespace.resource.plural, "namespaces");
        let (ingress, _) = catalog
            .resolve(&GroupVersionKind::gvk(
                "networking.k8s.io",
                "v1beta1",
                "Ingress",
            ))
            .expect("resolves");
        assert!(ingress.namespaced);
        assert_eq!(ingress.resource.plural, "ingresses");
        assert_eq!(ingress.resource.api_version, "networking.k8s.io/v1beta1");
    }

    #[test]
    fn a_crd_among_the_files_gives_plural_and_scope_for_the_versions_it_serves() {
        let catalog = catalog(CRD);
        let (goose, basis) = catalog
            .resolve(&GroupVersionKind::gvk("birds.example.com", "v1", "Goose"))
            .expect("served");
        assert_eq!(basis, Basis::Crd);
        assert_eq!(goose.resource.plural, "geese");
        assert!(!goose.namespaced);
        let error = catalog
            .resolve(&GroupVersionKind::gvk(
                "birds.example.com",
                "v1beta1",
                "Goose",
            ))
            .expect_err("not served");
        assert_eq!(
            error.to_string(),
            "birds.example.com/v1beta1 Goose is not served: the CustomResourceDefinition among the files serves v1"
        );
    }

    #[test]
    fn any_other_kind_is_assumed_namespaced_with_the_conventional_plural() {
        let (kind, basis) = Catalog::default()
            .resolve(&GroupVersionKind::gvk(
                "mygroup.example.com",
                "v1alpha1",
                "MyResource",
            ))
            .expect("resolves");
        assert_eq!(basis, Basis::Assumed);
        assert!(kind.namespaced);
        assert_eq!(kind.resource.plural, "myresources");
    }

    #[test]
    fn an_incomplete_crd_is_refused() {
        let text = CRD.replace("scope: Cluster", "scope: Galaxy");
        let error = Catalog::from_manifests(&parse(&text, "crd.yaml").expect("valid YAML"))
            .expect_err("invalid scope");
        assert_eq!(
            error.to_string(),
            "crd.yaml, document 1: invalid CustomResourceDefinition: spec.scope must be Namespaced or Cluster"
        );
    }
}
