//! The local master key: a 32-byte file, mode 0600, that wraps the data key of every object in a
//! [`LocalArtifactStore`](super::LocalArtifactStore) (scheme [`KeyScheme::LocalAesGcm`]).
//!
//! A wrapped key is `nonce(12) || AES-256-GCM(master, nonce, data key, aad = WRAP_AAD)`, 60 bytes.
//! The file is created atomically on first use and refused when group or others may access it.

use std::fmt;
use std::io::{self, Read as _, Write as _};
use std::path::Path;

use aes_gcm::aead::{Aead as _, KeyInit as _, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use zeroize::Zeroizing;

use super::envelope::{DATA_KEY_LEN, DataKey, EnvelopeError, KeyScheme, KeyWrapper, random_bytes};
use super::{ArtifactError, io_error};

/// Length of the master key file.
const MASTER_KEY_LEN: usize = 32;
const WRAP_NONCE_LEN: usize = 12;
const WRAPPED_LEN: usize = WRAP_NONCE_LEN + DATA_KEY_LEN + 16;
/// Binds wrapped keys to this purpose and scheme version.
const WRAP_AAD: &[u8] = b"runner/artifacts/local-aes-gcm/v1";

/// What makes a master key file unusable.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileProblem {
    /// Group or others have some access to it.
    #[error("its mode {mode:03o} lets group or others access it; run `chmod 600` on it")]
    Permissions {
        /// The permission bits found.
        mode: u32,
    },
    /// It does not hold exactly 32 bytes.
    #[error("it holds {len} bytes instead of {MASTER_KEY_LEN}")]
    Length {
        /// Its length.
        len: u64,
    },
    /// It is a directory or a special file.
    #[error("it is not a regular file")]
    NotAFile,
}

/// The master key of a local store, loaded from its file.
pub struct LocalMasterKey {
    cipher: Aes256Gcm,
}

impl LocalMasterKey {
    /// Loads the key at `path`, first creating it (32 random bytes, mode 0600) if it is absent.
    pub fn load_or_create(path: &Path) -> Result<Self, ArtifactError> {
        match fs_err::File::open(path) {
            Ok(file) => Self::from_file(path, file),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                create(path)?;
                Self::load(path)
            }
            Err(error) => Err(io_error("open", path)(error)),
        }
    }

    /// Loads the key at `path`, refusing a file that group or others may access.
    pub fn load(path: &Path) -> Result<Self, ArtifactError> {
        let file = fs_err::File::open(path).map_err(io_error("open", path))?;
        Self::from_file(path, file)
    }

    fn from_file(path: &Path, mut file: fs_err::File) -> Result<Self, ArtifactError> {
        let problem = |problem| ArtifactError::Key {
            path: path.to_path_buf(),
            problem,
        };
        // Checked on the open handle, so the file checked is the file read.
        let metadata = file.metadata().map_err(io_error("inspect", path))?;
        if !metadata.is_file() {
            return Err(problem(KeyFileProblem::NotAFile));
        }
        if let Some(mode) = loose_mode(&metadata) {
            return Err(problem(KeyFileProblem::Permissions { mode }));
        }
        if metadata.len() != MASTER_KEY_LEN as u64 {
            return Err(problem(KeyFileProblem::Length {
                len: metadata.len(),
            }));
        }
        let mut bytes = Zeroizing::new([0; MASTER_KEY_LEN]);
        file.read_exact(bytes.as_mut())
            .map_err(io_error("read", path))?;
        Ok(Self {
            cipher: Aes256Gcm::new((&*bytes).into()),
        })
    }

    fn wrap(&self, key: &DataKey) -> Result<Vec<u8>, EnvelopeError> {
        let nonce: Zeroizing<[u8; WRAP_NONCE_LEN]> = random_bytes()?;
        let payload = Payload {
            msg: key.as_bytes(),
            aad: WRAP_AAD,
        };
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(nonce.as_ref()), payload)
            .expect("AES-GCM seals any input shorter than 64 GiB, and a data key is 32 bytes");
        let mut wrapped = Vec::with_capacity(WRAPPED_LEN);
        wrapped.extend_from_slice(nonce.as_ref());
        wrapped.extend_from_slice(&sealed);
        Ok(wrapped)
    }

    fn unwrap(&self, wrapped: &[u8]) -> Result<DataKey, EnvelopeError> {
        if wrapped.len() != WRAPPED_LEN {
            return Err(EnvelopeError::Unwrap);
        }
        let (nonce, sealed) = wrapped.split_at(WRAP_NONCE_LEN);
        let payload = Payload {
            msg: sealed,
            aad: WRAP_AAD,
        };
        let key = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), payload)
            .map(Zeroizing::new)
            .map_err(|_| EnvelopeError::Unwrap)?;
        DataKey::from_slice(&key)
    }
}

impl KeyWrapper for LocalMasterKey {
    fn scheme(&self) -> KeyScheme {
        KeyScheme::LocalAesGcm
    }

    async fn new_data_key(&self) -> Result<(DataKey, Vec<u8>), EnvelopeError> {
        let key = DataKey::generate()?;
        let wrapped = self.wrap(&key)?;
        Ok((key, wrapped))
    }

    async fn unwrap_key(&self, wrapped: &[u8]) -> Result<DataKey, EnvelopeError> {
        self.unwrap(wrapped)
    }
}

impl fmt::Debug for LocalMasterKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("LocalMasterKey(..)")
    }
}

/// Writes a new random key to a 0600 temporary file beside `path`, then links it into place
/// unless another process got there first (whose key then wins).
fn create(path: &Path) -> Result<(), ArtifactError> {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let bytes: Zeroizing<[u8; MASTER_KEY_LEN]> =
        random_bytes().map_err(|source| ArtifactError::Crypto { source })?;
    let mut builder = tempfile::Builder::new();
    builder.prefix(".master.key-");
    #[cfg(unix)]
    builder.permissions(private_permissions());
    let mut temp = builder
        .tempfile_in(dir)
        .map_err(io_error("create a temporary file in", dir))?;
    temp.write_all(bytes.as_ref())
        .and_then(|()| temp.as_file().sync_all())
        .map_err(io_error("write", temp.path()))?;
    match temp.persist_noclobber(path) {
        Ok(_) => Ok(()),
        Err(error) if error.error.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(io_error("create", path)(error.error)),
    }
}

#[cfg(unix)]
fn private_permissions() -> std::fs::Permissions {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::Permissions::from_mode(0o600)
}

#[cfg(unix)]
fn loose_mode(metadata: &std::fs::Metadata) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = metadata.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then_some(mode)
}

#[cfg(not(unix))]
fn loose_mode(_metadata: &std::fs::Metadata) -> Option<u32> {
    None
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn mode(path: &Path) -> u32 {
        fs_err::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn master_key_file_is_created_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        LocalMasterKey::load_or_create(&path).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(fs_err::read(&path).unwrap().len(), MASTER_KEY_LEN);
        let leftovers = fs_err::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "only the key file remains");
    }

    #[test]
    fn master_key_is_reused_once_created() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let first = LocalMasterKey::load_or_create(&path).unwrap();
        let bytes = fs_err::read(&path).unwrap();
        let second = LocalMasterKey::load_or_create(&path).unwrap();
        assert_eq!(fs_err::read(&path).unwrap(), bytes);
        let key = DataKey::generate().unwrap();
        let unwrapped = second.unwrap(&first.wrap(&key).unwrap()).unwrap();
        assert_eq!(unwrapped.as_bytes(), key.as_bytes());
    }

    #[test]
    fn master_key_readable_by_others_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        LocalMasterKey::load_or_create(&path).unwrap();
        fs_err::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = LocalMasterKey::load_or_create(&path).unwrap_err();
        assert!(matches!(
            &error,
            ArtifactError::Key {
                problem: KeyFileProblem::Permissions { mode: 0o644 },
                ..
            }
        ));
        assert_eq!(
            error.to_string(),
            format!("use master key {}", path.display())
        );
        let problem = std::error::Error::source(&error).unwrap().to_string();
        assert!(problem.contains("chmod 600"), "{problem}");
    }

    #[test]
    fn master_key_of_the_wrong_length_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        fs_err::write(&path, [1; 16]).unwrap();
        fs_err::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            LocalMasterKey::load(&path),
            Err(ArtifactError::Key {
                problem: KeyFileProblem::Length { len: 16 },
                ..
            })
        ));
    }

    #[test]
    fn master_key_path_that_is_a_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        fs_err::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(matches!(
            LocalMasterKey::load(dir.path()),
            Err(ArtifactError::Key {
                problem: KeyFileProblem::NotAFile,
                ..
            })
        ));
    }

    #[test]
    fn wrapped_key_does_not_unwrap_under_another_master_key() {
        let dir = tempfile::tempdir().unwrap();
        let one = LocalMasterKey::load_or_create(&dir.path().join("one.key")).unwrap();
        let two = LocalMasterKey::load_or_create(&dir.path().join("two.key")).unwrap();
        let wrapped = one.wrap(&DataKey::generate().unwrap()).unwrap();
        assert_eq!(wrapped.len(), WRAPPED_LEN);
        assert!(matches!(two.unwrap(&wrapped), Err(EnvelopeError::Unwrap)));
        assert!(matches!(
            one.unwrap(&wrapped[1..]),
            Err(EnvelopeError::Unwrap)
        ));
    }

    #[test]
    fn master_key_debug_is_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let key = LocalMasterKey::load_or_create(&dir.path().join("master.key")).unwrap();
        assert_eq!(format!("{key:?}"), "LocalMasterKey(..)");
    }
}
