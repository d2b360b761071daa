//! URL to endpoint: a pure parser that matches the fixed tail from the right and takes
//! everything before it as the repository name, so names of any depth work (even one with a
//! `manifests` or `blobs` component).

use wharf_oci::{Digest, NameError, Reference, RepoName};

use crate::auth::{Access, Action, Resource};
use crate::registry::uploads::UploadId;

/// One endpoint of the spec; ids in comments are the spec's endpoint table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// end-1 `GET /v2/`
    Base,
    /// `GET /v2/_catalog` (distribution)
    Catalog,
    /// end-2 `GET/HEAD`, end-10 `DELETE /v2/<name>/blobs/<digest>`
    Blob {
        /// Repository.
        name: RepoName,
        /// Blob.
        digest: Digest,
    },
    /// end-4a/4b/11 `POST /v2/<name>/blobs/uploads/`
    UploadStart {
        /// Repository.
        name: RepoName,
    },
    /// end-5 `PATCH`, end-6 `PUT`, end-13 `GET`, `DELETE /v2/<name>/blobs/uploads/<id>`
    Upload {
        /// Repository.
        name: RepoName,
        /// Session.
        id: UploadId,
    },
    /// end-3 `GET/HEAD`, end-7 `PUT`, end-9 `DELETE /v2/<name>/manifests/<reference>`
    Manifest {
        /// Repository.
        name: RepoName,
        /// Tag or digest.
        reference: Reference,
    },
    /// end-8a/8b `GET /v2/<name>/tags/list`
    Tags {
        /// Repository.
        name: RepoName,
    },
    /// end-12a/12b `GET /v2/<name>/referrers/<digest>`
    Referrers {
        /// Repository.
        name: RepoName,
        /// Subject.
        digest: Digest,
    },
}

/// Why a path matched no endpoint or carried an invalid component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// Not an API path at all.
    NotFound,
    /// The repository name breaks the grammar.
    Name(String),
    /// A digest component is malformed or unsupported.
    Digest(String),
    /// A tag component breaks the grammar.
    Tag(String),
    /// An upload id that wharf never issues.
    UploadId,
}

fn name(segs: &[&str]) -> Result<RepoName, RouteError> {
    if segs.is_empty() {
        return Err(RouteError::NotFound);
    }
    let s = segs.join("/");
    s.parse().map_err(|_| RouteError::Name(s))
}

fn digest(s: &str) -> Result<Digest, RouteError> {
    s.parse().map_err(|e| RouteError::Digest(format!("{e}")))
}

impl Route {
    /// Parses a path such as `/v2/library/ubuntu/manifests/latest` (any `http.prefix` already
    /// removed).
    pub fn parse(path: &str) -> Result<Route, RouteError> {
        let rest = match path.strip_prefix("/v2") {
            Some("") | Some("/") => return Ok(Route::Base),
            Some(r) => r.strip_prefix('/').ok_or(RouteError::NotFound)?,
            None => return Err(RouteError::NotFound),
        };
        if rest == "_catalog" {
            return Ok(Route::Catalog);
        }
        let mut segs: Vec<&str> = rest.split('/').collect();
        let n = segs.len();
        if n >= 3 && segs[n - 2..] == ["tags", "list"] {
            return Ok(Route::Tags {
                name: name(&segs[..n - 2])?,
            });
        }
        // `.../blobs/uploads/` ends with an empty segment
        if segs.last() == Some(&"") {
            segs.pop();
            let n = segs.len();
            if n >= 3 && segs[n - 2..] == ["blobs", "uploads"] {
                return Ok(Route::UploadStart {
                    name: name(&segs[..n - 2])?,
                });
            }
            return Err(RouteError::NotFound);
        }
        if n >= 3 && segs[n - 2..] == ["blobs", "uploads"] {
            return Ok(Route::UploadStart {
                name: name(&segs[..n - 2])?,
            });
        }
        if n >= 4 && segs[n - 3..n - 1] == ["blobs", "uploads"] {
            let id = segs[n - 1].parse().map_err(|()| RouteError::UploadId)?;
            return Ok(Route::Upload {
                name: name(&segs[..n - 3])?,
                id,
            });
        }
        if n < 3 {
            return Err(RouteError::NotFound);
        }
        let (head, kind, last) = (&segs[..n - 2], segs[n - 2], segs[n - 1]);
        match kind {
            "blobs" => {
                let name = name(head)?;
                Ok(Route::Blob {
                    name,
                    digest: digest(last)?,
                })
            }
            "manifests" => {
                let name = name(head)?;
                let reference = last.parse().map_err(|e| match e {
                    NameError::Digest(d) => RouteError::Digest(d.to_string()),
                    _ => RouteError::Tag(last.to_owned()),
                })?;
                Ok(Route::Manifest { name, reference })
            }
            "referrers" => {
                let name = name(head)?;
                Ok(Route::Referrers {
                    name,
                    digest: digest(last)?,
                })
            }
            _ => Err(RouteError::NotFound),
        }
    }

    /// The access a request needs, as distribution asks for it: pull to read, pull and push
    /// to write, delete to delete, `registry:catalog:*` to list repositories, and pull on
    /// `mount_from` for a cross-repository mount. `GET /v2/` needs authentication only (empty).
    pub fn access(&self, method: &http::Method, mount_from: Option<&RepoName>) -> Vec<Access> {
        use http::Method;
        let name = match self {
            Route::Base => return Vec::new(),
            Route::Catalog => {
                return vec![Access {
                    resource: Resource::Catalog,
                    action: Action::All,
                }];
            }
            _ => match self.name() {
                Some(name) => name,
                None => return Vec::new(),
            },
        };
        let actions: &[Action] = match *method {
            Method::GET | Method::HEAD => &[Action::Pull],
            Method::DELETE => &[Action::Delete],
            _ => &[Action::Pull, Action::Push],
        };
        let mut access: Vec<Access> = actions
            .iter()
            .map(|a| Access::repository(name, *a))
            .collect();
        if let (Route::UploadStart { .. }, Some(from)) = (self, mount_from)
            && from != name
        {
            access.push(Access::repository(from, Action::Pull));
        }
        access
    }

    /// The repository this route acts on, for logs and access control.
    pub fn name(&self) -> Option<&RepoName> {
        match self {
            Route::Base | Route::Catalog => None,
            Route::Blob { name, .. }
            | Route::UploadStart { name }
            | Route::Upload { name, .. }
            | Route::Manifest { name, .. }
            | Route::Tags { name }
            | Route::Referrers { name, .. } => Some(name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d() -> String {
        format!("sha256:{}", "a".repeat(64))
    }

    #[test]
    fn parse_table() {
        let dg = d();
        let ok: Vec<(String, &str)> = vec![
            ("/v2/".into(), "Base"),
            ("/v2".into(), "Base"),
            ("/v2/_catalog".into(), "Catalog"),
            ("/v2/a/tags/list".into(), "Tags a"),
            ("/v2/a/b/c/tags/list".into(), "Tags a/b/c"),
            ("/v2/a/manifests/latest".into(), "Manifest a latest"),
            (format!("/v2/a/b/manifests/{dg}"), "Manifest a/b"),
            (
                "/v2/x/manifests/manifests/v1".into(),
                "Manifest x/manifests v1",
            ),
            (format!("/v2/a/blobs/{dg}"), "Blob a"),
            (format!("/v2/x/blobs/y/blobs/{dg}"), "Blob x/blobs/y"),
            ("/v2/a/blobs/uploads/".into(), "UploadStart a"),
            ("/v2/a/blobs/uploads".into(), "UploadStart a"),
            (
                "/v2/a/b/blobs/uploads/0b3c2d1e-aaaa".into(),
                "Upload a/b 0b3c2d1e-aaaa",
            ),
            (format!("/v2/a/referrers/{dg}"), "Referrers a"),
            ("/v2/tags/tags/list".into(), "Tags tags"),
        ];
        for (path, want) in ok {
            let r = Route::parse(&path).unwrap_or_else(|e| panic!("{path}: {e:?}"));
            let got = match &r {
                Route::Base => "Base".to_owned(),
                Route::Catalog => "Catalog".to_owned(),
                Route::Tags { name } => format!("Tags {name}"),
                Route::Manifest {
                    name,
                    reference: Reference::Tag(t),
                } => format!("Manifest {name} {t}"),
                Route::Manifest { name, .. } => format!("Manifest {name}"),
                Route::Blob { name, .. } => format!("Blob {name}"),
                Route::UploadStart { name } => format!("UploadStart {name}"),
                Route::Upload { name, id } => format!("Upload {name} {id}"),
                Route::Referrers { name, .. } => format!("Referrers {name}"),
            };
            assert_eq!(got, want, "{path}");
        }
    }

    #[test]
    fn errors_table() {
        let cases: Vec<(String, RouteError)> = vec![
            ("/v1/".into(), RouteError::NotFound),
            ("/v2/a".into(), RouteError::NotFound),
            ("/v2/a/b".into(), RouteError::NotFound),
            ("/v2/a/unknown/x".into(), RouteError::NotFound),
            ("/v2/A/tags/list".into(), RouteError::Name("A".into())),
            (
                "/v2/a/../b/tags/list".into(),
                RouteError::Name("a/../b".into()),
            ),
            ("/v2//a/tags/list".into(), RouteError::Name("/a".into())),
            (
                "/v2/a/manifests/-bad".into(),
                RouteError::Tag("-bad".into()),
            ),
            ("/v2/a/blobs/uploads/a.b".into(), RouteError::UploadId),
        ];
        for (path, want) in cases {
            assert_eq!(Route::parse(&path), Err(want), "{path}");
        }
        assert!(matches!(
            Route::parse("/v2/a/blobs/sha256:zz"),
            Err(RouteError::Digest(_))
        ));
        assert!(matches!(
            Route::parse("/v2/a/manifests/sha256:zz"),
            Err(RouteError::Digest(_))
        ));
    }

    #[test]
    fn access_table() {
        use http::Method;
        let dg = d();
        let scope = |path: &str, m: Method, from: Option<&str>| {
            let from: Option<RepoName> = from.map(|f| f.parse().unwrap());
            crate::auth::challenge::scopes(&Route::parse(path).unwrap().access(&m, from.as_ref()))
                .join(" ")
        };
        let cases: Vec<(String, Method, Option<&str>, &str)> = vec![
            ("/v2/".into(), Method::GET, None, ""),
            (
                "/v2/_catalog".into(),
                Method::GET,
                None,
                "registry:catalog:*",
            ),
            (
                "/v2/a/b/manifests/v1".into(),
                Method::GET,
                None,
                "repository:a/b:pull",
            ),
            (
                "/v2/a/manifests/v1".into(),
                Method::HEAD,
                None,
                "repository:a:pull",
            ),
            (
                "/v2/a/manifests/v1".into(),
                Method::PUT,
                None,
                "repository:a:pull,push",
            ),
            (
                "/v2/a/manifests/v1".into(),
                Method::DELETE,
                None,
                "repository:a:delete",
            ),
            (
                format!("/v2/a/blobs/{dg}"),
                Method::GET,
                None,
                "repository:a:pull",
            ),
            (
                format!("/v2/a/blobs/{dg}"),
                Method::DELETE,
                None,
                "repository:a:delete",
            ),
            (
                "/v2/a/blobs/uploads/".into(),
                Method::POST,
                None,
                "repository:a:pull,push",
            ),
            (
                "/v2/a/blobs/uploads/".into(),
                Method::POST,
                Some("b/c"),
                "repository:a:pull,push repository:b/c:pull",
            ),
            (
                "/v2/a/blobs/uploads/".into(),
                Method::POST,
                Some("a"),
                "repository:a:pull,push",
            ),
            (
                "/v2/a/blobs/uploads/0b3c2d1e-aaaa".into(),
                Method::PATCH,
                None,
                "repository:a:pull,push",
            ),
            (
                "/v2/a/blobs/uploads/0b3c2d1e-aaaa".into(),
                Method::GET,
                None,
                "repository:a:pull",
            ),
            (
                "/v2/a/tags/list".into(),
                Method::GET,
                None,
                "repository:a:pull",
            ),
            (
                format!("/v2/a/referrers/{dg}"),
                Method::GET,
                None,
                "repository:a:pull",
            ),
        ];
        for (path, m, from, want) in cases {
            assert_eq!(scope(&path, m.clone(), from), want, "{m} {path}");
        }
    }
}
