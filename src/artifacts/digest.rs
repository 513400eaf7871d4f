//! SHA-256 digests: [`Sha256Hex`], the address of every artifact, and [`Hashing`], which hashes
//! and counts the bytes that pass through a reader or writer.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::ArtifactError;

/// A SHA-256 digest as 64 lowercase hex digits.
///
/// Parsing checks the form, so a digest is always safe to use as a file name or object key.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sha256Hex(String);

impl Sha256Hex {
    /// Length of the hex form.
    pub const LEN: usize = 64;

    /// Checks that `text` is 64 lowercase hex digits.
    pub fn parse(text: &str) -> Result<Self, ArtifactError> {
        let valid = text.len() == Self::LEN
            && text
                .bytes()
                .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte));
        if valid {
            Ok(Self(text.to_owned()))
        } else {
            Err(ArtifactError::InvalidDigest {
                value: text.to_owned(),
            })
        }
    }

    /// The digest of `bytes`.
    pub fn of_bytes(bytes: &[u8]) -> Self {
        Self::from_hasher(Sha256::new_with_prefix(bytes))
    }

    /// The hex text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first two hex digits, which name the object's shard directory.
    pub(crate) fn shard(&self) -> &str {
        &self.0[..2]
    }

    fn from_hasher(hasher: Sha256) -> Self {
        Self(format!("{:x}", hasher.finalize()))
    }
}

impl fmt::Display for Sha256Hex {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl fmt::Debug for Sha256Hex {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "Sha256Hex({})", self.0)
    }
}

impl FromStr for Sha256Hex {
    type Err = ArtifactError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl TryFrom<String> for Sha256Hex {
    type Error = ArtifactError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse(&text)
    }
}

impl From<Sha256Hex> for String {
    fn from(digest: Sha256Hex) -> Self {
        digest.0
    }
}

/// Wraps a reader or writer, hashing and counting every byte that passes through it.
pub(crate) struct Hashing<T> {
    inner: T,
    hasher: Sha256,
    bytes: u64,
}

impl<T> Hashing<T> {
    pub(crate) fn new(inner: T) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// The digest and count of the bytes seen so far.
    pub(crate) fn finish(self) -> (Sha256Hex, u64) {
        (Sha256Hex::from_hasher(self.hasher), self.bytes)
    }

    fn record(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
        self.bytes += bytes.len() as u64;
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let count = self.inner.read(buf)?;
        self.record(&buf[..count]);
        Ok(count)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let count = self.inner.write(buf)?;
        self.record(&buf[..count]);
        Ok(count)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use serde::de::IntoDeserializer as _;
    use serde::de::value::{Error as ValueError, StrDeserializer};

    use super::*;

    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn digest_of_empty_input_is_the_known_value() {
        assert_eq!(Sha256Hex::of_bytes(b"").as_str(), EMPTY);
    }

    #[test]
    fn parse_rejects_anything_but_64_lowercase_hex_digits() {
        assert!(Sha256Hex::parse(EMPTY).is_ok());
        assert!(Sha256Hex::parse(&EMPTY.to_uppercase()).is_err());
        assert!(Sha256Hex::parse(&EMPTY[..63]).is_err());
        assert!(Sha256Hex::parse(&format!("../{}", &EMPTY[3..])).is_err());
    }

    #[test]
    fn deserialising_checks_the_form() {
        let good: StrDeserializer<'_, ValueError> = EMPTY.into_deserializer();
        assert_eq!(
            Sha256Hex::deserialize(good)
                .map(String::from)
                .ok()
                .as_deref(),
            Some(EMPTY)
        );
        let bad: StrDeserializer<'_, ValueError> = "../../etc/passwd".into_deserializer();
        assert!(Sha256Hex::deserialize(bad).is_err());
    }

    #[test]
    fn hashing_reader_and_writer_agree_with_the_one_shot_digest() {
        let data = b"hello artifact store".repeat(1000);
        let mut reader = Hashing::new(data.as_slice());
        let mut copy = Vec::new();
        io::copy(&mut reader, &mut copy).unwrap();
        let mut writer = Hashing::new(Vec::new());
        writer.write_all(&copy).unwrap();
        let expected = (Sha256Hex::of_bytes(&data), data.len() as u64);
        assert_eq!(reader.finish(), expected);
        assert_eq!(writer.finish(), expected);
    }
}
