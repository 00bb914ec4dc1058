//! Object names a plugin passes to the client, checked before they go into a URL.
//!
//! The API server accepts, for most kinds, DNS-1123 subdomains, and for the rest (RBAC kinds,
//! for instance) any "path segment name": not `.` or `..`, no `/` and no `%`. A name is put
//! into the request path as it is, so anything that could change which resource the path
//! names (`/`, `%`-escapes, `?`, `#`, dot segments, whitespace, control characters) is refused
//! here, before any request: `get(Namespace, "victim/secrets/x")` never leaves the host.

/// Longest object name the API server accepts (a DNS-1123 subdomain).
pub(crate) const MAX_NAME_LEN: usize = 253;

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum InvalidName {
    #[error("the name is empty")]
    Empty,
    #[error("the name is longer than {MAX_NAME_LEN} bytes")]
    TooLong,
    #[error("the name may not be {0:?}")]
    DotSegment(&'static str),
    #[error("the name may not contain {0:?}")]
    Character(char),
}

/// Checks that `name` names one object: a path segment name made of characters that need no
/// escaping in a URL path.
pub(crate) fn check_object_name(name: &str) -> Result<(), InvalidName> {
    match name {
        "" => return Err(InvalidName::Empty),
        "." => return Err(InvalidName::DotSegment(".")),
        ".." => return Err(InvalidName::DotSegment("..")),
        _ => {}
    }
    if name.len() > MAX_NAME_LEN {
        return Err(InvalidName::TooLong);
    }
    // Letters, digits, and the punctuation real names use (`-` `.` `_` `:` `@` `+` `~`):
    // everything else is either refused by the API server's name rules or changes the path.
    match name.chars().find(|c| {
        !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | ':' | '@' | '+' | '~'))
    }) {
        Some(character) => Err(InvalidName::Character(character)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_are_accepted() {
        for name in [
            "demo",
            "my-app.v2",
            "system:controller:deployment-controller",
            "a",
            &"a".repeat(MAX_NAME_LEN),
        ] {
            assert_eq!(check_object_name(name), Ok(()), "{name:?}");
        }
    }

    #[test]
    fn names_that_change_the_request_path_are_refused() {
        let refused = [
            ("", InvalidName::Empty),
            (".", InvalidName::DotSegment(".")),
            ("..", InvalidName::DotSegment("..")),
            ("victim/secrets/topsecret", InvalidName::Character('/')),
            ("x%2Fscale", InvalidName::Character('%')),
            ("x?watch=true", InvalidName::Character('?')),
            ("x#frag", InvalidName::Character('#')),
            ("with space", InvalidName::Character(' ')),
            ("new\nline", InvalidName::Character('\n')),
            ("back\\slash", InvalidName::Character('\\')),
            ("é", InvalidName::Character('é')),
        ];
        for (name, why) in refused {
            assert_eq!(check_object_name(name), Err(why), "{name:?}");
        }
        assert_eq!(
            check_object_name(&"a".repeat(MAX_NAME_LEN + 1)),
            Err(InvalidName::TooLong)
        );
    }
}
