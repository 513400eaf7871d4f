//! The test DSL: a temporary source tree and data directory, `runner build` run as a real
//! process, and helpers to read its log, phase table and artifact ZIPs.

#![allow(
    dead_code,
    reason = "each test module uses a different part of the DSL; which parts depends on features"
)]
#![expect(
    unreachable_pub,
    reason = "helpers are shared by the test modules of this one binary"
)]

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `runner run`, `retry`, `status --json` and friends on a temporary pipeline.
#[cfg(feature = "aws-tests")]
pub mod aws;
pub mod pipeline;

/// The local test image (runners/test), built offline by `.ci/run`.
pub const IMAGE: &str = "runner/test";

/// Path of the `runner` binary under test.
pub fn runner_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_runner"))
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A buildspec with only a `build` phase; each command is written after `- ` as given, so
/// quote it for YAML where needed.
pub fn build_only(commands: &[&str]) -> String {
    let mut text = String::from("version: 0.2\nphases:\n  build:\n    commands:\n");
    for command in commands {
        text.push_str("      - ");
        text.push_str(command);
        text.push('\n');
    }
    text
}

/// One `runner build` invocation being prepared.
#[must_use]
pub struct Build {
    source: tempfile::TempDir,
    data: tempfile::TempDir,
    artifacts: tempfile::TempDir,
    args: Vec<String>,
    image: String,
    project: String,
    /// Another build's data directory, when this build shares its project state.
    shared_data: Option<PathBuf>,
    /// Files the build reads from outside its source tree (env files, CA bundles).
    aside: tempfile::TempDir,
    /// Environment variables of the runner process itself.
    host_env: Vec<(String, String)>,
}

impl Build {
    /// A source tree whose `buildspec.yml` is `buildspec`.
    #[track_caller]
    pub fn new(buildspec: &str) -> Self {
        let build = Self::empty();
        build.write("buildspec.yml", buildspec);
        build
    }

    /// A source tree with no buildspec.
    #[track_caller]
    pub fn empty() -> Self {
        let source = tempfile::tempdir().expect("temp dir");
        let project = format!(
            "t{}",
            source
                .path()
                .file_name()
                .expect("name")
                .to_string_lossy()
                .replace(|c: char| !c.is_ascii_alphanumeric(), "")
        );
        Self {
            source,
            project,
            data: tempfile::tempdir().expect("temp dir"),
            artifacts: tempfile::tempdir().expect("temp dir"),
            args: vec!["--no-ca-bundle".into()],
            image: IMAGE.into(),
            shared_data: None,
            aside: tempfile::tempdir().expect("temp dir"),
            host_env: Vec::new(),
        }
    }

    /// Adds a file to the source tree.
    #[track_caller]
    pub fn file(self, path: &str, content: &str) -> Self {
        self.write(path, content);
        self
    }

    #[track_caller]
    fn write(&self, path: &str, content: &str) {
        let full = self.source.path().join(path);
        std::fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
        std::fs::write(full, content).expect("write");
    }

    /// Adds command-line arguments to `runner build`.
    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// An `--env NAME=VALUE` override.
    pub fn env(self, name: &str, value: &str) -> Self {
        self.args(["--env".to_owned(), format!("{name}={value}")])
    }

    /// Sets an environment variable of the runner process (e.g. `RUNNER_REGION`).
    pub fn host_env(mut self, name: &str, value: &str) -> Self {
        self.host_env.push((name.into(), value.into()));
        self
    }

    /// Uses another image.
    pub fn image(mut self, image: &str) -> Self {
        self.image = image.into();
        self
    }

    /// Lets the build use the host's CA bundle (for tests that reach `PyPI`).
    pub fn with_ca_bundle(mut self) -> Self {
        self.args.retain(|a| a != "--no-ca-bundle");
        self
    }

    /// The source directory.
    pub fn source(&self) -> &Path {
        self.source.path()
    }

    /// The project name (unique per test).
    pub fn project(&self) -> &str {
        &self.project
    }

    /// The data directory.
    pub fn data(&self) -> &Path {
        self.shared_data.as_deref().unwrap_or(self.data.path())
    }

    /// Runs as a later build of `other`'s project: same project name and data directory, so
    /// build counters and the cache carry over. `other` must outlive this build.
    pub fn same_project_as(mut self, other: &Build) -> Self {
        self.project.clone_from(&other.project);
        self.shared_data = Some(other.data().to_owned());
        self
    }

    /// Writes a file outside the source tree and returns its path.
    #[track_caller]
    pub fn aside_file(&self, name: &str, content: &str) -> PathBuf {
        let path = self.aside.path().join(name);
        std::fs::write(&path, content).expect("write");
        path
    }

    /// Makes the source tree a git repository with one commit of everything; returns `HEAD`.
    #[track_caller]
    pub fn git_commit(&self) -> String {
        let git = |args: &[&str]| {
            let output = Command::new("git")
                .arg("-C")
                .arg(self.source.path())
                .args(["-c", "user.email=t@t", "-c", "user.name=t"])
                .args(args)
                .output()
                .expect("run git");
            assert!(output.status.success(), "git {args:?}: {output:?}");
            String::from_utf8_lossy(&output.stdout).trim().to_owned()
        };
        git(&["init", "-q"]);
        git(&["add", "-A"]);
        git(&["commit", "-q", "-m", "test"]);
        git(&["rev-parse", "HEAD"])
    }

    /// The command that would run.
    pub fn command(&self) -> Command {
        let mut command = Command::new(runner_bin());
        command
            .arg("--data-dir")
            .arg(self.data())
            .arg("--runners-dir")
            .arg(repo_root().join("runners"))
            .arg("build")
            .arg("--source")
            .arg(self.source.path())
            .arg("--image")
            .arg(&self.image)
            .arg("--project")
            .arg(&self.project)
            .arg("--artifacts-out")
            .arg(self.artifacts.path())
            .args(&self.args)
            .env("RUST_LOG", "runner=warn")
            .envs(self.host_env.iter().map(|(k, v)| (k, v)));
        command
    }

    /// Runs `runner build` and waits for it.
    #[track_caller]
    pub fn run(self) -> Ran {
        let output = self.command().output().expect("run the runner binary");
        Ran::new(&output, self)
    }
}

/// A finished `runner build`.
pub struct Ran {
    /// stdout: the build log, then the phase table.
    pub stdout: String,
    /// stderr: warnings and errors.
    pub stderr: String,
    /// Exit code.
    pub code: i32,
    /// The build, kept so its temporary directories live as long as the result.
    pub build: Build,
}

impl Ran {
    fn new(output: &Output, build: Build) -> Self {
        Self {
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            code: output.status.code().unwrap_or(-1),
            build,
        }
    }

    fn context(&self) -> String {
        format!(
            "\n--- exit code {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }

    /// Asserts the exit code.
    #[track_caller]
    pub fn code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "unexpected exit code{}", self.context());
        self
    }

    /// Asserts the build status from the summary line.
    #[track_caller]
    pub fn status(&self, status: &str) -> &Self {
        let verdict = self
            .stdout
            .lines()
            .rev()
            .find(|line| line.starts_with("Build "))
            .unwrap_or_default();
        assert!(
            verdict.ends_with(&format!(" {status}")),
            "expected build {status}, got {verdict:?}{}",
            self.context()
        );
        self
    }

    /// The status of a phase from the table, e.g. `phase("BUILD") == Some("FAILED")`.
    pub fn phase(&self, name: &str) -> Option<String> {
        let table = self.stdout.rsplit("\nPHASE ").next()?;
        table.lines().find_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some(name)).then(|| words.next().unwrap_or_default().to_owned())
        })
    }

    /// Asserts a phase's status.
    #[track_caller]
    pub fn phase_is(&self, name: &str, status: &str) -> &Self {
        assert_eq!(
            self.phase(name).as_deref(),
            Some(status),
            "phase {name}{}",
            self.context()
        );
        self
    }

    /// Asserts a phase never ran.
    #[track_caller]
    pub fn phase_absent(&self, name: &str) -> &Self {
        assert_eq!(self.phase(name), None, "phase {name} ran{}", self.context());
        self
    }

    /// Asserts stdout contains `text`.
    #[track_caller]
    pub fn stdout_has(&self, text: &str) -> &Self {
        assert!(
            self.stdout.contains(text),
            "stdout lacks {text:?}{}",
            self.context()
        );
        self
    }

    /// Asserts stdout does not contain `text`.
    #[track_caller]
    pub fn stdout_lacks(&self, text: &str) -> &Self {
        assert!(
            !self.stdout.contains(text),
            "stdout has {text:?}{}",
            self.context()
        );
        self
    }

    /// Asserts stderr contains `text`.
    #[track_caller]
    pub fn stderr_has(&self, text: &str) -> &Self {
        assert!(
            self.stderr.contains(text),
            "stderr lacks {text:?}{}",
            self.context()
        );
        self
    }

    /// Asserts that these lines appear as whole lines of the build output, in this order.
    #[track_caller]
    pub fn lines_in_order(&self, expected: &[&str]) -> &Self {
        let mut lines = self.stdout.lines();
        for want in expected {
            assert!(
                lines.any(|line| line == *want),
                "line {want:?} missing or out of order{}",
                self.context()
            );
        }
        self
    }

    /// Output lines that are not agent lines or the table (what commands printed).
    pub fn output_lines(&self) -> Vec<&str> {
        self.stdout
            .lines()
            .take_while(|line| !line.starts_with("PHASE "))
            .filter(|line| !line.starts_with("[Container] ") && !line.is_empty())
            .collect()
    }

    /// The artifacts directory.
    pub fn artifacts(&self) -> &Path {
        self.build.artifacts.path()
    }

    /// Sorted entry names of an artifact ZIP (`artifacts.zip` for the primary one).
    #[track_caller]
    pub fn zip_entries(&self, zip: &str) -> Vec<String> {
        let file = std::fs::File::open(self.artifacts().join(zip))
            .unwrap_or_else(|e| panic!("open {zip}: {e}{}", self.context()));
        let mut archive = zip::ZipArchive::new(file).expect("read zip");
        let mut names: Vec<String> = (0..archive.len())
            .map(|i| archive.by_index(i).expect("entry").name().to_owned())
            .collect();
        names.sort();
        names
    }

    /// The content of one ZIP entry.
    #[track_caller]
    pub fn zip_text(&self, zip: &str, entry: &str) -> String {
        let file = std::fs::File::open(self.artifacts().join(zip)).expect("open zip");
        let mut archive = zip::ZipArchive::new(file).expect("read zip");
        let mut text = String::new();
        archive
            .by_name(entry)
            .expect("entry")
            .read_to_string(&mut text)
            .expect("read entry");
        text
    }

    /// Whether any artifact ZIP was written.
    pub fn has_artifacts(&self) -> bool {
        std::fs::read_dir(self.artifacts()).is_ok_and(|mut d| d.next().is_some())
    }
}

impl Ran {
    /// The text of every agent line, without `[Container] <date> <time> `.
    pub fn agent_texts(&self) -> Vec<&str> {
        self.stdout
            .lines()
            .filter_map(|line| line.strip_prefix("[Container] "))
            .filter_map(|rest| rest.splitn(3, ' ').nth(2))
            .collect()
    }

    /// Asserts that these agent texts (see [`Ran::agent_texts`]) appear, whole, in this order.
    #[track_caller]
    pub fn agent_lines_in_order(&self, expected: &[&str]) -> &Self {
        let texts = self.agent_texts();
        let mut rest = texts.iter();
        for want in expected {
            assert!(
                rest.any(|text| text == want),
                "agent line {want:?} missing or out of order{}",
                self.context()
            );
        }
        self
    }

    /// Asserts that these agent texts appear one right after another.
    #[track_caller]
    pub fn agent_lines_adjacent(&self, expected: &[&str]) -> &Self {
        let texts = self.agent_texts();
        assert!(
            texts
                .windows(expected.len())
                .any(|window| window == expected),
            "agent lines {expected:#?} not adjacent{}",
            self.context()
        );
        self
    }

    /// The phase table as `(name, status)` rows, in order.
    pub fn phase_table(&self) -> Vec<(String, String)> {
        let Some(table) = self.stdout.rsplit("\nPHASE ").next() else {
            return Vec::new();
        };
        table
            .lines()
            .skip(1)
            .map_while(|line| {
                let mut words = line.split_whitespace();
                let name = words.next()?;
                let status = words.next()?;
                name.chars()
                    .all(|c| c.is_ascii_uppercase() || c == '_')
                    .then(|| (name.to_owned(), status.to_owned()))
            })
            .collect()
    }

    /// `exported NAME=value` lines of the summary (B13).
    pub fn exported(&self) -> BTreeMap<String, String> {
        self.stdout
            .lines()
            .filter_map(|line| line.strip_prefix("exported "))
            .filter_map(|rest| rest.split_once('='))
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect()
    }

    /// The value of the first output line `NAME=value` (e.g. from `env`), if any.
    pub fn output_value(&self, name: &str) -> Option<&str> {
        let prefix = format!("{name}=");
        self.output_lines()
            .into_iter()
            .find_map(|line| line.strip_prefix(prefix.as_str()))
    }

    /// Like [`Ran::output_value`], but the variable must be there.
    #[track_caller]
    pub fn value(&self, name: &str) -> &str {
        self.output_value(name)
            .unwrap_or_else(|| panic!("no {name}= line{}", self.context()))
    }

    /// Files under the artifacts directory, relative and sorted.
    pub fn artifact_files(&self) -> Vec<String> {
        let mut files: Vec<String> = walkdir::WalkDir::new(self.artifacts())
            .min_depth(1)
            .into_iter()
            .filter_map(Result::ok)
            .filter(|entry| entry.file_type().is_file())
            .filter_map(|entry| {
                let relative = entry.path().strip_prefix(self.artifacts()).ok()?;
                Some(relative.to_string_lossy().into_owned())
            })
            .collect();
        files.sort();
        files
    }

    /// The Unix mode stored for one ZIP entry (`0o120000` bits mark a symlink).
    #[track_caller]
    pub fn zip_unix_mode(&self, zip: &str, entry: &str) -> Option<u32> {
        let file = std::fs::File::open(self.artifacts().join(zip)).expect("open zip");
        let mut archive = zip::ZipArchive::new(file).expect("read zip");
        let entry = archive.by_name(entry).expect("entry");
        entry.unix_mode()
    }

    /// Asserts no container of this build's project is left.
    #[track_caller]
    pub fn no_leftovers(&self) -> &Self {
        let left = leftover_containers(self.build.project());
        assert!(left.is_empty(), "containers left behind: {left:?}");
        self
    }
}

/// Containers of this project still present (there must be none after a build).
pub fn leftover_containers(project: &str) -> Vec<String> {
    pipeline::labelled_containers("runner.job", project)
}
