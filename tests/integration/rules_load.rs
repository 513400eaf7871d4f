//! What the runner accepts, ignores or refuses before any command runs (B1–B7, B14–B16, B24,
//! B31), checked end to end: a refused buildspec fails `DOWNLOAD_SOURCE` (or `INSTALL`, for a
//! runtime the image lacks) and runs nothing; an accepted one runs. The parser's own unit tests
//! are in `src/buildspec/parse.rs`.

use crate::support::{Build, build_only};

/// Asserts the build was refused at load time with `message` in the `YAML_FILE_ERROR` context.
#[track_caller]
fn refused_with(ran: &crate::support::Ran, message: &str) {
    ran.code(1)
        .phase_is("DOWNLOAD_SOURCE", "FAILED")
        .stdout_lacks("Entering phase")
        .stdout_lacks("Running command")
        .stderr_has(message)
        .no_leftovers();
    let context = ran
        .agent_texts()
        .into_iter()
        .find_map(|t| t.strip_prefix("Phase context status code: YAML_FILE_ERROR Message: "))
        .unwrap_or_default()
        .to_owned();
    assert!(context.contains(message), "{context:?}");
}

#[test]
fn b1_buildspec_yml_at_the_source_root_is_the_default() {
    let ran = Build::new(&build_only(&["echo default"]))
        .file("ci/buildspec.yml", &build_only(&["echo other"]))
        .run();
    ran.code(0).status("SUCCEEDED");
    assert_eq!(ran.output_lines(), vec!["default"]);
    let source = std::fs::canonicalize(ran.build.source()).expect("canonical source");
    ran.agent_lines_in_order(&[&format!(
        "YAML location is {}",
        source.join("buildspec.yml").display()
    )]);
}

#[test]
fn b2_version_as_float_or_string_runs() {
    for version in ["0.2", "\"0.2\"", "'0.2'"] {
        let ran = Build::new(&format!(
            "version: {version}\nphases:\n  build:\n    commands: [\"echo v\"]\n"
        ))
        .run();
        ran.code(0).status("SUCCEEDED");
        assert_eq!(ran.output_lines(), vec!["v"], "version: {version}");
    }
}

#[test]
fn b3_command_that_parses_as_a_mapping_fails_before_any_phase() {
    let ran = Build::new(&build_only(&["echo ok", "echo Step 1: compile"])).run();
    refused_with(
        &ran,
        "Expected Commands[1] to be of string type: found subkeys instead at line 6",
    );
}

#[test]
fn b3_quoted_command_with_colon_space_runs() {
    let ran = Build::new(&build_only(&["'echo Step 1: compile'", "\"echo {a: b}\""])).run();
    ran.code(0).status("SUCCEEDED");
    assert_eq!(ran.output_lines(), vec!["Step 1: compile", "{a: b}"]);
}

#[test]
fn b4_flag_values_in_any_case_as_bool_or_string() {
    let ran = Build::new(
        r"version: 0.2
phases:
  build:
    commands: ['true']
artifacts:
  files: ['d/*']
  discard-paths: Yes
  secondary-artifacts:
    kept:
      files: ['d/*']
      discard-paths: 'FALSE'
    flat:
      files: ['d/*']
      discard-paths: True
    plain:
      files: ['d/*']
      discard-paths: no
",
    )
    .file("d/f.txt", "f")
    .run();
    ran.code(0).status("SUCCEEDED");
    assert_eq!(ran.zip_entries("artifacts.zip"), vec!["f.txt"]);
    assert_eq!(ran.zip_entries("flat.zip"), vec!["f.txt"]);
    assert_eq!(ran.zip_entries("kept.zip"), vec!["d/f.txt"]);
    assert_eq!(ran.zip_entries("plain.zip"), vec!["d/f.txt"]);
}

#[test]
fn b4_other_flag_values_are_refused() {
    let ran = Build::new(
        "version: 0.2\nphases:\n  build:\n    commands: ['true']\nartifacts:\n  files: ['*']\n  discard-paths: maybe\n",
    )
    .run();
    refused_with(&ran, "artifacts.discard-paths");
}

#[test]
fn b5_numbers_and_booleans_reach_the_environment_as_written() {
    let ran = Build::new(
        r#"version: 0.2
env:
  variables:
    PORT: 8080
    DEBUG: yes
    OFF: False
    RATIO: 1.50
    HEX: 0x1F
    BIG: 1e3
    QUOTED: "007"
phases:
  build:
    commands:
      - echo "$PORT $DEBUG $OFF $RATIO $HEX $BIG $QUOTED"
"#,
    )
    .run();
    ran.code(0).status("SUCCEEDED");
    assert_eq!(ran.output_lines(), vec!["8080 yes False 1.50 0x1F 1e3 007"]);
}

#[test]
fn b6_single_strings_are_one_element_lists() {
    let ran = Build::new(
        "version: 0.2\nphases:\n  build:\n    commands: echo one > out.txt\nartifacts:\n  files: out.txt\nreports:\n  unit:\n    files: out.txt\n",
    )
    .run();
    ran.code(0).status("SUCCEEDED");
    ran.agent_lines_in_order(&[" BUILD: 1 commands", "Running command echo one > out.txt"]);
    assert_eq!(ran.zip_entries("artifacts.zip"), vec!["out.txt"]);
    assert_eq!(ran.zip_entries("reports/unit.zip"), vec!["out.txt"]);
}

#[test]
fn b7_unknown_keys_warn_with_their_location_and_the_build_runs() {
    let ran = Build::new(
        "version: 0.2\nunknown-top: 1\nphases:\n  build:\n    typo-key: 1\n    commands: [\"echo ran\"]\n",
    )
    .run();
    ran.code(0).status("SUCCEEDED");
    assert_eq!(ran.output_lines(), vec!["ran"]);
    ran.stderr_has("buildspec.yml:2:1: warning[B7]: unknown key `unknown-top` is ignored")
        .stderr_has(
            "buildspec.yml:5:5: warning[B7]: unknown key `phases.build.typo-key` is ignored",
        );
}

#[test]
fn b7_unknown_phase_name_is_refused() {
    let ran = Build::new(
        "version: 0.2\nphases:\n  build:\n    commands: [\"echo ran\"]\n  deploy:\n    commands: [\"echo deploy\"]\n",
    )
    .run();
    refused_with(&ran, "unknown phase `deploy`");
    ran.stderr_has("buildspec.yml:5:3: phases.deploy:");
}

// B14, B15, B16: keys that are parsed but ignored, or refused.

#[test]
fn b14_b15_git_credential_helper_and_proxy_parse_and_the_build_runs() {
    let ran = Build::new(
        "version: 0.2\nenv:\n  git-credential-helper: yes\nproxy:\n  upload-artifacts: yes\n  logs: no\nphases:\n  build:\n    commands: [\"echo ok\"]\n",
    )
    .run();
    ran.code(0).status("SUCCEEDED");
    assert_eq!(ran.output_lines(), vec!["ok"]);
    assert!(
        !ran.stderr.contains("warning"),
        "known keys must not warn: {}",
        ran.stderr
    );
}

#[test]
fn b16_batch_is_refused_and_nothing_runs() {
    let ran = Build::new(
        "version: 0.2\nbatch:\n  fast-fail: false\n  build-list:\n    - identifier: one\nphases:\n  build:\n    commands: [\"echo ran\"]\n",
    )
    .run();
    ran.code(1)
        .phase_is("DOWNLOAD_SOURCE", "FAILED")
        .stdout_has("YAML_FILE_ERROR")
        .stdout_has("batch builds are not supported")
        .stdout_lacks("Entering phase")
        .stderr_has("batch builds are not supported")
        .no_leftovers();
}

// B24: runtime-versions.

#[test]
fn b24_runtime_the_image_has_is_accepted() {
    let ran = Build::new(
        "version: 0.2\nphases:\n  install:\n    runtime-versions:\n      python: 3.11\n    commands: [\"python3 --version\"]\n",
    )
    .run();
    ran.code(0)
        .status("SUCCEEDED")
        .phase_is("INSTALL", "SUCCEEDED");
    let out = ran.output_lines();
    assert!(
        out.len() == 1 && out[0].starts_with("Python 3.11."),
        "{out:?}"
    );
    ran.stdout_lacks("Skipping install of runtimes");
}

#[test]
fn b24_missing_runtime_version_fails_install_clearly() {
    let ran = Build::new(
        "version: 0.2\nphases:\n  install:\n    runtime-versions:\n      python: 3.12\n    commands: [\"echo install-ran\"]\n  build:\n    commands: [\"echo build-ran\"]\n",
    )
    .run();
    ran.code(1)
        .status("FAILED")
        .phase_is("INSTALL", "FAILED")
        .phase_absent("BUILD")
        .no_leftovers();
    ran.agent_lines_adjacent(&[
        "Entering phase INSTALL",
        "Phase complete: INSTALL State: FAILED",
        "Phase context status code: YAML_FILE_ERROR Message: Unknown runtime version named '3.12' of python. This build image has the following versions: 3.11",
        "Entering phase FINALIZING",
    ]);
    assert!(ran.output_lines().is_empty(), "{:?}", ran.output_lines());
}

#[test]
fn b24_unknown_runtime_fails_install_naming_what_the_image_has() {
    let ran = Build::new(
        "version: 0.2\nphases:\n  install:\n    runtime-versions:\n      nodejs: 18\n    commands: [\"echo install-ran\"]\n",
    )
    .run();
    ran.code(1).status("FAILED").phase_is("INSTALL", "FAILED");
    ran.agent_lines_in_order(&[
        "Phase context status code: YAML_FILE_ERROR Message: Unknown runtime named 'nodejs'. This build image has the following runtimes: python=3.11",
    ]);
}

#[test]
fn b24_image_without_runtimes_label_warns_and_carries_on() {
    let ran = Build::new(
        "version: 0.2\nphases:\n  install:\n    runtime-versions:\n      python: 3.12\n    commands: [\"echo install-ran\"]\n",
    )
    .image("runner/base:bookworm")
    .run();
    ran.code(0)
        .status("SUCCEEDED")
        .phase_is("INSTALL", "SUCCEEDED");
    ran.agent_lines_in_order(&[
        "Skipping install of runtimes. Runtime version selection is not supported by this build image",
        "Entering phase INSTALL",
        "Running command echo install-ran",
    ]);
    assert_eq!(ran.output_lines(), vec!["install-ran"]);
}

#[test]
fn b31_retry_is_refused_before_anything_runs() {
    let ran = Build::new(
        "version: 0.2\nphases:\n  build:\n    on-failure: RETRY-3\n    commands: [\"echo ran\"]\n",
    )
    .run();
    refused_with(&ran, "on-failure `RETRY-3` is not supported");
    ran.stderr_has("buildspec.yml:4:17: phases.build.on-failure:");
}
