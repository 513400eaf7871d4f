//! The pipeline half of the DSL: a temporary data directory, source tree and pipeline file,
//! `runner run`/`retry`/... as real processes (waited for, or running in the background), and
//! `runner status --json` read back into typed records.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{repo_root, runner_bin};

/// Replaced by the source tree's absolute path in pipeline text.
pub const SRC: &str = "@SRC@";

/// One pipeline under test: `<temp>/src` (the source tree), `<temp>/data` (`--data-dir`) and
/// `<temp>/pipeline.yml`.
#[must_use]
pub struct Pipeline {
    dir: tempfile::TempDir,
    cwd: Option<PathBuf>,
    log: &'static str,
}

impl Pipeline {
    /// A pipeline file (with [`SRC`] standing for the source tree) and an empty source tree.
    #[track_caller]
    pub fn new(yaml: &str) -> Self {
        let pipeline = Self {
            dir: tempfile::tempdir().expect("temp dir"),
            cwd: None,
            log: "runner=warn",
        };
        std::fs::create_dir_all(pipeline.source()).expect("mkdir src");
        pipeline.set_pipeline(yaml);
        pipeline
    }

    /// `pipelines/example.yml` as bundled, run from the repository root, so its
    /// `repo: ./examples/shop` is the real example tree.
    #[track_caller]
    pub fn bundled_example() -> Self {
        let mut pipeline = Self::new("");
        std::fs::copy(
            repo_root().join("pipelines/example.yml"),
            pipeline.pipeline_file(),
        )
        .expect("copy example.yml");
        pipeline.cwd = Some(repo_root());
        pipeline
    }

    /// A copy of `examples/shop` as the source tree, with `pipelines/example.yml` pointing at it
    /// after `edit` changed its text (each `(from, to)` must occur).
    #[track_caller]
    pub fn example_variant(edits: &[(&str, &str)]) -> Self {
        let mut text = std::fs::read_to_string(repo_root().join("pipelines/example.yml"))
            .expect("read example.yml");
        text = text.replace("repo: ./examples/shop", &format!("repo: {SRC}"));
        for (from, to) in edits {
            assert!(text.contains(from), "example.yml lacks {from:?}");
            text = text.replace(from, to);
        }
        let pipeline = Self::new(&text);
        copy_tree(&repo_root().join("examples/shop"), &pipeline.source());
        pipeline
    }

    /// Runs the runner with `RUST_LOG=filter` (default `runner=warn`), for tests that read its
    /// log.
    pub fn log(mut self, filter: &'static str) -> Self {
        self.log = filter;
        self
    }

    /// Adds a file to the source tree.
    #[track_caller]
    pub fn file(self, path: &str, content: &str) -> Self {
        let full = self.source().join(path);
        std::fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
        std::fs::write(full, content).expect("write");
        self
    }

    /// Replaces the pipeline file ([`SRC`] stands for the source tree).
    #[track_caller]
    pub fn set_pipeline(&self, yaml: &str) {
        let text = yaml.replace(SRC, &self.source().display().to_string());
        std::fs::write(self.pipeline_file(), text).expect("write pipeline");
    }

    /// The source tree.
    pub fn source(&self) -> PathBuf {
        self.dir.path().join("src")
    }

    /// The data directory.
    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The pipeline file.
    pub fn pipeline_file(&self) -> PathBuf {
        self.dir.path().join("pipeline.yml")
    }

    /// `runner --data-dir D --runners-dir R <args>`; `{pipeline}` in an argument is replaced
    /// by the pipeline file.
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let pipeline = self.pipeline_file().display().to_string();
        let mut command = Command::new(runner_bin());
        command
            .arg("--data-dir")
            .arg(self.data())
            .arg("--runners-dir")
            .arg(repo_root().join("runners"))
            .args(
                args.into_iter()
                    .map(|a| a.as_ref().replace("{pipeline}", &pipeline)),
            )
            .env("RUST_LOG", self.log)
            .env("NO_COLOR", "1");
        if let Some(cwd) = &self.cwd {
            command.current_dir(cwd);
        }
        command
    }

    /// Runs a command to its end.
    #[track_caller]
    pub fn run<I, S>(&self, args: I) -> Exited
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let output = self
            .command(args)
            .stdin(Stdio::null())
            .output()
            .expect("run the runner binary");
        Exited {
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            code: output.status.code().unwrap_or(-1),
        }
    }

    /// `runner run --pipeline FILE <extra>`.
    #[track_caller]
    pub fn run_pipeline(&self, extra: &[&str]) -> Exited {
        let mut args = vec!["run", "--pipeline", "{pipeline}"];
        args.extend(extra);
        self.run(args)
    }

    /// `runner retry --pipeline FILE --stage STAGE <extra>`.
    #[track_caller]
    pub fn retry(&self, stage: &str, extra: &[&str]) -> Exited {
        let mut args = vec!["retry", "--pipeline", "{pipeline}", "--stage", stage];
        args.extend(extra);
        self.run(args)
    }

    /// Starts a command in the background; its output is collected as it comes.
    #[track_caller]
    pub fn spawn<I, S>(&self, args: I) -> Running
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut child = self
            .command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the runner binary");
        let stdout = collect(child.stdout.take().expect("stdout"));
        let stderr = collect(child.stderr.take().expect("stderr"));
        Running {
            child,
            stdout,
            stderr,
        }
    }

    /// `runner status --json [EXECUTION]`, parsed.
    #[track_caller]
    pub fn status(&self, execution: Option<&str>) -> Execution {
        let mut args = vec!["status", "--json"];
        args.extend(execution);
        let ran = self.run(args);
        ran.code(0);
        serde_yaml::from_str(ran.stdout.trim())
            .unwrap_or_else(|e| panic!("status --json is not JSON: {e}{}", ran.context()))
    }

    /// `runner logs EXECUTION --action ACTION`: the log lines without their `[stage.action] `.
    #[track_caller]
    pub fn logs(&self, execution: &str, action: &str) -> Vec<String> {
        let ran = self.run(["logs", execution, "--action", action]);
        ran.code(0);
        ran.stdout
            .lines()
            .map(|line| {
                line.split_once("] ")
                    .map_or(line, |(_, rest)| rest)
                    .to_owned()
            })
            .collect()
    }

    /// Every object file of the artifact store.
    pub fn artifact_objects(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = walkdir::WalkDir::new(self.data().join("artifacts/objects"))
            .min_depth(2)
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file())
            .map(walkdir::DirEntry::into_path)
            .collect();
        files.sort();
        files
    }
}

/// Copies a directory tree.
#[track_caller]
pub fn copy_tree(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.expect("walk");
        let target = to.join(entry.path().strip_prefix(from).expect("prefix"));
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// Runs `git` in `dir` with a fixed identity; returns its trimmed stdout.
#[track_caller]
pub fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.email=t@t", "-c", "user.name=t"])
        .args(args)
        .output()
        .expect("run git");
    assert!(output.status.success(), "git {args:?}: {output:?}");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// A bare repository at `<root>/<name>` with one commit on `main` holding `files`, pushed from a
/// work clone at `<root>/work` (to push more commits from); the repository's `file://` URL and
/// the clone.
#[track_caller]
pub fn bare_repository(root: &Path, name: &str, files: &[(&str, &str)]) -> (String, PathBuf) {
    let bare = root.join(name);
    let work = root.join("work");
    std::fs::create_dir_all(&bare).expect("mkdir");
    git(
        root,
        &["init", "-q", "--bare", bare.to_str().expect("utf-8")],
    );
    git(
        root,
        &["init", "-q", "-b", "main", work.to_str().expect("utf-8")],
    );
    for (path, content) in files {
        std::fs::write(work.join(path), content).expect("write");
    }
    git(&work, &["add", "."]);
    git(&work, &["commit", "-qm", "one"]);
    let url = format!("file://{}", bare.display());
    git(&work, &["push", "-q", &url, "HEAD:main"]);
    (url, work)
}

/// Ids of the containers (running or not) labelled `label=value`.
pub fn labelled_containers(label: &str, value: &str) -> Vec<String> {
    let output = Command::new("docker")
        .args(["ps", "-aq", "--filter", &format!("label={label}={value}")])
        .output()
        .expect("docker ps");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Containers (running or not) labelled `runner.execution=<execution>`.
pub fn execution_containers(execution: &str) -> Vec<String> {
    labelled_containers("runner.execution", execution)
}

fn collect(mut pipe: impl std::io::Read + Send + 'static) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&text);
    std::thread::spawn(move || {
        let mut buffer = [0_u8; 4096];
        while let Ok(read) = pipe.read(&mut buffer) {
            if read == 0 {
                break;
            }
            let chunk = String::from_utf8_lossy(&buffer[..read]).into_owned();
            sink.lock().expect("output lock").push_str(&chunk);
        }
    });
    text
}

/// A finished command.
pub struct Exited {
    /// stdout.
    pub stdout: String,
    /// stderr.
    pub stderr: String,
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
}

impl Exited {
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

    /// The execution id from the `==> execution <id> of ...` line.
    #[track_caller]
    pub fn execution_id(&self) -> String {
        execution_id_in(&self.stdout)
            .unwrap_or_else(|| panic!("no execution line{}", self.context()))
    }
}

fn execution_id_in(stdout: &str) -> Option<String> {
    stdout.lines().find_map(|line| {
        let rest = line.strip_prefix("==> execution ")?;
        let (id, tail) = rest.split_once(' ')?;
        tail.starts_with("of ").then(|| id.to_owned())
    })
}

/// A command running in the background.
pub struct Running {
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

impl Running {
    /// stdout so far.
    pub fn stdout(&self) -> String {
        self.stdout.lock().expect("output lock").clone()
    }

    /// The process id, to send it signals.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// Waits until stdout contains `text`; panics after `timeout`.
    #[track_caller]
    pub fn wait_for(&mut self, text: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.stdout().contains(text) {
            if Instant::now() > deadline || self.child.try_wait().ok().flatten().is_some() {
                // One last look: the text may have arrived with the exit.
                std::thread::sleep(Duration::from_millis(200));
                assert!(
                    self.stdout().contains(text),
                    "{text:?} did not appear\n--- stdout\n{}\n--- stderr\n{}",
                    self.stdout(),
                    self.stderr.lock().expect("output lock")
                );
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The execution id, once the run printed it.
    #[track_caller]
    pub fn execution_id(&mut self) -> String {
        self.wait_for("==> execution ", Duration::from_secs(60));
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(id) = execution_id_in(&self.stdout()) {
                return id;
            }
            assert!(
                Instant::now() < deadline,
                "no execution line: {}",
                self.stdout()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, as `kill -9` does, and reap it.
    #[track_caller]
    pub fn kill_9(mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("wait");
    }

    /// Waits for the end (at most `timeout`, then kills it and panics).
    #[track_caller]
    pub fn finish(mut self, timeout: Duration) -> Exited {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "still running after {timeout:?}\n--- stdout\n{}",
                    self.stdout()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        // The readers end at EOF, right after the exit.
        let deadline = Instant::now() + Duration::from_secs(5);
        while Arc::strong_count(&self.stdout) > 1 || Arc::strong_count(&self.stderr) > 1 {
            if Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Exited {
            stdout: self.stdout(),
            stderr: self.stderr.lock().expect("output lock").clone(),
            code: status.code().unwrap_or(-1),
        }
    }
}

impl Drop for Running {
    /// A test that fails while the runner still runs interrupts it (as Ctrl-C does, so it
    /// removes its containers), then kills it.
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `runner status --json`.
#[derive(Debug, Clone, Deserialize)]
pub struct Execution {
    /// Execution id.
    pub id: String,
    /// Pipeline name.
    pub pipeline: String,
    /// Execution status.
    pub status: String,
    /// The first source's revision.
    pub revision: Option<String>,
    /// Start.
    pub started_at: String,
    /// End.
    pub ended_at: Option<String>,
    /// The latest attempt of each action that ran, in start order.
    pub actions: Vec<ActionStatus>,
    /// Every stage attempt.
    pub stages: Vec<StageStatus>,
    /// Every action attempt.
    pub attempts: Vec<ActionStatus>,
}

/// One action attempt in `status --json`.
#[derive(Debug, Clone, Deserialize)]
pub struct ActionStatus {
    /// Stage.
    pub stage: String,
    /// Action.
    pub action: String,
    /// The action's attempt.
    pub attempt: u32,
    /// The stage attempt that ran it.
    pub stage_attempt: u32,
    /// Status.
    pub status: String,
    /// Start.
    pub started_at: String,
    /// End.
    pub ended_at: Option<String>,
    /// Build id.
    pub build_id: Option<String>,
    /// Error.
    pub error: Option<String>,
}

/// One stage attempt in `status --json`.
#[derive(Debug, Clone, Deserialize)]
pub struct StageStatus {
    /// Stage.
    pub stage: String,
    /// Attempt.
    pub attempt: u32,
    /// `FAILED_ACTIONS` or `ALL_ACTIONS` for a retry.
    pub retry_mode: Option<String>,
    /// Status.
    pub status: String,
    /// Start.
    pub started_at: String,
    /// End.
    pub ended_at: Option<String>,
}

/// Parses an RFC 3339 time from `status --json`.
#[track_caller]
pub fn time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("bad time {text:?}: {e}"))
        .with_timezone(&Utc)
}

impl Execution {
    /// The latest attempt of `stage.action`; panics if it never ran.
    #[track_caller]
    pub fn action(&self, stage: &str, action: &str) -> &ActionStatus {
        self.actions
            .iter()
            .find(|a| a.stage == stage && a.action == action)
            .unwrap_or_else(|| panic!("{stage}.{action} never ran: {self:#?}"))
    }

    /// Whether `stage.action` ever started.
    pub fn ran(&self, stage: &str, action: &str) -> bool {
        self.attempts
            .iter()
            .any(|a| a.stage == stage && a.action == action)
    }

    /// Every attempt of `stage.action`, oldest first.
    pub fn attempts_of(&self, stage: &str, action: &str) -> Vec<&ActionStatus> {
        self.attempts
            .iter()
            .filter(|a| a.stage == stage && a.action == action)
            .collect()
    }

    /// The latest attempt of `stage`; panics if it never started.
    #[track_caller]
    pub fn stage(&self, stage: &str) -> &StageStatus {
        self.stages
            .iter()
            .rev()
            .find(|s| s.stage == stage)
            .unwrap_or_else(|| panic!("stage {stage} never started: {self:#?}"))
    }

    /// `(stage.action, attempt, status)` of the latest attempts, sorted: actions of one
    /// run-order group start in no particular order.
    pub fn summary(&self) -> Vec<(String, u32, String)> {
        let mut rows: Vec<(String, u32, String)> = self
            .actions
            .iter()
            .map(|a| {
                (
                    format!("{}.{}", a.stage, a.action),
                    a.attempt,
                    a.status.clone(),
                )
            })
            .collect();
        rows.sort();
        rows
    }
}

impl ActionStatus {
    /// Start time.
    #[track_caller]
    pub fn started(&self) -> DateTime<Utc> {
        time(&self.started_at)
    }

    /// End time; panics if it has not ended.
    #[track_caller]
    pub fn ended(&self) -> DateTime<Utc> {
        time(self.ended_at.as_deref().expect("ended"))
    }
}

impl StageStatus {
    /// End time; panics if it has not ended.
    #[track_caller]
    pub fn ended(&self) -> DateTime<Utc> {
        time(self.ended_at.as_deref().expect("ended"))
    }
}

/// `(stage.action, attempt, status)` rows, sorted, for comparing with [`Execution::summary`].
pub fn rows(expected: &[(&str, u32, &str)]) -> Vec<(String, u32, String)> {
    let mut rows: Vec<(String, u32, String)> = expected
        .iter()
        .map(|(name, attempt, status)| ((*name).to_owned(), *attempt, (*status).to_owned()))
        .collect();
    rows.sort();
    rows
}
