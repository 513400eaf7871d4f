//! Pushes one file through the runner's S3 artifact store (SSE-KMS), or pulls it back, for
//! `benches/s3_store.sh`: the same code path a pipeline's artifacts take, without a pipeline.
//!
//! ```text
//! s3_store BUCKET KMS_KEY put FILE            prints `DIGEST SIZE`
//! s3_store BUCKET KMS_KEY get DIGEST SIZE DEST
//! ```
//!
//! AWS settings come from the standard chain (`AWS_ENDPOINT_URL` honoured), as for `runner run`.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use runner::artifacts::{
    ArtifactRef, ArtifactStore as _, S3ArtifactStore, S3Encryption, S3StoreConfig, Sha256Hex,
};
use runner::aws::AwsConfig;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => return fail(&error),
    };
    match runtime.block_on(run(&args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(error.as_ref()),
    }
}

async fn run(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let strs: Vec<&str> = args.iter().map(String::as_str).collect();
    let (bucket, key_id, command) = match strs.as_slice() {
        [bucket, key_id, command @ ..] => (*bucket, *key_id, command),
        _ => return Err(USAGE.into()),
    };
    let aws = AwsConfig::load(None, None).await?;
    let config = S3StoreConfig {
        bucket: bucket.to_owned(),
        prefix: "bench".to_owned(),
        encryption: S3Encryption::SseKms {
            key_id: key_id.to_owned(),
        },
    };
    let store = S3ArtifactStore::connect(&aws, config).await?;
    match command {
        ["put", file] => {
            let reference = store.put(Path::new(file)).await?;
            let line = format!("{} {}\n", reference.digest.as_str(), reference.size);
            std::io::Write::write_all(&mut std::io::stdout().lock(), line.as_bytes())?;
            Ok(())
        }
        ["get", digest, size, dest] => {
            let reference = ArtifactRef {
                digest: Sha256Hex::parse(digest)?,
                size: size.parse()?,
            };
            Ok(store.get(&reference, Path::new(dest)).await?)
        }
        _ => Err(USAGE.into()),
    }
}

const USAGE: &str =
    "usage: s3_store BUCKET KMS_KEY put FILE | s3_store BUCKET KMS_KEY get DIGEST SIZE DEST";

/// Prints `error: ` and the cause chain on stderr.
fn fail(error: &dyn std::error::Error) -> ExitCode {
    let mut text = format!("error: {error}");
    let mut source = error.source();
    while let Some(cause) = source {
        let _ = write!(text, ": {cause}");
        source = cause.source();
    }
    text.push('\n');
    let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), text.as_bytes());
    ExitCode::from(2)
}
