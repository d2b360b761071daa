//! Content digests (`algorithm:encoded`) and the streaming hasher that verifies them.

use std::fmt;
use std::str::FromStr;

use sha2::Digest as _;

/// Hash algorithms a registry must accept; the spec names sha256 (required) and sha512 (optional).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// The spec's canonical algorithm.
    Sha256,
    /// Accepted by the spec's grammar and by distribution.
    Sha512,
}

impl Algorithm {
    /// The name used in digests and in the storage layout (`blobs/<alg>/...`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// Length of the lower-case hex encoding, so that truncated digests are rejected at parse time.
    pub const fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

/// Why a digest string was refused; both map to DIGEST_INVALID on the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// The string does not follow `algorithm:encoded`.
    #[error("invalid digest format: {0:?}")]
    Format(String),
    /// The grammar is right but the algorithm is not one wharf can verify.
    #[error("unsupported digest algorithm: {0:?}")]
    Unsupported(String),
}

/// A validated content digest; construction is the only place the grammar is checked.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

impl Digest {
    /// Builds a digest from parts already known to be valid (the output of a hasher).
    fn from_parts(algorithm: Algorithm, hex: String) -> Self {
        Digest { algorithm, hex }
    }

    /// The algorithm, which picks the storage directory and the hasher.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The lower-case hex part, used to build storage paths.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// Digest of a byte slice held in memory (manifests, small test blobs).
    pub fn of(algorithm: Algorithm, bytes: &[u8]) -> Self {
        let mut h = Hasher::new(algorithm);
        h.update(bytes);
        h.finish()
    }

    /// The sha256 of a byte slice, the default for new content.
    pub fn sha256(bytes: &[u8]) -> Self {
        Self::of(Algorithm::Sha256, bytes)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.as_str(), self.hex)
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let format_err = || DigestError::Format(s.to_owned());
        let (alg, encoded) = s.split_once(':').ok_or_else(format_err)?;
        // spec grammar: algorithm-component [a-z0-9]+ joined by [+._-]; encoded [a-zA-Z0-9=_-]+
        let alg_ok = !alg.is_empty()
            && alg.split(['+', '.', '_', '-']).all(|c| {
                !c.is_empty()
                    && c.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            });
        let enc_ok = !encoded.is_empty()
            && encoded
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'_' | b'-'));
        if !alg_ok || !enc_ok {
            return Err(format_err());
        }
        let algorithm = match alg {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            _ => return Err(DigestError::Unsupported(alg.to_owned())),
        };
        // spec: registered algorithms use lower-case hex of a fixed length
        let hex_ok = encoded.len() == algorithm.hex_len()
            && encoded
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !hex_ok {
            return Err(format_err());
        }
        Ok(Digest::from_parts(algorithm, encoded.to_owned()))
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Incremental hasher for either algorithm, so blobs are verified while they stream.
#[derive(Clone)]
pub enum Hasher {
    /// sha256 state; serializable for resumable uploads.
    Sha256(sha2::Sha256),
    /// sha512 state.
    Sha512(sha2::Sha512),
}

impl Hasher {
    /// A fresh hasher for `algorithm`.
    pub fn new(algorithm: Algorithm) -> Self {
        match algorithm {
            Algorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }

    /// The algorithm this hasher computes.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            Hasher::Sha256(_) => Algorithm::Sha256,
            Hasher::Sha512(_) => Algorithm::Sha512,
        }
    }

    /// Feeds bytes in stream order.
    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sha512(h) => h.update(bytes),
        }
    }

    /// The digest of everything fed so far; a clone keeps the stream resumable.
    pub fn finish(self) -> Digest {
        let algorithm = self.algorithm();
        let hex = match self {
            Hasher::Sha256(h) => hex::encode(h.finalize()),
            Hasher::Sha512(h) => hex::encode(h.finalize()),
        };
        Digest::from_parts(algorithm, hex)
    }

    /// Serialized state, stored between PATCH requests so any instance can resume an upload.
    pub fn save_state(&self) -> Vec<u8> {
        use sha2::digest::common::hazmat::SerializableState;
        match self {
            Hasher::Sha256(h) => h.serialize().to_vec(),
            Hasher::Sha512(h) => h.serialize().to_vec(),
        }
    }

    /// Restores a state written by [`Hasher::save_state`]; `None` if the bytes are not one.
    pub fn load_state(algorithm: Algorithm, bytes: &[u8]) -> Option<Self> {
        use sha2::digest::common::hazmat::SerializableState;
        match algorithm {
            Algorithm::Sha256 => {
                let arr = bytes.try_into().ok()?;
                sha2::Sha256::deserialize(arr).ok().map(Hasher::Sha256)
            }
            Algorithm::Sha512 => {
                let arr = bytes.try_into().ok()?;
                sha2::Sha512::deserialize(arr).ok().map(Hasher::Sha512)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parse_table() {
        let cases: &[(&str, bool)] = &[
            (EMPTY, true),
            (&format!("sha512:{}", "a".repeat(128)), true),
            (
                "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
                false,
            ),
            ("sha256:abc", false),
            ("sha256", false),
            (":abc", false),
            ("sha256:", false),
            (&format!("md5:{}", "a".repeat(32)), false),
            (&format!("sha256:{}", "g".repeat(64)), false),
            (
                "sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564",
                false,
            ),
        ];
        for (s, ok) in cases {
            assert_eq!(s.parse::<Digest>().is_ok(), *ok, "{s}");
        }
        assert!(matches!(
            format!("md5:{}", "a".repeat(32)).parse::<Digest>(),
            Err(DigestError::Unsupported(_))
        ));
    }

    #[test]
    fn display_round_trips_and_hashes_empty() {
        let d: Digest = EMPTY.parse().unwrap();
        assert_eq!(d.to_string(), EMPTY);
        assert_eq!(Digest::sha256(b""), d);
    }

    #[test]
    fn hasher_state_survives_serialization_at_any_split() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        for alg in [Algorithm::Sha256, Algorithm::Sha512] {
            let want = Digest::of(alg, &data);
            for split in [0, 1, 63, 64, 65, 4096, 9999, 10_000] {
                let mut h = Hasher::new(alg);
                h.update(&data[..split]);
                let state = h.save_state();
                let mut h = Hasher::load_state(alg, &state).unwrap();
                h.update(&data[split..]);
                assert_eq!(h.finish(), want, "{alg:?} split {split}");
            }
            assert!(Hasher::load_state(alg, b"short").is_none());
        }
    }
}
