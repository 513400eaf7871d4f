//! Section E conformance scenarios E1–E10 on a real container (the buildspec ones; E11–E15
//! belong to the pipeline engine).

use crate::support::{Build, leftover_containers};

#[test]
fn e1_state_carries_over_arrays_do_not() {
    let ran = Build::new(
        r#"version: 0.2
env:
  shell: bash
phases:
  pre_build:
    commands:
      - cd sub && FOO=bar
      - export BAZ=qux
      - A=(1 2)
  build:
    commands:
      - pwd; echo "$FOO $BAZ [${A[*]}]"
"#,
    )
    .file("sub/keep", "")
    .run();
    ran.code(0).status("SUCCEEDED");
    let out = ran.output_lines();
    assert!(
        out.iter()
            .any(|l| l.starts_with("/codebuild/output/src") && l.ends_with("/src/sub")),
        "{out:?}"
    );
    assert!(out.contains(&"bar qux []"), "{out:?}");
}

#[test]
fn e1_array_syntax_fails_under_sh() {
    let ran = Build::new(
        "version: 0.2\nphases:\n  pre_build:\n    commands:\n      - A=(1 2)\n  build:\n    commands:\n      - echo never-here\n",
    )
    .run();
    ran.code(1)
        .status("FAILED")
        .phase_is("PRE_BUILD", "FAILED")
        .phase_absent("BUILD");
    ran.stdout_lacks("never-here");
}

#[test]
fn e2_default_shell_is_sh() {
    let buildspec = |shell: &str| {
        format!(
            "version: 0.2\n{shell}phases:\n  build:\n    commands:\n      - '[ \"a\" == \"a\" ] && echo ok'\n"
        )
    };
    let ran = Build::new(&buildspec("")).run();
    ran.code(1)
        .status("FAILED")
        .phase_is("BUILD", "FAILED")
        .stdout_has("unexpected operator");
    let ran = Build::new(&buildspec("env:\n  shell: bash\n")).run();
    ran.code(0).status("SUCCEEDED");
    assert!(ran.output_lines().contains(&"ok"));
}

#[test]
fn e3_failure_order_finally_and_post_build() {
    let ran = Build::new(
        r#"version: 0.2
phases:
  build:
    commands: [ "echo one", "false", "echo never" ]
    finally:  [ "echo cleanup $CODEBUILD_BUILD_SUCCEEDING" ]
  post_build:
    commands: [ "echo post $CODEBUILD_BUILD_SUCCEEDING" ]
artifacts: { files: [ "**/*" ] }
"#,
    )
    .run();
    ran.code(1)
        .status("FAILED")
        .phase_is("BUILD", "FAILED")
        .phase_is("POST_BUILD", "SUCCEEDED")
        .phase_is("UPLOAD_ARTIFACTS", "SUCCEEDED")
        .stdout_lacks("never");
    assert_eq!(ran.output_lines(), vec!["one", "cleanup 0", "post 0"]);
    ran.stdout_has("Phase context status code: COMMAND_EXECUTION_ERROR Message: Error while executing command: false. Reason: exit status 1");
    assert_eq!(ran.zip_entries("artifacts.zip"), vec!["buildspec.yml"]);
}

#[test]
fn e4_install_failure_skips_everything_after() {
    let ran = Build::new(
        "version: 0.2\nphases:\n  install:\n    commands: [\"false\"]\n  build:\n    commands: [\"touch build-marker\"]\n  post_build:\n    commands: [\"touch post-marker\"]\nartifacts:\n  files: ['**/*']\n",
    )
    .run();
    ran.code(1)
        .status("FAILED")
        .phase_is("INSTALL", "FAILED")
        .phase_absent("PRE_BUILD")
        .phase_absent("BUILD")
        .phase_absent("POST_BUILD")
        .phase_absent("UPLOAD_ARTIFACTS")
        .phase_is("FINALIZING", "SUCCEEDED")
        .stdout_lacks("Running command touch");
    assert!(!ran.has_artifacts(), "no artifact may be uploaded");
}

#[test]
fn e5a_on_failure_continue() {
    let ran = Build::new(
        "version: 0.2\nphases:\n  pre_build:\n    on-failure: CONTINUE\n    commands: [\"false\"]\n  build:\n    commands: [\"echo b\"]\n",
    )
    .run();
    ran.code(1)
        .status("FAILED")
        .phase_is("PRE_BUILD", "FAILED")
        .phase_is("BUILD", "SUCCEEDED");
    assert_eq!(ran.output_lines(), vec!["b"]);
}

#[test]
fn e5b_on_failure_abort() {
    let ran = Build::new(
        "version: 0.2\nphases:\n  build:\n    on-failure: ABORT\n    commands: [\"false\"]\n  post_build:\n    commands: [\"echo p\"]\nartifacts:\n  files: ['**/*']\n",
    )
    .run();
    ran.code(1)
        .status("FAILED")
        .phase_is("BUILD", "FAILED")
        .phase_absent("POST_BUILD")
        .phase_absent("UPLOAD_ARTIFACTS");
    assert!(ran.output_lines().is_empty(), "{:?}", ran.output_lines());
    assert!(!ran.has_artifacts());
}

#[test]
fn e6_failing_finally_fails_passing_phase() {
    let ran = Build::new(
        "version: 0.2\nphases:\n  build:\n    commands: [\"true\"]\n    finally: [\"false\", \"echo after\"]\n",
    )
    .run();
    ran.code(1)
        .status("FAILED")
        .phase_is("BUILD", "FAILED")
        .stdout_lacks("\nafter\n");
}

#[test]
fn e7_block_scalar_hides_failure_unless_set_e() {
    let ran = Build::new("version: 0.2\nphases:\n  build:\n    commands:\n      - |\n        false\n        echo masked\n").run();
    ran.code(0)
        .status("SUCCEEDED")
        .stdout_has("Running command false\necho masked");
    assert_eq!(ran.output_lines(), vec!["echo masked", "masked"]);
    let ran = Build::new("version: 0.2\nphases:\n  build:\n    commands:\n      - |\n        set -e\n        false\n        echo masked\n").run();
    ran.code(1).status("FAILED").phase_is("BUILD", "FAILED");
}

#[test]
fn e8_variable_precedence() {
    let buildspec = "version: 0.2\nenv:\n  variables:\n    X: spec\n    P: \"$PATH:/x\"\nphases:\n  build:\n    commands:\n      - echo \"X=$X P=$P M=$RUNNER_IMAGE_MARKER\"\n";
    let with_project = || {
        let build = Build::new(buildspec).file("project.env", "X=proj\n");
        let env_file = build.source().join("project.env").display().to_string();
        build.args(["--env-file".to_owned(), env_file])
    };
    let ran = with_project().env("X", "override").run();
    ran.code(0).stdout_has("X=override P=$PATH:/x M=img");
    let ran = with_project().run();
    ran.code(0).stdout_has("X=proj P=$PATH:/x");
    let ran = Build::new(buildspec).run();
    ran.code(0).stdout_has("X=spec P=$PATH:/x");
    let ran = Build::new("version: 0.2\nenv:\n  variables:\n    CODEBUILD_FOO: x\nphases:\n  build:\n    commands: [\"echo hi\"]\n").run();
    ran.code(1).status("FAILED").stdout_lacks("Entering phase");
    assert!(ran.stderr.contains("CODEBUILD_"), "{}", ran.stderr);
}

#[test]
fn e9_artifacts_base_directory_discard_exclude_cd() {
    let ran = Build::new(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - cd out\nartifacts:\n  base-directory: out\n  files: ['**/*']\n  exclude-paths: ['**/*.log']\n  discard-paths: yes\n",
    )
    .file("out/a/1.txt", "1")
    .file("out/b/2.txt", "2")
    .file("out/b/.hidden", "h")
    .file("out/b/skip.log", "s")
    .run();
    ran.code(0).status("SUCCEEDED");
    assert_eq!(
        ran.zip_entries("artifacts.zip"),
        vec![".hidden", "1.txt", "2.txt"]
    );
    let ran = Build::new("version: 0.2\nphases:\n  build:\n    commands: [\"true\"]\nartifacts:\n  files: [missing.txt]\n").run();
    ran.code(1)
        .status("FAILED")
        .phase_is("UPLOAD_ARTIFACTS", "FAILED")
        .stdout_has(
            "Phase context status code: CLIENT_ERROR Message: no matching artifact paths found",
        );
}

#[test]
fn e10_invalid_yaml_never_reaches_install() {
    let ran = Build::new(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo Step 1: compile\n",
    )
    .run();
    ran.code(1)
        .stdout_has("Phase complete: DOWNLOAD_SOURCE State: FAILED")
        .stdout_has("YAML_FILE_ERROR")
        .stdout_lacks("Entering phase");
    assert!(leftover_containers(ran.build.project()).is_empty());
}
