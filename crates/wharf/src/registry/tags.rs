//! Tags of a repository, in lexical order.

use wharf_oci::RepoName;

use super::layout::PathSpec;
use super::{Error, Registry, Result};

impl Registry {
    /// Every tag of a repository, sorted; `NameUnknown` when the repository does not exist.
    pub async fn list_tags(&self, repo: &RepoName) -> Result<Vec<String>> {
        match self.driver.list(&PathSpec::Tags { repo }.path()).await {
            Ok(paths) => {
                let mut tags: Vec<String> =
                    paths.iter().map(|p| p.file_name().to_owned()).collect();
                tags.sort();
                Ok(tags)
            }
            Err(e) if e.is_not_found() => {
                if self.exists(&PathSpec::Repository { repo }.path()).await? {
                    Ok(Vec::new())
                } else {
                    Err(Error::NameUnknown(repo.clone()))
                }
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// One page of a sorted list: entries after `last`, at most `n` of them, and whether more follow.
pub fn paginate(items: Vec<String>, n: Option<usize>, last: Option<&str>) -> (Vec<String>, bool) {
    let start = match last {
        Some(last) => items.partition_point(|x| x.as_str() <= last),
        None => 0,
    };
    let mut page: Vec<String> = items.into_iter().skip(start).collect();
    match n {
        Some(n) if page.len() > n => {
            page.truncate(n);
            (page, true)
        }
        _ => (page, false),
    }
}

#[cfg(test)]
mod tests {
    use super::paginate;

    #[test]
    fn pages() {
        let items: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        type Case<'a> = (Option<usize>, Option<&'a str>, &'a [&'a str], bool);
        let cases: &[Case<'_>] = &[
            (None, None, &["a", "b", "c", "d"], false),
            (Some(2), None, &["a", "b"], true),
            (Some(2), Some("b"), &["c", "d"], false),
            (Some(4), None, &["a", "b", "c", "d"], false),
            (Some(0), None, &[], true),
            (None, Some("bb"), &["c", "d"], false),
            (None, Some("z"), &[], false),
        ];
        for (n, last, want, more) in cases {
            let (page, m) = paginate(items.clone(), *n, *last);
            assert_eq!(page, *want, "{n:?} {last:?}");
            assert_eq!(m, *more, "{n:?} {last:?}");
        }
    }
}
