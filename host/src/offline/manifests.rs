//! The objects `reconcile` is given with `-f`: YAML (or JSON) files of one or more documents,
//! with `List`s flattened, each object checked for what the offline API needs to store it.

use std::path::{Path, PathBuf};

use kube::api::GroupVersionKind;
use serde::Deserialize as _;
use serde_json::Value;

use crate::kinds::gvk_of;

/// The file name that means standard input.
pub(crate) const STDIN: &str = "-";

/// One object from the files, in the order the files give them.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Manifest {
    /// Where it comes from, for messages: `demo.yaml, document 2`.
    pub(crate) source: String,
    pub(crate) gvk: GroupVersionKind,
    pub(crate) name: String,
    /// The whole object, a JSON object.
    pub(crate) object: Value,
}

impl Manifest {
    /// `apiVersion Kind name`, as messages name it.
    pub(crate) fn describe(&self) -> String {
        format!("{} {} {}", self.gvk.api_version(), self.gvk.kind, self.name)
    }
}

/// Why the files could not be read as objects.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// A file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A document is not YAML.
    #[error("{file}: document {document} is not valid YAML")]
    Yaml {
        /// The file.
        file: String,
        /// Which document, from 1.
        document: usize,
        /// The parser's error, with the line and column.
        #[source]
        source: serde_norway::Error,
    },
    /// A document is YAML but not a Kubernetes object.
    #[error("{at}: {reason}")]
    Object {
        /// File, document and list item.
        at: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The files hold no object at all.
    #[error("the files hold no object (empty, or only comments)")]
    Empty,
}

/// Reads every file (`-` is standard input) and returns its objects, files in order.
pub(crate) async fn read_all(files: &[PathBuf]) -> Result<Vec<Manifest>, ManifestError> {
    let mut manifests = Vec::new();
    for path in files {
        let text = read(path).await.map_err(|source| ManifestError::Read {
            path: path.clone(),
            source,
        })?;
        let name = if path == Path::new(STDIN) {
            "<stdin>".to_owned()
        } else {
            path.display().to_string()
        };
        manifests.extend(parse(&text, &name)?);
    }
    if manifests.is_empty() {
        return Err(ManifestError::Empty);
    }
    Ok(manifests)
}

async fn read(path: &Path) -> std::io::Result<String> {
    if path == Path::new(STDIN) {
        let mut text = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut tokio::io::stdin(), &mut text).await?;
        Ok(text)
    } else {
        tokio::fs::read_to_string(path).await
    }
}

/// The objects in `text`, a stream of YAML documents; `file` names it in messages. Empty
/// documents are skipped; a `List` gives its items.
pub(crate) fn parse(text: &str, file: &str) -> Result<Vec<Manifest>, ManifestError> {
    let mut manifests = Vec::new();
    for (index, document) in serde_norway::Deserializer::from_str(text).enumerate() {
        let number = index + 1;
        let value = Value::deserialize(document).map_err(|source| ManifestError::Yaml {
            file: file.to_owned(),
            document: number,
            source,
        })?;
        let at = format!("{file}, document {number}");
        match value {
            Value::Null => {}
            Value::Object(ref map) if is_list(map) => {
                let Some(Value::Array(items)) = map.get("items") else {
                    return Err(ManifestError::Object {
                        at,
                        reason: "a List needs an `items` array".into(),
                    });
                };
                for (item, object) in items.iter().enumerate() {
                    manifests.push(manifest(
                        object.clone(),
                        format!("{at}, item {}", item + 1),
                    )?);
                }
            }
            object => manifests.push(manifest(object, at)?),
        }
    }
    Ok(manifests)
}

/// `kind: List` or `kind: SomethingList` as `kubectl get -o yaml` writes them.
fn is_list(map: &serde_json::Map<String, Value>) -> bool {
    map.get("kind")
        .and_then(Value::as_str)
        .is_some_and(|kind| kind == "List" || (kind.ends_with("List") && map.contains_key("items")))
}

fn manifest(object: Value, at: String) -> Result<Manifest, ManifestError> {
    let invalid = |reason: &str| ManifestError::Object {
        at: at.clone(),
        reason: reason.to_owned(),
    };
    if !object.is_object() {
        return Err(invalid(
            "not a Kubernetes object (a mapping with apiVersion and kind)",
        ));
    }
    let text = |field: &str| {
        object
            .get(field)
            .and_then(Value::as_str)
            .filter(|value| !value.is_empty())
    };
    let api_version = text("apiVersion").ok_or_else(|| invalid("apiVersion is missing"))?;
    let kind = text("kind").ok_or_else(|| invalid("kind is missing"))?;
    let metadata = &object["metadata"];
    if !metadata.is_object() {
        return Err(invalid("metadata is missing"));
    }
    let name = match &metadata["name"] {
        Value::String(name) if !name.is_empty() => name.clone(),
        _ if metadata.get("generateName").is_some() => {
            return Err(invalid(
                "metadata.name is missing: generateName is not supported offline, give a name",
            ));
        }
        _ => return Err(invalid("metadata.name is missing")),
    };
    if !matches!(metadata.get("namespace"), None | Some(Value::String(_))) {
        return Err(invalid("metadata.namespace must be a string"));
    }
    Ok(Manifest {
        source: at,
        gvk: gvk_of(api_version, kind),
        name,
        object,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_read_in_order_and_empty_ones_skipped() {
        // A comment before the first `---` is not a document of its own; `---` then `---`
        // makes an empty one.
        let text = "\
# a comment only
---
apiVersion: v1
kind: ConfigMap
metadata: {name: first}
---
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: second
  namespace: team-a
";
        let manifests = parse(text, "objects.yaml").expect("valid");
        let names: Vec<(String, &str, &str)> = manifests
            .iter()
            .map(|m| (m.describe(), m.source.as_str(), m.gvk.group.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                (
                    "v1 ConfigMap first".to_owned(),
                    "objects.yaml, document 1",
                    ""
                ),
                (
                    "apps/v1 Deployment second".to_owned(),
                    "objects.yaml, document 3",
                    "apps"
                ),
            ]
        );
    }

    #[test]
    fn a_list_gives_its_items() {
        let text = r#"{"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "a"}},
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "b"}}]}"#;
        let manifests = parse(text, "list.json").expect("valid");
        assert_eq!(manifests.len(), 2);
        assert_eq!(manifests[1].source, "list.json, document 1, item 2");
        assert_eq!(manifests[1].name, "b");
    }

    #[test]
    fn malformed_yaml_names_the_file_and_document() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\nkind: [unclosed\n";
        let error = parse(text, "bad.yaml").expect_err("malformed");
        assert!(
            matches!(&error, ManifestError::Yaml { document: 2, .. }),
            "{error:?}"
        );
        let shown = crate::manager::error_chain(&error);
        assert!(
            shown.starts_with("bad.yaml: document 2 is not valid YAML: "),
            "{shown}"
        );
        assert!(shown.contains("line"), "the parser says where: {shown}");
    }

    #[test]
    fn what_is_not_an_object_is_refused_with_the_reason() {
        let cases = [
            ("- a\n- b\n", "not a Kubernetes object"),
            (
                "kind: ConfigMap\nmetadata: {name: a}\n",
                "apiVersion is missing",
            ),
            ("apiVersion: v1\nmetadata: {name: a}\n", "kind is missing"),
            ("apiVersion: v1\nkind: ConfigMap\n", "metadata is missing"),
            (
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {namespace: x}\n",
                "metadata.name is missing",
            ),
            (
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {generateName: x-}\n",
                "generateName is not supported",
            ),
            (
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: 3}\n",
                "metadata.namespace must be a string",
            ),
            (
                "apiVersion: v1\nkind: List\n",
                "a List needs an `items` array",
            ),
        ];
        for (text, reason) in cases {
            let error = parse(text, "f.yaml").expect_err(text);
            let shown = error.to_string();
            assert!(
                shown.starts_with("f.yaml, document 1") && shown.contains(reason),
                "{text:?}: {shown}"
            );
        }
    }
}
