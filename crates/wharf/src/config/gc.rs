//! `gc:`: online garbage collection while the registry serves (wharf's addition, not a
//! distribution key; distribution only has the offline `registry garbage-collect`).
//!
//! `crate::gc::online` runs it. Being wharf's own section it uses `deny_unknown_fields`: a
//! misspelt `dryrun` must stop start-up rather than delete for real.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::de;
use super::tree::Node;
use super::typed::Ctx;

/// Default time between collections.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(3600);

/// Default grace period: blobs and links written more recently are never collected.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(3600);

/// `gc:`; every key optional, collection off unless `enabled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct GcConfig {
    /// `enabled`: run the collector in the background of `wharf serve`.
    pub enabled: bool,
    /// `interval`: time between the starts of two rounds.
    #[serde(with = "de::duration")]
    pub interval: Duration,
    /// `grace` (alias `graceperiod`): anything written or touched more recently is kept, so a
    /// push that uploads layers now and its manifest later never loses them.
    #[serde(alias = "graceperiod", with = "de::duration")]
    pub grace: Duration,
    /// `deleteuntagged`: also remove manifests nothing keeps alive (no tag, not a child of a
    /// kept index, not a referrer of a kept manifest) once older than `grace`.
    #[serde(rename = "deleteuntagged")]
    pub delete_untagged: bool,
    /// `dryrun`: log and count what would be deleted, delete nothing.
    #[serde(rename = "dryrun")]
    pub dry_run: bool,
}

impl Default for GcConfig {
    fn default() -> Self {
        GcConfig {
            enabled: false,
            interval: DEFAULT_INTERVAL,
            grace: DEFAULT_GRACE,
            delete_untagged: false,
            dry_run: false,
        }
    }
}

/// Reads `gc:`, refusing a zero interval or grace when collection is enabled.
pub(crate) fn from_node(node: &Node, ctx: &mut Ctx) -> Option<GcConfig> {
    if matches!(node, Node::Null) {
        return Some(GcConfig::default());
    }
    let before = ctx.errors.len();
    let gc: GcConfig = ctx.typed(node, "gc")?;
    if gc.enabled && gc.interval.is_zero() {
        ctx.error("gc.interval must be more than zero");
    }
    if gc.enabled && gc.grace.is_zero() {
        ctx.error(
            "gc.grace must be more than zero: without it a concurrent push could lose its layers",
        );
    }
    (ctx.errors.len() == before).then_some(gc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tree::parse_yaml;

    fn read(yaml: &str) -> (Option<GcConfig>, Vec<String>) {
        let mut ctx = Ctx::default();
        let gc = from_node(&parse_yaml(yaml).unwrap(), &mut ctx);
        (gc, ctx.errors)
    }

    #[test]
    fn absent_section_is_off_with_defaults() {
        let (gc, errors) = read("");
        assert!(errors.is_empty());
        assert_eq!(gc, Some(GcConfig::default()));
        assert!(!GcConfig::default().enabled);
    }

    #[test]
    fn full_section_parses_go_durations_and_lenient_booleans() {
        let (gc, errors) = read(
            "enabled: \"true\"\ninterval: 10m\ngrace: 1h30m\ndeleteuntagged: yes\ndryrun: on\n",
        );
        assert!(errors.is_empty(), "{errors:?}");
        let gc = gc.unwrap();
        assert!(gc.enabled && gc.delete_untagged && gc.dry_run);
        assert_eq!(gc.interval, Duration::from_secs(600));
        assert_eq!(gc.grace, Duration::from_secs(5400));
        let (gc, _) = read("enabled: true\ngraceperiod: 3s\n");
        assert_eq!(gc.unwrap().grace, Duration::from_secs(3));
    }

    #[test]
    fn unknown_keys_and_zero_durations_are_errors() {
        let (gc, errors) = read("enabled: true\ndry-run: true\n");
        assert!(gc.is_none());
        assert!(errors[0].contains("dry-run"), "{errors:?}");
        let (_, errors) = read("enabled: true\ninterval: 0s\ngrace: 0s\n");
        assert_eq!(errors.len(), 2, "{errors:?}");
        let (gc, errors) = read("enabled: false\ngrace: 0s\n");
        assert!(errors.is_empty() && gc.is_some(), "off: nothing to refuse");
        let (_, errors) = read("interval: soon\n");
        assert!(errors[0].starts_with("gc.interval"), "{errors:?}");
    }

    #[test]
    fn env_overrides_apply_and_config_check_shows_the_section() {
        let env: Vec<(String, String)> = [
            ("REGISTRY_GC_ENABLED", "true"),
            ("REGISTRY_GC_INTERVAL", "30s"),
            ("REGISTRY_GC_GRACE", "2h"),
            ("REGISTRY_GC_DELETEUNTAGGED", "true"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let loaded = crate::config::Config::parse("version: 0.1\nstorage: inmemory\n", &env)
            .unwrap_or_else(|e| panic!("{e}"));
        let gc = loaded.config.gc;
        assert!(gc.enabled && gc.delete_untagged && !gc.dry_run);
        assert_eq!(gc.interval, Duration::from_secs(30));
        assert_eq!(gc.grace, Duration::from_secs(7200));
        let yaml = loaded.config.redacted_yaml();
        assert!(yaml.contains("gc:\n"), "{yaml}");
        assert!(yaml.contains("grace: 2h"), "{yaml}");
        let plain = crate::config::Config::parse("version: 0.1\nstorage: inmemory\n", &[])
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!plain.config.redacted_yaml().contains("gc:"));
    }
}
