//! `notifications:`: webhook endpoints that receive push/pull/delete events (sent by `crate::notify`).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::de;
use super::tree::{MASK, Node};
use super::typed::Ctx;

/// `notifications:`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct NotificationsConfig {
    /// `events`: what each event carries.
    pub events: Events,
    /// `endpoints`: where events are posted.
    pub endpoints: Vec<Endpoint>,
}

/// `notifications.events`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Events {
    /// `includereferences`: list a manifest's references in its events.
    #[serde(rename = "includereferences")]
    pub include_references: bool,
}

/// One `notifications.endpoints` entry.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Endpoint {
    /// `name`: identifies the endpoint in logs and metrics.
    pub name: String,
    /// `disabled`: keep it configured but send nothing.
    pub disabled: bool,
    /// `url`: where events are POSTed.
    pub url: String,
    /// `headers`: static headers on every request (values masked when they look like credentials).
    pub headers: Headers,
    /// `timeout`: per-request timeout (a bare number is nanoseconds, as in distribution).
    #[serde(with = "de::duration")]
    pub timeout: Duration,
    /// `threshold`: failures before backing off.
    pub threshold: u64,
    /// `backoff`: wait after `threshold` failures.
    #[serde(with = "de::duration")]
    pub backoff: Duration,
    /// `ignoredmediatypes`: target media types never sent.
    #[serde(rename = "ignoredmediatypes")]
    pub ignored_media_types: Vec<String>,
    /// `ignore`: media types and actions never sent.
    pub ignore: Ignore,
}

/// `notifications.endpoints[].ignore`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Ignore {
    /// `mediatypes`: target media types never sent.
    #[serde(rename = "mediatypes")]
    pub media_types: Vec<String>,
    /// `actions`: actions (push, pull, delete) never sent.
    pub actions: Vec<String>,
}

/// Request headers sent to a third party, in file order; credential-looking values are masked
/// in `Debug` and in `wharf config check`.
#[derive(Clone, PartialEq, Default)]
pub struct Headers(pub Vec<(String, Vec<String>)>);

impl Headers {
    fn is_sensitive(name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        ["auth", "token", "secret", "cookie", "key", "password"]
            .iter()
            .any(|m| name.contains(m))
    }

    fn masked(&self) -> Vec<(String, Vec<String>)> {
        self.0
            .iter()
            .map(|(k, v)| {
                let v = if Self::is_sensitive(k) {
                    vec![MASK.to_owned()]
                } else {
                    v.clone()
                };
                (k.clone(), v)
            })
            .collect()
    }
}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.masked()).finish()
    }
}

impl<'de> Deserialize<'de> for Headers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de::headers::deserialize(d).map(Headers)
    }
}

impl Serialize for Headers {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        de::headers::serialize(&self.masked(), s)
    }
}

/// Reads `notifications:`. distribution's reference shows `headers: <http.Header>` as a
/// placeholder; a non-map `headers` there is dropped with a warning rather than refused, so
/// the sample config keeps starting (the endpoint then sends no extra headers).
pub(crate) fn from_node(node: &Node, ctx: &mut Ctx) -> Option<NotificationsConfig> {
    let mut node = node.clone();
    if let Node::Map(entries) = &mut node
        && let Some((_, Node::Seq(endpoints))) = entries.iter_mut().find(|(k, _)| k == "endpoints")
    {
        for (i, endpoint) in endpoints.iter_mut().enumerate() {
            let Node::Map(fields) = endpoint else {
                continue;
            };
            if let Some(pos) = fields
                .iter()
                .position(|(k, v)| k == "headers" && matches!(v, Node::Str(_)))
            {
                // the value is not echoed: a header given as one string may be a credential
                fields.remove(pos);
                ctx.warn(format!(
                    "notifications.endpoints[{i}].headers: expected a map of header lists, got a single value; ignored"
                ));
            }
        }
    }
    ctx.typed(&node, "notifications")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tree::parse_yaml;

    #[test]
    fn seed_block_with_placeholder_headers() {
        let yaml = "endpoints:\n  - name: alistener\n    disabled: false\n    headers: <http.Header>\n    timeout: 500\n    threshold: 5\n    backoff: 1000\n";
        let mut ctx = Ctx::default();
        let n = from_node(&parse_yaml(yaml).unwrap(), &mut ctx).unwrap();
        assert!(ctx.errors.is_empty());
        assert_eq!(ctx.warnings.len(), 1, "{:?}", ctx.warnings);
        let e = &n.endpoints[0];
        assert_eq!((e.name.as_str(), e.threshold), ("alistener", 5));
        assert_eq!(e.timeout, Duration::from_nanos(500));
        assert_eq!(e.backoff, Duration::from_nanos(1000));
    }

    #[test]
    fn full_endpoint_masks_authorization() {
        let yaml = "events:\n  includereferences: true\nendpoints:\n  - name: a\n    url: https://my.listener.com/event\n    headers:\n      Authorization: [Bearer abc]\n      X-Source: [wharf]\n    timeout: 1s\n    backoff: 1s\n    ignoredmediatypes: [application/octet-stream]\n    ignore:\n      mediatypes: [application/octet-stream]\n      actions: [pull]\n";
        let mut ctx = Ctx::default();
        let n = from_node(&parse_yaml(yaml).unwrap(), &mut ctx).unwrap();
        assert!(ctx.errors.is_empty() && ctx.warnings.is_empty(), "{ctx:?}");
        assert!(n.events.include_references);
        let e = &n.endpoints[0];
        assert_eq!(e.headers.0[0].1, ["Bearer abc"]);
        assert_eq!(e.ignore.actions, ["pull"]);
        let debug = format!("{n:?}");
        assert!(
            !debug.contains("Bearer abc") && debug.contains("wharf"),
            "{debug}"
        );
    }
}
