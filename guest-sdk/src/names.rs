//! The Kubernetes name rules the host checks: DNS labels and subdomains, qualified names, label values, object names.

/// Longest object name the host passes to the API server (a DNS-1123 subdomain).
pub(crate) const MAX_OBJECT_NAME_LEN: usize = 253;

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

/// DNS-1123 labels joined by dots, at most 253 characters.
pub(crate) fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns1123_label)
}

/// The name part of a qualified name: `^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`, 1-63
/// characters. Label values have the same shape, and may also be empty.
fn is_qualified_name_part(name: &str) -> bool {
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

/// Checks a qualified name (a label or annotation key): `[prefix/]name`, the prefix a DNS-1123
/// subdomain, the name 1-63 characters of `[A-Za-z0-9_.-]`, alphanumeric at both ends.
///
/// With `prefix_required`, a name without a prefix is refused too (finalizer names).
pub(crate) fn validate_qualified_name(key: &str, prefix_required: bool) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    match prefix {
        None if prefix_required => {
            return Err(
                "it has no prefix; write it as `domain/name`, e.g. `example.com/cleanup`"
                    .to_owned(),
            );
        }
        Some(prefix) if !is_dns1123_subdomain(prefix) => {
            return Err(format!(
                "prefix {prefix:?} is not a DNS subdomain (at most 253 of a-z, 0-9, '-' and '.')"
            ));
        }
        _ => {}
    }
    if !is_qualified_name_part(name) {
        return Err(format!(
            "name {name:?} must be 1-63 of A-Z, a-z, 0-9, '-', '_' and '.', alphanumeric at both ends"
        ));
    }
    Ok(())
}

/// A label value: empty, or 1-63 characters of `[A-Za-z0-9_.-]`, alphanumeric at both ends.
pub(crate) fn is_label_value(value: &str) -> bool {
    value.is_empty() || is_qualified_name_part(value)
}

/// Checks an object name as the host does before any request: not empty, `.` or `..`, at most
/// 253 bytes, and only ASCII letters, digits and `-._:@+~` (so it cannot change the request
/// path, as `x/scale` or `%2F` would).
pub(crate) fn validate_object_name(name: &str) -> Result<(), String> {
    let problem = match name {
        "" => "the name is empty".to_owned(),
        "." | ".." => format!("the name may not be {name:?}"),
        _ if name.len() > MAX_OBJECT_NAME_LEN => {
            format!("the name is longer than {MAX_OBJECT_NAME_LEN} bytes")
        }
        _ => match name.chars().find(|c| {
            !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | ':' | '@' | '+' | '~'))
        }) {
            Some(c) => format!("the name {name:?} may not contain {c:?}"),
            None => return Ok(()),
        },
    };
    Err(problem)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn subdomains_are_labels_joined_by_dots() {
        for good in [
            "example.com",
            "a",
            "a-b.c0",
            &"a.".repeat(126).to_string()[..251],
        ] {
            assert!(is_dns1123_subdomain(good), "{good:?}");
        }
        for bad in [
            "",
            "a..b",
            ".a",
            "a.",
            "Example.com",
            "a_b.com",
            &"a".repeat(254),
        ] {
            assert!(!is_dns1123_subdomain(bad), "{bad:?}");
        }
    }

    #[test]
    fn qualified_names_take_an_optional_prefix() {
        for good in [
            "a",
            "app.kubernetes.io/name",
            "A_b.c-D",
            "x/y",
            &"n".repeat(63),
        ] {
            assert_eq!(validate_qualified_name(good, false), Ok(()), "{good:?}");
        }
        for bad in [
            "",
            "/a",
            "a/",
            "Example.com/a",
            "a b",
            "-a",
            "a/b/c",
            &"n".repeat(64),
        ] {
            assert!(validate_qualified_name(bad, false).is_err(), "{bad:?}");
        }
        assert!(validate_qualified_name("cleanup", true).is_err());
        assert_eq!(validate_qualified_name("example.com/cleanup", true), Ok(()));
    }

    #[test]
    fn label_values_may_be_empty() {
        for good in ["", "true", "v1.2_3-x", &"v".repeat(63)] {
            assert!(is_label_value(good), "{good:?}");
        }
        for bad in ["-x", "x-", "a b", "a/b", &"v".repeat(64)] {
            assert!(!is_label_value(bad), "{bad:?}");
        }
    }

    #[test]
    fn object_names_that_would_change_the_request_path_are_refused() {
        for good in [
            "demo",
            "my-app.v2",
            "system:controller:x",
            "a@b+c~d",
            &"a".repeat(253),
        ] {
            assert_eq!(validate_object_name(good), Ok(()), "{good:?}");
        }
        for bad in [
            "",
            ".",
            "..",
            "x/scale",
            "x%2Fscale",
            "x?w",
            "a b",
            "é",
            &"a".repeat(254),
        ] {
            assert!(validate_object_name(bad).is_err(), "{bad:?}");
        }
    }
}
