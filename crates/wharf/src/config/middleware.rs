//! `middleware:`: plug-ins wrapped around the registry, repositories or storage (not run yet).

use serde::{Deserialize, Serialize};

use super::tree::Params;

/// `middleware:`, by injection point.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct MiddlewareConfig {
    /// `registry`: wrap the namespace.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub registry: Vec<Middleware>,
    /// `repository`: wrap each repository.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub repository: Vec<Middleware>,
    /// `storage`: wrap the driver (cloudfront, redirect, rewrite).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub storage: Vec<Middleware>,
}

impl MiddlewareConfig {
    /// Every configured entry with its dotted key (`middleware.storage[0]`), for reports.
    pub fn entries(&self) -> impl Iterator<Item = (String, &Middleware)> {
        let points = [
            ("registry", &self.registry),
            ("repository", &self.repository),
            ("storage", &self.storage),
        ];
        points.into_iter().flat_map(|(point, list)| {
            list.iter()
                .enumerate()
                .map(move |(i, m)| (format!("middleware.{point}[{i}]"), m))
        })
    }
}

/// One middleware entry.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Middleware {
    /// `name`: which middleware (`cloudfront`, `redirect` …).
    pub name: String,
    /// `disabled`: keep configured but skip.
    pub disabled: bool,
    /// `options`: passed to the middleware as is.
    pub options: Params,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tree::parse_yaml;
    use crate::config::typed::Ctx;

    #[test]
    fn seed_block() {
        let yaml = "registry:\n  - name: ARegistryMiddleware\n    options:\n      foo: bar\nrepository:\n  - name: ARepositoryMiddleware\n    options:\n      foo: bar\nstorage:\n  - name: cloudfront\n    options:\n      baseurl: https://my.cloudfronted.domain.com/\n      privatekey: /path/to/pem\n      keypairid: cloudfrontkeypairid\n      duration: 3000\n";
        let mut ctx = Ctx::default();
        let m: MiddlewareConfig = ctx.typed(&parse_yaml(yaml).unwrap(), "middleware").unwrap();
        assert!(ctx.errors.is_empty() && ctx.warnings.is_empty(), "{ctx:?}");
        let names: Vec<_> = m
            .entries()
            .map(|(k, m)| format!("{k}={}", m.name))
            .collect();
        assert_eq!(
            names,
            [
                "middleware.registry[0]=ARegistryMiddleware",
                "middleware.repository[0]=ARepositoryMiddleware",
                "middleware.storage[0]=cloudfront"
            ]
        );
        assert_eq!(
            m.storage[0].options.text("duration").as_deref(),
            Some("3000")
        );
    }
}
