//! distribution's event envelope (`application/vnd.docker.distribution.events.v1+json`), field
//! for field, and the RFC 3339 timestamps it carries.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// The envelope's media type, sent as `Content-Type`.
pub const ENVELOPE_MEDIA_TYPE: &str = "application/vnd.docker.distribution.events.v1+json";

/// `{"events": [...]}`, the body of every notification request.
#[derive(Debug, Serialize, Deserialize)]
pub struct Envelope {
    /// The events of this request, oldest first.
    pub events: Vec<Event>,
}

/// One event as distribution serializes it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Event {
    /// Unique per event, so receivers can drop duplicates of an at-least-once delivery.
    pub id: String,
    /// When the registry acted (RFC 3339, UTC).
    pub timestamp: String,
    /// `push`, `pull`, `delete` or `mount`.
    pub action: String,
    /// What was acted on.
    pub target: Target,
    /// The request that caused the event.
    pub request: Request,
    /// Who made the request.
    pub actor: Actor,
    /// Which registry instance emitted the event.
    pub source: Source,
}

/// The object of an event.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    /// Media type of the manifest or blob (`application/octet-stream` for layers).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub media_type: String,
    /// Content size in bytes.
    #[serde(default)]
    pub size: u64,
    /// Content digest.
    pub digest: String,
    /// Same as `size`; distribution keeps both for old receivers.
    #[serde(default)]
    pub length: u64,
    /// Repository name.
    pub repository: String,
    /// Where the content can be fetched.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub url: String,
    /// Tag, for manifest events made through a tag.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tag: String,
    /// Source repository of a mount.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub from_repository: String,
    /// Descriptors the manifest references (`notifications.events.includereferences`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<Reference>,
}

/// A descriptor listed in `target.references`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Reference {
    /// Media type of the referenced content.
    pub media_type: String,
    /// Its size.
    pub size: u64,
    /// Its digest.
    pub digest: String,
}

/// The request part of an event.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Request {
    /// Request id (`X-Request-Id` when the client sent one).
    pub id: String,
    /// Client address: `X-Forwarded-For`'s first entry, else `X-Real-IP`, else the socket
    /// peer (`ip:port`).
    pub addr: String,
    /// `Host` header.
    pub host: String,
    /// HTTP method.
    pub method: String,
    /// `User-Agent` header.
    pub useragent: String,
}

/// The authenticated user, empty when the registry is open.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Actor {
    /// User name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
}

/// The emitting instance.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Source {
    /// `hostname:port` of the registry.
    pub addr: String,
    /// Random per process start, to tell instances apart.
    #[serde(rename = "instanceID")]
    pub instance_id: String,
}

/// `now` as RFC 3339 in UTC with nanoseconds, as Go's `time.Time` marshals.
pub fn timestamp(now: SystemTime) -> String {
    crate::rfc3339::nanos(now)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc_with_nanoseconds() {
        for (secs, nanos, want) in [
            (0, 0, "1970-01-01T00:00:00.000000000Z"),
            (951_782_400, 5, "2000-02-29T00:00:00.000000005Z"),
            (1_764_000_000, 123_456_789, "2025-11-24T16:00:00.123456789Z"),
        ] {
            let t = UNIX_EPOCH + Duration::new(secs, nanos);
            assert_eq!(timestamp(t), want);
        }
    }

    #[test]
    fn target_serializes_with_distribution_field_names() {
        let t = Target {
            media_type: "m".into(),
            size: 3,
            digest: "sha256:x".into(),
            length: 3,
            repository: "r".into(),
            from_repository: "f".into(),
            ..Target::default()
        };
        let v = serde_json::to_value(&t).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"mediaType": "m", "size": 3, "digest": "sha256:x", "length": 3,
                "repository": "r", "fromRepository": "f"})
        );
        let s = serde_json::to_value(Source {
            addr: "a".into(),
            instance_id: "i".into(),
        })
        .unwrap();
        assert_eq!(s["instanceID"], "i");
    }
}
