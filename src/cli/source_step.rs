//! The Source stage: fetch the repository (git2) or snapshot a directory, and store the tree as
//! the source artifact (a ZIP without `.git`, P17) with the source variables of P34.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use crate::artifacts::ArtifactStore;
use crate::build::collect::{self, CollectRequest};
use crate::buildspec::ArtifactSpec;
use crate::engine::ActionOutputs;
use crate::pipeline::{ActionId, ActionKind, Pipeline, RepoRef};
use crate::source::{GitAuth, Mirror, RepoLocator, Revision, SourceVariables};

/// `repo` as a locator accepts it: a local path made absolute, anything else as written.
pub(crate) fn repo_input(repo: &RepoRef) -> anyhow::Result<String> {
    Ok(match repo {
        RepoRef::Path(dir) => fs_err::canonicalize(dir)
            .context("open the source repository")?
            .display()
            .to_string(),
        other => other.to_string(),
    })
}

/// The mirror of `repo` (`owner/name` under `github_base`, a URL or an absolute path) in
/// `mirrors`, created on first use, and its locator.
pub(crate) async fn open_mirror(
    mirrors: &Path,
    github_base: &str,
    repo: &str,
) -> anyhow::Result<(Mirror, RepoLocator)> {
    let locator = RepoLocator::parse_with_base(repo, github_base)?;
    let mirror = Mirror::open_or_init(mirrors, locator.clone(), GitAuth::from_env())
        .await
        .context("open the repository mirror")?;
    Ok((mirror, locator))
}

/// What the source stage produced.
pub(crate) struct Fetched {
    /// Each source action's outputs.
    pub(crate) outputs: BTreeMap<ActionId, ActionOutputs>,
    /// The commit (or directory digest) every build reports.
    pub(crate) revision: String,
    /// The branch or ref asked for.
    pub(crate) ref_name: String,
}

/// Where to take the source from.
pub(crate) struct SourceOptions<'a> {
    /// `--revision`: a commit or branch instead of the configured branch.
    pub(crate) revision: Option<&'a str>,
    /// `--source-dir`: a directory to snapshot instead of fetching.
    pub(crate) source_dir: Option<&'a Path>,
    /// Where mirrors live.
    pub(crate) mirrors: PathBuf,
    /// Base URL for `owner/name` repositories.
    pub(crate) github_base: &'a str,
}

/// Runs every source action of the first stage.
pub(crate) async fn fetch<S: ArtifactStore>(
    pipeline: &Pipeline,
    store: &S,
    options: &SourceOptions<'_>,
) -> anyhow::Result<Fetched> {
    let mut outputs = BTreeMap::new();
    let mut revision = String::new();
    let mut ref_name = String::new();
    let stage = pipeline
        .stages
        .first()
        .context("the pipeline has no stages")?;
    for (index, action) in stage.actions.iter().enumerate() {
        let ActionKind::Source(source) = &action.kind else {
            bail!(
                "stage {} holds a non-source action {}",
                stage.name,
                action.name
            );
        };
        let Some(output) = action.outputs.first() else {
            bail!("source action {} has no output artifact", action.name);
        };
        let work = tempfile::Builder::new()
            .prefix("runner-source-")
            .tempdir()?;
        let tree = work.path().join("tree");
        let asked = options.revision.unwrap_or(&source.branch).to_owned();
        let (this_revision, variables) = match (options.source_dir, &source.repo) {
            (Some(dir), _) => (None, snapshot_variables(dir)),
            (None, RepoRef::Path(dir)) if !dir.join(".git").exists() => {
                (None, snapshot_variables(dir))
            }
            (None, repo) => {
                let input = repo_input(repo)?;
                let (mirror, locator) =
                    open_mirror(&options.mirrors, options.github_base, &input).await?;
                let commit = mirror
                    .fetch_revision(&Revision::parse(&asked)?)
                    .await
                    .with_context(|| format!("fetch {asked} from {}", locator.redacted_url()))?;
                mirror
                    .export(&commit.sha, &tree)
                    .await
                    .context("export the source tree")?;
                let mut variables = SourceVariables::new(&commit, &locator).to_map();
                variables.insert("BranchName".into(), source.branch.clone());
                (Some(commit.sha), variables)
            }
        };
        let snapshot_dir = match (options.source_dir, &source.repo) {
            (Some(dir), _) => Some(dir.to_owned()),
            (None, RepoRef::Path(dir)) if !dir.join(".git").exists() => Some(dir.clone()),
            _ => None,
        };
        let root = snapshot_dir.as_deref().unwrap_or(&tree);
        if !root.is_dir() {
            bail!("source directory {} does not exist", root.display());
        }
        let zip = work.path().join("source.zip");
        zip_tree(root, &zip)?;
        let reference = store.put(&zip).await.context("store the source artifact")?;
        let this_revision =
            this_revision.unwrap_or_else(|| format!("dir:{}", &reference.digest.as_str()[..16]));
        if index == 0 {
            revision.clone_from(&this_revision);
            ref_name.clone_from(&asked);
        }
        let mut variables = variables;
        variables.entry("CommitId".into()).or_insert(this_revision);
        outputs.insert(
            ActionId {
                stage: 0,
                action: index,
            },
            ActionOutputs {
                artifacts: BTreeMap::from([(output.clone(), reference)]),
                variables,
            },
        );
    }
    Ok(Fetched {
        outputs,
        revision,
        ref_name,
    })
}

fn snapshot_variables(dir: &Path) -> BTreeMap<String, String> {
    BTreeMap::from([("FullRepositoryName".to_owned(), dir.display().to_string())])
}

/// Zips a tree exactly (every file, dotfiles included, symlinks kept, no `.git`).
fn zip_tree(root: &Path, zip: &Path) -> anyhow::Result<()> {
    let spec = ArtifactSpec {
        files: vec!["**/*".into()],
        exclude_paths: vec![".git/**/*".into()],
        enable_symlinks: true,
        ..ArtifactSpec::default()
    };
    let identity = |text: &str| text.to_owned();
    let request = CollectRequest {
        src_root: root,
        container_src_dir: "/codebuild/output/src/src",
        spec: &spec,
        expand: &identity,
        out_zip: zip,
    };
    collect::collect(&request)
        .with_context(|| format!("zip the source tree {}", root.display()))?;
    Ok(())
}
