//! Moves files into and out of the build container as tar archives.
//!
//! Going through the Engine API (not bind mounts) keeps builds working against a remote engine
//! and leaves no root-owned files on the host. Archives for the container are built in memory
//! from the source tree; archives from the container are spooled to a temporary file and then
//! unpacked, refusing any entry that would land outside the destination.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use crate::buildspec::script::ScriptFile;
use crate::executor::ExecutorError;

/// Errors while staging files.
#[derive(Debug, thiserror::Error)]
pub enum StagingError {
    /// Reading the host tree or writing the archive failed.
    #[error("pack {path} for the container")]
    Pack {
        /// The host path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Unpacking an archive from the container failed.
    #[error("unpack {path} from the container into {dest}")]
    Unpack {
        /// The container path.
        path: String,
        /// Host destination.
        dest: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The container runtime failed while streaming.
    #[error("stream {path} out of the container")]
    Download {
        /// The container path.
        path: String,
        /// Cause.
        #[source]
        source: ExecutorError,
    },
}

/// Builds one tar archive (extracted at `/` in the container).
pub struct Archive {
    builder: tar::Builder<Vec<u8>>,
    /// Directories already added: each is written once, however many files live in it.
    dirs: std::collections::HashSet<String>,
}

impl Default for Archive {
    fn default() -> Self {
        Self::new()
    }
}

impl Archive {
    /// An empty archive.
    pub fn new() -> Self {
        let mut builder = tar::Builder::new(Vec::new());
        builder.follow_symlinks(false);
        builder.mode(tar::HeaderMode::Deterministic);
        Self {
            builder,
            dirs: std::collections::HashSet::new(),
        }
    }

    /// Adds the host directory `dir` as `at` (a path without leading `/`).
    pub fn add_tree(&mut self, at: &str, dir: &Path) -> Result<(), StagingError> {
        let pack = |source| StagingError::Pack {
            path: dir.to_owned(),
            source,
        };
        self.add_dirs(at).map_err(pack)?;
        self.builder.append_dir_all(at, dir).map_err(pack)
    }

    /// Adds a host file as `at`, mode 0644.
    pub fn add_host_file(&mut self, at: &str, path: &Path) -> Result<(), StagingError> {
        let content = fs_err::read(path).map_err(|source| StagingError::Pack {
            path: path.to_owned(),
            source,
        })?;
        self.add_bytes(at, &content, 0o644)
            .map_err(|source| StagingError::Pack {
                path: path.to_owned(),
                source,
            })
    }

    /// Adds rendered scripts.
    pub fn add_scripts(&mut self, files: &[ScriptFile]) -> Result<(), StagingError> {
        for file in files {
            self.add_bytes(&file.path, file.content.as_bytes(), file.mode)
                .map_err(|source| StagingError::Pack {
                    path: PathBuf::from(&file.path),
                    source,
                })?;
        }
        Ok(())
    }

    /// Adds an empty directory (and its parents), mode 0755.
    pub fn add_dir(&mut self, at: &str) -> Result<(), StagingError> {
        self.add_dirs(at).map_err(|source| StagingError::Pack {
            path: PathBuf::from(at),
            source,
        })
    }

    fn add_dirs(&mut self, at: &str) -> std::io::Result<()> {
        let mut prefix = String::new();
        for part in at.trim_matches('/').split('/').filter(|p| !p.is_empty()) {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            if !self.dirs.insert(prefix.clone()) {
                continue;
            }
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o755);
            header.set_size(0);
            self.builder
                .append_data(&mut header, format!("{prefix}/"), std::io::empty())?;
        }
        Ok(())
    }

    fn add_bytes(&mut self, at: &str, content: &[u8], mode: u32) -> std::io::Result<()> {
        if let Some((parent, _)) = at.rsplit_once('/') {
            self.add_dirs(parent)?;
        }
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(mode);
        header.set_size(content.len() as u64);
        self.builder.append_data(&mut header, at, content)
    }

    /// The finished archive.
    pub fn finish(self) -> Result<Bytes, StagingError> {
        self.builder
            .into_inner()
            .map(Bytes::from)
            .map_err(|source| StagingError::Pack {
                path: PathBuf::from("<archive>"),
                source,
            })
    }
}

/// Spools a tar stream from the container to a temporary file.
pub async fn spool(
    path: &str,
    mut stream: impl Stream<Item = Result<Bytes, ExecutorError>> + Unpin,
) -> Result<tempfile::NamedTempFile, StagingError> {
    let mut file = tempfile::NamedTempFile::new().map_err(|source| StagingError::Unpack {
        path: path.to_owned(),
        dest: std::env::temp_dir(),
        source,
    })?;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|source| StagingError::Download {
            path: path.to_owned(),
            source,
        })?;
        file.write_all(&chunk)
            .map_err(|source| StagingError::Unpack {
                path: path.to_owned(),
                dest: file.path().to_owned(),
                source,
            })?;
    }
    Ok(file)
}

/// Unpacks a spooled archive into `dest`; the tar crate refuses entries escaping `dest`.
pub fn unpack(path: &str, archive: &Path, dest: &Path) -> Result<(), StagingError> {
    let unpack = |source| StagingError::Unpack {
        path: path.to_owned(),
        dest: dest.to_owned(),
        source,
    };
    fs_err::create_dir_all(dest).map_err(unpack)?;
    let file = fs_err::File::open(archive).map_err(unpack)?;
    let mut tar = tar::Archive::new(file);
    tar.set_preserve_permissions(true);
    tar.set_overwrite(true);
    tar.unpack(dest).map_err(unpack)
}

/// How the build's inputs get into the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Staging {
    /// Bind-mount the inputs read-only and let the driver copy them into place: one fewer API
    /// round trip and no tar through the engine. Needs an engine on this host.
    #[default]
    Mount,
    /// Upload a tar archive through the Engine API: works with a remote engine.
    Upload,
}

/// Where read-only inputs are mounted in [`Staging::Mount`].
const INPUT_DIR: &str = "/codebuild/input";

/// The inputs of one build, ready for the container.
#[derive(Debug, Default)]
pub struct Prepared {
    /// Read-only bind mounts (host path, container path).
    pub mounts: Vec<(PathBuf, String)>,
    /// A tar archive to upload at `/` before the start.
    pub upload: Option<Bytes>,
    /// Keeps the host directory holding the mounted scripts alive until the build ends.
    _scripts: Option<tempfile::TempDir>,
}

/// Points `layout` at where [`Staging::Mount`] puts things: scripts and sources under
/// `/codebuild/input`, copied by the driver into the usual places.
pub fn mount_layout(
    layout: &mut crate::buildspec::script::Layout,
    secondary_dirs: &[(String, String)],
) {
    layout.script_dir = format!("{INPUT_DIR}/agent");
    layout
        .copies
        .push((format!("{INPUT_DIR}/src"), layout.src_dir.clone()));
    for (index, (_, dir)) in secondary_dirs.iter().enumerate() {
        layout
            .copies
            .push((format!("{INPUT_DIR}/src{index}"), dir.clone()));
    }
}

/// Stages the sources, the rendered scripts and the CA bundle for `staging`.
pub fn prepare(
    staging: Staging,
    layout: &crate::buildspec::script::Layout,
    files: &[ScriptFile],
    source: &Path,
    secondary: &[(PathBuf, String)],
    ca_bundle: Option<(&Path, &str)>,
) -> Result<Prepared, StagingError> {
    match staging {
        Staging::Upload => {
            let mut archive = Archive::new();
            archive.add_tree(layout.src_dir.trim_start_matches('/'), source)?;
            for (host_dir, container_dir) in secondary {
                archive.add_tree(container_dir.trim_start_matches('/'), host_dir)?;
            }
            let script_dir = layout.script_dir.trim_start_matches('/');
            let placed: Vec<ScriptFile> = files
                .iter()
                .map(|file| ScriptFile {
                    path: format!("{script_dir}/{}", file.path),
                    ..file.clone()
                })
                .collect();
            archive.add_scripts(&placed)?;
            if let Some((bundle, at)) = ca_bundle {
                archive.add_host_file(at.trim_start_matches('/'), bundle)?;
            }
            Ok(Prepared {
                upload: Some(archive.finish()?),
                ..Prepared::default()
            })
        }
        Staging::Mount => {
            let scripts = tempfile::Builder::new()
                .prefix("runner-agent-")
                .tempdir()
                .map_err(|source| StagingError::Pack {
                    path: std::env::temp_dir(),
                    source,
                })?;
            for file in files {
                let path = scripts.path().join(&file.path);
                fs_err::write(&path, &file.content).map_err(|source| StagingError::Pack {
                    path: path.clone(),
                    source,
                })?;
            }
            let mut mounts = vec![
                (source.to_owned(), format!("{INPUT_DIR}/src")),
                (scripts.path().to_owned(), format!("{INPUT_DIR}/agent")),
            ];
            for (index, (host_dir, _)) in secondary.iter().enumerate() {
                mounts.push((host_dir.clone(), format!("{INPUT_DIR}/src{index}")));
            }
            if let Some((bundle, at)) = ca_bundle {
                mounts.push((bundle.to_owned(), at.to_owned()));
            }
            Ok(Prepared {
                mounts,
                upload: None,
                _scripts: Some(scripts),
            })
        }
    }
}
