//! Azure Blob for the integration tests: Azurite from `wharf-storage`'s test peers (one per
//! test process) and a wharf config on a fresh container of it.

pub use wharf_storage::testsuite::peers::{Azurite, azurite};

/// A whole wharf config on `container`, with `{port}` left for the harness to fill in.
pub fn config_template(azurite: &Azurite, container: &str) -> String {
    let p = azurite.params(container);
    format!(
        "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\nstorage:\n  azure:\n    accountname: {account}\n    accountkey: {key}\n    container: {container}\n    serviceurl: {url}\n    rootdirectory: /registry\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{{port}}\n",
        account = p.account_name,
        key = p.account_key,
        url = azurite.endpoint,
    )
}
