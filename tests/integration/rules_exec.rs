//! Section A rules about how phases and commands execute (B8, B9, B17–B35) on a real container,
//! one or more tests per rule, named `b<N>_<what>`. B34 (timeout) is in `robustness.rs`; B24 and
//! what is refused or ignored before commands run are in `rules_load.rs`, the environment in
//! `rules_env.rs`.

use std::time::{Duration, Instant};

use crate::support::{Build, build_only};

// B8, B25: run-as.

#[test]
fn b8_top_level_run_as_runs_every_command_as_that_user() {
    let ran = Build::new(
        "version: 0.2\nrun-as: nobody\nphases:\n  install:\n    commands: [\"id -un\"]\n  build:\n    commands: [\"id -un\"]\n    finally: [\"id -un\"]\n  post_build:\n    commands: [\"id -un\"]\n",
    )
    .run();
    ran.code(0).status("SUCCEEDED").no_leftovers();
    assert_eq!(ran.output_lines(), vec!["nobody"; 4]);
}

#[test]
fn b8_without_run_as_commands_run_as_root() {
    let ran = Build::new(&build_only(&["id -un", "id -u"])).run();
    ran.code(0).status("SUCCEEDED");
    assert_eq!(ran.output_lines(), vec!["root", "0"]);
}

#[test]
fn b25_phase_run_as_overrides_top_level_for_that_phase_only() {
    let ran = Build::new(
        "version: 0.2\nrun-as: nobody\nphases:\n  install:\n    commands: [\"id -un\"]\n  build:\n    run-as: www-data\n    commands: [\"id -un\"]\n    finally: [\"id -un\"]\n  post_build:\n    commands: [\"id -un\"]\n",
    )
    .run();
    ran.code(0).status("SUCCEEDED");
    assert_eq!(
        ran.output_lines(),
        vec!["nobody", "www-data", "www-data", "nobody"]
    );
}

#[test]
fn b25_phase_run_as_without_top_level_leaves_other_phases_root() {
    let ran = Build::new(
        "version: 0.2\nphases:\n  pre_build:\n    commands: [\"id -un\"]\n  build:\n    run-as: nobody\n    commands: [\"id -un\"]\n  post_build:\n    commands: [\"id -un\"]\n",
    )
    .run();
    ran.code(0).status("SUCCEEDED");
    assert_eq!(ran.output_lines(), vec!["root", "nobody", "root"]);
}

#[test]
fn b25_run_as_user_can_read_and_traverse_the_source() {
    let build = Build::new(
        "version: 0.2\nrun-as: nobody\nphases:\n  build:\n    commands:\n      - cat sub/private.txt\n      - cd sub && ls\n      - pwd | sed 's|.*/src/|src/|'\n      - VAR=kept\n  post_build:\n    run-as: root\n    commands:\n      - echo \"$VAR\"\n",
    )
    .file("sub/private.txt", "only-the-owner-may-read");
    let private = build.source().join("sub/private.txt");
    std::fs::set_permissions(
        &private,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .expect("chmod");
    std::fs::set_permissions(
        build.source().join("sub"),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .expect("chmod");
    let ran = build.run();
    ran.code(0).status("SUCCEEDED").no_leftovers();
    assert_eq!(
        ran.output_lines(),
        vec!["only-the-owner-may-read", "private.txt", "src/sub", "kept"]
    );
}

// B9, B21: the shell.

#[test]
fn b9_env_shell_bash_runs_bash() {
    let spec = |shell: &str| {
        format!(
            "version: 0.2\n{shell}phases:\n  build:\n    commands:\n      - echo \"bash=[$BASH_VERSION]\"\n      - readlink /proc/$$/exe\n"
        )
    };
    let ran = Build::new(&spec("env:\n  shell: bash\n")).run();
    ran.code(0).status("SUCCEEDED");
    let out = ran.output_lines();
    assert!(out[0].starts_with("bash=[5."), "{out:?}");
    assert_eq!(out[1], "/usr/bin/bash");

    let ran = Build::new(&spec("")).run();
    ran.code(0).status("SUCCEEDED");
    assert_eq!(ran.output_lines(), vec!["bash=[]", "/usr/bin/dash"]);
}

#[test]
fn b9_env_shell_bin_sh_is_the_images_sh() {
    let ran = Build::new(
        "version: 0.2\nenv:\n  shell: /bin/sh\nphases:\n  build:\n    commands: [\"readlink /proc/$$/exe\"]\n",
    )
    .run();
    ran.code(0).status("SUCCEEDED");
    assert_eq!(ran.output_lines(), vec!["/usr/bin/dash"]);
}

#[test]
fn b21_bash_isms_fail_under_sh_at_script_line_4() {
    let ran = Build::new(&build_only(&["'[[ 1 == 1 ]] && echo yes'", "echo never"])).run();
    ran.code(1)
        .status("FAILED")
        .phase_is("BUILD", "FAILED")
        .no_leftovers();
    let out = ran.output_lines();
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(
        out[0].starts_with("/codebuild/output/")
            && out[0].ends_with("/script.sh: 4: [[: not found"),
        "{out:?}"
    );
    ran.agent_lines_in_order(&[
        "Command did not exit successfully [[ 1 == 1 ]] && echo yes exit status 127",
    ]);
}

#[test]
fn b21_test_double_equals_and_source_fail_under_sh() {
    let ran = Build::new(
        "version: 0.2\nphases:\n  build:\n    on-failure: CONTINUE\n    commands:\n      - '[ a == a ] && echo same'\n  post_build:\n    commands:\n      - source /etc/os-release\n",
    )
    .run();
    ran.code(1)
        .phase_is("BUILD", "FAILED")
        .phase_is("POST_BUILD", "FAILED");
    let out = ran.output_lines();
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(
        out[0].ends_with("/script.sh: 4: [: a: unexpected operator"),
        "{out:?}"
    );
    assert!(
        out[1].ends_with("/script.sh: 4: source: not found"),
        "{out:?}"
    );
}

// B17, B18, B35: phase order and the agent's log lines.

#[test]
fn b17_omitted_phases_are_still_entered_and_succeed() {
    let ran = Build::new(&build_only(&["echo b"])).run();
    ran.code(0).status("SUCCEEDED");
    ran.agent_lines_adjacent(&[
        "Entering phase INSTALL",
        "Phase complete: INSTALL State: SUCCEEDED",
        "Phase context status code:  Message: ",
        "Entering phase PRE_BUILD",
        "Phase complete: PRE_BUILD State: SUCCEEDED",
        "Phase context status code:  Message: ",
        "Entering phase BUILD",
        "Running command echo b",
    ]);
    ran.agent_lines_adjacent(&[
        "Phase complete: BUILD State: SUCCEEDED",
        "Phase context status code:  Message: ",
        "Entering phase POST_BUILD",
        "Phase complete: POST_BUILD State: SUCCEEDED",
        "Phase context status code:  Message: ",
    ]);
    for phase in ["INSTALL", "PRE_BUILD", "BUILD", "POST_BUILD"] {
        ran.phase_is(phase, "SUCCEEDED");
    }
}

#[test]
fn b18_phases_in_fixed_order_commands_then_finally() {
    // Written out of order on purpose: the order comes from the phase names, not the file.
    let ran = Build::new(
        r#"version: 0.2
phases:
  post_build:
    commands: ["echo post-1"]
    finally: ["echo post-finally"]
  build:
    finally: ["echo build-finally-1", "echo build-finally-2"]
    commands: ["echo build-1", "echo build-2", "echo build-3"]
  install:
    commands: ["echo install-1"]
  pre_build:
    commands: ["echo pre-1"]
    finally: ["echo pre-finally"]
"#,
    )
    .run();
    ran.code(0).status("SUCCEEDED");
    assert_eq!(
        ran.output_lines(),
        vec![
            "install-1",
            "pre-1",
            "pre-finally",
            "build-1",
            "build-2",
            "build-3",
            "build-finally-1",
            "build-finally-2",
            "post-1",
            "post-finally",
        ]
    );
    ran.agent_lines_in_order(&[
        "Entering phase INSTALL",
        "Entering phase PRE_BUILD",
        "Entering phase BUILD",
        "Entering phase POST_BUILD",
        "Entering phase UPLOAD_ARTIFACTS",
        "Entering phase FINALIZING",
    ]);
}

#[test]
fn b35_preamble_counts_phases_and_commands() {
    let ran = Build::new(
        "version: 0.2\nphases:\n  install:\n    commands: [\"true\"]\n  build:\n    commands: [\"true\", \"true\"]\n  post_build:\n    commands: [\"true\", \"true\", \"true\"]\n",
    )
    .run();
    ran.code(0).status("SUCCEEDED");
    let texts = ran.agent_texts();
    let src_dir = texts
        .iter()
        .find_map(|t| t.strip_prefix("CODEBUILD_SRC_DIR="))
        .expect("CODEBUILD_SRC_DIR line");
    ran.agent_lines_in_order(&[
        "Phase is DOWNLOAD_SOURCE",
        &format!("Moving to directory {src_dir}"),
        "Phases found in YAML: 3",
        " INSTALL: 1 commands",
        " BUILD: 2 commands",
        " POST_BUILD: 3 commands",
        "Phase complete: DOWNLOAD_SOURCE State: SUCCEEDED",
        "Entering phase INSTALL",
        "Running command true",
    ]);
}

#[test]
fn b35_every_agent_line_has_the_container_prefix_and_timestamp() {
    let ran = Build::new(&build_only(&["echo hi"])).run();
    ran.code(0);
    let agent: Vec<&str> = ran
        .stdout
        .lines()
        .filter(|l| l.starts_with("[Container]"))
        .collect();
    assert!(agent.len() > 10, "{agent:?}");
    for line in agent {
        // `[Container] yyyy/mm/dd hh:mm:ss.micros text`
        let stamp = &line["[Container] ".len()..];
        let shape = "dddd/dd/dd dd:dd:dd.dddddd ";
        assert!(stamp.len() > shape.len(), "{line:?}");
        for (got, want) in stamp.chars().zip(shape.chars()) {
            let fits = if want == 'd' {
                got.is_ascii_digit()
            } else {
                got == want
            };
            assert!(fits, "bad timestamp in {line:?}");
        }
    }
}

// B19, B20, B23: what carries from one command to the next.

#[test]
fn b19_cd_and_plain_variables_persist_across_commands_and_phases() {
    let ran = Build::new(
        r#"version: 0.2
phases:
  pre_build:
    commands:
      - cd sub
      - PLAIN=plain; export EXPORTED=exported
  build:
    commands:
      - echo "$PWD" | sed "s|^$CODEBUILD_SRC_DIR|SRC|"
      - echo "$PLAIN $EXPORTED"
  post_build:
    commands:
      - sh -c 'echo "child sees [$PLAIN]"'
"#,
    )
    .file("sub/keep", "")
    .run();
    ran.code(0).status("SUCCEEDED");
    assert_eq!(
        ran.output_lines(),
        vec!["SRC/sub", "plain exported", "child sees [plain]"]
    );
}

#[test]
fn b20a_oldpwd_persists_so_cd_dash_works() {
    let ran = Build::new(&build_only(&[
        "cd /tmp",
        "echo \"now=$PWD\"",
        "cd - >/dev/null && echo \"back=$PWD old=$OLDPWD\" | sed \"s|$CODEBUILD_SRC_DIR|SRC|\"",
    ]))
    .run();
    ran.code(0).status("SUCCEEDED");
    assert_eq!(ran.output_lines(), vec!["now=/tmp", "back=SRC old=/tmp"]);
}

#[test]
fn b20a_values_with_quotes_spaces_and_newlines_survive() {
    let ran = Build::new(
        r#"version: 0.2
phases:
  build:
    commands:
      - |
        V="a 'b' \"c\" \$d \\e"
        W="line1
        line2"
      - printf '%s\n' "$V" "$W"
"#,
    )
    .run();
    ran.code(0).status("SUCCEEDED");
    // The first two lines continue the multi-line `Running command` line.
    assert_eq!(
        ran.output_lines(),
        vec![
            "W=\"line1",
            "line2\"",
            r#"a 'b' "c" $d \e"#,
            "line1",
            "line2"
        ]
    );
}

#[test]
fn b20a_unset_variable_stays_unset() {
    let ran = Build::new(&build_only(&[
        "export GONE=1",
        "unset GONE",
        "echo \"gone=${GONE-unset}\"",
    ]))
    .run();
    ran.code(0).status("SUCCEEDED");
    assert_eq!(ran.output_lines(), vec!["gone=unset"]);
}

#[test]
fn b20b_arrays_are_lost_under_bash() {
    let ran = Build::new(
        r#"version: 0.2
env:
  shell: bash
phases:
  build:
    commands:
      - 'A=(1 2 3); declare -A M=([k]=v); echo "same=${#A[@]} ${M[k]}"'
      - 'echo "next=${#A[@]} m=[${M[k]}]"'
"#,
    )
    .run();
    ran.code(0).status("SUCCEEDED");
    assert_eq!(ran.output_lines(), vec!["same=3 v", "next=0 m=[]"]);
}

#[test]
fn b20c_functions_options_and_traps_do_not_persist() {
    let ran = Build::new(
        r#"version: 0.2
env:
  shell: bash
phases:
  build:
    commands:
      - "f() { echo in-f; }; f; set -e; set -o pipefail; trap 'echo trapped' EXIT"
      - "f 2>/dev/null || echo no-f"
      - "false | true; echo pipe=$?"
      - "false; echo after-false"
"#,
    )
    .run();
    ran.code(0).status("SUCCEEDED");
    assert_eq!(
        ran.output_lines(),
        vec!["in-f", "trapped", "no-f", "pipe=0", "after-false"]
    );
}

#[test]
fn b20c_set_e_does_not_persist_under_sh() {
    let ran = Build::new(&build_only(&["set -e", "false; echo after-false"])).run();
    ran.code(0).status("SUCCEEDED");
    assert_eq!(ran.output_lines(), vec!["after-false"]);
}

#[test]
fn b20d_background_process_persists() {
    let started = Instant::now();
    let ran = Build::new(
        r#"version: 0.2
phases:
  install:
    commands:
      - sleep 30 & echo $! > /tmp/bg.pid
  build:
    commands:
      - kill -0 "$(cat /tmp/bg.pid)" && echo alive
      - cat "/proc/$(cat /tmp/bg.pid)/comm"
"#,
    )
    .run();
    ran.code(0).status("SUCCEEDED").no_leftovers();
    assert_eq!(ran.output_lines(), vec!["alive", "sleep"]);
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "the build waited for its background process"
    );
}

#[test]
fn b20e_last_exit_is_in_the_environment_after_the_first_command() {
    let ran = Build::new(
        r#"version: 0.2
phases:
  install:
    on-failure: CONTINUE
    commands:
      - echo "first=${CODEBUILD_LAST_EXIT-unset}"
      - sh -c 'exit 3'
  build:
    commands:
      - env | grep '^CODEBUILD_LAST_EXIT='
      - printenv CODEBUILD_LAST_EXIT
"#,
    )
    .run();
    ran.code(1).status("FAILED").phase_is("INSTALL", "FAILED");
    assert_eq!(
        ran.output_lines(),
        vec!["first=unset", "CODEBUILD_LAST_EXIT=3", "0"]
    );
}

#[test]
fn b22_block_is_one_command_and_its_last_line_decides() {
    let ran = Build::new(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - |\n        echo a\n        true\n        false\n      - echo never\n",
    )
    .run();
    ran.code(1).status("FAILED").phase_is("BUILD", "FAILED");
    ran.agent_lines_in_order(&[" BUILD: 2 commands"]);
    assert_eq!(
        ran.stdout.matches("Running command ").count(),
        1,
        "{}",
        ran.stdout
    );
    ran.stdout_has("Running command echo a\ntrue\nfalse\n")
        .stdout_has("Reason: exit status 1");
    // The multi-line command text continues the `Running command`, `Command did not exit` and
    // context lines; `a` is the only real output.
    assert_eq!(
        ran.output_lines(),
        vec![
            "true",
            "false",
            "a",
            "true",
            "false exit status 1",
            "true",
            "false. Reason: exit status 1"
        ]
    );
}

#[test]
fn b22_folded_block_becomes_one_line() {
    let ran = Build::new(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - >\n        echo one\n        two\n        three\n",
    )
    .run();
    ran.code(0).status("SUCCEEDED");
    ran.agent_lines_in_order(&["Running command echo one two three"]);
    assert_eq!(ran.output_lines(), vec!["one two three"]);
}

#[test]
fn b23_first_command_starts_in_src_dir_and_the_log_says_so() {
    let ran = Build::new(&build_only(&["pwd", "echo \"$CODEBUILD_SRC_DIR\""])).run();
    ran.code(0).status("SUCCEEDED");
    let out = ran.output_lines();
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(out[0], out[1]);
    let digits = out[0]
        .strip_prefix("/codebuild/output/src")
        .and_then(|rest| rest.strip_suffix("/src"))
        .unwrap_or_default();
    assert!(
        !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()),
        "{out:?}"
    );
    ran.agent_lines_in_order(&[
        &format!("Moving to directory {}", out[0]),
        "Running command pwd",
    ]);
}

// B26–B33: failures and transitions.

#[test]
fn b26_failed_command_skips_the_rest_runs_finally_and_logs_its_status() {
    let ran = Build::new(
        "version: 0.2\nphases:\n  build:\n    commands: [\"echo one\", \"sh -c 'exit 3'\", \"echo never\"]\n    finally: [\"echo fin\"]\n",
    )
    .run();
    ran.code(1)
        .status("FAILED")
        .phase_is("BUILD", "FAILED")
        .no_leftovers();
    assert_eq!(ran.output_lines(), vec!["one", "fin"]);
    ran.agent_lines_adjacent(&[
        "Running command sh -c 'exit 3'",
        "Command did not exit successfully sh -c 'exit 3' exit status 3",
        "Running command echo fin",
        "Phase complete: BUILD State: FAILED",
        "Phase context status code: COMMAND_EXECUTION_ERROR Message: Error while executing command: sh -c 'exit 3'. Reason: exit status 3",
    ]);
    ran.stdout_lacks("Running command echo never");
}

#[test]
fn b27_failing_finally_fails_the_phase_and_stops_later_finally_commands() {
    let ran = Build::new(
        "version: 0.2\nphases:\n  build:\n    commands: [\"echo ok\"]\n    finally: [\"echo f1\", \"sh -c 'exit 4'\", \"echo f3\"]\n  post_build:\n    commands: [\"echo post\"]\n",
    )
    .run();
    ran.code(1)
        .status("FAILED")
        .phase_is("BUILD", "FAILED")
        .phase_is("POST_BUILD", "SUCCEEDED");
    assert_eq!(ran.output_lines(), vec!["ok", "f1", "post"]);
    ran.agent_lines_in_order(&[
        "Phase complete: BUILD State: FAILED",
        "Phase context status code: COMMAND_EXECUTION_ERROR Message: Error while executing command: sh -c 'exit 4'. Reason: exit status 4",
    ]);
}

#[test]
fn b28_install_failure_goes_to_finalizing() {
    let ran = Build::new(
        "version: 0.2\nphases:\n  install:\n    commands: [\"false\"]\n    finally: [\"echo install-finally\"]\n  pre_build:\n    commands: [\"echo pre\"]\n  build:\n    commands: [\"echo build\"]\n  post_build:\n    commands: [\"echo post\"]\nartifacts:\n  files: ['**/*']\n",
    )
    .run();
    ran.code(1).status("FAILED");
    assert_eq!(ran.output_lines(), vec!["install-finally"]);
    ran.agent_lines_adjacent(&[
        "Phase complete: INSTALL State: FAILED",
        "Phase context status code: COMMAND_EXECUTION_ERROR Message: Error while executing command: false. Reason: exit status 1",
        "Entering phase FINALIZING",
    ]);
    assert!(!ran.has_artifacts());
}

#[test]
fn b28_pre_build_failure_skips_build_post_build_and_artifacts() {
    let ran = Build::new(
        "version: 0.2\nphases:\n  install:\n    commands: [\"echo install\"]\n  pre_build:\n    commands: [\"false\"]\n  build:\n    commands: [\"echo build\"]\n  post_build:\n    commands: [\"echo post\"]\nartifacts:\n  files: ['**/*']\n",
    )
    .run();
    ran.code(1).status("FAILED");
    assert_eq!(ran.output_lines(), vec!["install"]);
    let phases: Vec<String> = ran
        .phase_table()
        .into_iter()
        .map(|(n, s)| format!("{n} {s}"))
        .collect();
    assert_eq!(
        phases,
        vec![
            "DOWNLOAD_SOURCE SUCCEEDED",
            "INSTALL SUCCEEDED",
            "PRE_BUILD FAILED",
            "FINALIZING SUCCEEDED"
        ]
    );
    assert!(!ran.has_artifacts());
}

#[test]
fn b28_build_failure_still_runs_post_build_and_uploads_artifacts() {
    let ran = Build::new(
        "version: 0.2\nphases:\n  build:\n    commands: [\"false\"]\n  post_build:\n    commands: [\"echo post > post.txt\"]\nartifacts:\n  files: [post.txt]\n",
    )
    .run();
    ran.code(1)
        .status("FAILED")
        .phase_is("BUILD", "FAILED")
        .phase_is("POST_BUILD", "SUCCEEDED")
        .phase_is("UPLOAD_ARTIFACTS", "SUCCEEDED")
        .no_leftovers();
    ran.agent_lines_adjacent(&[
        "Phase complete: BUILD State: FAILED",
        "Phase context status code: COMMAND_EXECUTION_ERROR Message: Error while executing command: false. Reason: exit status 1",
        "Entering phase POST_BUILD",
        "Running command echo post > post.txt",
    ]);
    assert_eq!(ran.zip_entries("artifacts.zip"), vec!["post.txt"]);
    assert_eq!(ran.zip_text("artifacts.zip", "post.txt"), "post\n");
}

#[test]
fn b28_post_build_failure_still_attempts_artifacts() {
    let ran = Build::new(
        "version: 0.2\nphases:\n  build:\n    commands: [\"echo b > out.txt\"]\n  post_build:\n    commands: [\"false\", \"echo never\"]\nartifacts:\n  files: [out.txt]\n",
    )
    .run();
    ran.code(1)
        .status("FAILED")
        .phase_is("BUILD", "SUCCEEDED")
        .phase_is("POST_BUILD", "FAILED")
        .phase_is("UPLOAD_ARTIFACTS", "SUCCEEDED")
        .stdout_lacks("Running command echo never");
    ran.agent_lines_adjacent(&[
        "Phase complete: POST_BUILD State: FAILED",
        "Phase context status code: COMMAND_EXECUTION_ERROR Message: Error while executing command: false. Reason: exit status 1",
        "Entering phase UPLOAD_ARTIFACTS",
    ]);
    assert_eq!(ran.zip_entries("artifacts.zip"), vec!["out.txt"]);
}

#[test]
fn b29_on_failure_continue_on_install_goes_on_and_the_build_fails() {
    let ran = Build::new(
        "version: 0.2\nphases:\n  install:\n    on-failure: CONTINUE\n    commands: [\"false\", \"echo skipped\"]\n  pre_build:\n    commands: [\"echo \\\"pre $CODEBUILD_BUILD_SUCCEEDING\\\" > pre.txt\", \"cat pre.txt\"]\nartifacts:\n  files: [pre.txt]\n",
    )
    .run();
    ran.code(1)
        .status("FAILED")
        .phase_is("INSTALL", "FAILED")
        .phase_is("PRE_BUILD", "SUCCEEDED")
        .phase_is("BUILD", "SUCCEEDED")
        .phase_is("UPLOAD_ARTIFACTS", "SUCCEEDED");
    assert_eq!(ran.output_lines(), vec!["pre 0"]);
    assert_eq!(ran.zip_entries("artifacts.zip"), vec!["pre.txt"]);
}

#[test]
fn b30_on_failure_abort_goes_straight_to_finalizing() {
    let ran = Build::new(
        "version: 0.2\nphases:\n  build:\n    on-failure: ABORT\n    commands: [\"echo b > b.txt\", \"false\"]\n    finally: [\"echo fin\"]\n  post_build:\n    commands: [\"echo post\"]\nartifacts:\n  files: [b.txt]\n",
    )
    .run();
    ran.code(1)
        .status("FAILED")
        .phase_absent("POST_BUILD")
        .no_leftovers();
    assert_eq!(ran.output_lines(), vec!["fin"]);
    ran.agent_lines_adjacent(&[
        "Phase complete: BUILD State: FAILED",
        "Phase context status code: COMMAND_EXECUTION_ERROR Message: Error while executing command: false. Reason: exit status 1",
        "Entering phase FINALIZING",
    ]);
    assert!(!ran.has_artifacts());
}

#[test]
fn b30_on_failure_abort_on_a_passing_phase_changes_nothing() {
    let ran = Build::new(
        "version: 0.2\nphases:\n  pre_build:\n    on-failure: ABORT\n    commands: [\"echo pre\"]\n  post_build:\n    commands: [\"echo post\"]\n",
    )
    .run();
    ran.code(0).status("SUCCEEDED");
    assert_eq!(ran.output_lines(), vec!["pre", "post"]);
}

#[test]
fn b32_build_succeeding_is_1_until_a_failure_then_0() {
    let ran = Build::new(
        r#"version: 0.2
phases:
  install:
    commands: ["echo install $CODEBUILD_BUILD_SUCCEEDING"]
  build:
    commands: ["echo build $CODEBUILD_BUILD_SUCCEEDING", "false"]
    finally: ["echo finally $CODEBUILD_BUILD_SUCCEEDING"]
  post_build:
    commands: ["echo post $CODEBUILD_BUILD_SUCCEEDING", "printenv CODEBUILD_BUILD_SUCCEEDING"]
"#,
    )
    .run();
    ran.code(1).status("FAILED");
    assert_eq!(
        ran.output_lines(),
        vec!["install 1", "build 1", "finally 0", "post 0", "0"]
    );
}

#[test]
fn b32_post_build_guard_after_failed_build_fails_post_build() {
    let ran = Build::new(
        "version: 0.2\nphases:\n  build:\n    commands: [\"false\"]\n  post_build:\n    commands: ['[ \"$CODEBUILD_BUILD_SUCCEEDING\" = 1 ] || exit 1', \"echo deploy\"]\n",
    )
    .run();
    ran.code(1)
        .phase_is("BUILD", "FAILED")
        .phase_is("POST_BUILD", "FAILED")
        .stdout_lacks("\ndeploy\n");
}

#[test]
fn b33_phase_table_and_verdict_use_codebuild_names_and_statuses() {
    let ran = Build::new(
        "version: 0.2\nphases:\n  build:\n    commands: [\"false\"]\nartifacts:\n  files: [buildspec.yml]\n",
    )
    .run();
    ran.code(1).status("FAILED");
    let phases: Vec<String> = ran
        .phase_table()
        .into_iter()
        .map(|(n, s)| format!("{n} {s}"))
        .collect();
    assert_eq!(
        phases,
        vec![
            "DOWNLOAD_SOURCE SUCCEEDED",
            "INSTALL SUCCEEDED",
            "PRE_BUILD SUCCEEDED",
            "BUILD FAILED",
            "POST_BUILD SUCCEEDED",
            "UPLOAD_ARTIFACTS SUCCEEDED",
            "FINALIZING SUCCEEDED",
        ]
    );
    let verdict = ran
        .stdout
        .lines()
        .rfind(|l| l.starts_with("Build "))
        .unwrap_or_default();
    let expected_prefix = format!("Build {}:", ran.build.project());
    assert!(
        verdict.starts_with(&expected_prefix) && verdict.ends_with(" (#1) FAILED"),
        "{verdict:?}"
    );
}
