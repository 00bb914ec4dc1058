//! Which reconciled objects the host requeues for a change to an owned or watched object.

use std::collections::BTreeSet;

use serde_json::Value;

use super::client::{ObjectKey, owner_references};
use crate::names::validate_object_name;
use crate::selector::labels_of;
use crate::{Gvk, Metadata, WatchMapping};

/// The reconciled objects the host requeues for a change to `object` of kind `kind`, by the
/// host's rules; `reconciled` are the stored objects of the reconciled kind (for
/// [`WatchMapping::SameNamespace`]). Sorted and without duplicates.
pub(crate) fn requests_for(
    metadata: &Metadata,
    kind: &Gvk,
    object: &Value,
    reconciled: &[Value],
) -> Vec<ObjectKey> {
    let namespace = namespace_of(object);
    if !metadata.in_namespaces(namespace.as_deref()) {
        // The host does not watch outside the plugin's namespaces.
        return Vec::new();
    }
    let reconciled_kind = metadata.reconciled_kind();
    let key = |name: &str| ObjectKey {
        namespace: namespace.clone(),
        name: name.to_owned(),
    };
    let mut keys = BTreeSet::new();
    if metadata.owned_kinds().contains(kind) {
        keys.extend(
            owners_of_kind(object, reconciled_kind)
                .filter(|reference| reference["controller"] == true)
                .filter_map(|reference| reference["name"].as_str())
                .map(key),
        );
    }
    for watch in metadata
        .watched()
        .iter()
        .filter(|watch| watch.kind() == kind)
    {
        match watch.mapping() {
            WatchMapping::OwnerReferences => keys.extend(
                owners_of_kind(object, reconciled_kind)
                    .filter_map(|reference| reference["name"].as_str())
                    .map(key),
            ),
            WatchMapping::Label(label) => {
                if let Some(name) = labels_of(object).get(label)
                    && validate_object_name(name).is_ok()
                {
                    keys.insert(key(name));
                }
            }
            WatchMapping::SameNamespace => keys.extend(
                reconciled
                    .iter()
                    .filter(|candidate| {
                        let candidate_namespace = namespace_of(candidate);
                        (namespace.is_none() || candidate_namespace == namespace)
                            && metadata
                                .in_scope(&labels_of(candidate), candidate_namespace.as_deref())
                    })
                    .filter_map(|candidate| {
                        Some(ObjectKey {
                            namespace: namespace_of(candidate),
                            name: candidate.pointer("/metadata/name")?.as_str()?.to_owned(),
                        })
                    }),
            ),
        }
    }
    keys.into_iter().collect()
}

/// The owner references of `object` to objects of `kind`'s group and kind, whatever their
/// version.
fn owners_of_kind<'a>(object: &'a Value, kind: &'a Gvk) -> impl Iterator<Item = &'a Value> {
    owner_references(object).filter(move |reference| {
        let api_version = reference["apiVersion"].as_str().unwrap_or_default();
        let reference_kind = reference["kind"].as_str().unwrap_or_default();
        let owner = Gvk::from_api_version(api_version, reference_kind);
        owner.group() == kind.group() && owner.kind() == kind.kind()
    })
}

fn namespace_of(object: &Value) -> Option<String> {
    object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .map(str::to_owned)
}
