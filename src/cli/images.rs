//! `runner images build NAME`.

use anyhow::{Context as _, bail};

use super::Outcome;
use super::args::ImagesBuildArgs;
use super::settings::Settings;
use crate::executor::{DockerExecutor, Executor as _, images};

/// Builds `runners/NAME/`.
#[expect(
    clippy::print_stdout,
    reason = "the image tag is this command's output"
)]
pub(crate) async fn build(settings: &Settings, args: &ImagesBuildArgs) -> anyhow::Result<Outcome> {
    let dir = settings.runners_dir.join(&args.name);
    if !dir.join("rootfs.conf").is_file() && !dir.join("Dockerfile").is_file() {
        bail!(
            "{} has neither rootfs.conf nor Dockerfile (see runners/README.md)",
            dir.display()
        );
    }
    let tag = match &args.tag {
        Some(tag) => tag.clone(),
        None => images::default_tag(&dir)?,
    };
    let executor = DockerExecutor::connect()
        .await
        .context("connect to Docker")?;
    let digest = images::definition_digest(&settings.runners_dir, &dir)?;
    let present = executor.inspect_image(&tag).await?;
    if !args.force
        && present
            .as_ref()
            .is_some_and(|info| images::is_current(info, &digest))
    {
        println!(
            "{tag} (up to date with {}; --force rebuilds)",
            dir.display()
        );
        return Ok(Outcome::Success);
    }
    images::build(&executor, &settings.runners_dir, &dir, &tag)
        .await
        .with_context(|| format!("build {}", dir.display()))?;
    println!("{tag}");
    Ok(Outcome::Success)
}
