//! Where every registry object lives in storage: exactly distribution's `docker/registry/v2`
//! layout, so a root written by registry:2 is served unchanged and the other way round.
//!
//! ```text
//! /docker/registry/v2/
//!   blobs/<alg>/<hex[..2]>/<hex>/data                     blob and manifest bytes, shared by all repos
//!   repositories/<name>/
//!     _layers/<alg>/<hex>/link                            the repo may serve this blob
//!     _manifests/revisions/<alg>/<hex>/link               the repo holds this manifest
//!     _manifests/tags/<tag>/current/link                  what the tag points at now
//!     _manifests/tags/<tag>/index/<alg>/<hex>/link        every manifest the tag ever pointed at
//!     _uploads/<id>/data                                  bytes received so far
//!     _uploads/<id>/startedat                             RFC 3339 start time, for upload purging
//!     _uploads/<id>/hashstates/<alg>/<offset>             hasher state after <offset> bytes
//!     _referrers/<alg>/<hex>/<alg>/<hex>/link             wharf's addition: subject -> referrer
//!   _wharf/gc-lease                                       wharf's addition: online GC's collector lease
//! ```
//! `_referrers` starts with `_`, so distribution's catalog and GC walk past it; `_wharf` sits
//! beside `blobs` and `repositories`, where distribution never looks.

use wharf_oci::{Algorithm, Digest, RepoName, Tag};
use wharf_storage::StoragePath;

use super::uploads::UploadId;

/// The root every registry path hangs from.
pub const ROOT: &str = "/docker/registry/v2";

/// One registry object whose storage path is fixed by the layout.
#[derive(Debug, Clone, Copy)]
pub enum PathSpec<'a> {
    /// Directory holding every repository.
    Repositories,
    /// Which instance collects garbage now (wharf's addition, outside distribution's tree).
    GcLease,
    /// A repository's directory.
    Repository { repo: &'a RepoName },
    /// The bytes of a blob (or manifest).
    BlobData { digest: &'a Digest },
    /// A blob's directory, removed whole by garbage collection.
    Blob { digest: &'a Digest },
    /// A repository's claim on a blob.
    LayerLink {
        repo: &'a RepoName,
        digest: &'a Digest,
    },
    /// A repository's claim on a manifest.
    ManifestRevisionLink {
        repo: &'a RepoName,
        digest: &'a Digest,
    },
    /// Directory of a manifest revision.
    ManifestRevision {
        repo: &'a RepoName,
        digest: &'a Digest,
    },
    /// Directory of every tag of a repository.
    Tags { repo: &'a RepoName },
    /// Directory of one tag.
    Tag { repo: &'a RepoName, tag: &'a Tag },
    /// What a tag points at.
    TagCurrentLink { repo: &'a RepoName, tag: &'a Tag },
    /// History entry of a tag.
    TagIndexLink {
        repo: &'a RepoName,
        tag: &'a Tag,
        digest: &'a Digest,
    },
    /// Directory of one upload.
    Upload {
        repo: &'a RepoName,
        id: &'a UploadId,
    },
    /// Bytes of an upload so far.
    UploadData {
        repo: &'a RepoName,
        id: &'a UploadId,
    },
    /// Upload start time; its existence is what makes an upload id known.
    UploadStartedAt {
        repo: &'a RepoName,
        id: &'a UploadId,
    },
    /// Directory of saved hasher states of one algorithm.
    UploadHashStates {
        repo: &'a RepoName,
        id: &'a UploadId,
        algorithm: Algorithm,
    },
    /// Hasher state after `offset` bytes.
    UploadHashState {
        repo: &'a RepoName,
        id: &'a UploadId,
        algorithm: Algorithm,
        offset: u64,
    },
    /// Directory of every referrer of one subject.
    Referrers {
        repo: &'a RepoName,
        subject: &'a Digest,
    },
    /// One subject -> referrer edge.
    ReferrerLink {
        repo: &'a RepoName,
        subject: &'a Digest,
        referrer: &'a Digest,
    },
}

fn dg(d: &Digest) -> String {
    format!("{}/{}", d.algorithm().as_str(), d.hex())
}

impl PathSpec<'_> {
    /// The storage path; every component was validated when its type was parsed, so the result
    /// always satisfies the storage path grammar.
    pub fn path(&self) -> StoragePath {
        use PathSpec::*;
        let repos = format!("{ROOT}/repositories");
        let s = match *self {
            Repositories => repos,
            GcLease => format!("{ROOT}/_wharf/gc-lease"),
            Repository { repo } => format!("{repos}/{repo}"),
            BlobData { digest } => format!("{}/data", Blob { digest }.path()),
            Blob { digest } => format!(
                "{ROOT}/blobs/{}/{}/{}",
                digest.algorithm().as_str(),
                &digest.hex()[..2],
                digest.hex()
            ),
            LayerLink { repo, digest } => format!("{repos}/{repo}/_layers/{}/link", dg(digest)),
            ManifestRevision { repo, digest } => {
                format!("{repos}/{repo}/_manifests/revisions/{}", dg(digest))
            }
            ManifestRevisionLink { repo, digest } => {
                format!("{}/link", ManifestRevision { repo, digest }.path())
            }
            Tags { repo } => format!("{repos}/{repo}/_manifests/tags"),
            Tag { repo, tag } => format!("{repos}/{repo}/_manifests/tags/{tag}"),
            TagCurrentLink { repo, tag } => format!("{}/current/link", Tag { repo, tag }.path()),
            TagIndexLink { repo, tag, digest } => {
                format!("{}/index/{}/link", Tag { repo, tag }.path(), dg(digest))
            }
            Upload { repo, id } => format!("{repos}/{repo}/_uploads/{id}"),
            UploadData { repo, id } => format!("{}/data", Upload { repo, id }.path()),
            UploadStartedAt { repo, id } => format!("{}/startedat", Upload { repo, id }.path()),
            UploadHashStates {
                repo,
                id,
                algorithm,
            } => format!(
                "{}/hashstates/{}",
                Upload { repo, id }.path(),
                algorithm.as_str()
            ),
            UploadHashState {
                repo,
                id,
                algorithm,
                offset,
            } => format!(
                "{}/{offset}",
                UploadHashStates {
                    repo,
                    id,
                    algorithm
                }
                .path()
            ),
            Referrers { repo, subject } => format!("{repos}/{repo}/_referrers/{}", dg(subject)),
            ReferrerLink {
                repo,
                subject,
                referrer,
            } => format!(
                "{}/{}/link",
                Referrers { repo, subject }.path(),
                dg(referrer)
            ),
        };
        StoragePath::new(s).expect("invariant: layout components are validated types")
    }
}

/// Parses the `sha256:<hex>` content of a link file.
pub fn parse_link(bytes: &[u8]) -> Option<Digest> {
    std::str::from_utf8(bytes).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_match_distribution() {
        let repo: RepoName = "library/ubuntu".parse().unwrap();
        let tag: Tag = "latest".parse().unwrap();
        let d: Digest = format!("sha256:ab{}", "c".repeat(62)).parse().unwrap();
        let h = d.hex();
        let u1: UploadId = "u1".parse().unwrap();
        let r = "/docker/registry/v2/repositories/library/ubuntu";
        let cases = [
            (
                PathSpec::BlobData { digest: &d },
                format!("/docker/registry/v2/blobs/sha256/ab/{h}/data"),
            ),
            (
                PathSpec::LayerLink {
                    repo: &repo,
                    digest: &d,
                },
                format!("{r}/_layers/sha256/{h}/link"),
            ),
            (
                PathSpec::ManifestRevisionLink {
                    repo: &repo,
                    digest: &d,
                },
                format!("{r}/_manifests/revisions/sha256/{h}/link"),
            ),
            (
                PathSpec::TagCurrentLink {
                    repo: &repo,
                    tag: &tag,
                },
                format!("{r}/_manifests/tags/latest/current/link"),
            ),
            (
                PathSpec::TagIndexLink {
                    repo: &repo,
                    tag: &tag,
                    digest: &d,
                },
                format!("{r}/_manifests/tags/latest/index/sha256/{h}/link"),
            ),
            (
                PathSpec::UploadData {
                    repo: &repo,
                    id: &u1,
                },
                format!("{r}/_uploads/u1/data"),
            ),
            (
                PathSpec::UploadStartedAt {
                    repo: &repo,
                    id: &u1,
                },
                format!("{r}/_uploads/u1/startedat"),
            ),
            (
                PathSpec::UploadHashState {
                    repo: &repo,
                    id: &u1,
                    algorithm: Algorithm::Sha256,
                    offset: 42,
                },
                format!("{r}/_uploads/u1/hashstates/sha256/42"),
            ),
            (
                PathSpec::ReferrerLink {
                    repo: &repo,
                    subject: &d,
                    referrer: &d,
                },
                format!("{r}/_referrers/sha256/{h}/sha256/{h}/link"),
            ),
        ];
        for (spec, want) in cases {
            assert_eq!(spec.path().as_str(), want);
        }
    }

    #[test]
    fn link_content_parses_with_or_without_newline() {
        let d = format!("sha256:{}", "0".repeat(64));
        assert_eq!(parse_link(d.as_bytes()).unwrap().to_string(), d);
        assert_eq!(
            parse_link(format!("{d}\n").as_bytes()).unwrap().to_string(),
            d
        );
        assert!(parse_link(b"garbage").is_none());
    }
}
