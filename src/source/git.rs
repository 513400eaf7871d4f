//! [`Mirror`]: a bare git2 repository that mirrors one remote, for one pipeline.
//!
//! Every git2 call runs inside `spawn_blocking`; the public methods are async. Fetches through one
//! `Mirror` (and its clones) are serialised; two `Mirror`s must not share a directory, which is
//! why callers give each pipeline its own cache directory. It never writes outside that directory
//! except through `export`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError};

use git2::{
    AutotagOption, Cred, CredentialType, Direction, ErrorCode, FetchOptions, FetchPrune, Oid,
    ProxyOptions, RemoteCallbacks, Repository,
};
use sha2::{Digest as _, Sha256};

use super::export::export_tree;
use super::{Commit, GitAuth, RUNNER_GIT_TOKEN, RepoLocator, Revision, SourceError};

/// Refspecs that copy every branch and tag of the remote, as `git clone --mirror` does.
pub const MIRROR_REFSPECS: &[&str] = &["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"];

/// One ref the remote advertises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteRef {
    /// Full ref name, e.g. `refs/heads/main` or `HEAD`.
    pub name: String,
    /// The 40-hex object id it points at.
    pub sha: String,
}

/// A local bare mirror of one remote repository. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Mirror {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    locator: RepoLocator,
    auth: GitAuth,
    /// Held by the blocking task for the whole fetch, so a dropped future cannot release it early.
    fetch_lock: std::sync::Mutex<()>,
}

impl Mirror {
    /// Opens the mirror of `locator` under `cache_dir`, creating an empty bare repository on
    /// first use. Nothing is fetched.
    #[tracing::instrument(skip_all, fields(url = %locator))]
    pub async fn open_or_init(
        cache_dir: &Path,
        locator: RepoLocator,
        auth: GitAuth,
    ) -> Result<Self, SourceError> {
        let cache_dir = cache_dir.to_path_buf();
        let path = cache_dir.join(mirror_dir_name(&locator));
        let inner = Inner {
            path,
            locator,
            auth,
            fetch_lock: std::sync::Mutex::new(()),
        };
        blocking("open mirror", move || {
            std::fs::DirBuilder::new()
                .recursive(true)
                .create(&cache_dir)
                .map_err(|source| SourceError::CreateMirrorDir {
                    path: cache_dir,
                    source,
                })?;
            match Repository::open_bare(&inner.path) {
                Ok(_) => {}
                Err(error) if error.code() == ErrorCode::NotFound => {
                    tracing::debug!(path = %inner.path.display(), "initialising git mirror");
                    Repository::init_bare(&inner.path)
                        .map_err(|source| inner.mirror_error(source))?;
                }
                Err(source) => return Err(inner.mirror_error(source)),
            }
            Ok(Self {
                inner: Arc::new(inner),
            })
        })
        .await
    }

    /// The mirror's bare repository directory.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Where the mirror fetches from.
    pub fn locator(&self) -> &RepoLocator {
        &self.inner.locator
    }

    /// Fetches `refspecs` from the remote, pruning refs the remote no longer has. A refspec may
    /// also be a bare 40-hex sha, which fetches that commit if the server allows it.
    #[tracing::instrument(skip_all, fields(url = %self.inner.locator))]
    pub async fn fetch(&self, refspecs: &[&str]) -> Result<(), SourceError> {
        let refspecs: Vec<String> = refspecs.iter().map(|s| (*s).to_owned()).collect();
        let inner = Arc::clone(&self.inner);
        blocking("fetch", move || inner.fetch(&refspecs)).await
    }

    /// Fetches every branch and tag ([`MIRROR_REFSPECS`]).
    pub async fn fetch_all(&self) -> Result<(), SourceError> {
        self.fetch(MIRROR_REFSPECS).await
    }

    /// Lists the remote's refs without fetching anything (`git ls-remote`).
    #[tracing::instrument(skip_all, fields(url = %self.inner.locator))]
    pub async fn ls_remote(&self) -> Result<Vec<RemoteRef>, SourceError> {
        let inner = Arc::clone(&self.inner);
        blocking("list remote refs", move || inner.ls_remote()).await
    }

    /// Resolves `revision` against what the mirror holds now (no network).
    pub async fn resolve(&self, revision: &Revision) -> Result<Commit, SourceError> {
        let inner = Arc::clone(&self.inner);
        let revision = revision.clone();
        blocking("resolve revision", move || inner.resolve(&revision)).await
    }

    /// Fetches every branch and tag, then resolves `revision`. A pinned commit that no branch
    /// or tag reaches is fetched by its id before giving up; that needs a smart-protocol server
    /// that allows it (GitHub does), not libgit2's own `file://` transport.
    pub async fn fetch_revision(&self, revision: &Revision) -> Result<Commit, SourceError> {
        self.fetch_all().await?;
        match self.resolve(revision).await {
            Err(SourceError::UnknownRevision { .. }) if matches!(revision, Revision::Commit(_)) => {
                if let Err(error) = self.fetch(&[revision.name()]).await {
                    tracing::debug!(error = %error, "fetching a commit by id failed");
                }
                self.resolve(revision).await
            }
            result => result,
        }
    }

    /// Writes the tree of commit `sha` into `dest` (missing or empty) without `.git` (P17).
    #[tracing::instrument(skip_all, fields(sha = %sha, dest = %dest.display()))]
    pub async fn export(&self, sha: &str, dest: &Path) -> Result<(), SourceError> {
        let inner = Arc::clone(&self.inner);
        let (sha, dest) = (sha.to_owned(), dest.to_path_buf());
        blocking("export tree", move || {
            let repo = inner.open()?;
            let commit = find_commit(&repo, &sha, &inner.locator)?;
            export_tree(&repo, commit.tree_id(), &dest)
        })
        .await
    }

    /// The best common ancestor of two commits the mirror holds, or `None` when they share
    /// no history (what a pull request's changes are measured from).
    pub async fn merge_base(&self, a: &str, b: &str) -> Result<Option<String>, SourceError> {
        let inner = Arc::clone(&self.inner);
        let (a, b) = (a.to_owned(), b.to_owned());
        blocking("find a merge base", move || inner.merge_base(&a, &b)).await
    }

    /// Paths changed between two commits, sorted; a rename lists both names. `from_sha` may be
    /// empty or all zeros (a new branch), which compares against an empty tree.
    pub async fn changed_paths(
        &self,
        from_sha: &str,
        to_sha: &str,
    ) -> Result<Vec<String>, SourceError> {
        let inner = Arc::clone(&self.inner);
        let (from, to) = (from_sha.to_owned(), to_sha.to_owned());
        blocking("diff commits", move || inner.changed_paths(&from, &to)).await
    }
}

impl Inner {
    fn open(&self) -> Result<Repository, SourceError> {
        Repository::open_bare(&self.path).map_err(|source| self.mirror_error(source))
    }

    fn mirror_error(&self, source: git2::Error) -> SourceError {
        SourceError::Mirror {
            path: self.path.clone(),
            source,
        }
    }

    fn fetch(&self, refspecs: &[String]) -> Result<(), SourceError> {
        let _guard = self
            .fetch_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let error = |source| SourceError::Fetch {
            url: self.locator.redacted_url(),
            source,
        };
        let repo = self.open()?;
        let mut remote = repo.remote_anonymous(self.locator.url()).map_err(error)?;
        let mut options = FetchOptions::new();
        options
            .remote_callbacks(callbacks(&self.auth, &self.locator))
            .proxy_options(proxy_options())
            .prune(FetchPrune::On)
            .download_tags(AutotagOption::None);
        remote
            .fetch(refspecs, Some(&mut options), None)
            .map_err(error)?;
        tracing::debug!(refspecs = ?refspecs, "fetched");
        Ok(())
    }

    fn ls_remote(&self) -> Result<Vec<RemoteRef>, SourceError> {
        let error = |source| SourceError::ListRemote {
            url: self.locator.redacted_url(),
            source,
        };
        let repo = self.open()?;
        let mut remote = repo.remote_anonymous(self.locator.url()).map_err(error)?;
        let connection = remote
            .connect_auth(
                Direction::Fetch,
                Some(callbacks(&self.auth, &self.locator)),
                Some(proxy_options()),
            )
            .map_err(error)?;
        let heads = connection.list().map_err(error)?;
        Ok(heads
            .iter()
            .map(|head| RemoteRef {
                name: head.name().to_owned(),
                sha: head.oid().to_string(),
            })
            .collect())
    }

    fn resolve(&self, revision: &Revision) -> Result<Commit, SourceError> {
        let repo = self.open()?;
        let unknown = || SourceError::UnknownRevision {
            revision: revision.clone(),
            url: self.locator.redacted_url(),
        };
        let (commit, branch) = match revision {
            Revision::Commit(sha) => (find_commit(&repo, sha, &self.locator)?, None),
            Revision::Branch(name) => {
                if let Some(commit) = peel_ref(&repo, &revision.ref_name())? {
                    (commit, Some(name.clone()))
                } else {
                    let tag = peel_ref(&repo, &Revision::Tag(name.clone()).ref_name())?;
                    (tag.ok_or_else(unknown)?, None)
                }
            }
            Revision::Tag(_) => (
                peel_ref(&repo, &revision.ref_name())?.ok_or_else(unknown)?,
                None,
            ),
        };
        Ok(Commit::from_git2(&commit, branch))
    }

    fn merge_base(&self, a: &str, b: &str) -> Result<Option<String>, SourceError> {
        let repo = self.open()?;
        let (first, second) = (
            find_commit(&repo, a, &self.locator)?.id(),
            find_commit(&repo, b, &self.locator)?.id(),
        );
        match repo.merge_base(first, second) {
            Ok(base) => Ok(Some(base.to_string())),
            Err(error) if error.code() == ErrorCode::NotFound => Ok(None),
            Err(source) => Err(SourceError::Diff {
                from: a.to_owned(),
                to: b.to_owned(),
                source,
            }),
        }
    }

    fn changed_paths(&self, from: &str, to: &str) -> Result<Vec<String>, SourceError> {
        let repo = self.open()?;
        let is_empty = from.is_empty() || from.bytes().all(|b| b == b'0');
        let old_tree = if is_empty {
            None
        } else {
            Some(tree_of(&repo, from, &self.locator)?)
        };
        let new_tree = tree_of(&repo, to, &self.locator)?;
        let diff = repo
            .diff_tree_to_tree(old_tree.as_ref(), Some(&new_tree), None)
            .map_err(|source| SourceError::Diff {
                from: from.to_owned(),
                to: to.to_owned(),
                source,
            })?;
        let mut paths: Vec<String> = diff
            .deltas()
            .flat_map(|delta| [delta.old_file().path(), delta.new_file().path()])
            .flatten()
            .map(|path| path.to_string_lossy().into_owned())
            .collect();
        paths.sort();
        paths.dedup();
        Ok(paths)
    }
}

/// Runs `task` on the blocking pool, turning a panic or cancellation into [`SourceError::Task`].
async fn blocking<T, F>(operation: &'static str, task: F) -> Result<T, SourceError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, SourceError> + Send + 'static,
{
    tokio::task::spawn_blocking(task)
        .await
        .map_err(|source| SourceError::Task { operation, source })?
}

/// Credentials as documented on [`GitAuth`]; each kind is offered once, so a rejected
/// credential fails the operation instead of looping.
fn callbacks<'a>(auth: &'a GitAuth, locator: &RepoLocator) -> RemoteCallbacks<'a> {
    let is_http = locator.is_http();
    let (mut tried_token, mut tried_agent) = (false, false);
    let mut callbacks = RemoteCallbacks::new();
    callbacks.credentials(move |_url, username, allowed| {
        if allowed.contains(CredentialType::USERNAME) {
            return Cred::username(username.unwrap_or("git"));
        }
        if allowed.contains(CredentialType::SSH_KEY) && !tried_agent {
            tried_agent = true;
            return Cred::ssh_key_from_agent(username.unwrap_or("git"));
        }
        if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) && is_http && !tried_token {
            tried_token = true;
            if let Some(token) = auth.token() {
                return Cred::userpass_plaintext(username.unwrap_or("x-access-token"), token);
            }
            return Err(git2::Error::from_str(&format!(
                "the remote asks for credentials and {RUNNER_GIT_TOKEN} is not set"
            )));
        }
        Err(git2::Error::from_str("the remote rejected the credentials"))
    });
    callbacks
}

/// Proxy settings from git config and the usual `*_proxy` environment variables.
fn proxy_options() -> ProxyOptions<'static> {
    let mut options = ProxyOptions::new();
    options.auto();
    options
}

/// A stable, readable directory name: the repository name plus a hash of the full URL.
fn mirror_dir_name(locator: &RepoLocator) -> String {
    let readable: String = locator
        .full_repository_name()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(60)
        .collect();
    let digest = Sha256::digest(locator.url().as_bytes());
    let hash = digest
        .iter()
        .take(8)
        .fold(0u64, |hash, b| hash << 8 | u64::from(*b));
    format!("{readable}-{hash:016x}.git")
}

fn peel_ref<'r>(repo: &'r Repository, name: &str) -> Result<Option<git2::Commit<'r>>, SourceError> {
    let read_error = |source| SourceError::ReadObject {
        object: name.to_owned(),
        source,
    };
    match repo.find_reference(name) {
        Ok(reference) => reference.peel_to_commit().map(Some).map_err(read_error),
        Err(error) if error.code() == ErrorCode::NotFound => Ok(None),
        Err(source) => Err(read_error(source)),
    }
}

fn find_commit<'r>(
    repo: &'r Repository,
    sha: &str,
    locator: &RepoLocator,
) -> Result<git2::Commit<'r>, SourceError> {
    let oid = Oid::from_str(sha).map_err(|_| SourceError::InvalidRevision {
        revision: sha.to_owned(),
    })?;
    match repo.find_commit(oid) {
        Ok(commit) => Ok(commit),
        Err(error) if error.code() == ErrorCode::NotFound => Err(SourceError::UnknownRevision {
            revision: Revision::Commit(sha.to_owned()),
            url: locator.redacted_url(),
        }),
        Err(source) => Err(SourceError::ReadObject {
            object: sha.to_owned(),
            source,
        }),
    }
}

fn tree_of<'r>(
    repo: &'r Repository,
    sha: &str,
    locator: &RepoLocator,
) -> Result<git2::Tree<'r>, SourceError> {
    find_commit(repo, sha, locator)?
        .tree()
        .map_err(|source| SourceError::ReadObject {
            object: sha.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use tempfile::TempDir;

    use super::*;
    use crate::source::SourceVariables;

    /// Runs the git CLI in `dir` with a fixed identity and no user config; returns stdout.
    #[track_caller]
    fn git(dir: &Path, args: &[&str]) -> String {
        let output = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args([
                "-c",
                "init.defaultBranch=main",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "Ada")
            .env("GIT_AUTHOR_EMAIL", "ada@example.com")
            .env("GIT_AUTHOR_DATE", "2024-05-01T12:00:00+02:00")
            .env("GIT_COMMITTER_NAME", "Ada")
            .env("GIT_COMMITTER_EMAIL", "ada@example.com")
            .output()
            .expect("git runs");
        assert!(
            output.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// Writes `files` (path, content) into the work tree and commits everything.
    #[track_caller]
    fn commit(work: &Path, files: &[(&str, &str)], message: &str) -> String {
        for (path, content) in files {
            let path = work.join(path);
            fs_err::create_dir_all(path.parent().expect("has a parent")).expect("mkdir");
            fs_err::write(path, content).expect("write");
        }
        git(work, &["add", "-A"]);
        git(work, &["commit", "-q", "--allow-empty", "-m", message]);
        git(work, &["rev-parse", "HEAD"])
    }

    /// A work tree at `<tmp>/work` with one commit on `main`.
    fn upstream() -> (TempDir, PathBuf, String) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let work = tmp.path().join("work");
        fs_err::create_dir(&work).expect("mkdir");
        git(&work, &["init", "-q"]);
        let sha = commit(&work, &[("README.md", "hello\n")], "first commit\n\nbody");
        (tmp, work, sha)
    }

    /// A bare clone of `work` at `<root>/acme/widget.git`, as a server would hold it.
    fn bare_clone(work: &Path, root: &Path) -> PathBuf {
        let bare = root.join("acme/widget.git");
        let (work, target) = (work.display().to_string(), bare.display().to_string());
        git(
            root.parent().expect("has a parent"),
            &["clone", "-q", "--bare", &work, &target],
        );
        bare
    }

    async fn mirror(url: &str, cache: &Path) -> Mirror {
        let locator = RepoLocator::parse(url).expect("locator");
        Mirror::open_or_init(cache, locator, GitAuth::new())
            .await
            .expect("mirror opens")
    }

    fn main_branch() -> Revision {
        Revision::Branch("main".into())
    }

    #[tokio::test]
    async fn resolves_a_branch_to_its_sha() {
        let (tmp, work, sha) = upstream();
        let mirror = mirror(&format!("file://{}", work.display()), &tmp.path().join("c")).await;
        let commit = mirror
            .fetch_revision(&main_branch())
            .await
            .expect("resolves");
        assert_eq!(commit.sha, sha);
        assert_eq!(commit.branch.as_deref(), Some("main"));
        assert_eq!(commit.author, "Ada <ada@example.com>");
        assert_eq!(commit.author_date, "2024-05-01T10:00:00Z");
        assert_eq!(commit.message, "first commit\n\nbody\n");
        let variables = SourceVariables::new(&commit, mirror.locator()).to_map();
        assert_eq!(variables["CommitId"], sha);
        assert_eq!(variables["BranchName"], "main");
    }

    #[tokio::test]
    async fn resolves_an_explicit_sha_and_a_tag() {
        let (tmp, work, first) = upstream();
        git(&work, &["tag", "-a", "v1", "-m", "release"]);
        let second = commit(&work, &[("README.md", "two\n")], "second");
        let mirror = mirror(&work.display().to_string(), &tmp.path().join("c")).await;
        mirror.fetch_all().await.expect("fetch");
        let pinned = Revision::parse(&first).expect("sha");
        let commit = mirror.resolve(&pinned).await.expect("resolves");
        assert_eq!((commit.sha.as_str(), commit.branch), (first.as_str(), None));
        let tagged = mirror.resolve(&Revision::Branch("v1".into())).await;
        assert_eq!(tagged.expect("falls back to the tag").sha, first);
        assert_eq!(
            mirror.resolve(&main_branch()).await.expect("main").sha,
            second
        );
    }

    #[tokio::test]
    async fn an_unknown_branch_is_an_error_naming_it() {
        let (tmp, work, _) = upstream();
        let mirror = mirror(&work.display().to_string(), &tmp.path().join("c")).await;
        let revision = Revision::Branch("no-such-branch".into());
        let error = mirror.fetch_revision(&revision).await.expect_err("unknown");
        assert!(
            matches!(error, SourceError::UnknownRevision { .. }),
            "{error:?}"
        );
        let message = error.to_string();
        assert!(message.contains("\"no-such-branch\""), "{message}");
        assert!(message.contains(&work.display().to_string()), "{message}");
        let missing = Revision::Commit("ab".repeat(20));
        let error = mirror.fetch_revision(&missing).await.expect_err("unknown");
        assert!(error.to_string().contains(&"ab".repeat(20)), "{error}");
    }

    #[tokio::test]
    async fn export_writes_the_tree_at_the_commit_without_git_metadata() {
        use std::os::unix::fs::PermissionsExt as _;

        let (tmp, work, _) = upstream();
        fs_err::write(work.join("build.sh"), "#!/bin/sh\necho hi\n").expect("write");
        fs_err::set_permissions(
            work.join("build.sh"),
            std::fs::Permissions::from_mode(0o755),
        )
        .expect("chmod");
        std::os::unix::fs::symlink("README.md", work.join("link")).expect("symlink");
        let files = [("src/lib.txt", "v1\n"), ("docs/guide.md", "guide\n")];
        let sha = commit(&work, &files, "add files");
        commit(&work, &[("src/lib.txt", "v2\n")], "change it");
        fs_err::write(work.join("untracked.txt"), "not committed").expect("write");

        let mirror = mirror(&work.display().to_string(), &tmp.path().join("c")).await;
        mirror.fetch_all().await.expect("fetch");
        let dest = tmp.path().join("out/src");
        mirror.export(&sha, &dest).await.expect("export");

        assert_eq!(
            fs_err::read_to_string(dest.join("src/lib.txt")).expect("read"),
            "v1\n"
        );
        assert_eq!(
            fs_err::read_to_string(dest.join("docs/guide.md")).expect("read"),
            "guide\n"
        );
        let mode = |name: &str| {
            fs_err::metadata(dest.join(name))
                .expect("stat")
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!((mode("build.sh"), mode("README.md")), (0o755, 0o644));
        assert_eq!(
            fs_err::read_link(dest.join("link")).expect("link"),
            Path::new("README.md")
        );
        assert!(!dest.join(".git").exists());
        assert!(!dest.join("untracked.txt").exists());
        let error = mirror.export(&sha, &dest).await.expect_err("not empty");
        assert!(
            matches!(error, SourceError::DestinationNotEmpty { .. }),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn ls_remote_sees_a_new_head_and_a_second_fetch_brings_it() {
        let (tmp, work, first) = upstream();
        let mirror = mirror(&format!("file://{}", work.display()), &tmp.path().join("c")).await;
        mirror.fetch_all().await.expect("fetch");
        let second = commit(&work, &[("new.txt", "new\n")], "second");

        let refs = mirror.ls_remote().await.expect("ls-remote");
        let main = refs
            .iter()
            .find(|r| r.name == "refs/heads/main")
            .expect("main listed");
        assert_eq!(main.sha, second);
        // Listing fetched nothing: the mirror still has the old head.
        assert_eq!(
            mirror.resolve(&main_branch()).await.expect("main").sha,
            first
        );

        mirror.fetch_all().await.expect("fetch again");
        assert_eq!(
            mirror.resolve(&main_branch()).await.expect("main").sha,
            second
        );
    }

    #[tokio::test]
    async fn changed_paths_lists_added_modified_and_deleted_files() {
        let (tmp, work, _) = upstream();
        let from = commit(&work, &[("a.txt", "a"), ("c/old.txt", "c")], "base");
        fs_err::remove_file(work.join("c/old.txt")).expect("rm");
        let to = commit(&work, &[("a.txt", "changed"), ("b/new.txt", "b")], "change");
        let mirror = mirror(&work.display().to_string(), &tmp.path().join("c")).await;
        mirror.fetch_all().await.expect("fetch");
        let paths = mirror.changed_paths(&from, &to).await.expect("diff");
        assert_eq!(paths, ["a.txt", "b/new.txt", "c/old.txt"]);
        let all = mirror
            .changed_paths(&"0".repeat(40), &to)
            .await
            .expect("diff");
        assert_eq!(all, ["README.md", "a.txt", "b/new.txt"]);
    }

    #[tokio::test]
    async fn owner_name_resolves_under_a_file_base() {
        let (tmp, work, sha) = upstream();
        let root = tmp.path().join("srv");
        bare_clone(&work, &root);

        let base_url = format!("file://{}", root.display());
        let locator = RepoLocator::parse_with_base("acme/widget", &base_url).expect("locator");
        assert_eq!(locator.url(), format!("{base_url}/acme/widget.git"));
        let mirror = Mirror::open_or_init(&tmp.path().join("c"), locator, GitAuth::new())
            .await
            .expect("mirror");
        assert!(mirror.path().starts_with(tmp.path().join("c")));
        let commit = mirror
            .fetch_revision(&main_branch())
            .await
            .expect("resolves");
        assert_eq!(commit.sha, sha);
        let variables = SourceVariables::new(&commit, mirror.locator());
        assert_eq!(variables.full_repository_name, "acme/widget");
    }

    #[tokio::test]
    async fn a_missing_remote_is_a_fetch_error_naming_the_url() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let url = format!("file://{}/nowhere.git", tmp.path().display());
        let mirror = mirror(&url, &tmp.path().join("c")).await;
        let error = mirror.fetch_all().await.expect_err("no such repository");
        assert!(matches!(error, SourceError::Fetch { .. }), "{error:?}");
        assert!(error.to_string().contains(&url), "{error}");
    }

    /// Writes a commit whose root tree holds `name` (a directory containing `x`) straight into
    /// the object database, bypassing git2's entry-name checks.
    fn crafted_commit(repo: &Repository, name: &str) -> String {
        let blob = repo.blob(b"pwned").expect("blob");
        let mut inner = repo.treebuilder(None).expect("treebuilder");
        inner.insert("x", blob, 0o100_644).expect("insert");
        let inner = inner.write().expect("tree");
        let mut raw = format!("40000 {name}\0").into_bytes();
        raw.extend_from_slice(inner.as_bytes());
        let root = repo
            .odb()
            .expect("odb")
            .write(git2::ObjectType::Tree, &raw)
            .expect("tree");
        let root = repo.find_tree(root).expect("parses");
        let signature = git2::Signature::now("Eve", "eve@example.com").expect("signature");
        let commit = repo.commit(None, &signature, &signature, "evil", &root, &[]);
        commit.expect("commit").to_string()
    }

    #[tokio::test]
    async fn a_crafted_tree_cannot_escape_the_destination() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mirror = mirror("/nonexistent/remote", &tmp.path().join("c")).await;
        let repo = Repository::open_bare(mirror.path()).expect("open");
        let dest = tmp.path().join("out/dest");
        for (name, escapes) in [("..", true), (".git", false), (".GIT", false)] {
            let sha = crafted_commit(&repo, name);
            let error = mirror.export(&sha, &dest).await.expect_err("refused");
            match error {
                SourceError::PathEscapes { path } if escapes => assert_eq!(path, name),
                SourceError::GitMetadata { path } if !escapes => assert_eq!(path, name),
                other => panic!("{name}: unexpected {other:?}"),
            }
        }
        assert!(!tmp.path().join("out/x").exists());
        assert_eq!(fs_err::read_dir(&dest).expect("dest").count(), 0);
    }

    #[tokio::test]
    async fn fetch_prunes_deleted_branches() {
        let (tmp, work, _) = upstream();
        git(&work, &["branch", "topic"]);
        let mirror = mirror(&format!("file://{}", work.display()), &tmp.path().join("c")).await;
        mirror.fetch_all().await.expect("fetch");
        let topic = Revision::Branch("topic".into());
        mirror.resolve(&topic).await.expect("topic fetched");
        git(&work, &["branch", "-q", "-D", "topic"]);
        mirror.fetch_all().await.expect("fetch again");
        let error = mirror.resolve(&topic).await.expect_err("pruned");
        assert!(
            matches!(error, SourceError::UnknownRevision { .. }),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn a_pinned_commit_no_branch_reaches_is_fetched_by_id() {
        let (tmp, work, _) = upstream();
        git(&work, &["checkout", "-q", "-b", "topic"]);
        let orphan = commit(&work, &[("topic.txt", "t")], "on topic");
        git(&work, &["checkout", "-q", "main"]);
        let root = tmp.path().join("srv");
        let bare = bare_clone(&work, &root);
        git(&bare, &["branch", "-q", "-D", "topic"]);
        git(&bare, &["config", "uploadpack.allowAnySHA1InWant", "true"]);
        let base_url = serve_http(root);
        let locator = RepoLocator::parse_with_base("acme/widget", &base_url).expect("locator");
        let mirror = Mirror::open_or_init(
            &tmp.path().join("c"),
            locator,
            GitAuth::new().with_token(TOKEN),
        )
        .await
        .expect("mirror");
        let pinned = Revision::Commit(orphan.clone());
        let commit = mirror.fetch_revision(&pinned).await.expect("fetched by id");
        assert_eq!(commit.sha, orphan);
    }

    const TOKEN: &str = "t0ken";

    /// Serves `root` over smart HTTP on 127.0.0.1 through `git http-backend` (CGI), asking for
    /// basic auth `x-access-token:TOKEN`. Returns the base URL.
    fn serve_http(root: PathBuf) -> String {
        use std::io::{BufRead as _, Read as _, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let expected = format!("Basic {}", base64(&format!("x-access-token:{TOKEN}")));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let mut stream = std::io::BufReader::new(stream.expect("accept"));
                let (mut head, mut line) = (Vec::new(), String::new());
                while stream.read_line(&mut line).expect("read") > 2 {
                    head.push(std::mem::take(&mut line).trim_end().to_owned());
                }
                let header = |name: &str| {
                    head.iter().find_map(|h| {
                        let (key, value) = h.split_once(": ")?;
                        key.eq_ignore_ascii_case(name).then(|| value.to_owned())
                    })
                };
                let request: Vec<&str> = head[0].split(' ').collect();
                let (path, query) = request[1].split_once('?').unwrap_or((request[1], ""));
                let length = header("content-length").map_or(0, |l| l.parse().expect("length"));
                let mut body = vec![0; length];
                stream.read_exact(&mut body).expect("body");
                let mut stream = stream.into_inner();
                if header("authorization").as_ref() != Some(&expected) {
                    let reply = "HTTP/1.1 401 Unauthorized\r\n\
                                 WWW-Authenticate: Basic realm=\"git\"\r\n\
                                 Content-Length: 0\r\nConnection: close\r\n\r\n";
                    stream.write_all(reply.as_bytes()).expect("reply");
                    continue;
                }
                let mut child = Command::new("git")
                    .arg("http-backend")
                    .env("GIT_PROJECT_ROOT", &root)
                    .env("GIT_HTTP_EXPORT_ALL", "1")
                    .env("GIT_CONFIG_NOSYSTEM", "1")
                    .env("REQUEST_METHOD", request[0])
                    .env("PATH_INFO", path)
                    .env("QUERY_STRING", query)
                    .env("CONTENT_TYPE", header("content-type").unwrap_or_default())
                    .env("CONTENT_LENGTH", length.to_string())
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped())
                    .spawn()
                    .expect("http-backend");
                child
                    .stdin
                    .take()
                    .expect("stdin")
                    .write_all(&body)
                    .expect("cgi body");
                let output = child.wait_with_output().expect("cgi output").stdout;
                let split = output
                    .windows(4)
                    .position(|w| w == b"\r\n\r\n")
                    .expect("cgi headers");
                let headers = String::from_utf8_lossy(&output[..split]);
                let status = headers
                    .lines()
                    .find_map(|h| h.strip_prefix("Status: "))
                    .unwrap_or("200 OK");
                let reply = format!(
                    "HTTP/1.1 {status}\r\n{headers}\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n",
                    output.len() - split - 4
                );
                stream.write_all(reply.as_bytes()).expect("reply");
                stream.write_all(&output[split + 4..]).expect("reply body");
            }
        });
        base
    }

    /// Standard base64 with padding, enough for a basic-auth header.
    fn base64(text: &str) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        text.as_bytes()
            .chunks(3)
            .flat_map(|chunk| {
                let n = chunk
                    .iter()
                    .enumerate()
                    .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
                (0..4).map(move |i| {
                    if i <= chunk.len() {
                        ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char
                    } else {
                        '='
                    }
                })
            })
            .collect()
    }

    #[tokio::test]
    async fn fetches_owner_name_over_http_with_a_token() {
        let (tmp, work, sha) = upstream();
        let root = tmp.path().join("srv");
        bare_clone(&work, &root);
        let base_url = serve_http(root);
        let locator = RepoLocator::parse_with_base("acme/widget", &base_url).expect("locator");
        let cache = tmp.path().join("c");

        let anonymous = Mirror::open_or_init(&cache, locator.clone(), GitAuth::new())
            .await
            .expect("mirror");
        let error = anonymous.fetch_all().await.expect_err("needs a token");
        assert!(matches!(error, SourceError::Fetch { .. }), "{error:?}");
        let chain = format!(
            "{error}: {}",
            std::error::Error::source(&error).expect("cause")
        );
        assert!(chain.contains(RUNNER_GIT_TOKEN), "{chain}");

        let auth = GitAuth::new().with_token(TOKEN);
        let mirror = Mirror::open_or_init(&cache, locator, auth)
            .await
            .expect("mirror");
        let refs = mirror.ls_remote().await.expect("ls-remote");
        assert!(
            refs.contains(&RemoteRef {
                name: "refs/heads/main".into(),
                sha: sha.clone()
            }),
            "{refs:?}"
        );
        assert_eq!(
            mirror
                .fetch_revision(&main_branch())
                .await
                .expect("fetch")
                .sha,
            sha
        );
    }
}
