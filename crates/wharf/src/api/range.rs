//! Byte ranges: the `Range` request header of blob GETs and the `Content-Range` of chunked
//! uploads.

/// Outcome of a `Range` header against a blob of known size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// No usable Range: serve everything (RFC 9110 lets a server ignore what it can't parse).
    Full,
    /// Serve `start..=end`.
    Partial {
        /// First byte.
        start: u64,
        /// Last byte, inclusive.
        end: u64,
    },
    /// Syntactically fine but outside the blob: 416.
    Unsatisfiable,
}

/// Parses a single-range `Range: bytes=a-b | a- | -n` for a blob of `size` bytes.
pub fn parse_range(header: Option<&str>, size: u64) -> ByteRange {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return ByteRange::Full;
    };
    if spec.contains(',') {
        return ByteRange::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return ByteRange::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    let num = |s: &str| s.parse::<u64>().ok();
    match (a.is_empty(), b.is_empty()) {
        (true, false) => match num(b) {
            Some(0) => ByteRange::Unsatisfiable,
            Some(n) if size == 0 => {
                let _ = n;
                ByteRange::Unsatisfiable
            }
            Some(n) => ByteRange::Partial {
                start: size.saturating_sub(n),
                end: size - 1,
            },
            None => ByteRange::Full,
        },
        (false, true) => match num(a) {
            Some(s) if s < size => ByteRange::Partial {
                start: s,
                end: size - 1,
            },
            Some(_) => ByteRange::Unsatisfiable,
            None => ByteRange::Full,
        },
        (false, false) => match (num(a), num(b)) {
            (Some(s), Some(e)) if s > e => ByteRange::Full,
            (Some(s), Some(_)) if s >= size => ByteRange::Unsatisfiable,
            (Some(s), Some(e)) => ByteRange::Partial {
                start: s,
                end: e.min(size - 1),
            },
            _ => ByteRange::Full,
        },
        (true, true) => ByteRange::Full,
    }
}

/// Parses an upload `Content-Range: <start>-<end>` (distribution's form, also accepting a
/// `bytes ` prefix); `None` when malformed.
pub fn parse_content_range(header: &str) -> Option<(u64, u64)> {
    let s = header.trim();
    let s = s
        .strip_prefix("bytes ")
        .or_else(|| s.strip_prefix("bytes="))
        .unwrap_or(s);
    let s = s.split('/').next()?;
    let (a, b) = s.split_once('-')?;
    let (a, b) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (a <= b).then_some((a, b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ByteRange::*;

    #[test]
    fn range_table() {
        let cases = [
            (None, 10, Full),
            (Some("bytes=0-9"), 10, Partial { start: 0, end: 9 }),
            (Some("bytes=0-100"), 10, Partial { start: 0, end: 9 }),
            (Some("bytes=5-"), 10, Partial { start: 5, end: 9 }),
            (Some("bytes=-4"), 10, Partial { start: 6, end: 9 }),
            (Some("bytes=-40"), 10, Partial { start: 0, end: 9 }),
            (Some("bytes=10-"), 10, Unsatisfiable),
            (Some("bytes=10-20"), 10, Unsatisfiable),
            (Some("bytes=-0"), 10, Unsatisfiable),
            (Some("bytes=0-0"), 0, Unsatisfiable),
            (Some("bytes=5-2"), 10, Full),
            (Some("bytes=0-1,3-4"), 10, Full),
            (Some("items=0-1"), 10, Full),
            (Some("bytes=x-y"), 10, Full),
        ];
        for (h, size, want) in cases {
            assert_eq!(parse_range(h, size), want, "{h:?} size {size}");
        }
    }

    #[test]
    fn content_range_table() {
        assert_eq!(parse_content_range("0-99"), Some((0, 99)));
        assert_eq!(parse_content_range("bytes 100-199/1000"), Some((100, 199)));
        assert_eq!(parse_content_range("5-4"), None);
        assert_eq!(parse_content_range("abc"), None);
        assert_eq!(parse_content_range("-5"), None);
    }
}
