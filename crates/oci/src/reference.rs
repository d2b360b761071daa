//! Repository names, tags and the `<reference>` of manifest URLs, validated by the spec's grammar.

use std::fmt;
use std::str::FromStr;

use crate::digest::{Digest, DigestError};

/// distribution refuses names longer than this; the spec leaves the limit to registries.
pub const MAX_NAME_LEN: usize = 255;
/// spec: a tag is at most 128 characters.
pub const MAX_TAG_LEN: usize = 128;

/// Why a name or tag was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Repository name outside the spec grammar or too long.
    #[error("invalid repository name {0:?}")]
    Name(String),
    /// Tag outside `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
    #[error("invalid tag {0:?}")]
    Tag(String),
    /// A reference that is neither a tag nor a valid digest.
    #[error(transparent)]
    Digest(#[from] DigestError),
}

/// A repository name such as `library/ubuntu`, checked against the spec's path grammar.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoName(String);

impl RepoName {
    /// The name as it appears in URLs and in the storage layout.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// spec: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // a separator run: ".", "_", "__", or one or more "-"
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

impl FromStr for RepoName {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() || s.len() > MAX_NAME_LEN || !s.split('/').all(valid_component) {
            return Err(NameError::Name(s.to_owned()));
        }
        Ok(RepoName(s.to_owned()))
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A tag such as `latest`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(String);

impl Tag {
    /// The tag as it appears in URLs and in `_manifests/tags/<tag>`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Tag {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b = s.as_bytes();
        let first_ok = b
            .first()
            .is_some_and(|&x| x.is_ascii_alphanumeric() || x == b'_');
        let rest_ok = b
            .iter()
            .all(|&x| x.is_ascii_alphanumeric() || matches!(x, b'_' | b'.' | b'-'));
        if !first_ok || !rest_ok || b.len() > MAX_TAG_LEN {
            return Err(NameError::Tag(s.to_owned()));
        }
        Ok(Tag(s.to_owned()))
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The `<reference>` of `/v2/<name>/manifests/<reference>`: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reference {
    /// A mutable pointer.
    Tag(Tag),
    /// Immutable content address.
    Digest(Digest),
}

impl FromStr for Reference {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.contains(':') {
            Ok(Reference::Digest(s.parse()?))
        } else {
            Ok(Reference::Tag(s.parse()?))
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Tag(t) => t.fmt(f),
            Reference::Digest(d) => d.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_table() {
        let long_ok = format!("a/{}", "b".repeat(MAX_NAME_LEN - 2));
        let too_long = "a".repeat(MAX_NAME_LEN + 1);
        let cases: &[(&str, bool)] = &[
            ("ubuntu", true),
            ("library/ubuntu", true),
            ("a/b/c/d/e/f/g/h", true),
            ("my-app.v2/sub__x", true),
            ("a--b", true),
            ("a/manifests/b", true),
            (&long_ok, true),
            ("", false),
            ("Ubuntu", false),
            ("a/../b", false),
            ("..", false),
            ("/a", false),
            ("a/", false),
            ("a//b", false),
            ("a___b", false),
            ("a.-b", false),
            ("-a", false),
            ("a b", false),
            (&too_long, false),
        ];
        for (s, ok) in cases {
            assert_eq!(s.parse::<RepoName>().is_ok(), *ok, "{s:?}");
        }
    }

    #[test]
    fn tags_table() {
        let max = "a".repeat(MAX_TAG_LEN);
        let over = "a".repeat(MAX_TAG_LEN + 1);
        let cases: &[(&str, bool)] = &[
            ("latest", true),
            ("_x", true),
            ("v1.2.3-rc_1", true),
            ("LATEST", true),
            (&max, true),
            (&over, false),
            ("", false),
            (".x", false),
            ("-x", false),
            ("a/b", false),
            ("a:b", false),
        ];
        for (s, ok) in cases {
            assert_eq!(s.parse::<Tag>().is_ok(), *ok, "{s:?}");
        }
    }

    #[test]
    fn reference_picks_digest_on_colon() {
        assert!(matches!(
            "latest".parse::<Reference>(),
            Ok(Reference::Tag(_))
        ));
        let d = format!("sha256:{}", "0".repeat(64));
        assert!(matches!(d.parse::<Reference>(), Ok(Reference::Digest(_))));
        assert!("sha256:zz".parse::<Reference>().is_err());
    }
}
