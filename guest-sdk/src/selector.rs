//! Kubernetes label selectors: which objects a plugin reconciles, and which a `list` returns.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::names::{is_label_value, validate_qualified_name};

/// A Kubernetes label selector (`metav1.LabelSelector`): an object matches when it has every
/// label of the match labels and meets every requirement of the match expressions. An empty
/// selector matches every object.
///
/// Build one with [`LabelSelector::new`] and its methods; it displays in the syntax of
/// `kubectl get -l`, and (de)serializes as the Kubernetes JSON form (`matchLabels`,
/// `matchExpressions`):
///
/// ```
/// use std::collections::BTreeMap;
/// use wasm_reconciler_sdk::{LabelSelector, Operator};
///
/// let selector = LabelSelector::new()
///     .match_label("app", "web")
///     .key_in("tier", ["frontend", "edge"])
///     .does_not_exist("legacy")
///     .expression("env", Operator::NotIn, ["dev"]);
/// assert_eq!(selector.to_string(), "app=web,env notin (dev),!legacy,tier in (edge,frontend)");
/// assert!(selector.validate().is_ok());
///
/// let labels = BTreeMap::from([
///     ("app".to_owned(), "web".to_owned()),
///     ("tier".to_owned(), "edge".to_owned()),
/// ]);
/// assert!(selector.matches(&labels));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LabelSelector {
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    match_labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    match_expressions: Vec<Requirement>,
}

/// One requirement of a [`LabelSelector`] (an entry of `matchExpressions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requirement {
    key: String,
    operator: Operator,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    values: Vec<String>,
}

/// How a [`Requirement`] compares a label's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Operator {
    /// The label is present with one of the values (`key in (a,b)`).
    In,
    /// The label is absent, or present with none of the values (`key notin (a,b)`).
    NotIn,
    /// The label is present, with any value (`key`); takes no values.
    Exists,
    /// The label is absent (`!key`); takes no values.
    DoesNotExist,
}

/// Why [`LabelSelector::validate`] refused a selector: what the host refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// A key is not a qualified name (`[prefix/]name`).
    #[error("label key {key:?} is not a qualified name: {problem}")]
    InvalidKey {
        /// The key.
        key: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A value is not a label value (empty, or at most 63 of `[A-Za-z0-9_.-]`,
    /// alphanumeric at both ends).
    #[error(
        "value {value:?} for label {key:?} is not a label value (empty, or at most 63 of A-Z, a-z, 0-9, '-', '_' and '.', alphanumeric at both ends)"
    )]
    InvalidValue {
        /// The key the value is for.
        key: String,
        /// The value.
        value: String,
    },
    /// An `In` or `NotIn` requirement has no values.
    #[error("requirement {operator} on label {key:?} needs at least one value")]
    MissingValues {
        /// The key.
        key: String,
        /// `In` or `NotIn`.
        operator: Operator,
    },
    /// An `Exists` or `DoesNotExist` requirement has values.
    #[error("requirement {operator} on label {key:?} takes no values")]
    UnexpectedValues {
        /// The key.
        key: String,
        /// `Exists` or `DoesNotExist`.
        operator: Operator,
    },
}

impl LabelSelector {
    /// An empty selector, which matches every object.
    pub fn new() -> Self {
        Self::default()
    }

    /// Requires the label `key` with the value `value` (`matchLabels`). A second value for
    /// the same key replaces the first.
    #[must_use]
    pub fn match_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.match_labels.insert(key.into(), value.into());
        self
    }

    /// Adds a requirement (`matchExpressions`). `In` and `NotIn` need at least one value;
    /// `Exists` and `DoesNotExist` take none (see [`LabelSelector::validate`]).
    #[must_use]
    pub fn expression<I, V>(mut self, key: impl Into<String>, operator: Operator, values: I) -> Self
    where
        I: IntoIterator<Item = V>,
        V: Into<String>,
    {
        self.match_expressions.push(Requirement {
            key: key.into(),
            operator,
            values: values.into_iter().map(Into::into).collect(),
        });
        self
    }

    /// Requires the label `key` with one of `values` (`key in (..)`).
    #[must_use]
    pub fn key_in<I, V>(self, key: impl Into<String>, values: I) -> Self
    where
        I: IntoIterator<Item = V>,
        V: Into<String>,
    {
        self.expression(key, Operator::In, values)
    }

    /// Requires the label `key` to be absent or to have none of `values` (`key notin (..)`).
    #[must_use]
    pub fn key_not_in<I, V>(self, key: impl Into<String>, values: I) -> Self
    where
        I: IntoIterator<Item = V>,
        V: Into<String>,
    {
        self.expression(key, Operator::NotIn, values)
    }

    /// Requires the label `key`, with any value (`key`).
    #[must_use]
    pub fn exists(self, key: impl Into<String>) -> Self {
        self.expression(key, Operator::Exists, std::iter::empty::<String>())
    }

    /// Requires the label `key` to be absent (`!key`).
    #[must_use]
    pub fn does_not_exist(self, key: impl Into<String>) -> Self {
        self.expression(key, Operator::DoesNotExist, std::iter::empty::<String>())
    }

    /// The required labels and their values.
    pub fn match_labels(&self) -> &BTreeMap<String, String> {
        &self.match_labels
    }

    /// The requirements, in the order added.
    pub fn match_expressions(&self) -> &[Requirement] {
        &self.match_expressions
    }

    /// Whether the selector is empty, and so matches every object.
    pub fn is_empty(&self) -> bool {
        self.match_labels.is_empty() && self.match_expressions.is_empty()
    }

    /// Whether an object with these labels matches.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(key, value)| labels.get(key) == Some(value))
            && self
                .match_expressions
                .iter()
                .all(|requirement| requirement.matches(labels))
    }

    /// Checks the selector as the host does: keys are qualified names, values are label
    /// values, `In` and `NotIn` have values and `Exists` and `DoesNotExist` none.
    ///
    /// ```
    /// use wasm_reconciler_sdk::{LabelSelector, SelectorError};
    ///
    /// assert!(LabelSelector::new().match_label("app.kubernetes.io/name", "web").validate().is_ok());
    /// assert!(matches!(
    ///     LabelSelector::new().key_in("tier", Vec::<String>::new()).validate(),
    ///     Err(SelectorError::MissingValues { .. })
    /// ));
    /// ```
    ///
    /// # Errors
    ///
    /// The first problem found, as a [`SelectorError`].
    pub fn validate(&self) -> Result<(), SelectorError> {
        for (key, value) in &self.match_labels {
            validate_key(key)?;
            validate_value(key, value)?;
        }
        for requirement in &self.match_expressions {
            requirement.validate()?;
        }
        Ok(())
    }
}

impl Requirement {
    /// The label key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// How the label is compared.
    pub fn operator(&self) -> Operator {
        self.operator
    }

    /// The values compared with; empty for `Exists` and `DoesNotExist`.
    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// Whether an object with these labels meets this requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        match self.operator {
            Operator::In => value.is_some_and(|v| self.values.contains(v)),
            Operator::NotIn => value.is_none_or(|v| !self.values.contains(v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
        }
    }

    fn validate(&self) -> Result<(), SelectorError> {
        validate_key(&self.key)?;
        let key = || self.key.clone();
        match self.operator {
            Operator::In | Operator::NotIn if self.values.is_empty() => {
                return Err(SelectorError::MissingValues {
                    key: key(),
                    operator: self.operator,
                });
            }
            Operator::Exists | Operator::DoesNotExist if !self.values.is_empty() => {
                return Err(SelectorError::UnexpectedValues {
                    key: key(),
                    operator: self.operator,
                });
            }
            _ => {}
        }
        for value in &self.values {
            validate_value(&self.key, value)?;
        }
        Ok(())
    }

    /// Writes the requirement in selector syntax, values sorted.
    fn write(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut values: Vec<&str> = self.values.iter().map(String::as_str).collect();
        values.sort_unstable();
        let values = values.join(",");
        match self.operator {
            Operator::In => write!(f, "{} in ({values})", self.key),
            Operator::NotIn => write!(f, "{} notin ({values})", self.key),
            Operator::Exists => f.write_str(&self.key),
            Operator::DoesNotExist => write!(f, "!{}", self.key),
        }
    }
}

/// The selector syntax of `kubectl get -l` and `labelSelector=`, as apimachinery writes it:
/// requirements sorted by key (match labels as `key=value`), joined by commas; `In` and
/// `NotIn` values sorted. An empty selector is the empty string.
impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        enum Part<'a> {
            Label(&'a str, &'a str),
            Expression(&'a Requirement),
        }
        let mut parts: Vec<(&str, Part<'_>)> = self
            .match_labels
            .iter()
            .map(|(key, value)| (key.as_str(), Part::Label(key, value)))
            .chain(
                self.match_expressions
                    .iter()
                    .map(|requirement| (requirement.key.as_str(), Part::Expression(requirement))),
            )
            .collect();
        parts.sort_by_key(|(key, _)| *key);
        for (index, (_, part)) in parts.iter().enumerate() {
            if index > 0 {
                f.write_str(",")?;
            }
            match part {
                Part::Label(key, value) => write!(f, "{key}={value}")?,
                Part::Expression(requirement) => requirement.write(f)?,
            }
        }
        Ok(())
    }
}

/// The Kubernetes spelling: `In`, `NotIn`, `Exists`, `DoesNotExist`.
impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::In => "In",
            Self::NotIn => "NotIn",
            Self::Exists => "Exists",
            Self::DoesNotExist => "DoesNotExist",
        })
    }
}

fn validate_key(key: &str) -> Result<(), SelectorError> {
    validate_qualified_name(key, false).map_err(|problem| SelectorError::InvalidKey {
        key: key.to_owned(),
        problem,
    })
}

fn validate_value(key: &str, value: &str) -> Result<(), SelectorError> {
    if is_label_value(value) {
        Ok(())
    } else {
        Err(SelectorError::InvalidValue {
            key: key.to_owned(),
            value: value.to_owned(),
        })
    }
}

/// An object's `metadata.labels`, leaving out any value that is not a string.
pub(crate) fn labels_of(object: &Value) -> BTreeMap<String, String> {
    object
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|labels| {
            labels
                .iter()
                .filter_map(|(key, value)| Some((key.clone(), value.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn empty_selector_matches_everything_and_displays_empty() {
        let selector = LabelSelector::new();
        assert!(selector.is_empty());
        assert!(selector.matches(&labels(&[])));
        assert!(selector.matches(&labels(&[("a", "b")])));
        assert_eq!(selector.to_string(), "");
    }

    #[test]
    fn each_operator_matches_like_kubernetes() {
        let present = labels(&[("tier", "web")]);
        let other = labels(&[("tier", "db")]);
        let absent = labels(&[]);
        let cases = [
            (
                LabelSelector::new().match_label("tier", "web"),
                [true, false, false],
            ),
            (
                LabelSelector::new().key_in("tier", ["web", "edge"]),
                [true, false, false],
            ),
            (
                LabelSelector::new().key_not_in("tier", ["web"]),
                [false, true, true],
            ),
            (LabelSelector::new().exists("tier"), [true, true, false]),
            (
                LabelSelector::new().does_not_exist("tier"),
                [false, false, true],
            ),
        ];
        for (selector, expected) in cases {
            let got = [
                selector.matches(&present),
                selector.matches(&other),
                selector.matches(&absent),
            ];
            assert_eq!(got, expected, "{selector}");
        }
    }

    #[test]
    fn every_part_must_match() {
        let selector = LabelSelector::new()
            .match_label("a", "b")
            .exists("c")
            .does_not_exist("d");
        assert!(selector.matches(&labels(&[("a", "b"), ("c", "")])));
        assert!(!selector.matches(&labels(&[("a", "b")])));
        assert!(!selector.matches(&labels(&[("a", "b"), ("c", "x"), ("d", "y")])));
    }

    #[test]
    fn display_uses_kubernetes_selector_syntax() {
        let selector = LabelSelector::new()
            .does_not_exist("d")
            .key_in("c", ["y", "x"])
            .match_label("a", "b");
        assert_eq!(selector.to_string(), "a=b,c in (x,y),!d");
        assert_eq!(
            LabelSelector::new()
                .exists("e")
                .key_not_in("f", ["z"])
                .to_string(),
            "e,f notin (z)"
        );
    }

    #[test]
    fn validate_refuses_what_the_host_refuses() {
        let long = "v".repeat(64);
        let refused = [
            LabelSelector::new().match_label("bad key", "v"),
            LabelSelector::new().match_label("Example.com/a", "v"),
            LabelSelector::new().match_label("a", "-v"),
            LabelSelector::new().match_label("a", long.as_str()),
            LabelSelector::new().key_in("a", Vec::<String>::new()),
            LabelSelector::new().key_not_in("a", Vec::<String>::new()),
            LabelSelector::new().expression("a", Operator::Exists, ["x"]),
            LabelSelector::new().expression("a", Operator::DoesNotExist, ["x"]),
            LabelSelector::new().key_in("a", ["ok", "not ok"]),
        ];
        for selector in refused {
            assert!(selector.validate().is_err(), "{selector:?}");
        }
        let accepted = LabelSelector::new()
            .match_label("app.kubernetes.io/name", "")
            .key_in("a", ["x"])
            .exists("example.com/b");
        assert_eq!(accepted.validate(), Ok(()));
    }

    #[test]
    fn serializes_as_the_kubernetes_json_form() {
        let selector = LabelSelector::new()
            .match_label("a", "b")
            .key_in("c", ["x"])
            .exists("d");
        let json = serde_json::to_value(&selector).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "matchLabels": {"a": "b"},
                "matchExpressions": [
                    {"key": "c", "operator": "In", "values": ["x"]},
                    {"key": "d", "operator": "Exists"},
                ],
            })
        );
        assert_eq!(
            serde_json::from_value::<LabelSelector>(json).unwrap(),
            selector
        );
    }

    #[test]
    fn labels_of_ignores_values_that_are_not_strings() {
        let object = serde_json::json!({"metadata": {"labels": {"a": "b", "n": 1}}});
        assert_eq!(labels_of(&object), labels(&[("a", "b")]));
        assert!(labels_of(&serde_json::json!({})).is_empty());
    }
}
