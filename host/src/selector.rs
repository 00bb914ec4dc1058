//! Kubernetes label selectors and the names they are made of: checked as the API server checks
//! them, matched against labels, and written in the selector syntax of a `labelSelector`
//! query parameter.

use std::collections::BTreeMap;
use std::fmt;

use crate::recorder::{is_dns1123_subdomain, is_qualified_name_part};

/// How a requirement compares a label's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operator {
    /// Present, with one of the values.
    In,
    /// Absent, or present with none of the values.
    NotIn,
    /// Present, with any value.
    Exists,
    /// Absent.
    DoesNotExist,
}

/// One requirement: `key`, `operator`, `values`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Requirement {
    key: String,
    operator: Operator,
    values: Vec<String>,
}

/// A label selector whose every key and value the API server would accept; matches when
/// every requirement holds. Empty, it matches everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct LabelSelector {
    requirements: Vec<Requirement>,
}

impl LabelSelector {
    /// The selector of `match_labels` (each an `In` of one value) and `expressions`, checked.
    ///
    /// # Errors
    ///
    /// Says which key or value the API server would refuse, or which operator has the wrong
    /// number of values.
    pub(crate) fn new(
        match_labels: Vec<(String, String)>,
        expressions: Vec<(String, Operator, Vec<String>)>,
    ) -> Result<Self, String> {
        let mut requirements = Vec::with_capacity(match_labels.len() + expressions.len());
        for (key, value) in match_labels {
            requirements.push((key, Operator::In, vec![value]));
        }
        requirements.extend(expressions);
        let requirements = requirements
            .into_iter()
            .map(|(key, operator, mut values)| {
                check_qualified_name(&key).map_err(|why| format!("label key {key:?}: {why}"))?;
                match operator {
                    Operator::In | Operator::NotIn if values.is_empty() => {
                        return Err(format!("label key {key:?}: in and notin need values"));
                    }
                    Operator::Exists | Operator::DoesNotExist if !values.is_empty() => {
                        return Err(format!(
                            "label key {key:?}: exists and doesNotExist take no values"
                        ));
                    }
                    _ => {}
                }
                for value in &values {
                    check_label_value(value)
                        .map_err(|why| format!("label value {value:?} of {key:?}: {why}"))?;
                }
                values.sort();
                values.dedup();
                Ok(Requirement {
                    key,
                    operator,
                    values,
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(Self { requirements })
    }

    /// Whether `labels` meets every requirement.
    pub(crate) fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|requirement| {
            let value = labels.get(&requirement.key);
            match requirement.operator {
                Operator::In => value.is_some_and(|v| requirement.values.contains(v)),
                Operator::NotIn => value.is_none_or(|v| !requirement.values.contains(v)),
                Operator::Exists => value.is_some(),
                Operator::DoesNotExist => value.is_none(),
            }
        })
    }

    /// Whether the selector matches every object.
    pub(crate) fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }
}

/// The selector in the API server's syntax (`a=b,c in (x,y),!d`), as a `labelSelector`
/// query parameter takes it; requirements in the order given.
impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, requirement) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let key = &requirement.key;
            let values = requirement.values.join(",");
            match requirement.operator {
                Operator::In if requirement.values.len() == 1 => write!(f, "{key}={values}")?,
                Operator::In => write!(f, "{key} in ({values})")?,
                Operator::NotIn => write!(f, "{key} notin ({values})")?,
                Operator::Exists => write!(f, "{key}")?,
                Operator::DoesNotExist => write!(f, "!{key}")?,
            }
        }
        Ok(())
    }
}

/// Reads a selector in the API server's syntax, as [`LabelSelector`]'s `Display` writes it and
/// `kubectl -l` takes it: `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x,y)`, `a`, `!a`,
/// joined by commas.
impl std::str::FromStr for LabelSelector {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let mut match_labels = Vec::new();
        let mut expressions = Vec::new();
        for requirement in split_top_level(text) {
            let requirement = requirement.trim();
            if requirement.is_empty() {
                continue;
            }
            let set = |rest: &str| -> Result<Vec<String>, String> {
                let inner = rest
                    .trim()
                    .strip_prefix('(')
                    .and_then(|rest| rest.strip_suffix(')'))
                    .ok_or_else(|| format!("{requirement:?}: a set is written (a,b)"))?;
                Ok(inner.split(',').map(|v| v.trim().to_owned()).collect())
            };
            if let Some(key) = requirement.strip_prefix('!') {
                expressions.push((key.trim().to_owned(), Operator::DoesNotExist, Vec::new()));
            } else if let Some((key, value)) = requirement.split_once("!=") {
                expressions.push((
                    key.trim().to_owned(),
                    Operator::NotIn,
                    vec![value.trim().to_owned()],
                ));
            } else if let Some((key, value)) = requirement
                .split_once("==")
                .or_else(|| requirement.split_once('='))
            {
                match_labels.push((key.trim().to_owned(), value.trim().to_owned()));
            } else if let Some((key, rest)) = requirement.split_once(" notin ") {
                expressions.push((key.trim().to_owned(), Operator::NotIn, set(rest)?));
            } else if let Some((key, rest)) = requirement.split_once(" in ") {
                expressions.push((key.trim().to_owned(), Operator::In, set(rest)?));
            } else {
                expressions.push((requirement.to_owned(), Operator::Exists, Vec::new()));
            }
        }
        Self::new(match_labels, expressions)
    }
}

/// `text` split at the commas outside parentheses.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0_i32, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// A qualified name, as label keys, annotation keys and finalizers are: an optional prefix
/// (a DNS-1123 subdomain) and `/`, then a name of 1-63 characters, alphanumeric at both ends,
/// with `-`, `_` and `.` inside.
pub(crate) fn check_qualified_name(name: &str) -> Result<(), String> {
    let (prefix, local) = match name.split_once('/') {
        Some((prefix, local)) => (Some(prefix), local),
        None => (None, name),
    };
    if let Some(prefix) = prefix
        && !is_dns1123_subdomain(prefix)
    {
        return Err(format!(
            "prefix {prefix:?} must be a DNS-1123 subdomain (lowercase letters, digits, '-' and '.', at most 253 characters)"
        ));
    }
    if local.is_empty() || !is_label_value(local) {
        return Err(
            "the name must be 1-63 characters of letters, digits, '-', '_' and '.', starting and ending with a letter or digit"
                .into(),
        );
    }
    Ok(())
}

/// A label value: empty, or what [`check_qualified_name`] takes as a name.
pub(crate) fn check_label_value(value: &str) -> Result<(), String> {
    if is_label_value(value) {
        Ok(())
    } else {
        Err("a label value must be empty or 1-63 characters of letters, digits, '-', '_' and '.', starting and ending with a letter or digit".into())
    }
}

fn is_label_value(value: &str) -> bool {
    value.is_empty() || is_qualified_name_part(value)
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

    fn selector(
        match_labels: &[(&str, &str)],
        expressions: &[(&str, Operator, &[&str])],
    ) -> Result<LabelSelector, String> {
        LabelSelector::new(
            match_labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            expressions
                .iter()
                .map(|(k, op, values)| {
                    (
                        (*k).to_owned(),
                        *op,
                        values.iter().map(|v| (*v).to_owned()).collect(),
                    )
                })
                .collect(),
        )
    }

    #[test]
    fn every_operator_matches_as_the_api_server_does() {
        let s = selector(
            &[("mirror", "true")],
            &[
                ("tier", Operator::In, &["web", "api"]),
                ("env", Operator::NotIn, &["prod"]),
                ("team", Operator::Exists, &[]),
                ("legacy", Operator::DoesNotExist, &[]),
            ],
        )
        .expect("valid");
        let base = [("mirror", "true"), ("tier", "web"), ("team", "a")];
        assert!(s.matches(&labels(&base)));
        assert!(s.matches(&labels(&[
            ("mirror", "true"),
            ("tier", "api"),
            ("team", "a"),
            ("env", "dev")
        ])));
        assert!(!s.matches(&labels(&[("tier", "web"), ("team", "a")])));
        assert!(!s.matches(&labels(&[
            ("mirror", "true"),
            ("tier", "db"),
            ("team", "a")
        ])));
        assert!(!s.matches(&labels(&[
            ("mirror", "true"),
            ("tier", "web"),
            ("team", "a"),
            ("env", "prod")
        ])));
        assert!(!s.matches(&labels(&[("mirror", "true"), ("tier", "web")])));
        assert!(!s.matches(&labels(&[
            ("mirror", "true"),
            ("tier", "web"),
            ("team", "a"),
            ("legacy", "")
        ])));
        assert_eq!(
            s.to_string(),
            "mirror=true,tier in (api,web),env notin (prod),team,!legacy"
        );
        assert!(LabelSelector::default().matches(&labels(&[])));
    }

    #[test]
    fn the_api_servers_syntax_reads_back_what_display_writes() {
        let written = selector(
            &[("mirror", "true")],
            &[
                ("tier", Operator::In, &["web", "api"]),
                ("env", Operator::NotIn, &["prod", "qa"]),
                ("team", Operator::Exists, &[]),
                ("legacy", Operator::DoesNotExist, &[]),
            ],
        )
        .expect("valid");
        let read: LabelSelector = written.to_string().parse().expect("parses");
        assert_eq!(read, written);
        let read: LabelSelector = "a==b, c!=d".parse().expect("parses");
        assert!(read.matches(&labels(&[("a", "b")])));
        assert!(!read.matches(&labels(&[("a", "b"), ("c", "d")])));
        assert!("a in x".parse::<LabelSelector>().is_err());
        assert!("bad key!".parse::<LabelSelector>().is_err());
        assert!("".parse::<LabelSelector>().is_ok_and(|s| s.is_empty()));
    }

    #[test]
    fn keys_values_and_arity_are_checked() {
        assert!(selector(&[("example.com/app", "a-b_c.d")], &[]).is_ok());
        assert!(selector(&[("", "x")], &[]).is_err());
        assert!(selector(&[("Bad_Prefix/x", "x")], &[]).is_err());
        assert!(selector(&[("x", "-leading")], &[]).is_err());
        assert!(selector(&[("x", &"v".repeat(64))], &[]).is_err());
        assert!(selector(&[("x", "a,b")], &[]).is_err());
        assert!(selector(&[("a b", "x")], &[]).is_err());
        assert!(selector(&[], &[("x", Operator::In, &[])]).is_err());
        assert!(selector(&[], &[("x", Operator::Exists, &["v"])]).is_err());
        assert!(selector(&[("x", "")], &[]).is_ok());
    }

    #[test]
    fn qualified_names_need_a_valid_prefix_and_name() {
        assert!(check_qualified_name("example.com/cleanup").is_ok());
        assert!(check_qualified_name("cleanup").is_ok());
        assert!(check_qualified_name("example.com/").is_err());
        assert!(check_qualified_name("/cleanup").is_err());
        assert!(check_qualified_name("Example.com/cleanup").is_err());
        assert!(check_qualified_name("a/b/c").is_err());
    }
}
