//! The repository catalog: every directory under `repositories/` that holds `_manifests` or
//! `_layers`, found without descending into the `_`-prefixed metadata trees.

use std::sync::Arc;

use wharf_storage::{Driver, StoragePath};

use super::layout::PathSpec;
use super::{Registry, Result};

/// Directories one task lists before the walk of a level is split across tasks: a listing
/// costs a few microseconds, so smaller levels are not worth a task.
const SPLIT_AT: usize = 64;

impl Registry {
    /// Every repository name, sorted.
    pub async fn list_repositories(&self) -> Result<Vec<String>> {
        self.repositories_holding(&["_manifests", "_layers"]).await
    }

    /// Every repository directory with one of the `markers` among its children, sorted; upload
    /// purging asks for `_uploads`, which a repository with no finished push has alone.
    ///
    /// The tree is walked a level at a time, and a wide level (a namespace holding a thousand
    /// repositories) is listed by one task per core, so a catalog request uses the machine.
    pub(crate) async fn repositories_holding(&self, markers: &[&str]) -> Result<Vec<String>> {
        let root = PathSpec::Repositories.path();
        let prefix_len = root.as_str().len() + 1;
        let markers: Arc<[String]> = markers.iter().map(|m| (*m).to_owned()).collect();
        let mut repos = Vec::new();
        let mut level = vec![root];
        let tasks = std::thread::available_parallelism().map_or(1, usize::from);
        while !level.is_empty() {
            let (found, next) = if level.len() < SPLIT_AT || tasks < 2 {
                scan(self.driver.as_ref(), &markers, level).await?
            } else {
                let per_task = level.len().div_ceil(tasks);
                let mut handles = Vec::new();
                while !level.is_empty() {
                    let rest = level.split_off(level.len().min(per_task));
                    let part = std::mem::replace(&mut level, rest);
                    let (driver, markers) = (Arc::clone(&self.driver), Arc::clone(&markers));
                    handles.push(tokio::spawn(async move {
                        scan(driver.as_ref(), &markers, part).await
                    }));
                }
                let (mut found, mut next) = (Vec::new(), Vec::new());
                for handle in handles {
                    let (f, n) = handle.await.map_err(|e| wharf_storage::Error::Backend {
                        driver: self.driver.name(),
                        source: e.to_string().into(),
                    })??;
                    found.extend(f);
                    next.extend(n);
                }
                (found, next)
            };
            repos.extend(
                found
                    .iter()
                    .filter(|dir| dir.as_str().len() > prefix_len)
                    .map(|dir| dir.as_str()[prefix_len..].to_owned()),
            );
            level = next;
        }
        repos.sort();
        Ok(repos)
    }
}

/// Lists `dirs`: those holding a marker, and the children to look at on the next level.
async fn scan(
    driver: &dyn Driver,
    markers: &[String],
    dirs: Vec<StoragePath>,
) -> Result<(Vec<StoragePath>, Vec<StoragePath>)> {
    let (mut found, mut next) = (Vec::new(), Vec::new());
    for dir in dirs {
        let children = match driver.list(&dir).await {
            Ok(c) => c,
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e.into()),
        };
        let mut is_repo = false;
        for child in children {
            let name = child.file_name();
            if markers.iter().any(|m| m == name) {
                is_repo = true;
            } else if !name.starts_with('_') {
                next.push(child);
            }
        }
        if is_repo {
            found.push(dir);
        }
    }
    Ok((found, next))
}
