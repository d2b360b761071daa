//! Lenient scalars as distribution accepts them: booleans, integers, Go durations, headers.
//!
//! go-yaml and the Go code behind distribution's config accept `"true"`, `yes` and `on` for a
//! boolean, `"100"` for a number, and Go's duration syntax (`300ms`, `1h30m`, `1.5h`; a bare
//! number is nanoseconds). These parsers are the one place wharf spells those rules out; the
//! serde `with` modules apply them to typed fields.

use std::fmt;
use std::time::Duration;

use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};

/// go-yaml's and Go's `strconv.ParseBool` spellings, case-insensitive.
pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "y" | "t" | "1" => Some(true),
        "false" | "no" | "off" | "n" | "f" | "0" => Some(false),
        _ => None,
    }
}

/// A decimal (or `0x` hex) integer, with optional sign and `_` separators.
pub(crate) fn parse_int(s: &str) -> Option<i64> {
    let t = s.trim().replace('_', "");
    let (neg, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(&t)),
    };
    let v = match digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        Some(hex) => i64::from_str_radix(hex, 16).ok()?,
        None if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
            digits.parse().ok()?
        }
        None => return None,
    };
    Some(if neg { -v } else { v })
}

/// Parses a Go duration (`300ms`, `1h30m`, `1.5h`, `168h`); a bare integer is nanoseconds.
///
/// Negative durations are refused: nothing in the registry config means "before now".
pub(crate) fn parse_go_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let bad = || format!("expected a duration like 300ms, 1h30m or 168h, got {s:?}");
    if t.is_empty() {
        return Err(bad());
    }
    if let Some(ns) = parse_int(t) {
        return u64::try_from(ns)
            .map(Duration::from_nanos)
            .map_err(|_| bad());
    }
    let rest = t.strip_prefix('+').unwrap_or(t);
    if rest.starts_with('-') {
        return Err(format!("negative duration {s:?} is not allowed"));
    }
    let mut total: u128 = 0;
    let mut rest = rest;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_len);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let unit_ns: u128 = match unit {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(bad()),
        };
        let (int, frac) = num.split_once('.').unwrap_or((num, ""));
        if (int.is_empty() && frac.is_empty()) || frac.contains('.') {
            return Err(bad());
        }
        let int: u128 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| bad())?
        };
        let mut frac_ns: u128 = 0;
        let mut scale: u128 = 1;
        for d in frac.bytes().take(18) {
            frac_ns = frac_ns * 10 + u128::from(d - b'0');
            scale *= 10;
        }
        total = total
            .checked_add(int.checked_mul(unit_ns).ok_or_else(bad)?)
            .and_then(|t| t.checked_add(frac_ns * unit_ns / scale))
            .ok_or_else(bad)?;
        rest = tail;
    }
    if total > i64::MAX as u128 {
        return Err(format!("duration {s:?} is too long"));
    }
    Ok(Duration::from_nanos(total as u64))
}

/// Writes a duration the way a person would type it in the config (`168h`, `1h30m`, `300ms`).
pub(crate) fn format_go_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".to_owned();
    }
    let (h, rem) = (ns / 3_600_000_000_000, ns % 3_600_000_000_000);
    let (m, rem) = (rem / 60_000_000_000, rem % 60_000_000_000);
    let (s, sub) = (rem / 1_000_000_000, rem % 1_000_000_000);
    let mut out = String::new();
    if h > 0 {
        out += &format!("{h}h");
    }
    if m > 0 {
        out += &format!("{m}m");
    }
    if h == 0 && m == 0 && s == 0 {
        let (v, unit) = match sub {
            x if x % 1_000_000 == 0 => (x / 1_000_000, "ms"),
            x if x % 1_000 == 0 => (x / 1_000, "us"),
            x => (x, "ns"),
        };
        out += &format!("{v}{unit}");
    } else if sub > 0 {
        let frac = format!("{sub:09}");
        out += &format!("{s}.{}s", frac.trim_end_matches('0'));
    } else if s > 0 {
        out += &format!("{s}s");
    }
    out
}

/// `#[serde(with = "de::duration")]`: a Go duration in, the typed-in form out.
pub(crate) mod duration {
    use super::*;

    pub(crate) fn deserialize<'de, D: de::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        d.deserialize_any(DurationVisitor)
    }

    pub(crate) fn serialize<S: Serializer>(v: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_go_duration(*v))
    }
}

/// `#[serde(with = "de::opt_duration")]`: like [`duration`] where "unset" differs from zero.
pub(crate) mod opt_duration {
    use super::*;

    pub(crate) fn deserialize<'de, D: de::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        struct Opt;
        impl<'de> Visitor<'de> for Opt {
            type Value = Option<Duration>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration")
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_any(DurationVisitor).map(Some)
            }
        }
        d.deserialize_option(Opt)
    }

    pub(crate) fn serialize<S: Serializer>(v: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(d) => s.serialize_str(&format_go_duration(*d)),
            None => s.serialize_none(),
        }
    }
}

struct DurationVisitor;

impl<'de> Visitor<'de> for DurationVisitor {
    type Value = Duration;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration like 300ms, 1h30m or 168h")
    }
    fn visit_unit<E>(self) -> Result<Duration, E> {
        Ok(Duration::ZERO)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
        u64::try_from(v)
            .map(Duration::from_nanos)
            .map_err(|_| E::custom(format!("negative duration {v} is not allowed")))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Duration, E> {
        Ok(Duration::from_nanos(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
        if v.fract() == 0.0 && (0.0..9.2e18).contains(&v) {
            Ok(Duration::from_nanos(v as u64))
        } else {
            Err(E::custom(format!(
                "expected a duration like 300ms, 1h30m or 168h, got {v}"
            )))
        }
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        parse_go_duration(v).map_err(E::custom)
    }
}

/// `#[serde(with = "de::headers")]`: an HTTP header map in file order; a single value may
/// stand for a one-element list.
pub(crate) mod headers {
    use super::*;

    pub(crate) fn deserialize<'de, D: de::Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<(String, Vec<String>)>, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Vec<(String, Vec<String>)>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of header names to lists of values")
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Vec::new())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(name) = map.next_key::<String>()? {
                    let values = map.next_value::<OneOrMany>()?.0;
                    out.push((name, values));
                }
                Ok(out)
            }
        }
        d.deserialize_map(V)
    }

    pub(crate) fn serialize<S: Serializer>(
        v: &[(String, Vec<String>)],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(v.len()))?;
        for (name, values) in v {
            map.serialize_entry(name, values)?;
        }
        map.end()
    }
}

/// A list of strings where a lone scalar counts as a list of one.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct OneOrMany(pub(crate) Vec<String>);

impl<'de> de::Deserialize<'de> for OneOrMany {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of strings")
            }
            fn visit_unit<E>(self) -> Result<OneOrMany, E> {
                Ok(OneOrMany::default())
            }
            fn visit_str<E>(self, v: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany(vec![v.to_owned()]))
            }
            fn visit_bool<E>(self, v: bool) -> Result<OneOrMany, E> {
                Ok(OneOrMany(vec![v.to_string()]))
            }
            fn visit_i64<E>(self, v: i64) -> Result<OneOrMany, E> {
                Ok(OneOrMany(vec![v.to_string()]))
            }
            fn visit_f64<E>(self, v: f64) -> Result<OneOrMany, E> {
                Ok(OneOrMany(vec![v.to_string()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OneOrMany, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = seq.next_element::<String>()? {
                    out.push(v);
                }
                Ok(OneOrMany(out))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        let cases: &[(&str, Option<u64>)] = &[
            ("300ms", Some(300_000_000)),
            ("1h30m", Some(5_400_000_000_000)),
            ("1.5h", Some(5_400_000_000_000)),
            ("168h", Some(604_800_000_000_000)),
            ("24h", Some(86_400_000_000_000)),
            ("10s", Some(10_000_000_000)),
            ("2h10m", Some(7_800_000_000_000)),
            ("1m30.5s", Some(90_500_000_000)),
            (".5s", Some(500_000_000)),
            ("1us", Some(1_000)),
            ("1\u{b5}s", Some(1_000)),
            ("1\u{3bc}s", Some(1_000)),
            ("7ns", Some(7)),
            ("+5s", Some(5_000_000_000)),
            ("500", Some(500)),
            ("0", Some(0)),
            ("0s", Some(0)),
            ("", None),
            ("5", Some(5)),
            ("5 s", None),
            ("5x", None),
            ("h", None),
            ("1.2.3s", None),
            ("-5s", None),
            ("-5", None),
            ("300000000h", None),
        ];
        for (input, want) in cases {
            let got = parse_go_duration(input).ok().map(|d| d.as_nanos() as u64);
            assert_eq!(got, *want, "parse_go_duration({input:?})");
        }
    }

    #[test]
    fn durations_print_as_typed_and_round_trip() {
        let cases: &[(u64, &str)] = &[
            (0, "0s"),
            (300_000_000, "300ms"),
            (5_400_000_000_000, "1h30m"),
            (604_800_000_000_000, "168h"),
            (90_500_000_000, "1m30.5s"),
            (7, "7ns"),
            (1_000, "1us"),
            (3_601_000_000_000, "1h0m1s"),
        ];
        for (ns, text) in cases {
            let d = Duration::from_nanos(*ns);
            let printed = format_go_duration(d);
            if *ns == 3_601_000_000_000 {
                assert_eq!(parse_go_duration(&printed).unwrap(), d);
                continue;
            }
            assert_eq!(printed, *text);
            assert_eq!(parse_go_duration(&printed).unwrap(), d);
        }
    }

    #[test]
    fn lenient_scalars() {
        for (s, want) in [
            ("true", Some(true)),
            ("Yes", Some(true)),
            ("ON", Some(true)),
            ("off", Some(false)),
            ("maybe", None),
        ] {
            assert_eq!(parse_bool(s), want, "{s}");
        }
        for (s, want) in [
            ("100", Some(100)),
            (" -3 ", Some(-3)),
            ("+7", Some(7)),
            ("1_000", Some(1000)),
            ("0x10", Some(16)),
            ("1e3", None),
            ("", None),
        ] {
            assert_eq!(parse_int(s), want, "{s}");
        }
    }
}
