//! The untyped YAML tree that environment overrides edit before anything is typed.
//!
//! go-yaml and distribution see a config file as ordered maps of scalars; [`Node`] keeps exactly
//! that (file order matters for `http.headers`), and [`Params`] exposes the free-form parameter
//! maps (driver parameters, middleware options) with secrets masked in `Debug` and output.
//! Depends on nothing else in `config`.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

/// Text shown instead of any secret value.
pub const MASK: &str = "*****";

/// One YAML value as go-yaml decodes it into `interface{}`; maps keep file order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(String, Node)>),
}

impl Node {
    /// The value under `key` when this is a map.
    pub(crate) fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// True for a missing value: YAML `null`, `~` or nothing after the colon.
    pub(crate) fn is_null(&self) -> bool {
        matches!(self, Node::Null)
    }

    /// The text of a scalar as go-yaml would put it into a string field.
    pub(crate) fn scalar_text(&self) -> Option<String> {
        match self {
            Node::Null => Some(String::new()),
            Node::Bool(b) => Some(b.to_string()),
            Node::Int(i) => Some(i.to_string()),
            Node::Float(f) => Some(f.to_string()),
            Node::Str(s) => Some(s.clone()),
            Node::Seq(_) | Node::Map(_) => None,
        }
    }

    /// How a value is described in error messages ("a list", "the string \"x\"").
    pub(crate) fn describe(&self) -> String {
        match self {
            Node::Null => "nothing".to_owned(),
            Node::Bool(b) => format!("{b}"),
            Node::Int(i) => format!("{i}"),
            Node::Float(f) => format!("{f}"),
            Node::Str(s) => format!("{s:?}"),
            Node::Seq(_) => "a list".to_owned(),
            Node::Map(_) => "a map".to_owned(),
        }
    }
}

/// Parses YAML text into a tree with go-yaml's leniencies (duplicate keys: last wins).
///
/// Errors never quote the source: a syntax error next to a password must not print it.
pub(crate) fn parse_yaml(text: &str) -> Result<Node, String> {
    if text.trim().is_empty() {
        return Ok(Node::Null);
    }
    serde_saphyr::from_str_with_options::<Node>(text, yaml_options()).map_err(|e| e.to_string())
}

/// Reads the top-level `version` as written (`0.1` must stay the string "0.1", not a float).
pub(crate) fn version_text(text: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct VersionOnly {
        version: Option<String>,
    }
    serde_saphyr::from_str_with_options::<VersionOnly>(text, yaml_options())
        .ok()
        .and_then(|v| v.version)
}

fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::LastWins,
        // `yes`/`on` stay text in the tree, so a string field keeps "yes"; bool fields still
        // accept them (`de::parse_bool`)
        strict_booleans: true,
        leading_zero_numbers_as_strings: true,
        underscored_numbers_as_strings: true,
        with_snippet: false,
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(i64::try_from(v).map_or_else(|_| Node::Str(v.to_string()), Node::Int))
    }
    fn visit_i128<E>(self, v: i128) -> Result<Node, E> {
        Ok(i64::try_from(v).map_or_else(|_| Node::Str(v.to_string()), Node::Int))
    }
    fn visit_u128<E>(self, v: u128) -> Result<Node, E> {
        Ok(i64::try_from(v).map_or_else(|_| Node::Str(v.to_string()), Node::Int))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }
    fn visit_bytes<E>(self, v: &[u8]) -> Result<Node, E> {
        Ok(Node::Str(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries: Vec<(String, Node)> = Vec::new();
        while let Some(key) = map.next_key::<Node>()? {
            let Some(key) = key.scalar_text() else {
                return Err(de::Error::custom("a map key must be a scalar"));
            };
            let value = map.next_value::<Node>()?;
            match entries.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = value,
                None => entries.push((key, value)),
            }
        }
        Ok(Node::Map(entries))
    }
}

/// True when a parameter name holds a credential (distribution's drivers, middleware, hooks).
pub(crate) fn is_secret_key(key: &str) -> bool {
    const MARKERS: &[&str] = &[
        "secret",
        "password",
        "passwd",
        "token",
        "accesskey",
        "accountkey",
        "privatekey",
        "private_key",
        "apikey",
        "licensekey",
        "credential",
    ];
    let key = key.to_ascii_lowercase();
    MARKERS.iter().any(|m| key.contains(m))
}

/// A node serialized with every value under a secret-looking key replaced by [`MASK`].
pub(crate) struct Masked<'a>(pub(crate) &'a Node);

impl Serialize for Masked<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Node::Null => s.serialize_unit(),
            Node::Bool(b) => s.serialize_bool(*b),
            Node::Int(i) => s.serialize_i64(*i),
            Node::Float(f) => s.serialize_f64(*f),
            Node::Str(v) => s.serialize_str(v),
            Node::Seq(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&Masked(item))?;
                }
                seq.end()
            }
            Node::Map(entries) => serialize_masked_map(entries, s),
        }
    }
}

fn serialize_masked_map<S: Serializer>(
    entries: &[(String, Node)],
    s: S,
) -> Result<S::Ok, S::Error> {
    let mut map = s.serialize_map(Some(entries.len()))?;
    for (k, v) in entries {
        if is_secret_key(k) && !v.is_null() {
            map.serialize_entry(k, MASK)?;
        } else {
            map.serialize_entry(k, &Masked(v))?;
        }
    }
    map.end()
}

impl Serialize for Node {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Masked(self).serialize(s)
    }
}

/// Free-form parameters (distribution's `map[string]interface{}`) in file order.
///
/// Used where distribution passes a map through to a plug-in: storage driver parameters,
/// middleware options, auth scheme parameters. `Debug` and serialization mask credentials.
#[derive(Clone, Default, PartialEq)]
pub struct Params(pub(crate) Vec<(String, Node)>);

impl Params {
    /// True when no parameter is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Parameter names in file order, so callers can report ones they do not know.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_str())
    }

    /// A scalar parameter as text (numbers and booleans too, as distribution's drivers accept).
    pub fn text(&self, key: &str) -> Option<String> {
        self.node(key).and_then(Node::scalar_text)
    }

    /// The parameters as JSON, unmasked: for a backend that deserializes its typed params.
    pub fn to_json(&self) -> serde_json::Value {
        fn conv(n: &Node) -> serde_json::Value {
            match n {
                Node::Null => serde_json::Value::Null,
                Node::Bool(b) => (*b).into(),
                Node::Int(i) => (*i).into(),
                Node::Float(f) => serde_json::Number::from_f64(*f)
                    .map_or(serde_json::Value::Null, serde_json::Value::Number),
                Node::Str(s) => s.clone().into(),
                Node::Seq(items) => items.iter().map(conv).collect(),
                Node::Map(entries) => entries
                    .iter()
                    .map(|(k, v)| (k.clone(), conv(v)))
                    .collect::<serde_json::Map<_, _>>()
                    .into(),
            }
        }
        conv(&Node::Map(self.0.clone()))
    }

    pub(crate) fn node(&self, key: &str) -> Option<&Node> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub(crate) fn from_node(node: &Node) -> Option<Params> {
        match node {
            Node::Null => Some(Params::default()),
            Node::Map(entries) => Some(Params(entries.clone())),
            _ => None,
        }
    }
}

impl fmt::Debug for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let masked = serde_json::to_string(&Masked(&Node::Map(self.0.clone())))
            .unwrap_or_else(|_| "{..}".to_owned());
        f.write_str(&masked)
    }
}

impl Serialize for Params {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_masked_map(&self.0, s)
    }
}

impl<'de> Deserialize<'de> for Params {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let node = Node::deserialize(d)?;
        Params::from_node(&node).ok_or_else(|| {
            de::Error::custom(format!(
                "expected a map of parameters, got {}",
                node.describe()
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_file_order_and_go_scalars() {
        let node = parse_yaml("b: 1\na: yes\nc: 0755\nd: 1_000\ne: ~\nf: 0.1\n").unwrap();
        let Node::Map(entries) = &node else {
            panic!("not a map")
        };
        let keys: Vec<_> = entries.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["b", "a", "c", "d", "e", "f"]);
        assert_eq!(node.get("b"), Some(&Node::Int(1)));
        assert_eq!(node.get("a"), Some(&Node::Str("yes".into())));
        assert_eq!(node.get("c"), Some(&Node::Str("0755".into())));
        assert_eq!(node.get("d"), Some(&Node::Str("1_000".into())));
        assert_eq!(node.get("e"), Some(&Node::Null));
        assert_eq!(node.get("f"), Some(&Node::Float(0.1)));
    }

    #[test]
    fn duplicate_keys_last_wins_like_go_yaml_v2() {
        let node = parse_yaml("a: 1\na: 2\n").unwrap();
        assert_eq!(node, Node::Map(vec![("a".into(), Node::Int(2))]));
    }

    #[test]
    fn version_stays_text() {
        assert_eq!(
            version_text("version: 0.1\nlog: {}\n").as_deref(),
            Some("0.1")
        );
        assert_eq!(version_text("log: {}\n"), None);
    }

    #[test]
    fn empty_text_is_null() {
        assert_eq!(parse_yaml("  \n").unwrap(), Node::Null);
    }

    #[test]
    fn syntax_errors_do_not_quote_the_source() {
        let err = parse_yaml("a:\n  password: hunter2\n b: [\n").unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn params_mask_credentials_in_debug_and_output() {
        let node = parse_yaml(
            "accesskey: AKIA\nsecretkey: s3cr3t\nregion: eu\ncredentials:\n  private_key: pk\n",
        )
        .unwrap();
        let params = Params::from_node(&node).unwrap();
        let debug = format!("{params:?}");
        assert!(
            !debug.contains("AKIA") && !debug.contains("s3cr3t") && !debug.contains("pk\""),
            "{debug}"
        );
        assert!(debug.contains("eu"));
        let yaml = serde_saphyr::to_string(&params).unwrap();
        assert!(!yaml.contains("s3cr3t") && yaml.contains(MASK), "{yaml}");
        assert_eq!(params.text("region").as_deref(), Some("eu"));
        assert_eq!(params.to_json()["secretkey"], "s3cr3t");
    }
}
