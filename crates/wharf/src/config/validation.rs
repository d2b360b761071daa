//! Which manifests are accepted: `validation:`, plus `policy:` and `compatibility:`, the other
//! two sections that decide what content a push may carry.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::tree::Node;
use super::typed::Ctx;

/// `validation:`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct ValidationConfig {
    /// `enabled`: deprecated opposite of `disabled`, read for old files.
    #[serde(skip_serializing)]
    pub enabled: bool,
    /// `disabled`: skip the checks below.
    pub disabled: bool,
    /// `manifests`: rules for pushed manifests.
    pub manifests: ManifestValidation,
}

/// `validation.manifests`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct ManifestValidation {
    /// `urls`: which foreign-layer URLs a manifest may reference.
    pub urls: UrlRules,
    /// `indexes`: which platform images of an index must already exist.
    pub indexes: IndexValidation,
}

/// `validation.manifests.urls`: Go regular expressions; with no `allow`, no URL is accepted.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct UrlRules {
    /// `allow`: every URL must match one of these.
    pub allow: Vec<String>,
    /// `deny`: no URL may match any of these.
    pub deny: Vec<String>,
}

/// `validation.manifests.indexes`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct IndexValidation {
    /// `platforms`: all (default), none, or list.
    pub platforms: Platforms,
    /// `platformlist`: the platforms checked when `platforms: list`.
    #[serde(rename = "platformlist")]
    pub platform_list: Vec<Platform>,
}

/// How an image index's platform manifests are checked on push.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Platforms {
    /// Every referenced manifest must exist.
    #[default]
    All,
    /// Nothing is checked.
    None,
    /// Only the platforms in `platformlist`.
    List,
}

impl<'de> Deserialize<'de> for Platforms {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "all" => Ok(Platforms::All),
            "none" => Ok(Platforms::None),
            "list" => Ok(Platforms::List),
            _ => Err(serde::de::Error::custom(format!(
                "expected all, none or list, got {s:?}"
            ))),
        }
    }
}

impl Serialize for Platforms {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match self {
            Platforms::All => "all",
            Platforms::None => "none",
            Platforms::List => "list",
        })
    }
}

/// One `platformlist` entry.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Platform {
    /// `architecture`, e.g. amd64.
    pub architecture: String,
    /// `os`, e.g. linux.
    pub os: String,
}

/// `policy:`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct PolicyConfig {
    /// `repository`: per-repository rules.
    pub repository: RepositoryPolicy,
}

/// `policy.repository`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct RepositoryPolicy {
    /// `classes`: allowed repository classes (config media types); empty allows all.
    pub classes: Vec<String>,
}

/// `compatibility:`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct CompatibilityConfig {
    /// `schema1`: Docker schema 1 manifests (deprecated since 2015).
    pub schema1: Schema1,
}

/// `compatibility.schema1`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Schema1 {
    /// `signingkeyfile`: key that signed schema 1 manifests.
    #[serde(rename = "signingkeyfile")]
    pub signing_key_file: String,
    /// `enabled`: accept schema 1.
    pub enabled: bool,
}

/// Reads `validation:`, checking that `platformlist` is only given with `platforms: list`.
pub(crate) fn from_node(node: &Node, ctx: &mut Ctx) -> Option<ValidationConfig> {
    let v: ValidationConfig = ctx.typed(node, "validation")?;
    if v.enabled {
        ctx.warn(
            "validation.enabled is deprecated; validation is on unless validation.disabled is true",
        );
    }
    let indexes = &v.manifests.indexes;
    if indexes.platforms == Platforms::List && indexes.platform_list.is_empty() {
        ctx.error("validation.manifests.indexes.platformlist: required when platforms is list");
        return None;
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tree::parse_yaml;

    #[test]
    fn reference_block() {
        let yaml = "manifests:\n  urls:\n    allow:\n      - ^https?://([^/]+\\.)*example\\.com/\n    deny:\n      - ^https?://www\\.example\\.com/\n  indexes:\n    platforms: List\n    platformlist:\n    - architecture: amd64\n      os: linux\n";
        let mut ctx = Ctx::default();
        let v = from_node(&parse_yaml(yaml).unwrap(), &mut ctx).unwrap();
        assert!(ctx.errors.is_empty() && ctx.warnings.is_empty(), "{ctx:?}");
        assert_eq!(
            v.manifests.urls.allow,
            ["^https?://([^/]+\\.)*example\\.com/"]
        );
        assert_eq!(v.manifests.indexes.platforms, Platforms::List);
        assert_eq!(v.manifests.indexes.platform_list[0].os, "linux");
    }

    #[test]
    fn problems() {
        let mut ctx = Ctx::default();
        assert!(
            from_node(
                &parse_yaml("manifests: {indexes: {platforms: some}}").unwrap(),
                &mut ctx
            )
            .is_none()
        );
        assert_eq!(
            ctx.errors,
            ["validation.manifests.indexes.platforms: expected all, none or list, got \"some\""]
        );
        let mut ctx = Ctx::default();
        assert!(
            from_node(
                &parse_yaml("manifests: {indexes: {platforms: list}}").unwrap(),
                &mut ctx
            )
            .is_none()
        );
        assert_eq!(
            ctx.errors,
            ["validation.manifests.indexes.platformlist: required when platforms is list"]
        );
    }
}
