//! One store type for whichever backend a pipeline's `artifact_store` names, so the engine
//! (generic over [`ArtifactStore`]) is built once for all of them.

use std::path::Path;

use super::{ArtifactError, ArtifactRef, ArtifactStore, LocalArtifactStore, S3ArtifactStore};

/// The local encrypted store or an S3 + KMS store.
#[derive(Debug)]
pub enum AnyArtifactStore {
    /// `artifact_store: {type: local}`.
    Local(LocalArtifactStore),
    /// `artifact_store: {type: s3, ...}`.
    S3(S3ArtifactStore),
}

impl AnyArtifactStore {
    /// Where objects go, for messages: a directory or `s3://bucket/prefix`.
    pub fn describe(&self) -> String {
        match self {
            AnyArtifactStore::Local(store) => store.root().display().to_string(),
            AnyArtifactStore::S3(store) => store.location(),
        }
    }
}

impl ArtifactStore for AnyArtifactStore {
    async fn put(&self, path: &Path) -> Result<ArtifactRef, ArtifactError> {
        match self {
            AnyArtifactStore::Local(store) => store.put(path).await,
            AnyArtifactStore::S3(store) => store.put(path).await,
        }
    }

    async fn get(&self, reference: &ArtifactRef, dest: &Path) -> Result<(), ArtifactError> {
        match self {
            AnyArtifactStore::Local(store) => store.get(reference, dest).await,
            AnyArtifactStore::S3(store) => store.get(reference, dest).await,
        }
    }

    async fn exists(&self, reference: &ArtifactRef) -> Result<bool, ArtifactError> {
        match self {
            AnyArtifactStore::Local(store) => store.exists(reference).await,
            AnyArtifactStore::S3(store) => store.exists(reference).await,
        }
    }

    async fn delete(&self, reference: &ArtifactRef) -> Result<(), ArtifactError> {
        match self {
            AnyArtifactStore::Local(store) => store.delete(reference).await,
            AnyArtifactStore::S3(store) => store.delete(reference).await,
        }
    }
}
