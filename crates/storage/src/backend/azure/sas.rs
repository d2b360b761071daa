//! Read-only blob service SAS, signed with the account key (HMAC-SHA256), for redirects.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;

/// The service version the SAS is signed for (string-to-sign of 2018-11-09 and later, before
/// the encryption-scope field of 2020-12-06); Azure and Azurite both accept it.
const VERSION: &str = "2018-11-09";

/// Signs read-only blob URLs of one container.
#[derive(Clone)]
pub struct SasSigner {
    /// Blob endpoint without trailing `/` (account included for Azurite's path style).
    pub endpoint: String,
    /// Storage account name.
    pub account: String,
    /// Decoded account key.
    pub key: Vec<u8>,
    /// Container name.
    pub container: String,
}

impl SasSigner {
    /// The URL of blob `name` (full name in the container) with a read SAS valid for `ttl`.
    pub fn url(&self, name: &str, ttl: Duration) -> String {
        let expiry = rfc3339_seconds(SystemTime::now() + ttl);
        let protocol = if self.endpoint.starts_with("http://") {
            "https,http"
        } else {
            "https"
        };
        let resource = format!("/blob/{}/{}/{}", self.account, self.container, name);
        // sp, st, se, resource, si, sip, spr, sv, sr, snapshot, rscc, rscd, rsce, rscl, rsct
        let string_to_sign =
            format!("r\n\n{expiry}\n{resource}\n\n\n{protocol}\n{VERSION}\nb\n\n\n\n\n\n");
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &self.key);
        let tag = aws_lc_rs::hmac::sign(&key, string_to_sign.as_bytes());
        let sig = base64::engine::general_purpose::STANDARD.encode(tag.as_ref());
        format!(
            "{}/{}/{}?sv={VERSION}&sr=b&sp=r&se={}&spr={}&sig={}",
            self.endpoint,
            self.container,
            name,
            encode(&expiry),
            encode(protocol),
            encode(&sig)
        )
    }
}

/// Percent-encodes a query value (SAS values: base64, dates, commas).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `YYYY-MM-DDTHH:MM:SSZ` in UTC.
fn rfc3339_seconds(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (proleptic Gregorian, 400-year eras).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        let at = |s: u64| rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_795_000_059), "2026-11-18T11:07:39Z");
    }
}
