//! Where a build's environment comes from on a real container: `env` in the buildspec (B10–B13),
//! the Section B `CODEBUILD_*` variables, precedence (B48–B50), and what a build may not see or
//! leak (masking, privileges, the Docker socket, the CA bundle).

use std::time::{SystemTime, UNIX_EPOCH};

use crate::support::{Build, build_only};

fn now_millis() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis()
}

/// Whether `text` is shaped like a uuid: 8-4-4-4-12 hex digits.
fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Whether `dir` is `/codebuild/output/src<digits>/src`.
fn is_src_dir(dir: &str) -> bool {
    dir.strip_prefix("/codebuild/output/src")
        .and_then(|rest| rest.strip_suffix("/src"))
        .is_some_and(|digits| !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()))
}

// B10: env.variables.

#[test]
fn b10_variables_replace_image_env_and_are_not_expanded() {
    let ran = Build::new(
        r#"version: 0.2
env:
  variables:
    RUNNER_IMAGE_MARKER: from-buildspec
    P: $PATH:/x
    Q: "$(echo hi) `echo there` ${HOME}"
    PORT: 8080
    DEBUG: yes
phases:
  install:
    commands:
      - printf 'M=%s\n' "$RUNNER_IMAGE_MARKER"
  build:
    commands:
      - printf 'P=%s\nQ=%s\nPORT=%s\nDEBUG=%s\n' "$P" "$Q" "$PORT" "$DEBUG"
"#,
    )
    .run();
    ran.code(0).status("SUCCEEDED");
    assert_eq!(
        ran.output_lines(),
        vec![
            "M=from-buildspec",
            "P=$PATH:/x",
            "Q=$(echo hi) `echo there` ${HOME}",
            "PORT=8080",
            "DEBUG=yes",
        ]
    );
}

// B11, B12: refused before anything runs.

#[test]
fn b11_codebuild_prefix_in_env_override_is_refused_and_nothing_runs() {
    let ran = Build::new(&build_only(&["echo ran"]))
        .env("CODEBUILD_FOO", "x")
        .run();
    ran.code(1).status("FAILED").no_leftovers();
    ran.agent_lines_in_order(&[
        "Phase complete: DOWNLOAD_SOURCE State: FAILED",
        "Phase context status code: CLIENT_ERROR Message: No user environment variables can start with CODEBUILD_: CODEBUILD_FOO",
    ])
    .stdout_lacks("Entering phase INSTALL")
    .stdout_lacks("Running command");
    assert!(ran.output_lines().is_empty(), "{:?}", ran.output_lines());
}

#[test]
fn b11_codebuild_prefix_in_env_file_is_refused() {
    let build = Build::new(&build_only(&["echo ran"]));
    let env_file = build.aside_file("project.env", "OK=1\nCODEBUILD_BAR=y\n");
    let ran = build
        .args(["--env-file".to_owned(), env_file.display().to_string()])
        .run();
    ran.code(1)
        .status("FAILED")
        .phase_is("DOWNLOAD_SOURCE", "FAILED");
    ran.agent_lines_in_order(&[
        "Phase context status code: CLIENT_ERROR Message: No user environment variables can start with CODEBUILD_: CODEBUILD_BAR",
    ])
    .stdout_lacks("Entering phase INSTALL");
    assert!(ran.output_lines().is_empty(), "{:?}", ran.output_lines());
}

#[test]
fn b11_codebuild_prefix_in_buildspec_is_a_yaml_file_error_naming_it() {
    let ran = Build::new(
        "version: 0.2\nenv:\n  variables:\n    CODEBUILD_FOO: x\nphases:\n  build:\n    commands: [\"echo ran\"]\n",
    )
    .run();
    ran.code(1)
        .phase_is("DOWNLOAD_SOURCE", "FAILED")
        .stdout_lacks("Entering phase")
        .stderr_has("buildspec.yml:4:5: env.variables.CODEBUILD_FOO:")
        .stderr_has("`CODEBUILD_FOO`");
    assert!(ran.output_lines().is_empty());
}

#[test]
fn b12_parameter_store_without_aws_is_refused_naming_the_variable() {
    let ran = Build::new(
        "version: 0.2\nenv:\n  parameter-store:\n    DB_PASS: /prod/db/password\nphases:\n  install:\n    commands: [\"echo ran\"]\n",
    )
    .host_env("AWS_REGION", "")
    .host_env("AWS_DEFAULT_REGION", "")
    .host_env("AWS_CONFIG_FILE", "/nonexistent")
    .run();
    ran.code(1).status("FAILED").no_leftovers();
    let context = ran
        .agent_texts()
        .into_iter()
        .find(|text| text.starts_with("Phase context status code: CLIENT_ERROR Message: "))
        .unwrap_or_default()
        .to_owned();
    assert!(context.contains("DB_PASS"), "{context:?}");
    ran.stdout_lacks("Entering phase INSTALL")
        .stdout_lacks("Running command");
    assert_eq!(
        ran.phase_table(),
        vec![
            ("DOWNLOAD_SOURCE".to_owned(), "FAILED".to_owned()),
            ("FINALIZING".to_owned(), "SUCCEEDED".to_owned()),
        ]
    );
}

#[test]
fn b12_secrets_manager_without_aws_is_refused_naming_the_variable() {
    let ran = Build::new(
        "version: 0.2\nenv:\n  secrets-manager:\n    API_TOKEN: prod/api:token\nphases:\n  build:\n    commands: [\"echo ran\"]\n",
    )
    .host_env("AWS_REGION", "")
    .host_env("AWS_DEFAULT_REGION", "")
    .host_env("AWS_CONFIG_FILE", "/nonexistent")
    .run();
    ran.code(1)
        .status("FAILED")
        .phase_is("DOWNLOAD_SOURCE", "FAILED");
    assert!(
        ran.agent_texts()
            .iter()
            .any(|t| t.starts_with("Phase context status code: CLIENT_ERROR")
                && t.contains("API_TOKEN")),
        "{}",
        ran.stdout
    );
    ran.stdout_lacks("Entering phase BUILD");
}

// B13: exported variables.

#[test]
fn b13_exported_variables_take_their_value_at_the_end_of_post_build() {
    let ran = Build::new(
        r#"version: 0.2
env:
  variables:
    FROM_SPEC: spec-value
  exported-variables: [VER, EARLY, NEVER_SET, FROM_SPEC, RUNNER_IMAGE_MARKER]
phases:
  install:
    commands: ["EARLY=install"]
  build:
    commands: ["VER=0.0.1"]
  post_build:
    commands: ["VER=1.2.3"]
"#,
    )
    .run();
    ran.code(0).status("SUCCEEDED").no_leftovers();
    let exported = ran.exported();
    let pairs: Vec<(&str, &str)> = exported
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        pairs,
        vec![
            ("EARLY", "install"),
            ("FROM_SPEC", "spec-value"),
            ("NEVER_SET", ""),
            ("RUNNER_IMAGE_MARKER", "img"),
            ("VER", "1.2.3"),
        ]
    );
    ran.lines_in_order(&["exported NEVER_SET=", "exported VER=1.2.3"]);
}

#[test]
fn b13_exported_variable_set_after_a_failed_build_in_post_build() {
    let ran = Build::new(
        "version: 0.2\nenv:\n  exported-variables: [RESULT]\nphases:\n  build:\n    commands: [\"RESULT=building\", \"false\"]\n  post_build:\n    commands: [\"RESULT=failed-$CODEBUILD_BUILD_SUCCEEDING\"]\n",
    )
    .run();
    ran.code(1).status("FAILED");
    assert_eq!(
        ran.exported().get("RESULT").map(String::as_str),
        Some("failed-0")
    );
}

// Section B.

#[test]
fn section_b_src_dir_build_id_arn_and_start_time() {
    let before = now_millis();
    let ran = Build::new(&build_only(&["env"]))
        .host_env("RUNNER_REGION", "eu-west-3")
        .host_env("RUNNER_ACCOUNT", "123456789012")
        .run();
    let after = now_millis();
    ran.code(0).status("SUCCEEDED").no_leftovers();

    let src_dir = ran.value("CODEBUILD_SRC_DIR");
    assert!(is_src_dir(src_dir), "{src_dir:?}");

    let build_id = ran.value("CODEBUILD_BUILD_ID");
    let uuid = build_id
        .strip_prefix(&format!("{}:", ran.build.project()))
        .unwrap_or_default();
    assert!(is_uuid(uuid), "{build_id:?}");
    ran.stdout_has(&format!("\nBuild {build_id} (#1) SUCCEEDED\n"));
    assert_eq!(
        ran.value("CODEBUILD_BUILD_ARN"),
        format!("arn:aws:codebuild:eu-west-3:123456789012:build/{build_id}")
    );
    assert_eq!(ran.value("AWS_REGION"), "eu-west-3");
    assert_eq!(ran.value("AWS_DEFAULT_REGION"), "eu-west-3");

    let start: u128 = ran
        .value("CODEBUILD_START_TIME")
        .parse()
        .expect("epoch milliseconds");
    assert!(
        (before..=after).contains(&start),
        "{start} not within {before}..={after}"
    );
}

#[test]
fn section_b_fixed_and_descriptive_variables() {
    let ran = Build::new(&build_only(&["env"])).run();
    ran.code(0).status("SUCCEEDED");
    assert_eq!(ran.value("CODEBUILD_CI"), "true");
    assert_eq!(ran.value("HOME"), "/root");
    assert_eq!(ran.value("CODEBUILD_BUILD_SUCCEEDING"), "1");
    assert_eq!(ran.value("CODEBUILD_BUILD_IMAGE"), "runner/test");
    assert_eq!(ran.value("CODEBUILD_BUILD_NUMBER"), "1");
    assert!(!ran.value("CODEBUILD_INITIATOR").is_empty());
    assert!(!ran.value("AWS_REGION").is_empty());
    assert_eq!(ran.value("AWS_REGION"), ran.value("AWS_DEFAULT_REGION"));
    // Never set: only the local agent sets it (Section B).
    assert_eq!(ran.output_value("CODEBUILD_LOCAL_BUILD"), None);
    // Not a git repository: no resolvable revision.
    assert_eq!(ran.output_value("CODEBUILD_RESOLVED_SOURCE_VERSION"), None);
}

#[test]
fn section_b_home_is_root_even_for_a_run_as_user() {
    let ran = Build::new(
        "version: 0.2\nrun-as: nobody\nphases:\n  build:\n    commands: [\"echo HOME=$HOME\"]\n",
    )
    .run();
    ran.code(0).status("SUCCEEDED");
    assert_eq!(ran.output_lines(), vec!["HOME=/root"]);
}

#[test]
fn section_b_build_number_increases_per_project() {
    let spec = build_only(&["echo \"n=$CODEBUILD_BUILD_NUMBER\""]);
    let first = Build::new(&spec).run();
    first.code(0);
    assert_eq!(first.output_lines(), vec!["n=1"]);
    first.stdout_has(" (#1) SUCCEEDED");

    let second = Build::new(&spec).same_project_as(&first.build).run();
    second.code(0);
    assert_eq!(second.output_lines(), vec!["n=2"]);
    second.stdout_has(" (#2) SUCCEEDED");

    // A failed build counts too.
    let third = Build::new(&build_only(&[
        "echo \"n=$CODEBUILD_BUILD_NUMBER\"",
        "false",
    ]))
    .same_project_as(&first.build)
    .run();
    third.code(1);
    assert_eq!(third.output_lines(), vec!["n=3"]);

    let other = Build::new(&spec).run();
    assert_eq!(other.output_lines(), vec!["n=1"]);
}

#[test]
fn section_b_resolved_source_version_is_the_git_head() {
    let build = Build::new(&build_only(&[
        "echo \"resolved=$CODEBUILD_RESOLVED_SOURCE_VERSION\"",
        "echo \"source=$CODEBUILD_SOURCE_VERSION\"",
    ]));
    let head = build.git_commit();
    assert_eq!(head.len(), 40);
    let ran = build.run();
    ran.code(0).status("SUCCEEDED");
    assert_eq!(
        ran.output_lines(),
        vec![format!("resolved={head}"), format!("source={head}")]
    );
}

#[test]
fn section_b_source_version_is_what_was_asked_for() {
    let build = Build::new(&build_only(&[
        "echo \"resolved=$CODEBUILD_RESOLVED_SOURCE_VERSION\"",
        "echo \"source=$CODEBUILD_SOURCE_VERSION\"",
    ]));
    let head = build.git_commit();
    let ran = build.args(["--source-version", "main"]).run();
    ran.code(0);
    assert_eq!(
        ran.output_lines(),
        vec![format!("resolved={head}"), "source=main".to_owned()]
    );
}

#[test]
fn section_b_secondary_source_dir() {
    let build = Build::new(&build_only(&[
        "echo \"$CODEBUILD_SRC_DIR_lib\"",
        "cat \"$CODEBUILD_SRC_DIR_lib/hello.txt\"",
    ]));
    let lib = build.aside_file("hello.txt", "from-the-secondary-source\n");
    let lib_dir = lib.parent().expect("parent").display().to_string();
    let ran = build
        .args(["--secondary-source".to_owned(), format!("lib={lib_dir}")])
        .run();
    ran.code(0).status("SUCCEEDED").no_leftovers();
    let out = ran.output_lines();
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(is_src_dir(out[0]), "{out:?}");
    assert_eq!(out[1], "from-the-secondary-source");
    let primary = ran
        .agent_texts()
        .into_iter()
        .find_map(|t| t.strip_prefix("CODEBUILD_SRC_DIR="))
        .expect("primary source line")
        .to_owned();
    assert_ne!(out[0], primary);
}

// B48–B50: precedence.

#[test]
fn b48_override_beats_env_file_beats_buildspec_beats_image() {
    let spec = "version: 0.2\nenv:\n  variables:\n    A: spec\n    B: spec\n    C: spec\nphases:\n  build:\n    commands:\n      - echo \"A=$A B=$B C=$C M=$RUNNER_IMAGE_MARKER\"\n";
    let build = Build::new(spec);
    let env_file = build.aside_file("project.env", "A=project\nB=project\n");
    let ran = build
        .args(["--env-file".to_owned(), env_file.display().to_string()])
        .env("A", "override")
        .run();
    ran.code(0).status("SUCCEEDED");
    assert_eq!(
        ran.output_lines(),
        vec!["A=override B=project C=spec M=img"]
    );
}

#[test]
fn b48_assignment_in_a_command_beats_every_layer() {
    let build = Build::new(
        "version: 0.2\nenv:\n  variables:\n    X: spec\nphases:\n  pre_build:\n    commands: [\"X=command; RUNNER_IMAGE_MARKER=command\"]\n  build:\n    commands: [\"echo X=$X M=$RUNNER_IMAGE_MARKER\"]\n",
    );
    let env_file = build.aside_file("project.env", "X=project\n");
    let ran = build
        .args(["--env-file".to_owned(), env_file.display().to_string()])
        .env("X", "override")
        .run();
    ran.code(0).status("SUCCEEDED");
    assert_eq!(ran.output_lines(), vec!["X=command M=command"]);
}

#[test]
fn b49_pipeline_variable_syntax_stays_literal_outside_a_pipeline() {
    let build = Build::new(&build_only(&["printf 'P=%s\\nO=%s\\n' \"$P\" \"$O\""]));
    let env_file = build.aside_file("project.env", "P=#{codepipeline.PipelineExecutionId}\n");
    let ran = build
        .args(["--env-file".to_owned(), env_file.display().to_string()])
        .env("O", "#{BuildVars.VER}")
        .run();
    ran.code(0).status("SUCCEEDED");
    assert_eq!(
        ran.output_lines(),
        vec![
            "P=#{codepipeline.PipelineExecutionId}",
            "O=#{BuildVars.VER}"
        ]
    );
}

#[test]
fn b50_same_name_in_two_buildspec_maps_is_refused() {
    let ran = Build::new(
        "version: 0.2\nenv:\n  variables:\n    X: a\n  parameter-store:\n    X: /p/x\nphases:\n  build:\n    commands: [\"echo ran\"]\n",
    )
    .run();
    ran.code(1)
        .phase_is("DOWNLOAD_SOURCE", "FAILED")
        .stdout_has("YAML_FILE_ERROR")
        .stdout_lacks("Entering phase")
        .stderr_has("buildspec.yml:6:5: env.parameter-store.X:")
        .stderr_has("env.variables and env.parameter-store")
        .no_leftovers();
}

// B12 masking and container security.

#[test]
fn security_secret_env_is_masked_in_output_and_running_command_lines() {
    let ran = Build::new(&build_only(&[
        "echo \"token=$TOKEN\"",
        "echo s3cr3t-value-42 twice s3cr3t-value-42",
        "printf '%s\\n' \"$TOKEN\" | cat",
    ]))
    .args(["--secret-env", "TOKEN=s3cr3t-value-42"])
    .run();
    ran.code(0).status("SUCCEEDED").no_leftovers();
    assert_eq!(
        ran.output_lines(),
        vec!["token=***", "*** twice ***", "***"]
    );
    ran.agent_lines_in_order(&["Running command echo *** twice ***"])
        .stdout_lacks("s3cr3t-value-42");
}

#[test]
fn security_secret_env_from_the_host_environment_is_masked() {
    let ran = Build::new(&build_only(&["echo \"pw=$DB_PASSWORD\""]))
        .host_env("DB_PASSWORD", "hunter2-from-host")
        .args(["--secret-env", "DB_PASSWORD"])
        .run();
    ran.code(0).status("SUCCEEDED");
    assert_eq!(ran.output_lines(), vec!["pw=***"]);
    ran.stdout_lacks("hunter2-from-host");
}

#[test]
fn security_aws_access_key_ids_and_secret_keys_are_masked() {
    let ran = Build::new(&build_only(&[
        "echo key=AKIAIOSFODNN7EXAMPLE",
        "echo \"$AWS_ACCESS_KEY_ID\"",
        "echo \"secret=$AWS_SECRET_ACCESS_KEY\"",
    ]))
    .env("AWS_ACCESS_KEY_ID", "ASIAZZZZZZZZZZZZZZZZ")
    .env(
        "AWS_SECRET_ACCESS_KEY",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    )
    .run();
    ran.code(0).status("SUCCEEDED");
    assert_eq!(ran.output_lines(), vec!["key=***", "***", "secret=***"]);
    ran.agent_lines_in_order(&["Running command echo key=***"])
        .stdout_lacks("AKIAIOSFODNN7EXAMPLE")
        .stdout_lacks("ASIAZZZZZZZZZZZZZZZZ")
        .stdout_lacks("bPxRfiCYEXAMPLEKEY");
}

#[test]
fn security_container_is_not_privileged_and_has_no_docker_socket() {
    let ran = Build::new(&build_only(&[
        "grep '^CapEff:' /proc/self/status",
        "test -e /var/run/docker.sock && echo socket=present || echo socket=absent",
        "mount -t tmpfs none /mnt 2>/dev/null && echo mount=allowed || echo mount=refused",
    ]))
    .run();
    ran.code(0).status("SUCCEEDED");
    let caps = ran
        .output_lines()
        .first()
        .and_then(|l| l.strip_prefix("CapEff:"))
        .map(str::trim)
        .unwrap_or_default()
        .to_owned();
    assert_eq!(caps.len(), 16, "{:?}", ran.output_lines());
    assert!(
        caps != "000001ffffffffff" && caps != "0000003fffffffff" && caps != "000000ffffffffff",
        "the build container has every capability: {caps}"
    );
    // CAP_SYS_ADMIN is bit 21.
    let bits = u64::from_str_radix(&caps, 16).expect("hex");
    assert_eq!(bits & (1 << 21), 0, "CAP_SYS_ADMIN granted: {caps}");
    assert_eq!(ran.output_value("socket"), Some("absent"));
    assert_eq!(ran.output_value("mount"), Some("refused"));
}

#[test]
fn security_docker_socket_only_with_the_flag() {
    if !std::path::Path::new("/var/run/docker.sock").exists() {
        // Docker is reached some other way here; nothing to mount.
        return;
    }
    let ran = Build::new(&build_only(&[
        "test -S /var/run/docker.sock && echo socket=present || echo socket=absent",
    ]))
    .args(["--docker-socket"])
    .run();
    ran.code(0).status("SUCCEEDED");
    assert_eq!(ran.output_lines(), vec!["socket=present"]);
}

#[test]
fn security_ca_bundle_is_installed_and_clients_point_at_it() {
    let pem = "-----BEGIN CERTIFICATE-----\nTESTONLY\n-----END CERTIFICATE-----\n";
    let build = Build::new(&build_only(&[
        "echo \"SSL_CERT_FILE=$SSL_CERT_FILE\"",
        "cat \"$SSL_CERT_FILE\"",
        "env | grep -E '^(PIP_CERT|REQUESTS_CA_BUNDLE|NODE_EXTRA_CA_CERTS|AWS_CA_BUNDLE|GIT_SSL_CAINFO)=' | sort",
    ]))
    .with_ca_bundle();
    let bundle = build.aside_file("corp-ca.pem", pem);
    let ran = build
        .args(["--ca-bundle".to_owned(), bundle.display().to_string()])
        .run();
    ran.code(0).status("SUCCEEDED").no_leftovers();
    let path = ran.value("SSL_CERT_FILE");
    assert!(path.starts_with('/'), "{path:?}");
    assert_eq!(
        ran.output_lines(),
        vec![
            format!("SSL_CERT_FILE={path}"),
            "-----BEGIN CERTIFICATE-----".to_owned(),
            "TESTONLY".to_owned(),
            "-----END CERTIFICATE-----".to_owned(),
            format!("AWS_CA_BUNDLE={path}"),
            format!("GIT_SSL_CAINFO={path}"),
            format!("NODE_EXTRA_CA_CERTS={path}"),
            format!("PIP_CERT={path}"),
            format!("REQUESTS_CA_BUNDLE={path}"),
        ]
    );
}

#[test]
fn security_no_ca_bundle_sets_no_ca_variables() {
    let ran = Build::new(&build_only(&[
        "echo \"ssl=[${SSL_CERT_FILE-unset}] pip=[${PIP_CERT-unset}]\"",
    ]))
    .run();
    ran.code(0).status("SUCCEEDED");
    assert_eq!(ran.output_lines(), vec!["ssl=[unset] pip=[unset]"]);
}
