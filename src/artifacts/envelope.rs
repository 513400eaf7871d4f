//! The encrypted object format shared by every artifact store (local directory and S3 + KMS).
//!
//! An object is a [`Header`] followed by the plaintext in [`CHUNK_SIZE`] chunks, each sealed with
//! AES-256-GCM under a fresh per-object data key, in the STREAM construction (Hoang et al. 2015):
//! the nonce of chunk `i` is `prefix(7) || i as u32 BE || last(1)`, and every chunk's associated
//! data is the whole header. Reordering, truncating, extending or editing any byte fails
//! authentication. The data key travels in the header, wrapped by a [`KeyWrapper`].
//!
//! ```text
//! offset   size  field
//! 0        4     magic "RNAE"
//! 4        1     format version (1)
//! 5        1     key scheme id (1 local-aes-gcm, 2 aws-kms)
//! 6        2     wrapped key length N (u16 big-endian, 1..=1024)
//! 8        N     wrapped data key
//! 8+N      7     nonce prefix (random)
//! 15+N     ...   chunks: 64 KiB of plaintext + 16-byte tag each; the last holds 0..=64 KiB
//! ```
//!
//! Decryption writes each chunk as soon as it authenticates, so callers must write into a
//! temporary file and publish it only when [`Opener::open`] returns `Ok`.

use std::fmt;
use std::future::Future;
use std::io::{self, BufRead, BufReader, Read, Write};

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::rand_core::RngCore as _;
use aes_gcm::aead::stream::{DecryptorBE32, EncryptorBE32};
use aes_gcm::aead::{KeyInit as _, OsRng};
use zeroize::Zeroizing;

/// Plaintext bytes per chunk.
pub const CHUNK_SIZE: usize = 64 * 1024;
/// First bytes of every object.
pub const MAGIC: [u8; 4] = *b"RNAE";
/// The format version this code writes and reads.
pub const VERSION: u8 = 1;
/// Length of a data key in bytes (AES-256).
pub const DATA_KEY_LEN: usize = 32;
/// Largest wrapped data key a header may carry.
pub const MAX_WRAPPED_KEY_LEN: usize = 1024;

const TAG_LEN: usize = 16;
const NONCE_PREFIX_LEN: usize = 7;
const FIXED_HEADER_LEN: usize = 8;

/// How the data key in a header is wrapped; the discriminant is the id stored in the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum KeyScheme {
    /// AES-256-GCM under a master key file on the runner host.
    LocalAesGcm = 1,
    /// AWS KMS (`GenerateDataKey` / `Decrypt`); the wrapped key is the KMS ciphertext blob.
    AwsKms = 2,
}

impl KeyScheme {
    /// The id stored in the header.
    pub fn id(self) -> u8 {
        self as u8
    }

    /// The scheme stored as `id`, if known.
    pub fn from_id(id: u8) -> Option<Self> {
        match id {
            1 => Some(Self::LocalAesGcm),
            2 => Some(Self::AwsKms),
            _ => None,
        }
    }
}

impl fmt::Display for KeyScheme {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Self::LocalAesGcm => "local-aes-gcm",
            Self::AwsKms => "aws-kms",
        })
    }
}

/// Why sealing or opening an object failed.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    /// Reading the input (plaintext or object) failed.
    #[error("read the input")]
    Read(#[source] io::Error),
    /// Writing the output failed.
    #[error("write the output")]
    Write(#[source] io::Error),
    /// The operating system's random source failed.
    #[error("draw random bytes from the operating system")]
    Random,
    /// The object does not start with [`MAGIC`].
    #[error("recognise the object: it does not start with the envelope magic")]
    BadMagic,
    /// The object was written in a format version this code does not read.
    #[error("read envelope format version {version}")]
    UnsupportedVersion {
        /// The version found.
        version: u8,
    },
    /// The header names a key scheme this code does not know.
    #[error("read key scheme id {id}")]
    UnknownScheme {
        /// The id found.
        id: u8,
    },
    /// The object ends inside its header.
    #[error("read the header: the object ends inside it")]
    TruncatedHeader,
    /// A wrapped key is empty or longer than [`MAX_WRAPPED_KEY_LEN`].
    #[error("accept a wrapped key of {len} bytes")]
    WrappedKeyLength {
        /// Its length.
        len: usize,
    },
    /// A chunk failed authentication: altered, reordered, truncated, or the wrong key.
    #[error("authenticate chunk {chunk}")]
    Authentication {
        /// Zero-based chunk index.
        chunk: u64,
    },
    /// The plaintext needs more chunks than the 32-bit counter allows (256 TiB).
    #[error("encrypt more than 2^32 chunks")]
    TooLarge,
    /// The header's key scheme is not the one of the wrapper asked to open it.
    #[error("unwrap a {found} data key with the {expected} wrapper")]
    SchemeMismatch {
        /// Scheme in the header.
        found: KeyScheme,
        /// Scheme of the wrapper.
        expected: KeyScheme,
    },
    /// Unwrapping failed authentication: a different wrapping key, or an altered wrapped key.
    #[error("unwrap the data key: the wrapping key differs from the one that wrapped it")]
    Unwrap,
    /// An unwrapped data key has the wrong length.
    #[error("accept a data key of {len} bytes")]
    DataKeyLength {
        /// Its length.
        len: usize,
    },
    /// The key service (e.g. KMS) failed.
    #[error("call the {scheme} key service")]
    KeyService {
        /// Which service.
        scheme: KeyScheme,
        /// Its error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl EnvelopeError {
    /// Whether the error concerns the data key (wrong wrapping key, key service down) rather than
    /// the object's bytes.
    pub fn is_key_failure(&self) -> bool {
        matches!(
            self,
            Self::SchemeMismatch { .. }
                | Self::Unwrap
                | Self::DataKeyLength { .. }
                | Self::KeyService { .. }
        )
    }
}

/// A plaintext AES-256 data key, zeroed on drop.
pub struct DataKey(Zeroizing<[u8; DATA_KEY_LEN]>);

impl DataKey {
    /// A fresh random key.
    pub fn generate() -> Result<Self, EnvelopeError> {
        random_bytes().map(Self)
    }

    /// Copies a key from `bytes`, which must be [`DATA_KEY_LEN`] long.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        let mut key = Zeroizing::new([0; DATA_KEY_LEN]);
        if bytes.len() != DATA_KEY_LEN {
            return Err(EnvelopeError::DataKeyLength { len: bytes.len() });
        }
        key.copy_from_slice(bytes);
        Ok(Self(key))
    }

    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8; DATA_KEY_LEN] {
        &self.0
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(self.as_bytes().into())
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("DataKey(..)")
    }
}

/// Wraps per-object data keys under a long-lived key (a master key file, a KMS key).
pub trait KeyWrapper: Send + Sync {
    /// The scheme recorded in headers this wrapper writes, and the only one it opens.
    fn scheme(&self) -> KeyScheme;

    /// A fresh data key and its wrapped form (one call, as KMS `GenerateDataKey` provides both).
    fn new_data_key(
        &self,
    ) -> impl Future<Output = Result<(DataKey, Vec<u8>), EnvelopeError>> + Send;

    /// Recovers the data key from its wrapped form.
    fn unwrap_key(
        &self,
        wrapped: &[u8],
    ) -> impl Future<Output = Result<DataKey, EnvelopeError>> + Send;
}

/// The header of an object: how to recover its data key, and the STREAM nonce prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    scheme: KeyScheme,
    wrapped_key: Vec<u8>,
    nonce_prefix: [u8; NONCE_PREFIX_LEN],
}

impl Header {
    /// The key scheme.
    pub fn scheme(&self) -> KeyScheme {
        self.scheme
    }

    /// Reads exactly the header from the start of an object, leaving `reader` at the first chunk.
    pub fn read_from(reader: &mut impl Read) -> Result<Self, EnvelopeError> {
        let mut fixed = [0; FIXED_HEADER_LEN];
        read_header_part(reader, &mut fixed)?;
        if fixed[..4] != MAGIC {
            return Err(EnvelopeError::BadMagic);
        }
        if fixed[4] != VERSION {
            return Err(EnvelopeError::UnsupportedVersion { version: fixed[4] });
        }
        let scheme =
            KeyScheme::from_id(fixed[5]).ok_or(EnvelopeError::UnknownScheme { id: fixed[5] })?;
        let len = usize::from(u16::from_be_bytes([fixed[6], fixed[7]]));
        check_wrapped_len(len)?;
        let mut wrapped_key = vec![0; len];
        read_header_part(reader, &mut wrapped_key)?;
        let mut nonce_prefix = [0; NONCE_PREFIX_LEN];
        read_header_part(reader, &mut nonce_prefix)?;
        Ok(Self {
            scheme,
            wrapped_key,
            nonce_prefix,
        })
    }

    fn to_bytes(&self) -> Vec<u8> {
        let len = u16::try_from(self.wrapped_key.len())
            .expect("wrapped key length was checked against MAX_WRAPPED_KEY_LEN");
        let mut bytes = Vec::with_capacity(FIXED_HEADER_LEN + self.wrapped_key.len() + 7);
        bytes.extend_from_slice(&MAGIC);
        bytes.extend_from_slice(&[VERSION, self.scheme.id()]);
        bytes.extend_from_slice(&len.to_be_bytes());
        bytes.extend_from_slice(&self.wrapped_key);
        bytes.extend_from_slice(&self.nonce_prefix);
        bytes
    }
}

/// Encrypts one object. Single use: a data key and nonce prefix never seal two objects.
#[derive(Debug)]
pub struct Sealer {
    key: DataKey,
    header: Header,
}

impl Sealer {
    /// Asks `wrapper` for a fresh data key and draws a random nonce prefix.
    pub async fn new(wrapper: &impl KeyWrapper) -> Result<Self, EnvelopeError> {
        let (key, wrapped_key) = wrapper.new_data_key().await?;
        check_wrapped_len(wrapped_key.len())?;
        let header = Header {
            scheme: wrapper.scheme(),
            wrapped_key,
            nonce_prefix: *random_bytes()?,
        };
        Ok(Self { key, header })
    }

    /// Streams `plaintext` into `object` as header plus chunks.
    pub fn seal(self, plaintext: impl Read, mut object: impl Write) -> Result<(), EnvelopeError> {
        let aad = self.header.to_bytes();
        object.write_all(&aad).map_err(EnvelopeError::Write)?;
        let nonce = (&self.header.nonce_prefix).into();
        let mut encryptor = EncryptorBE32::from_aead(self.key.cipher(), nonce);
        let mut input = BufReader::new(plaintext);
        let mut buffer = Vec::with_capacity(CHUNK_SIZE + TAG_LEN);
        while next_chunk(&mut input, &mut buffer, CHUNK_SIZE).map_err(EnvelopeError::Read)? {
            encryptor
                .encrypt_next_in_place(&aad, &mut buffer)
                .map_err(|_| EnvelopeError::TooLarge)?;
            object.write_all(&buffer).map_err(EnvelopeError::Write)?;
        }
        encryptor
            .encrypt_last_in_place(&aad, &mut buffer)
            .map_err(|_| EnvelopeError::TooLarge)?;
        object.write_all(&buffer).map_err(EnvelopeError::Write)?;
        object.flush().map_err(EnvelopeError::Write)
    }
}

/// Decrypts one object whose header has been read and whose data key has been unwrapped.
#[derive(Debug)]
pub struct Opener {
    key: DataKey,
    header: Header,
}

impl Opener {
    /// Unwraps the data key in `header` with `wrapper`.
    pub async fn new(wrapper: &impl KeyWrapper, header: Header) -> Result<Self, EnvelopeError> {
        if header.scheme != wrapper.scheme() {
            return Err(EnvelopeError::SchemeMismatch {
                found: header.scheme,
                expected: wrapper.scheme(),
            });
        }
        let key = wrapper.unwrap_key(&header.wrapped_key).await?;
        Ok(Self { key, header })
    }

    /// Streams the chunks that follow the header from `chunks` into `plaintext`. An `Err` means
    /// the output so far must be discarded.
    pub fn open(self, chunks: impl Read, mut plaintext: impl Write) -> Result<(), EnvelopeError> {
        let aad = self.header.to_bytes();
        let nonce = (&self.header.nonce_prefix).into();
        let mut decryptor = DecryptorBE32::from_aead(self.key.cipher(), nonce);
        let mut input = BufReader::new(chunks);
        let mut buffer = Vec::with_capacity(CHUNK_SIZE + TAG_LEN);
        let mut chunk = 0;
        while next_chunk(&mut input, &mut buffer, CHUNK_SIZE + TAG_LEN)
            .map_err(EnvelopeError::Read)?
        {
            decryptor
                .decrypt_next_in_place(&aad, &mut buffer)
                .map_err(|_| EnvelopeError::Authentication { chunk })?;
            plaintext.write_all(&buffer).map_err(EnvelopeError::Write)?;
            chunk += 1;
        }
        decryptor
            .decrypt_last_in_place(&aad, &mut buffer)
            .map_err(|_| EnvelopeError::Authentication { chunk })?;
        plaintext.write_all(&buffer).map_err(EnvelopeError::Write)?;
        plaintext.flush().map_err(EnvelopeError::Write)
    }
}

/// Fills `buffer` with up to `size` bytes; returns whether more input follows them.
///
/// The look-ahead (`fill_buf`) is what tells the last chunk apart, even when the input length is
/// an exact multiple of `size`.
fn next_chunk(input: &mut impl BufRead, buffer: &mut Vec<u8>, size: usize) -> io::Result<bool> {
    buffer.clear();
    input.by_ref().take(size as u64).read_to_end(buffer)?;
    Ok(buffer.len() == size && !input.fill_buf()?.is_empty())
}

/// `N` bytes from the operating system's random source, zeroed on drop.
pub(crate) fn random_bytes<const N: usize>() -> Result<Zeroizing<[u8; N]>, EnvelopeError> {
    let mut bytes = Zeroizing::new([0; N]);
    OsRng
        .try_fill_bytes(bytes.as_mut())
        .map_err(|_| EnvelopeError::Random)?;
    Ok(bytes)
}

fn read_header_part(reader: &mut impl Read, part: &mut [u8]) -> Result<(), EnvelopeError> {
    reader.read_exact(part).map_err(|error| {
        if error.kind() == io::ErrorKind::UnexpectedEof {
            EnvelopeError::TruncatedHeader
        } else {
            EnvelopeError::Read(error)
        }
    })
}

fn check_wrapped_len(len: usize) -> Result<(), EnvelopeError> {
    if (1..=MAX_WRAPPED_KEY_LEN).contains(&len) {
        Ok(())
    } else {
        Err(EnvelopeError::WrappedKeyLength { len })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; DATA_KEY_LEN] = [7; DATA_KEY_LEN];
    const CHUNK_ON_DISK: usize = CHUNK_SIZE + TAG_LEN;

    /// A wrapper whose "wrapping" is reversing the bytes: enough to test the plumbing.
    struct ReversingWrapper(KeyScheme);

    impl KeyWrapper for ReversingWrapper {
        fn scheme(&self) -> KeyScheme {
            self.0
        }

        async fn new_data_key(&self) -> Result<(DataKey, Vec<u8>), EnvelopeError> {
            let key = DataKey::generate()?;
            let wrapped = key.as_bytes().iter().rev().copied().collect();
            Ok((key, wrapped))
        }

        async fn unwrap_key(&self, wrapped: &[u8]) -> Result<DataKey, EnvelopeError> {
            DataKey::from_slice(&wrapped.iter().rev().copied().collect::<Vec<_>>())
        }
    }

    fn header() -> Header {
        Header {
            scheme: KeyScheme::LocalAesGcm,
            wrapped_key: vec![0xAA; 60],
            nonce_prefix: [1, 2, 3, 4, 5, 6, 7],
        }
    }

    fn header_len() -> usize {
        header().to_bytes().len()
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len)
            .map(|index| u8::try_from(index * 31 % 251).unwrap())
            .collect()
    }

    fn seal(plaintext: &[u8]) -> Vec<u8> {
        let sealer = Sealer {
            key: DataKey::from_slice(&KEY).unwrap(),
            header: header(),
        };
        let mut object = Vec::new();
        sealer.seal(plaintext, &mut object).unwrap();
        object
    }

    fn open_with(key: &[u8], mut object: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
        let header = Header::read_from(&mut object)?;
        let opener = Opener {
            key: DataKey::from_slice(key)?,
            header,
        };
        let mut plaintext = Vec::new();
        opener.open(object, &mut plaintext)?;
        Ok(plaintext)
    }

    fn open(object: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
        open_with(&KEY, object)
    }

    #[test]
    fn multi_chunk_plaintext_round_trips() {
        let plaintext = pattern(1024 * 1024 + 17);
        let object = seal(&plaintext);
        let chunks = 16 * CHUNK_ON_DISK + 17 + TAG_LEN;
        assert_eq!(object.len(), header_len() + chunks);
        assert_eq!(open(&object).unwrap(), plaintext);
    }

    #[test]
    fn empty_plaintext_round_trips_as_one_empty_chunk() {
        let object = seal(&[]);
        assert_eq!(object.len(), header_len() + TAG_LEN);
        assert_eq!(open(&object).unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn plaintext_of_whole_chunks_round_trips_with_a_full_last_chunk() {
        let plaintext = pattern(2 * CHUNK_SIZE);
        let object = seal(&plaintext);
        assert_eq!(object.len(), header_len() + 2 * CHUNK_ON_DISK);
        assert_eq!(open(&object).unwrap(), plaintext);
    }

    #[test]
    fn header_layout_is_stable() {
        let bytes = header().to_bytes();
        assert_eq!(&bytes[..8], b"RNAE\x01\x01\x00\x3c");
        assert_eq!(&bytes[8..68], &[0xAA; 60]);
        assert_eq!(&bytes[68..], &[1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(Header::read_from(&mut bytes.as_slice()).unwrap(), header());
    }

    #[test]
    fn reordered_chunks_fail_authentication() {
        let mut object = seal(&pattern(3 * CHUNK_SIZE));
        let first = header_len()..header_len() + CHUNK_ON_DISK;
        let chunk: Vec<u8> = object[first.clone()].to_vec();
        object.copy_within(first.end..first.end + CHUNK_ON_DISK, first.start);
        object[first.end..first.end + CHUNK_ON_DISK].copy_from_slice(&chunk);
        assert!(matches!(
            open(&object),
            Err(EnvelopeError::Authentication { chunk: 0 })
        ));
    }

    #[test]
    fn truncation_at_a_chunk_boundary_fails_authentication() {
        let object = seal(&pattern(2 * CHUNK_SIZE + 5));
        let cut = &object[..header_len() + CHUNK_ON_DISK];
        assert!(matches!(
            open(cut),
            Err(EnvelopeError::Authentication { chunk: 0 })
        ));
        let cut = &object[..header_len() + 2 * CHUNK_ON_DISK];
        assert!(matches!(
            open(cut),
            Err(EnvelopeError::Authentication { chunk: 1 })
        ));
    }

    #[test]
    fn truncation_inside_the_last_chunk_fails_authentication() {
        let object = seal(b"short");
        for len in header_len()..object.len() {
            assert!(
                matches!(
                    open(&object[..len]),
                    Err(EnvelopeError::Authentication { chunk: 0 })
                ),
                "cut at {len}"
            );
        }
    }

    #[test]
    fn appended_bytes_fail_authentication() {
        let mut object = seal(&pattern(CHUNK_SIZE));
        object.push(0);
        assert!(matches!(
            open(&object),
            Err(EnvelopeError::Authentication { .. })
        ));
    }

    #[test]
    fn flipped_bytes_anywhere_after_the_fixed_header_fail() {
        let object = seal(&pattern(CHUNK_SIZE + 100));
        for index in [8, 40, 67, 68, 74, 75, 1000, CHUNK_SIZE, object.len() - 1] {
            let mut altered = object.clone();
            altered[index] ^= 0x01;
            assert!(
                matches!(open(&altered), Err(EnvelopeError::Authentication { .. })),
                "flip at {index}"
            );
        }
    }

    #[test]
    fn wrong_data_key_fails_authentication() {
        let object = seal(b"secret");
        assert!(matches!(
            open_with(&[8; DATA_KEY_LEN], &object),
            Err(EnvelopeError::Authentication { chunk: 0 })
        ));
    }

    #[test]
    fn malformed_headers_are_rejected() {
        let object = seal(b"x");
        let with = |index: usize, value: u8| {
            let mut altered = object.clone();
            altered[index] = value;
            Header::read_from(&mut altered.as_slice())
        };
        assert!(matches!(with(0, b'X'), Err(EnvelopeError::BadMagic)));
        assert!(matches!(
            with(4, 2),
            Err(EnvelopeError::UnsupportedVersion { version: 2 })
        ));
        assert!(matches!(
            with(5, 9),
            Err(EnvelopeError::UnknownScheme { id: 9 })
        ));
        assert!(matches!(
            with(6, 0x10),
            Err(EnvelopeError::WrappedKeyLength { len: 0x103c })
        ));
        for len in 0..header_len() {
            assert!(matches!(
                Header::read_from(&mut &object[..len]),
                Err(EnvelopeError::TruncatedHeader)
            ));
        }
    }

    /// Records the largest single write, to show the output is produced chunk by chunk.
    struct WriteSizes {
        largest: usize,
        total: usize,
    }

    impl Write for WriteSizes {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.largest = self.largest.max(buf.len());
            self.total += buf.len();
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn large_input_is_sealed_chunk_by_chunk() {
        // Large enough for hundreds of chunks; unoptimised AES-GCM runs at a few MiB a second.
        const LEN: u64 = 16 * 1024 * 1024;
        let sealer = Sealer {
            key: DataKey::from_slice(&KEY).unwrap(),
            header: header(),
        };
        let mut sizes = WriteSizes {
            largest: 0,
            total: 0,
        };
        let input = io::repeat(0x5A).take(LEN);
        sealer.seal(input, &mut sizes).unwrap();
        assert_eq!(sizes.largest, CHUNK_ON_DISK);
        let chunks = usize::try_from(LEN).unwrap() / CHUNK_SIZE;
        assert_eq!(sizes.total, header_len() + chunks * CHUNK_ON_DISK);
    }

    #[tokio::test]
    async fn sealer_records_the_wrappers_scheme_and_opener_unwraps_it() {
        let wrapper = ReversingWrapper(KeyScheme::AwsKms);
        let mut object = Vec::new();
        let sealer = Sealer::new(&wrapper).await.unwrap();
        sealer.seal(&b"hello"[..], &mut object).unwrap();
        assert_eq!(object[5], KeyScheme::AwsKms.id());
        let mut reader = object.as_slice();
        let header = Header::read_from(&mut reader).unwrap();
        let opener = Opener::new(&wrapper, header).await.unwrap();
        let mut plaintext = Vec::new();
        opener.open(reader, &mut plaintext).unwrap();
        assert_eq!(plaintext, b"hello");
    }

    #[tokio::test]
    async fn opener_refuses_a_header_of_another_scheme() {
        let header = header();
        let error = Opener::new(&ReversingWrapper(KeyScheme::AwsKms), header)
            .await
            .unwrap_err();
        assert!(matches!(
            error,
            EnvelopeError::SchemeMismatch {
                found: KeyScheme::LocalAesGcm,
                expected: KeyScheme::AwsKms
            }
        ));
        assert!(error.is_key_failure());
    }

    #[test]
    fn scheme_ids_round_trip() {
        for scheme in [KeyScheme::LocalAesGcm, KeyScheme::AwsKms] {
            assert_eq!(KeyScheme::from_id(scheme.id()), Some(scheme));
        }
        assert_eq!(KeyScheme::from_id(0), None);
    }

    #[test]
    fn data_key_debug_is_redacted() {
        let key = DataKey::from_slice(&KEY).unwrap();
        assert_eq!(format!("{key:?}"), "DataKey(..)");
        assert!(matches!(
            DataKey::from_slice(&[0; 16]),
            Err(EnvelopeError::DataKeyLength { len: 16 })
        ));
    }
}
