//! `REGISTRY_SECTION_KEY=value` overrides, applied to the YAML tree before typing.
//!
//! The rules are distribution's (`configuration/parser.go`): variables are applied in lexical
//! order, so `REGISTRY_STORAGE=s3` lands before `REGISTRY_STORAGE_S3_BUCKET`; the name after
//! `REGISTRY_` is split on `_` and walked through the schema ([`super::schema`]), struct fields
//! by Go field name, map keys created lower-case, numbers indexing lists (appending at the
//! end); the value is parsed as YAML. A variable that names no key is a warning, as there.
//!
//! Deliberate differences, each only where distribution would misbehave: names match in any
//! case; a map key that exists keeps its spelling instead of gaining a lower-case twin; a value
//! YAML cannot parse, or a list/map given for a scalar, is taken as plain text instead of
//! failing; and driver parameters whose names contain `_` (azure `max_retries`, gcs
//! `credentials.private_key`) are matched whole instead of being split into nested maps.

use super::schema::{Kind, ROOT};
use super::tree::{Node, parse_yaml};
use super::typed::Ctx;

/// Only variables starting with this (upper-case, as distribution requires) are overrides.
pub(crate) const PREFIX: &str = "REGISTRY_";

/// Storage keys that are settings rather than drivers (distribution's `Storage.Type`).
pub(crate) const STORAGE_RESERVED: &[&str] = &["maintenance", "cache", "delete", "redirect", "tag"];

/// Driver parameter names that contain `_`, so `MAX_RETRIES` is one key, not `max.retries`.
const UNDERSCORE_KEYS: &[&str] = &[
    "max_retries",
    "retry_delay",
    "project_id",
    "private_key_id",
    "private_key",
    "client_email",
    "client_id",
    "auth_uri",
    "token_uri",
    "auth_provider_x509_cert_url",
    "client_x509_cert_url",
];

/// Applies every `REGISTRY_*` variable in `env` to `root`, recording warnings and errors in `ctx`.
pub(crate) fn apply(root: &mut Node, env: &[(String, String)], ctx: &mut Ctx) {
    let mut vars: Vec<&(String, String)> =
        env.iter().filter(|(k, _)| k.starts_with(PREFIX)).collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, value) in vars {
        let parts: Vec<&str> = name[PREFIX.len()..].split('_').collect();
        if parts.iter().any(|p| p.is_empty()) {
            ctx.warn(unknown(name));
            continue;
        }
        let mut walk = Walk {
            name,
            payload: value,
            ctx,
        };
        if let Err(Miss::Unknown) = walk.descend(root, &ROOT, &parts, "") {
            ctx.warn(unknown(name));
        }
    }
}

fn unknown(name: &str) -> String {
    format!("environment variable {name} names no configuration key; ignored")
}

enum Miss {
    Unknown,
    Failed,
}

struct Walk<'a> {
    name: &'a str,
    payload: &'a str,
    ctx: &'a mut Ctx,
}

impl Walk<'_> {
    /// Walks `parts` (never empty) below `node`, whose schema is `kind`, and sets the value.
    fn descend(
        &mut self,
        node: &mut Node,
        kind: &'static Kind,
        parts: &[&str],
        path: &str,
    ) -> Result<(), Miss> {
        match kind {
            Kind::Leaf => Err(Miss::Unknown),
            Kind::Struct(fields) => {
                let field = fields
                    .iter()
                    .find(|f| f.matches(parts[0]))
                    .ok_or(Miss::Unknown)?;
                let child = entry(as_map(node), field.key);
                self.next(child, &field.kind, &parts[1..], &join(path, field.key))
            }
            Kind::Map { elem, shorthand } => {
                if *shorthand && let Node::Str(name) = node {
                    *node = Node::Map(vec![(name.clone(), Node::Map(Vec::new()))]);
                }
                self.map_entry(node, elem, parts, path)
            }
            Kind::Seq(elem) => self.seq_entry(node, elem, parts, path),
            Kind::Any => match node {
                Node::Seq(_) => self.seq_entry(node, &Kind::Any, parts, path),
                _ => self.map_entry(node, &Kind::Any, parts, path),
            },
        }
    }

    fn next(
        &mut self,
        child: &mut Node,
        kind: &'static Kind,
        rest: &[&str],
        path: &str,
    ) -> Result<(), Miss> {
        if rest.is_empty() {
            self.assign(child, kind, path);
            Ok(())
        } else {
            self.descend(child, kind, rest, path)
        }
    }

    fn map_entry(
        &mut self,
        node: &mut Node,
        elem: &'static Kind,
        parts: &[&str],
        path: &str,
    ) -> Result<(), Miss> {
        let map = as_map(node);
        let mut take = 1;
        let mut existing = None;
        for n in (1..=parts.len()).rev() {
            let joined = parts[..n].join("_");
            if let Some(k) = map
                .iter()
                .map(|(k, _)| k)
                .find(|k| k.eq_ignore_ascii_case(&joined))
            {
                (take, existing) = (n, Some(k.clone()));
                break;
            }
            if n > 1 && UNDERSCORE_KEYS.contains(&joined.to_ascii_lowercase().as_str()) {
                take = n;
                break;
            }
        }
        let key = existing.unwrap_or_else(|| parts[..take].join("_").to_ascii_lowercase());
        let child = entry(map, &key);
        self.next(child, elem, &parts[take..], &join(path, &key))
    }

    fn seq_entry(
        &mut self,
        node: &mut Node,
        elem: &'static Kind,
        parts: &[&str],
        path: &str,
    ) -> Result<(), Miss> {
        let index: usize = parts[0].parse().map_err(|_| Miss::Unknown)?;
        if !matches!(node, Node::Seq(_)) {
            *node = Node::Seq(Vec::new());
        }
        let Node::Seq(items) = node else {
            unreachable!("set to a list just above")
        };
        if index > items.len() {
            self.ctx.error(format!(
                "environment variable {}: {path} has {} item(s), so index {index} would leave a gap",
                self.name,
                items.len()
            ));
            return Err(Miss::Failed);
        }
        if index == items.len() {
            items.push(Node::Null);
        }
        self.next(
            &mut items[index],
            elem,
            &parts[1..],
            &format!("{path}[{index}]"),
        )
    }

    fn assign(&mut self, target: &mut Node, kind: &Kind, path: &str) {
        let parsed =
            parse_yaml(self.payload).unwrap_or_else(|_| Node::Str(self.payload.to_owned()));
        let value = match (kind, parsed) {
            (
                Kind::Leaf,
                Node::Bool(_) | Node::Int(_) | Node::Float(_) | Node::Seq(_) | Node::Map(_),
            ) => Node::Str(self.payload.trim().to_owned()),
            (
                Kind::Map {
                    shorthand: true, ..
                },
                Node::Str(name),
            ) => {
                if path == "storage"
                    && let Node::Map(old) = &*target
                {
                    let dropped: Vec<String> = old
                        .iter()
                        .filter(|(k, _)| STORAGE_RESERVED.contains(&k.as_str()))
                        .map(|(k, _)| format!("storage.{k}"))
                        .collect();
                    if !dropped.is_empty() {
                        self.ctx.warn(format!(
                            "{}={name} replaces the whole storage section, as in distribution: {} from the file no longer apply",
                            self.name,
                            dropped.join(", ")
                        ));
                    }
                }
                Node::Map(vec![(name, Node::Map(Vec::new()))])
            }
            (_, parsed) => parsed,
        };
        *target = value;
    }
}

fn join(path: &str, key: &str) -> String {
    super::typed::join(path, key)
}

/// The node as a map, replacing a scalar or null (a section left empty) with an empty map.
fn as_map(node: &mut Node) -> &mut Vec<(String, Node)> {
    if !matches!(node, Node::Map(_)) {
        *node = Node::Map(Vec::new());
    }
    match node {
        Node::Map(entries) => entries,
        _ => unreachable!("set to a map just above"),
    }
}

/// The value under `key`, inserted as null (an empty section) when missing.
fn entry<'a>(map: &'a mut Vec<(String, Node)>, key: &str) -> &'a mut Node {
    let index = match map.iter().position(|(k, _)| k == key) {
        Some(i) => i,
        None => {
            map.push((key.to_owned(), Node::Null));
            map.len() - 1
        }
    };
    &mut map[index].1
}

#[cfg(test)]
mod tests;
