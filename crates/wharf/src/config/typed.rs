//! Typing the tree: a serde `Deserializer` over [`Node`] whose errors name their key.
//!
//! Every section is deserialized from a [`Node`] through [`NodeDe`], which is driven by the
//! target type the way go-yaml is: a `bool` field accepts `true`, `"true"`, `yes` and `on`; an
//! integer field accepts `"100"`; a string field accepts `100` (rules in [`super::de`]).
//! Errors carry the dotted path of the offending key, and keys a section does not know are
//! collected as warnings instead of being rejected (distribution ignores them too).

use std::cell::RefCell;
use std::fmt;

use serde::de::value::StrDeserializer;
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};

use super::de::{parse_bool, parse_int};
use super::tree::Node;

/// Problems and warnings gathered while reading the whole configuration, so all are reported at once.
#[derive(Debug, Default)]
pub(crate) struct Ctx {
    pub(crate) warnings: Vec<String>,
    pub(crate) errors: Vec<String>,
    /// Every typed section path with the keys its Rust type knows (checked against the env schema).
    pub(crate) struct_fields: Vec<(String, &'static [&'static str])>,
}

impl Ctx {
    /// Types `node` as `T`, recording an error naming `path` on failure.
    pub(crate) fn typed<T: DeserializeOwned>(&mut self, node: &Node, path: &str) -> Option<T> {
        let state = RefCell::new(State::default());
        let de = NodeDe {
            node,
            path: path.to_owned(),
            state: &state,
        };
        let result = T::deserialize(de);
        let state = state.into_inner();
        self.warnings.extend(state.warnings);
        self.struct_fields.extend(state.struct_fields);
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.errors.push(e.with_path(path).to_string());
                None
            }
        }
    }

    /// Records a problem that stops start-up.
    pub(crate) fn error(&mut self, msg: impl Into<String>) {
        self.errors.push(msg.into());
    }

    /// Records something the operator should know but that does not stop start-up.
    pub(crate) fn warn(&mut self, msg: impl Into<String>) {
        self.warnings.push(msg.into());
    }
}

#[derive(Default)]
struct State {
    warnings: Vec<String>,
    struct_fields: Vec<(String, &'static [&'static str])>,
}

/// A typing error; the path is filled in by the innermost map entry that saw it.
#[derive(Debug)]
pub(crate) struct DeError {
    path: Option<String>,
    msg: String,
}

impl DeError {
    fn with_path(mut self, path: &str) -> Self {
        if self.path.is_none() && !path.is_empty() {
            self.path = Some(path.to_owned());
        }
        self
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(p) => write!(f, "{p}: {}", self.msg),
            None => f.write_str(&self.msg),
        }
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError {
            path: None,
            msg: msg.to_string(),
        }
    }
}

/// Joins a child key onto a dotted path.
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// The serde deserializer over one [`Node`]; see the module doc for its leniencies.
pub(crate) struct NodeDe<'a> {
    node: &'a Node,
    path: String,
    state: &'a RefCell<State>,
}

impl<'a> NodeDe<'a> {
    fn child(&self, node: &'a Node, path: String) -> NodeDe<'a> {
        NodeDe {
            node,
            path,
            state: self.state,
        }
    }

    fn err(&self, msg: impl fmt::Display) -> DeError {
        DeError {
            path: (!self.path.is_empty()).then(|| self.path.clone()),
            msg: msg.to_string(),
        }
    }

    fn int(&self) -> Result<i64, DeError> {
        match self.node {
            Node::Int(i) => Ok(*i),
            Node::Null => Ok(0),
            Node::Float(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Ok(*f as i64),
            Node::Str(s) => {
                parse_int(s).ok_or_else(|| self.err(format!("expected an integer, got {s:?}")))
            }
            other => Err(self.err(format!("expected an integer, got {}", other.describe()))),
        }
    }
}

macro_rules! lenient_ints {
    ($($method:ident),*) => {$(
        fn $method<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
            let i = self.int()?;
            v.visit_i64(i).map_err(|e: DeError| e.with_path(&self.path))
        }
    )*};
}

impl<'de> de::Deserializer<'de> for NodeDe<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let r = match self.node {
            Node::Null => v.visit_unit(),
            Node::Bool(b) => v.visit_bool(*b),
            Node::Int(i) => v.visit_i64(*i),
            Node::Float(f) => v.visit_f64(*f),
            Node::Str(s) => v.visit_str(s),
            Node::Seq(items) => {
                return v.visit_seq(SeqDe {
                    de: &self,
                    items: items.iter(),
                    index: 0,
                });
            }
            Node::Map(entries) => {
                return v.visit_map(MapDe {
                    de: &self,
                    entries: entries.iter(),
                    value: None,
                    fields: None,
                });
            }
        };
        r.map_err(|e: DeError| e.with_path(&self.path))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let b = match self.node {
            Node::Bool(b) => *b,
            Node::Null => false,
            Node::Str(s) => parse_bool(s)
                .ok_or_else(|| self.err(format!("expected true or false, got {s:?}")))?,
            other => {
                return Err(self.err(format!("expected true or false, got {}", other.describe())));
            }
        };
        v.visit_bool(b)
    }

    lenient_ints!(
        deserialize_i8,
        deserialize_i16,
        deserialize_i32,
        deserialize_i64,
        deserialize_u8,
        deserialize_u16,
        deserialize_u32,
        deserialize_u64
    );

    fn deserialize_f32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_f64(v)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let f = match self.node {
            Node::Float(f) => *f,
            Node::Int(i) => *i as f64,
            Node::Null => 0.0,
            Node::Str(s) => s
                .trim()
                .parse()
                .map_err(|_| self.err(format!("expected a number, got {s:?}")))?,
            other => return Err(self.err(format!("expected a number, got {}", other.describe()))),
        };
        v.visit_f64(f)
    }

    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match self.node.scalar_text() {
            Some(text) => v
                .visit_string(text)
                .map_err(|e: DeError| e.with_path(&self.path)),
            None => Err(self.err(format!(
                "expected a single value, got {}",
                self.node.describe()
            ))),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }

    fn deserialize_char<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match self.node {
            Node::Null => v.visit_none(),
            _ => v.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        v.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, DeError> {
        v.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, DeError> {
        v.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        const EMPTY: &[Node] = &[];
        let items = match self.node {
            Node::Seq(items) => items.as_slice(),
            Node::Null => EMPTY,
            other => return Err(self.err(format!("expected a list, got {}", other.describe()))),
        };
        v.visit_seq(SeqDe {
            de: &self,
            items: items.iter(),
            index: 0,
        })
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, v: V) -> Result<V::Value, DeError> {
        self.deserialize_seq(v)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        v: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(v)
    }

    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.map(v, None)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        self.state
            .borrow_mut()
            .struct_fields
            .push((self.path.clone(), fields));
        self.map(v, Some(fields))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        match self.node {
            Node::Str(s) => {
                let unit: StrDeserializer<'_, DeError> = s.as_str().into_deserializer();
                v.visit_enum(unit)
                    .map_err(|e: DeError| e.with_path(&self.path))
            }
            other => Err(self.err(format!("expected a single word, got {}", other.describe()))),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        v.visit_unit()
    }
}

impl NodeDe<'_> {
    fn map<'de, V: Visitor<'de>>(
        self,
        v: V,
        fields: Option<&'static [&'static str]>,
    ) -> Result<V::Value, DeError> {
        const EMPTY: &[(String, Node)] = &[];
        let entries = match self.node {
            Node::Map(entries) => entries.as_slice(),
            Node::Null => EMPTY,
            other => {
                return Err(self.err(format!("expected a map of keys, got {}", other.describe())));
            }
        };
        v.visit_map(MapDe {
            de: &self,
            entries: entries.iter(),
            value: None,
            fields,
        })
    }
}

struct SeqDe<'a, 'b> {
    de: &'b NodeDe<'a>,
    items: std::slice::Iter<'a, Node>,
    index: usize,
}

impl<'de> SeqAccess<'de> for SeqDe<'_, '_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        let Some(item) = self.items.next() else {
            return Ok(None);
        };
        let path = format!("{}[{}]", self.de.path, self.index);
        self.index += 1;
        let child = self.de.child(item, path.clone());
        seed.deserialize(child)
            .map(Some)
            .map_err(|e| e.with_path(&path))
    }
}

struct MapDe<'a, 'b> {
    de: &'b NodeDe<'a>,
    entries: std::slice::Iter<'a, (String, Node)>,
    value: Option<(&'a str, &'a Node)>,
    fields: Option<&'static [&'static str]>,
}

impl<'de> MapAccess<'de> for MapDe<'_, '_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        if let Some(fields) = self.fields
            && !fields.contains(&key.as_str())
        {
            let path = join(&self.de.path, key);
            self.de
                .state
                .borrow_mut()
                .warnings
                .push(format!("unknown key {path} is ignored"));
        }
        self.value = Some((key, value));
        let key_de: StrDeserializer<'_, DeError> = key.as_str().into_deserializer();
        seed.deserialize(key_de).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let Some((key, value)) = self.value.take() else {
            return Err(de::Error::custom("value requested before key"));
        };
        let path = join(&self.de.path, key);
        let child = self.de.child(value, path.clone());
        seed.deserialize(child).map_err(|e| e.with_path(&path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::de::duration;
    use crate::config::tree::parse_yaml;
    use serde::Deserialize;
    use std::time::Duration;

    #[derive(Debug, Deserialize, PartialEq, Default)]
    #[serde(default)]
    struct Sample {
        flag: bool,
        count: u32,
        name: String,
        #[serde(with = "duration")]
        wait: Duration,
        list: Vec<String>,
        inner: Inner,
    }

    #[derive(Debug, Deserialize, PartialEq, Default)]
    #[serde(default)]
    struct Inner {
        level: u8,
    }

    #[test]
    fn type_driven_leniency() {
        let mut ctx = Ctx::default();
        let node = parse_yaml("flag: \"yes\"\ncount: \"100\"\nname: 12\nwait: 1h\nlist: [a, b]\ninner: {level: '3'}\n").unwrap();
        let s = ctx.typed::<Sample>(&node, "sample").unwrap();
        assert_eq!(
            s,
            Sample {
                flag: true,
                count: 100,
                name: "12".into(),
                wait: Duration::from_secs(3600),
                list: vec!["a".into(), "b".into()],
                inner: Inner { level: 3 },
            }
        );
        assert!(ctx.errors.is_empty() && ctx.warnings.is_empty());
        let null = ctx
            .typed::<Sample>(&parse_yaml("flag:\nwait:\n").unwrap(), "sample")
            .unwrap();
        assert_eq!(null, Sample::default());
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            (
                "flag: maybe",
                "sample.flag: expected true or false, got \"maybe\"",
            ),
            (
                "count: lots",
                "sample.count: expected an integer, got \"lots\"",
            ),
            ("count: -1", "sample.count: invalid value"),
            ("inner: {level: 300}", "sample.inner.level: invalid value"),
            ("wait: soon", "sample.wait: expected a duration"),
            (
                "list: [a, [b]]",
                "sample.list[1]: expected a single value, got a list",
            ),
            (
                "name: {a: 1}",
                "sample.name: expected a single value, got a map",
            ),
            ("inner: 5", "sample.inner: expected a map of keys, got 5"),
        ];
        for (yaml, want) in cases {
            let mut ctx = Ctx::default();
            assert!(
                ctx.typed::<Sample>(&parse_yaml(yaml).unwrap(), "sample")
                    .is_none(),
                "{yaml}"
            );
            assert!(ctx.errors[0].starts_with(want), "{yaml}: {}", ctx.errors[0]);
        }
    }

    #[test]
    fn unknown_keys_are_warnings_with_their_path() {
        let mut ctx = Ctx::default();
        let node = parse_yaml("flag: true\nflg: true\ninner: {levle: 2}\n").unwrap();
        assert!(ctx.typed::<Sample>(&node, "sample").is_some());
        assert_eq!(
            ctx.warnings,
            [
                "unknown key sample.flg is ignored",
                "unknown key sample.inner.levle is ignored"
            ]
        );
    }
}
