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

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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

/// One `runner build` invocation being prepared.
#[must_use]
pub struct Build {
    source: tempfile::TempDir,
    data: tempfile::TempDir,
    artifacts: tempfile::TempDir,
    args: Vec<String>,
    image: String,
    project: String,
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

    /// Uses another image.
    pub fn image(mut self, image: &str) -> Self {
        self.image = image.into();
        self
    }

    /// Lets the build use the host's CA bundle (for tests that reach PyPI).
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
        self.data.path()
    }

    /// The command that would run.
    pub fn command(&self) -> Command {
        let mut command = Command::new(runner_bin());
        command
            .arg("--data-dir")
            .arg(self.data.path())
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
            .env("RUST_LOG", "runner=warn");
        command
    }

    /// Runs `runner build` and waits for it.
    #[track_caller]
    pub fn run(self) -> Ran {
        let output = self.command().output().expect("run the runner binary");
        Ran::new(output, self)
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
    fn new(output: Output, build: Build) -> Self {
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

/// Containers of this project still present (there must be none after a build).
pub fn leftover_containers(project: &str) -> Vec<String> {
    let output = Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--filter",
            &format!("label=runner.job={project}"),
        ])
        .output()
        .expect("docker ps");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}
