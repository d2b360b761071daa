//! The repository catalog: every directory under `repositories/` that holds `_manifests` or
//! `_layers`, found without descending into the `_`-prefixed metadata trees.

use wharf_storage::StoragePath;

use super::layout::PathSpec;
use super::{Registry, Result};

impl Registry {
    /// Every repository name, sorted.
    pub async fn list_repositories(&self) -> Result<Vec<String>> {
        self.repositories_holding(&["_manifests", "_layers"]).await
    }

    /// Every repository directory with one of the `markers` among its children, sorted; upload
    /// purging asks for `_uploads`, which a repository with no finished push has alone.
    pub(crate) async fn repositories_holding(&self, markers: &[&str]) -> Result<Vec<String>> {
        let root = PathSpec::Repositories.path();
        let prefix_len = root.as_str().len() + 1;
        let mut repos = Vec::new();
        let mut stack: Vec<StoragePath> = vec![root];
        while let Some(dir) = stack.pop() {
            let children = match self.driver.list(&dir).await {
                Ok(c) => c,
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e.into()),
            };
            let mut is_repo = false;
            for child in children {
                let name = child.file_name();
                if markers.contains(&name) {
                    is_repo = true;
                } else if !name.starts_with('_') {
                    stack.push(child);
                }
            }
            if is_repo && dir.as_str().len() > prefix_len {
                repos.push(dir.as_str()[prefix_len..].to_owned());
            }
        }
        repos.sort();
        Ok(repos)
    }
}
