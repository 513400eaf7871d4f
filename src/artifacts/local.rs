//! The embedded artifact store: a local directory of encrypted, content-addressed objects.
//!
//! Layout: `<root>/master.key` (see [`LocalMasterKey`]) and `<root>/objects/<aa>/<digest>`, where
//! `aa` is the digest's first two hex digits and each object is an [`envelope`](super::envelope).
//! Writes go to a temporary file (in `objects/`, or beside `dest`) renamed into place only once
//! complete and verified; all file work runs on tokio's blocking pool. Files that `get` writes
//! have mode 0600, as artifacts may hold secrets.

use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tempfile::NamedTempFile;

use super::digest::Hashing;
use super::envelope::{EnvelopeError, Header, Opener, Sealer};
use super::io_error;
use super::{ArtifactError, ArtifactRef, ArtifactStore, LocalMasterKey, Sha256Hex, TamperEvidence};

/// Directory under the root that holds the objects.
const OBJECTS_DIR: &str = "objects";
/// Name of the master key file under the root.
const MASTER_KEY_FILE: &str = "master.key";
/// Prefix of temporary files; never a valid shard name, so never mistaken for an object.
const TEMP_PREFIX: &str = ".tmp-";

/// An [`ArtifactStore`] in a local directory, encrypted under a master key file beside the objects.
#[derive(Debug, Clone)]
pub struct LocalArtifactStore {
    root: PathBuf,
    objects: PathBuf,
    key: Arc<LocalMasterKey>,
}

impl LocalArtifactStore {
    /// Opens the store at `root`, creating the directory and its master key on first use.
    ///
    /// Blocks briefly on the file system; call it at startup or from `spawn_blocking`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, ArtifactError> {
        let root = root.into();
        let objects = root.join(OBJECTS_DIR);
        fs_err::create_dir_all(&objects).map_err(io_error("create", &objects))?;
        let key = LocalMasterKey::load_or_create(&root.join(MASTER_KEY_FILE))?;
        Ok(Self {
            root,
            objects,
            key: Arc::new(key),
        })
    }

    /// The store's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the object for `digest` lives.
    pub fn object_path(&self, digest: &Sha256Hex) -> PathBuf {
        object_path(&self.objects, digest)
    }
}

impl ArtifactStore for LocalArtifactStore {
    async fn put(&self, path: &Path) -> Result<ArtifactRef, ArtifactError> {
        let sealer = Sealer::new(self.key.as_ref())
            .await
            .map_err(|source| ArtifactError::Crypto { source })?;
        let objects = self.objects.clone();
        let source = path.to_path_buf();
        blocking(move || {
            let file = fs_err::File::open(&source).map_err(io_error("open", &source))?;
            store_object(&objects, sealer, file, &source)
        })
        .await
    }

    async fn get(&self, reference: &ArtifactRef, dest: &Path) -> Result<(), ArtifactError> {
        let object = self.object_path(&reference.digest);
        let digest = reference.digest.clone();
        let (file, header) = blocking(move || open_object(&object, digest)).await?;
        let opener = Opener::new(self.key.as_ref(), header)
            .await
            .map_err(|error| read_failure(&reference.digest, file.path(), error))?;
        let reference = reference.clone();
        let dest = dest.to_path_buf();
        blocking(move || restore_object(&file, opener, &reference, &dest)).await
    }

    async fn exists(&self, reference: &ArtifactRef) -> Result<bool, ArtifactError> {
        let object = self.object_path(&reference.digest);
        tokio::fs::try_exists(&object)
            .await
            .map_err(io_error("check", &object))
    }

    async fn delete(&self, reference: &ArtifactRef) -> Result<(), ArtifactError> {
        let object = self.object_path(&reference.digest);
        match tokio::fs::remove_file(&object).await {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(io_error("remove", &object)(error)),
        }
    }
}

fn object_path(objects: &Path, digest: &Sha256Hex) -> PathBuf {
    objects.join(digest.shard()).join(digest.as_str())
}

/// Seals `plaintext` into a temporary file in `objects`, then renames it to its digest's path.
///
/// On any error the temporary file is removed and no object appears. Storing content that is
/// already present replaces the object with an equivalent one (which also heals a damaged copy).
fn store_object(
    objects: &Path,
    sealer: Sealer,
    plaintext: impl io::Read,
    source: &Path,
) -> Result<ArtifactRef, ArtifactError> {
    let temp = temp_file_in(objects)?;
    let mut plaintext = Hashing::new(plaintext);
    let mut writer = BufWriter::new(temp.as_file());
    sealer
        .seal(&mut plaintext, &mut writer)
        .map_err(|error| match error {
            EnvelopeError::Read(error) => io_error("read", source)(error),
            EnvelopeError::Write(error) => io_error("write", temp.path())(error),
            other => ArtifactError::Crypto { source: other },
        })?;
    drop(writer);
    temp.as_file()
        .sync_all()
        .map_err(io_error("sync", temp.path()))?;
    let (digest, size) = plaintext.finish();
    let dest = object_path(objects, &digest);
    let shard = objects.join(digest.shard());
    fs_err::create_dir_all(&shard).map_err(io_error("create", &shard))?;
    temp.persist(&dest)
        .map_err(|error| io_error("rename into", &dest)(error.error))?;
    Ok(ArtifactRef { digest, size })
}

/// Opens the object for `digest` and reads its header.
fn open_object(object: &Path, digest: Sha256Hex) -> Result<(fs_err::File, Header), ArtifactError> {
    let mut file = match fs_err::File::open(object) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            return Err(ArtifactError::Missing { digest });
        }
        Err(error) => return Err(io_error("open", object)(error)),
    };
    let header =
        Header::read_from(&mut file).map_err(|error| read_failure(&digest, object, error))?;
    Ok((file, header))
}

/// Decrypts the rest of `object` into a temporary file beside `dest`, checks the digest and size
/// of the plaintext against `reference`, and only then renames it to `dest`.
fn restore_object(
    object: &fs_err::File,
    opener: Opener,
    reference: &ArtifactRef,
    dest: &Path,
) -> Result<(), ArtifactError> {
    let dir = match dest.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let temp = temp_file_in(dir)?;
    let mut plaintext = Hashing::new(BufWriter::new(temp.as_file()));
    opener
        .open(object, &mut plaintext)
        .map_err(|error| match error {
            EnvelopeError::Write(error) => io_error("write", temp.path())(error),
            other => read_failure(&reference.digest, object.path(), other),
        })?;
    let (actual, size) = plaintext.finish();
    super::verify_and_persist(temp, reference, actual, size, dest)
}

/// Classifies an envelope error met while reading the object at `object`.
fn read_failure(digest: &Sha256Hex, object: &Path, error: EnvelopeError) -> ArtifactError {
    match error {
        EnvelopeError::Read(error) => io_error("read", object)(error),
        error if error.is_key_failure() => ArtifactError::Unwrap {
            digest: digest.clone(),
            source: error,
        },
        error => ArtifactError::Tampered {
            digest: digest.clone(),
            evidence: TamperEvidence::Envelope(error),
        },
    }
}

fn temp_file_in(dir: &Path) -> Result<NamedTempFile, ArtifactError> {
    tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .tempfile_in(dir)
        .map_err(io_error("create a temporary file in", dir))
}

/// Runs file work on the blocking pool so the async API never stalls the runtime.
async fn blocking<T: Send + 'static>(
    task: impl FnOnce() -> Result<T, ArtifactError> + Send + 'static,
) -> Result<T, ArtifactError> {
    tokio::task::spawn_blocking(task)
        .await
        .map_err(|source| ArtifactError::Task { source })?
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    struct Fixture {
        _dir: tempfile::TempDir,
        store: LocalArtifactStore,
        work: PathBuf,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalArtifactStore::open(dir.path().join("store")).unwrap();
        let work = dir.path().join("work");
        fs_err::create_dir(&work).unwrap();
        Fixture {
            _dir: dir,
            store,
            work,
        }
    }

    impl Fixture {
        fn file(&self, name: &str, content: &[u8]) -> PathBuf {
            let path = self.work.join(name);
            fs_err::write(&path, content).unwrap();
            path
        }
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len)
            .map(|index| u8::try_from(index * 7 % 253).unwrap())
            .collect()
    }

    /// Every file below `dir`, recursively.
    fn files_under(dir: &Path) -> Vec<PathBuf> {
        let mut files = Vec::new();
        for entry in fs_err::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files.extend(files_under(&path));
            } else {
                files.push(path);
            }
        }
        files
    }

    #[tokio::test]
    async fn multi_chunk_file_round_trips() {
        let fixture = fixture();
        let content = pattern(1024 * 1024 + 17);
        let source = fixture.file("in.zip", &content);
        let reference = fixture.store.put(&source).await.unwrap();
        assert_eq!(reference.digest, Sha256Hex::of_bytes(&content));
        assert_eq!(reference.size, content.len() as u64);
        let dest = fixture.work.join("out.zip");
        fixture.store.get(&reference, &dest).await.unwrap();
        assert_eq!(fs_err::read(&dest).unwrap(), content);
    }

    #[tokio::test]
    async fn empty_file_round_trips() {
        let fixture = fixture();
        let reference = fixture
            .store
            .put(&fixture.file("empty", b""))
            .await
            .unwrap();
        assert_eq!(reference.size, 0);
        let dest = fixture.work.join("out");
        fixture.store.get(&reference, &dest).await.unwrap();
        assert_eq!(fs_err::read(&dest).unwrap(), b"");
    }

    #[tokio::test]
    async fn object_is_stored_encrypted_at_its_digest_path() {
        let fixture = fixture();
        let content = b"plain text that must not appear on disk".repeat(10);
        let reference = fixture
            .store
            .put(&fixture.file("a", &content))
            .await
            .unwrap();
        let digest = reference.digest.as_str();
        let object = fixture
            .store
            .root()
            .join(format!("objects/{}/{digest}", &digest[..2]));
        let stored = fs_err::read(&object).unwrap();
        assert_eq!(&stored[..4], b"RNAE");
        assert!(!stored.windows(10).any(|window| window == &content[..10]));
    }

    #[tokio::test]
    async fn same_content_twice_stores_one_object() {
        let fixture = fixture();
        let first = fixture
            .store
            .put(&fixture.file("a", b"same"))
            .await
            .unwrap();
        let second = fixture
            .store
            .put(&fixture.file("b", b"same"))
            .await
            .unwrap();
        assert_eq!(first, second);
        let objects = files_under(&fixture.store.root().join(OBJECTS_DIR));
        assert_eq!(objects, vec![fixture.store.object_path(&first.digest)]);
    }

    #[tokio::test]
    async fn put_leaves_no_temporary_files() {
        let fixture = fixture();
        let reference = fixture
            .store
            .put(&fixture.file("a", &pattern(300_000)))
            .await
            .unwrap();
        let files = files_under(&fixture.store.root().join(OBJECTS_DIR));
        assert_eq!(files, vec![fixture.store.object_path(&reference.digest)]);
    }

    /// Yields some bytes, then fails, as a disk or network read might.
    struct FailingReader {
        remaining: usize,
    }

    impl io::Read for FailingReader {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.remaining == 0 {
                return Err(io::Error::other("device unplugged"));
            }
            let count = buf.len().min(self.remaining);
            buf[..count].fill(1);
            self.remaining -= count;
            Ok(count)
        }
    }

    #[tokio::test]
    async fn failed_put_leaves_no_object() {
        let fixture = fixture();
        let sealer = Sealer::new(fixture.store.key.as_ref()).await.unwrap();
        let objects = fixture.store.root().join(OBJECTS_DIR);
        let reader = FailingReader { remaining: 200_000 };
        let error = store_object(&objects, sealer, reader, Path::new("/in.zip")).unwrap_err();
        assert!(matches!(error, ArtifactError::Io { action: "read", .. }));
        assert_eq!(files_under(&objects), Vec::<PathBuf>::new());
    }

    #[tokio::test]
    async fn put_of_a_missing_file_names_it() {
        let fixture = fixture();
        let missing = fixture.work.join("missing.zip");
        let error = fixture.store.put(&missing).await.unwrap_err();
        assert!(
            matches!(&error, ArtifactError::Io { action: "open", path, .. } if *path == missing)
        );
    }

    async fn put_and_alter(alter: impl FnOnce(&mut Vec<u8>)) -> (Fixture, ArtifactRef) {
        let fixture = fixture();
        let reference = fixture
            .store
            .put(&fixture.file("a", &pattern(200_000)))
            .await
            .unwrap();
        let object = fixture.store.object_path(&reference.digest);
        let mut stored = fs_err::read(&object).unwrap();
        alter(&mut stored);
        fs_err::write(&object, stored).unwrap();
        (fixture, reference)
    }

    #[track_caller]
    fn assert_no_output(fixture: &Fixture, dest: &Path) {
        assert!(!dest.exists(), "no dest file");
        let left: Vec<_> = files_under(&fixture.work)
            .into_iter()
            .filter(|path| path.file_name().is_some_and(|name| name != "a"))
            .collect();
        assert_eq!(
            left,
            Vec::<PathBuf>::new(),
            "no temporary files beside dest"
        );
    }

    #[tokio::test]
    async fn tampered_object_is_detected_on_read() {
        let (fixture, reference) = put_and_alter(|stored| stored[100_000] ^= 0x20).await;
        let dest = fixture.work.join("out.zip");
        let error = fixture.store.get(&reference, &dest).await.unwrap_err();
        assert!(matches!(
            error,
            ArtifactError::Tampered {
                evidence: TamperEvidence::Envelope(EnvelopeError::Authentication { chunk: 1 }),
                ..
            }
        ));
        assert_no_output(&fixture, &dest);
    }

    #[tokio::test]
    async fn truncated_object_is_detected_on_read() {
        let (fixture, reference) = put_and_alter(|stored| stored.truncate(stored.len() - 1)).await;
        let dest = fixture.work.join("out.zip");
        let error = fixture.store.get(&reference, &dest).await.unwrap_err();
        assert!(matches!(error, ArtifactError::Tampered { .. }), "{error:?}");
        assert_no_output(&fixture, &dest);
    }

    #[tokio::test]
    async fn object_cut_inside_its_header_is_detected_on_read() {
        let (fixture, reference) = put_and_alter(|stored| stored.truncate(10)).await;
        let dest = fixture.work.join("out.zip");
        let error = fixture.store.get(&reference, &dest).await.unwrap_err();
        assert!(matches!(
            error,
            ArtifactError::Tampered {
                evidence: TamperEvidence::Envelope(EnvelopeError::TruncatedHeader),
                ..
            }
        ));
        assert_no_output(&fixture, &dest);
    }

    #[tokio::test]
    async fn object_swapped_in_from_another_digest_is_detected() {
        let fixture = fixture();
        let genuine = fixture
            .store
            .put(&fixture.file("a", b"genuine"))
            .await
            .unwrap();
        let other = fixture
            .store
            .put(&fixture.file("b", b"other"))
            .await
            .unwrap();
        let genuine_path = fixture.store.object_path(&genuine.digest);
        fs_err::copy(fixture.store.object_path(&other.digest), genuine_path).unwrap();
        let dest = fixture.work.join("out");
        let error = fixture.store.get(&genuine, &dest).await.unwrap_err();
        assert!(matches!(
            error,
            ArtifactError::Tampered { evidence: TamperEvidence::Digest { actual }, .. }
                if actual == other.digest
        ));
        assert!(!dest.exists());
    }

    #[tokio::test]
    async fn reference_with_the_wrong_size_is_refused() {
        let fixture = fixture();
        let mut reference = fixture
            .store
            .put(&fixture.file("a", b"four"))
            .await
            .unwrap();
        reference.size = 5;
        let dest = fixture.work.join("out");
        let error = fixture.store.get(&reference, &dest).await.unwrap_err();
        assert!(matches!(
            error,
            ArtifactError::Tampered {
                evidence: TamperEvidence::Size {
                    expected: 5,
                    actual: 4
                },
                ..
            }
        ));
        assert!(!dest.exists());
    }

    #[tokio::test]
    async fn failed_get_leaves_an_existing_dest_untouched() {
        let (fixture, reference) = put_and_alter(|stored| stored[200] ^= 1).await;
        let dest = fixture.file("out.zip", b"previous");
        fixture.store.get(&reference, &dest).await.unwrap_err();
        assert_eq!(fs_err::read(&dest).unwrap(), b"previous");
    }

    #[tokio::test]
    async fn get_replaces_an_existing_dest() {
        let fixture = fixture();
        let reference = fixture.store.put(&fixture.file("a", b"new")).await.unwrap();
        let dest = fixture.file("out.zip", b"previous");
        fixture.store.get(&reference, &dest).await.unwrap();
        assert_eq!(fs_err::read(&dest).unwrap(), b"new");
    }

    #[tokio::test]
    async fn wrong_master_key_cannot_read() {
        let fixture = fixture();
        let reference = fixture
            .store
            .put(&fixture.file("a", b"secret"))
            .await
            .unwrap();
        let key_path = fixture.store.root().join(MASTER_KEY_FILE);
        fs_err::remove_file(&key_path).unwrap();
        let reopened = LocalArtifactStore::open(fixture.store.root()).unwrap();
        let dest = fixture.work.join("out");
        let error = reopened.get(&reference, &dest).await.unwrap_err();
        assert!(matches!(
            error,
            ArtifactError::Unwrap {
                source: EnvelopeError::Unwrap,
                ..
            }
        ));
        assert!(!dest.exists());
    }

    #[tokio::test]
    async fn reopened_store_reads_what_it_wrote() {
        let fixture = fixture();
        let reference = fixture
            .store
            .put(&fixture.file("a", b"kept"))
            .await
            .unwrap();
        let reopened = LocalArtifactStore::open(fixture.store.root()).unwrap();
        let dest = fixture.work.join("out");
        reopened.get(&reference, &dest).await.unwrap();
        assert_eq!(fs_err::read(&dest).unwrap(), b"kept");
    }

    #[test]
    fn store_refuses_a_master_key_readable_by_others() {
        let dir = tempfile::tempdir().unwrap();
        LocalArtifactStore::open(dir.path()).unwrap();
        let key_path = dir.path().join(MASTER_KEY_FILE);
        assert_eq!(
            fs_err::metadata(&key_path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        fs_err::set_permissions(&key_path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = LocalArtifactStore::open(dir.path()).unwrap_err();
        assert!(matches!(&error, ArtifactError::Key { path, .. } if *path == key_path));
    }

    #[tokio::test]
    async fn missing_object_is_reported() {
        let fixture = fixture();
        let reference = ArtifactRef {
            digest: Sha256Hex::of_bytes(b"never stored"),
            size: 12,
        };
        let dest = fixture.work.join("out");
        let error = fixture.store.get(&reference, &dest).await.unwrap_err();
        assert!(matches!(error, ArtifactError::Missing { digest } if digest == reference.digest));
        assert!(!fixture.store.exists(&reference).await.unwrap());
    }

    #[tokio::test]
    async fn delete_removes_the_object_and_is_idempotent() {
        let fixture = fixture();
        let reference = fixture
            .store
            .put(&fixture.file("a", b"gone"))
            .await
            .unwrap();
        assert!(fixture.store.exists(&reference).await.unwrap());
        fixture.store.delete(&reference).await.unwrap();
        assert!(!fixture.store.exists(&reference).await.unwrap());
        fixture.store.delete(&reference).await.unwrap();
    }

    #[test]
    fn store_futures_can_be_spawned() {
        fn assert_send<T: Send>(_: &T) {}
        let fixture = fixture();
        let reference = ArtifactRef {
            digest: Sha256Hex::of_bytes(b""),
            size: 0,
        };
        assert_send(&fixture.store.put(Path::new("a")));
        assert_send(&fixture.store.get(&reference, Path::new("b")));
        assert_send(&fixture.store.exists(&reference));
        assert_send(&fixture.store.delete(&reference));
    }

    #[tokio::test]
    async fn large_sparse_file_streams_through_put_and_get() {
        // Large enough for over a hundred chunks; unoptimised AES-GCM runs at a few MiB a second.
        const LEN: u64 = 8 * 1024 * 1024 + 1;
        let fixture = fixture();
        let source = fixture.work.join("sparse.zip");
        fs_err::File::create(&source).unwrap().set_len(LEN).unwrap();
        let reference = fixture.store.put(&source).await.unwrap();
        assert_eq!(reference.size, LEN);
        let object = fixture.store.object_path(&reference.digest);
        let chunks = LEN.div_ceil(64 * 1024);
        let header = 8 + 60 + 7;
        assert_eq!(
            fs_err::metadata(&object).unwrap().len(),
            header + LEN + 16 * chunks
        );
        let dest = fixture.work.join("out.zip");
        fixture.store.get(&reference, &dest).await.unwrap();
        assert_eq!(fs_err::metadata(&dest).unwrap().len(), LEN);
    }
}
