//! `log:` (and the deprecated top-level `loglevel:`): how much wharf logs and in which format.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::secret::{self, Secret};
use super::tree::Node;
use super::typed::Ctx;

/// `log:` as wharf uses it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LogConfig {
    /// `level`: the least severe level written; distribution's default is info.
    pub level: LogLevel,
    /// `formatter`: text (default), json or logstash.
    pub formatter: LogFormatter,
    /// `fields`: static key/values added to every line, to tell registries apart in shared logs.
    pub fields: BTreeMap<String, String>,
    /// `accesslog.disabled`: turns off the per-request access log.
    pub access_log_disabled: bool,
    /// `hooks`: distribution's log hooks (mail on chosen levels), sent by `crate::reporting`.
    pub hooks: Vec<LogHook>,
    /// `reportcaller`: add the source location to each line; parsed, not acted on yet.
    pub report_caller: bool,
}

/// Log severity; distribution knows error, warn, info and debug, wharf adds trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum LogLevel {
    /// Only failures (distribution's `panic` and `fatal` also map here).
    Error,
    /// Failures and suspicious events.
    Warn,
    /// The default: start-up, requests of note.
    #[default]
    Info,
    /// Detail for diagnosing a deployment.
    Debug,
    /// Everything, including per-chunk I/O.
    Trace,
}

impl LogLevel {
    /// The config spelling, also a valid `tracing` filter directive.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }

    fn parse(s: &str) -> Option<LogLevel> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "panic" | "fatal" | "error" => LogLevel::Error,
            "warn" | "warning" => LogLevel::Warn,
            "info" => LogLevel::Info,
            "debug" => LogLevel::Debug,
            "trace" => LogLevel::Trace,
            _ => return None,
        })
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for LogLevel {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        LogLevel::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "expected one of error, warn, info, debug, trace, got {s:?}"
            ))
        })
    }
}

impl Serialize for LogLevel {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Line format of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormatter {
    /// Human-readable `key=value` lines (the default).
    #[default]
    Text,
    /// One JSON object per line.
    Json,
    /// JSON with logstash's `@timestamp`/`@version` fields.
    Logstash,
}

impl LogFormatter {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormatter::Text => "text",
            LogFormatter::Json => "json",
            LogFormatter::Logstash => "logstash",
        }
    }
}

impl<'de> Deserialize<'de> for LogFormatter {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "text" => Ok(LogFormatter::Text),
            "json" => Ok(LogFormatter::Json),
            "logstash" => Ok(LogFormatter::Logstash),
            _ => Err(serde::de::Error::custom(format!(
                "expected text, json or logstash, got {s:?}"
            ))),
        }
    }
}

impl Serialize for LogFormatter {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One `log.hooks` entry (distribution only has `type: mail`).
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct LogHook {
    /// `disabled`: keep the hook configured but off.
    pub disabled: bool,
    /// `type`: the hook kind, `mail`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `levels`: which levels trigger the hook.
    pub levels: Vec<String>,
    /// `options`: where the mail goes.
    pub options: MailOptions,
}

/// `log.hooks[].options`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct MailOptions {
    /// `smtp`: the relay to send through.
    pub smtp: Smtp,
    /// `from`: sender address.
    pub from: String,
    /// `to`: recipients.
    pub to: Vec<String>,
}

/// `log.hooks[].options.smtp`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Smtp {
    /// `addr`: host:port of the relay.
    pub addr: String,
    /// `username`: login at the relay.
    pub username: String,
    /// `password`: masked everywhere.
    #[serde(
        deserialize_with = "secret::non_empty",
        skip_serializing_if = "Option::is_none"
    )]
    pub password: Option<Secret>,
    /// `insecure`: talk plain SMTP (no STARTTLS), AUTH included; for relays on a trusted network.
    pub insecure: bool,
}

/// The yaml shape of `log:`; [`LogConfig`] flattens `accesslog.disabled`.
#[derive(Deserialize, Serialize, Default)]
#[serde(default)]
struct RawLog {
    accesslog: AccessLog,
    level: Option<LogLevel>,
    formatter: LogFormatter,
    fields: BTreeMap<String, Node>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    hooks: Vec<LogHook>,
    reportcaller: bool,
}

#[derive(Deserialize, Serialize, Default)]
#[serde(default)]
struct AccessLog {
    disabled: bool,
}

/// Reads `log:` and the deprecated top-level `loglevel:` (used only when `log.level` is unset).
pub(crate) fn from_node(log: &Node, loglevel: Option<&Node>, ctx: &mut Ctx) -> Option<LogConfig> {
    let raw: RawLog = ctx.typed(log, "log")?;
    let mut level = raw.level;
    if let Some(node) = loglevel.filter(|n| !n.is_null()) {
        ctx.warn("loglevel is deprecated; use log.level");
        let old: LogLevel = ctx.typed(node, "loglevel")?;
        level.get_or_insert(old);
    }
    check_hooks(&raw.hooks, ctx);
    let fields = raw
        .fields
        .into_iter()
        .map(|(k, v)| {
            let text = v.scalar_text().unwrap_or_else(|| {
                serde_json::to_string(&super::tree::Masked(&v)).unwrap_or_default()
            });
            (k, text)
        })
        .collect();
    Some(LogConfig {
        level: level.unwrap_or_default(),
        formatter: raw.formatter,
        fields,
        access_log_disabled: raw.accesslog.disabled,
        hooks: raw.hooks,
        report_caller: raw.reportcaller,
    })
}

/// What an enabled mail hook needs before it can send anything, reported at load time so
/// `wharf config check` catches it too.
fn check_hooks(hooks: &[LogHook], ctx: &mut Ctx) {
    for (i, hook) in hooks.iter().enumerate() {
        if hook.disabled || hook.kind != "mail" {
            continue;
        }
        if hook.levels.is_empty() {
            ctx.error(format!(
                "log.hooks[{i}].levels: at least one level is required"
            ));
        }
        for level in hook.levels.iter().filter(|l| LogLevel::parse(l).is_none()) {
            ctx.error(format!(
                "log.hooks[{i}].levels: unknown level {level:?} (panic, fatal, error, warn, info, debug, trace)"
            ));
        }
        let o = &hook.options;
        for (key, missing) in [
            ("options.smtp.addr", o.smtp.addr.trim().is_empty()),
            ("options.from", o.from.trim().is_empty()),
            ("options.to", o.to.is_empty()),
        ] {
            if missing {
                ctx.error(format!("log.hooks[{i}].{key} is required"));
            }
        }
    }
}

impl Serialize for LogConfig {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        RawLog {
            accesslog: AccessLog {
                disabled: self.access_log_disabled,
            },
            level: Some(self.level),
            formatter: self.formatter,
            fields: self
                .fields
                .iter()
                .map(|(k, v)| (k.clone(), Node::Str(v.clone())))
                .collect(),
            hooks: self.hooks.clone(),
            reportcaller: self.report_caller,
        }
        .serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tree::parse_yaml;

    fn read(yaml: &str, loglevel: Option<&str>) -> (Option<LogConfig>, Ctx) {
        let mut ctx = Ctx::default();
        let node = parse_yaml(yaml).unwrap();
        let ll = loglevel.map(|l| parse_yaml(l).unwrap());
        (from_node(&node, ll.as_ref(), &mut ctx), ctx)
    }

    #[test]
    fn seed_log_block() {
        let (log, ctx) = read(
            "level: debug\nformatter: text\nfields:\n  service: registry\n  environment: staging\n",
            None,
        );
        let log = log.unwrap();
        assert_eq!(log.level, LogLevel::Debug);
        assert_eq!(log.formatter, LogFormatter::Text);
        assert_eq!(
            log.fields.get("service").map(String::as_str),
            Some("registry")
        );
        assert_eq!(
            log.fields.get("environment").map(String::as_str),
            Some("staging")
        );
        assert!(ctx.warnings.is_empty());
    }

    #[test]
    fn levels_and_formatters() {
        for (text, want) in [
            ("ERROR", LogLevel::Error),
            ("panic", LogLevel::Error),
            ("fatal", LogLevel::Error),
            ("warn", LogLevel::Warn),
            ("trace", LogLevel::Trace),
        ] {
            assert_eq!(read(&format!("level: {text}"), None).0.unwrap().level, want);
        }
        let (log, ctx) = read("formatter: xml", None);
        assert!(log.is_none());
        assert_eq!(
            ctx.errors,
            ["log.formatter: expected text, json or logstash, got \"xml\""]
        );
        let (_, ctx) = read("level: verbose", None);
        assert_eq!(
            ctx.errors,
            ["log.level: expected one of error, warn, info, debug, trace, got \"verbose\""]
        );
    }

    #[test]
    fn deprecated_loglevel_fills_in_only_when_log_level_is_unset() {
        let (log, ctx) = read("formatter: json", Some("debug"));
        assert_eq!(log.unwrap().level, LogLevel::Debug);
        assert_eq!(ctx.warnings, ["loglevel is deprecated; use log.level"]);
        assert_eq!(
            read("level: warn", Some("debug")).0.unwrap().level,
            LogLevel::Warn
        );
        assert_eq!(read("", None).0.unwrap().level, LogLevel::Info);
    }

    #[test]
    fn hooks_and_accesslog() {
        let yaml = "accesslog:\n  disabled: true\nhooks:\n  - type: mail\n    levels: [panic]\n    options:\n      smtp:\n        addr: smtp.sendhost.com:25\n        username: sendername\n        password: password\n        insecure: true\n      from: name@sendhost.com\n      to: [name@receivehost.com]\n";
        let log = read(yaml, None).0.unwrap();
        assert!(log.access_log_disabled);
        assert_eq!(log.hooks[0].kind, "mail");
        assert_eq!(
            log.hooks[0]
                .options
                .smtp
                .password
                .as_ref()
                .map(Secret::expose),
            Some("password")
        );
        assert!(format!("{log:?}").contains("password: Some(*****)"));
    }

    #[test]
    fn enabled_mail_hooks_are_checked_at_load() {
        let (log, ctx) = read(
            "hooks:\n  - type: mail\n    levels: [error, loud]\n    options:\n      from: a@b\n",
            None,
        );
        assert!(log.is_some());
        assert_eq!(
            ctx.errors,
            [
                "log.hooks[0].levels: unknown level \"loud\" (panic, fatal, error, warn, info, debug, trace)",
                "log.hooks[0].options.smtp.addr is required",
                "log.hooks[0].options.to is required",
            ]
        );
        let (_, ctx) = read("hooks:\n  - type: mail\n    disabled: true\n", None);
        assert!(ctx.errors.is_empty(), "{:?}", ctx.errors);
    }
}
