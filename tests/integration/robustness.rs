//! Bad inputs and interruptions: each gives a clear error and leaves no container behind.

use std::io::{BufRead as _, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::{Build, leftover_containers};

#[track_caller]
fn assert_no_leftovers(project: &str) {
    let left = leftover_containers(project);
    assert!(left.is_empty(), "containers left behind: {left:?}");
}

#[test]
fn malformed_yaml_is_yaml_file_error() {
    let ran = Build::new("version: 0.2\nphases:\n  build:\n    commands: [echo hi\n").run();
    ran.code(1)
        .stdout_has("YAML_FILE_ERROR")
        .stdout_lacks("Entering phase");
    ran.stderr_has("buildspec.yml:");
    assert_no_leftovers(ran.build.project());
}

#[test]
fn wrong_type_names_field_and_line() {
    let ran = Build::new("version: 0.2\nphases:\n  build:\n    commands:\n      - echo hi\n    on-failure: [CONTINUE]\n").run();
    ran.code(1)
        .stdout_has("YAML_FILE_ERROR")
        .stdout_lacks("Entering phase");
    ran.stderr_has("buildspec.yml:6:").stderr_has("on-failure");
    assert_no_leftovers(ran.build.project());
}

#[test]
fn b2_unknown_version_is_refused() {
    let ran = Build::new("version: 0.1\nphases:\n  build:\n    commands: [\"echo hi\"]\n").run();
    ran.code(1)
        .stdout_lacks("Entering phase")
        .stderr_has("version");
    let ran = Build::new("version: 7\nphases:\n  build:\n    commands: [\"echo hi\"]\n").run();
    ran.code(1)
        .stdout_lacks("Entering phase")
        .stderr_has("version");
}

#[test]
fn b1_missing_buildspec_is_reported() {
    let ran = Build::empty().run();
    ran.code(1)
        .stdout_has("DOWNLOAD_SOURCE State: FAILED")
        .stderr_has("buildspec.yml");
    assert_no_leftovers(ran.build.project());
}

#[test]
fn b1_buildspec_path_relative_to_source() {
    let ran = Build::empty()
        .file(
            "ci/other.yml",
            "version: 0.2\nphases:\n  build:\n    commands: [\"echo from-other\"]\n",
        )
        .args(["--buildspec", "ci/other.yml"])
        .run();
    ran.code(0).status("SUCCEEDED");
    assert_eq!(ran.output_lines(), vec!["from-other"]);
}

#[test]
fn missing_image_is_a_runner_error() {
    let ran = Build::new("version: 0.2\nphases:\n  build:\n    commands: [\"true\"]\n")
        .image("runner-test-does-not-exist/nowhere:1")
        .run();
    ran.code(2)
        .stderr_has("runner-test-does-not-exist/nowhere:1");
    assert_no_leftovers(ran.build.project());
}

#[test]
fn artifact_path_escaping_source_is_refused() {
    let ran = Build::new("version: 0.2\nphases:\n  build:\n    commands: [\"echo x > ../x\"]\nartifacts:\n  files: ['../x']\n").run();
    ran.code(1)
        .status("FAILED")
        .phase_is("UPLOAD_ARTIFACTS", "FAILED")
        .stdout_has("escapes the source directory");
    assert!(!ran.has_artifacts());
    assert_no_leftovers(ran.build.project());
}

#[test]
fn b34_timeout_kills_the_build() {
    let started = Instant::now();
    let ran = Build::new("version: 0.2\nphases:\n  build:\n    commands: [\"sleep 600\"]\n  post_build:\n    commands: [\"echo post\"]\nartifacts:\n  files: ['**/*']\n")
        .args(["--timeout", "3s"])
        .run();
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the timeout was not enforced"
    );
    ran.code(1)
        .status("TIMED_OUT")
        .phase_is("BUILD", "TIMED_OUT")
        .phase_absent("POST_BUILD")
        .phase_absent("UPLOAD_ARTIFACTS");
    ran.stdout_lacks("\npost\n");
    assert!(!ran.has_artifacts());
    assert_no_leftovers(ran.build.project());
}

#[test]
fn ctrl_c_stops_the_build_cleanly() {
    let build = Build::new(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo started\n      - sleep 600\n",
    );
    let mut child = build
        .command()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let (lines_tx, lines_rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        match lines_rx.recv_timeout(Duration::from_secs(1)) {
            Ok(line) => {
                let go = line.contains("Running command sleep 600");
                seen.push(line);
                if go {
                    break;
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    assert!(
        seen.iter().any(|l| l.contains("Running command sleep 600")),
        "build never reached sleep: {seen:?}"
    );
    let pid = child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let status = child.wait().expect("wait");
    reader.join().expect("reader");
    seen.extend(lines_rx.try_iter());
    let log = seen.join("\n");
    assert_eq!(status.code(), Some(130), "{log}");
    assert!(
        log.contains("Phase complete: BUILD State: STOPPED"),
        "{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.starts_with("Build ") && l.ends_with("STOPPED")),
        "{log}"
    );
    assert_no_leftovers(build.project());
}
