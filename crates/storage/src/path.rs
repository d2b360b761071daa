//! Storage paths, checked once at construction so drivers never recheck them.

use std::fmt;

/// An absolute, normalized storage path: `^(/[A-Za-z0-9._-]+)+$` or the root `/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StoragePath(String);

/// A path string that breaks the grammar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid storage path {0:?}")]
pub struct InvalidPath(pub String);

fn valid_segment(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl StoragePath {
    /// The root of the driver's tree.
    pub fn root() -> Self {
        StoragePath("/".to_owned())
    }

    /// Parses an absolute path; `..`, empty segments and characters outside the grammar are refused.
    pub fn new(s: impl Into<String>) -> Result<Self, InvalidPath> {
        let s = s.into();
        if s == "/" {
            return Ok(Self::root());
        }
        match s.strip_prefix('/') {
            Some(rest) if rest.split('/').all(valid_segment) => Ok(StoragePath(s)),
            _ => Err(InvalidPath(s)),
        }
    }

    /// Appends one or more `/`-separated segments.
    pub fn join(&self, rel: &str) -> Result<Self, InvalidPath> {
        let base = if self.is_root() { "" } else { self.0.as_str() };
        let joined = format!("{base}/{rel}");
        // `self` was checked when it was built; only the new segments need a look (listings
        // join every child of a directory, so rechecking the whole path each time adds up).
        if rel.split('/').all(valid_segment) {
            Ok(StoragePath(joined))
        } else {
            Err(InvalidPath(joined))
        }
    }

    /// The path as a string, always starting with `/`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is `/`.
    pub fn is_root(&self) -> bool {
        self.0 == "/"
    }

    /// The last segment (empty for the root).
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or("")
    }

    /// The parent directory, or `None` for the root.
    pub fn parent(&self) -> Option<Self> {
        if self.is_root() {
            return None;
        }
        let idx = self.0.rfind('/').unwrap_or(0);
        Some(if idx == 0 {
            Self::root()
        } else {
            StoragePath(self.0[..idx].to_owned())
        })
    }

    /// The path relative to the root, without the leading `/` (for joining onto a backend prefix).
    pub fn relative(&self) -> &str {
        &self.0[1..]
    }

    /// Whether `self` is `other` or lies below it.
    pub fn starts_with(&self, other: &StoragePath) -> bool {
        other.is_root()
            || self.0 == other.0
            || (self.0.starts_with(&other.0) && self.0.as_bytes().get(other.0.len()) == Some(&b'/'))
    }
}

impl fmt::Display for StoragePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grammar_table() {
        let cases = [
            ("/", true),
            ("/a", true),
            ("/docker/registry/v2/blobs/sha256/ab/abcd/data", true),
            ("/a/_uploads/x-y.z", true),
            ("", false),
            ("a", false),
            ("/a/", false),
            ("//a", false),
            ("/a/../b", false),
            ("/a/./b", false),
            ("/a b", false),
            ("/a:b", false),
        ];
        for (s, ok) in cases {
            assert_eq!(StoragePath::new(s).is_ok(), ok, "{s:?}");
        }
    }

    #[test]
    fn navigation() {
        let p = StoragePath::new("/a/b/c").unwrap();
        assert_eq!(p.file_name(), "c");
        assert_eq!(p.parent().unwrap().as_str(), "/a/b");
        assert_eq!(
            StoragePath::new("/a").unwrap().parent().unwrap(),
            StoragePath::root()
        );
        assert_eq!(StoragePath::root().join("x/y").unwrap().as_str(), "/x/y");
        assert!(p.starts_with(&StoragePath::new("/a/b").unwrap()));
        assert!(!p.starts_with(&StoragePath::new("/a/bb").unwrap()));
        assert!(p.join("..").is_err());
    }
}
