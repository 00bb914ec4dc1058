//! Checks an event before anything is queued: the rules the API server and client-go apply,
//! turned into errors the plugin sees instead of silent drops.

use std::collections::BTreeMap;

/// Longest reason the API accepts.
pub(crate) const MAX_REASON_LEN: usize = 128;
/// Longest message (`note`) kept, in bytes, as client-go's events recorder truncates it.
pub(crate) const MAX_MESSAGE_BYTES: usize = 1024;
/// Suffix that marks a truncated message.
const TRUNCATED_SUFFIX: &str = " ...";
/// Largest total size of all annotations on one object (keys plus values).
const MAX_ANNOTATIONS_BYTES: usize = 256 * 1024;

/// Why an event was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum InvalidEvent {
    /// The reason is not 1-128 characters of UpperCamelCase.
    #[error("invalid reason {0:?}: must be 1-128 characters matching ^[A-Z][A-Za-z0-9]*$")]
    Reason(String),
    /// An annotation key or value is not valid as a Kubernetes annotation.
    #[error("invalid annotation: {0}")]
    Annotation(String),
}

/// Accepts `^[A-Z][A-Za-z0-9]*$` of 1 to 128 characters.
pub(crate) fn validate_reason(reason: &str) -> Result<(), InvalidEvent> {
    let mut chars = reason.chars();
    let starts_upper = chars.next().is_some_and(|c| c.is_ascii_uppercase());
    let rest_alphanumeric = chars.all(|c| c.is_ascii_alphanumeric());
    if starts_upper && rest_alphanumeric && reason.len() <= MAX_REASON_LEN {
        Ok(())
    } else {
        // Keep only the start of what was sent: the reason may be megabytes long.
        let mut shown: String = reason.chars().take(MAX_REASON_LEN).collect();
        if shown.len() < reason.len() {
            shown.push_str("...");
        }
        Err(InvalidEvent::Reason(shown))
    }
}

/// Cuts a message longer than [`MAX_MESSAGE_BYTES`] on a character boundary, ending it with
/// `" ..."` so that the result is at most [`MAX_MESSAGE_BYTES`] bytes.
pub(crate) fn truncate_message(mut message: String) -> String {
    if message.len() <= MAX_MESSAGE_BYTES {
        return message;
    }
    let mut end = MAX_MESSAGE_BYTES - TRUNCATED_SUFFIX.len();
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    message.truncate(end);
    message.push_str(TRUNCATED_SUFFIX);
    message
}

/// Checks annotation keys as Kubernetes does (an optional DNS-subdomain prefix and `/`, then a
/// name of at most 63 characters), rejects duplicate keys, and bounds their total size.
pub(crate) fn validate_annotations(
    annotations: Vec<(String, String)>,
) -> Result<BTreeMap<String, String>, InvalidEvent> {
    let mut total = 0usize;
    let mut checked = BTreeMap::new();
    for (key, value) in annotations {
        validate_annotation_key(&key)?;
        total = total.saturating_add(key.len()).saturating_add(value.len());
        if checked.insert(key.clone(), value).is_some() {
            return Err(InvalidEvent::Annotation(format!("duplicate key {key:?}")));
        }
    }
    if total > MAX_ANNOTATIONS_BYTES {
        return Err(InvalidEvent::Annotation(format!(
            "annotations total {total} bytes, more than {MAX_ANNOTATIONS_BYTES}"
        )));
    }
    Ok(checked)
}

fn validate_annotation_key(key: &str) -> Result<(), InvalidEvent> {
    let invalid = |why: &str| InvalidEvent::Annotation(format!("key {key:?}: {why}"));
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix
        && !is_dns1123_subdomain(prefix)
    {
        return Err(invalid(
            "prefix must be a DNS subdomain of at most 253 characters",
        ));
    }
    if !is_qualified_name_part(name) {
        return Err(invalid(
            "name must be 1-63 characters, alphanumeric at both ends, with '-', '_' or '.' between",
        ));
    }
    Ok(())
}

/// `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`, at most 63 characters: the name part of a
/// qualified name (annotation and label keys, finalizers), and a non-empty label value.
pub(crate) fn is_qualified_name_part(name: &str) -> bool {
    let bytes = name.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            bytes.len() <= 63
                && first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// Lowercase DNS labels joined by dots, at most 253 characters.
pub(crate) fn is_dns1123_subdomain(value: &str) -> bool {
    value.len() <= 253 && value.split('.').all(is_dns1123_label)
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters.
pub(crate) fn is_dns1123_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            bytes.len() <= 63
                && (first.is_ascii_lowercase() || first.is_ascii_digit())
                && (last.is_ascii_lowercase() || last.is_ascii_digit())
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_camel_case_reasons_are_accepted() {
        for reason in ["Created", "InvalidSpec", "A", "Backoff2"] {
            assert_eq!(validate_reason(reason), Ok(()), "{reason}");
        }
    }

    #[test]
    fn other_reasons_are_refused() {
        let too_long = format!("A{}", "b".repeat(MAX_REASON_LEN));
        for reason in [
            "",
            "created",
            "Invalid Spec",
            "Invalid-Spec",
            "Ünicode",
            &too_long,
        ] {
            assert!(validate_reason(reason).is_err(), "{reason:?} was accepted");
        }
        assert_eq!(
            validate_reason(&too_long[..MAX_REASON_LEN]),
            Ok(()),
            "128 characters are allowed"
        );
    }

    #[test]
    fn short_messages_are_kept_whole() {
        let message = "x".repeat(MAX_MESSAGE_BYTES);
        assert_eq!(truncate_message(message.clone()), message);
    }

    #[test]
    fn long_messages_are_cut_on_a_char_boundary_with_a_marker() {
        // 'é' is two bytes: a cut at an odd byte offset would split it.
        let message = "é".repeat(MAX_MESSAGE_BYTES);
        let cut = truncate_message(message);
        assert!(cut.len() <= MAX_MESSAGE_BYTES);
        assert!(cut.ends_with(" ..."));
        assert!(cut.trim_end_matches(" ...").chars().all(|c| c == 'é'));
    }

    #[test]
    fn annotation_keys_follow_kubernetes_rules() {
        let ok = vec![
            ("example.com/trace-id".to_owned(), "abc".to_owned()),
            ("simple".to_owned(), String::new()),
        ];
        assert_eq!(validate_annotations(ok).map(|a| a.len()), Ok(2));
        for key in [
            "",
            "/x",
            "Example.com/x",
            "a/b/c",
            "-x",
            "x-",
            &"k".repeat(64),
        ] {
            let bad = vec![(key.to_owned(), "v".to_owned())];
            assert!(validate_annotations(bad).is_err(), "{key:?} was accepted");
        }
    }

    #[test]
    fn duplicate_and_oversized_annotations_are_refused() {
        let dup = vec![
            ("a".to_owned(), "1".to_owned()),
            ("a".to_owned(), "2".to_owned()),
        ];
        assert!(validate_annotations(dup).is_err());
        let big = vec![("a".to_owned(), "v".repeat(MAX_ANNOTATIONS_BYTES))];
        assert!(validate_annotations(big).is_err());
    }
}
