//! Section A rules about artifacts, reports and the cache (B36–B47) on a real container, named
//! `b<N>_<what>`. ZIP contents are checked entry by entry.

use crate::support::{Build, Ran};

/// A buildspec: `build` runs `commands`, then the `artifacts` block (indented YAML body).
fn with_artifacts(commands: &[&str], artifacts: &str) -> String {
    let mut text = String::from("version: 0.2\nphases:\n  build:\n    commands:\n");
    for command in commands {
        text.push_str("      - ");
        text.push_str(command);
        text.push('\n');
    }
    text.push_str("artifacts:\n");
    text.push_str(artifacts);
    text
}

#[track_caller]
fn upload_failed_with(ran: &Ran, message: &str) {
    ran.code(1)
        .status("FAILED")
        .phase_is("UPLOAD_ARTIFACTS", "FAILED")
        .agent_lines_adjacent(&[
            "Phase complete: UPLOAD_ARTIFACTS State: FAILED",
            &format!("Phase context status code: CLIENT_ERROR Message: {message}"),
        ]);
    assert!(
        !ran.stdout.lines().any(|line| line.starts_with("artifact ")),
        "a failed upload reports no artifact"
    );
}

// B36, B37: where paths resolve, and an empty match.

#[test]
fn b36_paths_resolve_against_src_dir_not_the_last_cd() {
    let ran = Build::new(&with_artifacts(
        &["mkdir -p out && cd out && echo x > made.txt"],
        "  files: [made.txt]\n",
    ))
    .run();
    upload_failed_with(&ran, "no matching artifact paths found");
    assert!(!ran.has_artifacts());
    ran.no_leftovers();

    let ran = Build::new(&with_artifacts(
        &["mkdir -p out && cd out && echo x > made.txt"],
        "  files: [out/made.txt]\n",
    ))
    .run();
    ran.code(0).status("SUCCEEDED");
    assert_eq!(ran.zip_entries("artifacts.zip"), vec!["out/made.txt"]);
}

#[test]
fn b36_paths_above_the_source_directory_are_refused() {
    let ran = Build::new(&with_artifacts(
        &["mkdir -p sub && cd sub && echo x > ../../outside.txt"],
        "  files: ['sub/../../outside.txt']\n",
    ))
    .run();
    upload_failed_with(
        &ran,
        "artifact path sub/../../outside.txt escapes the source directory",
    );
    // A `..` that stays inside is folded away.
    let ran = Build::new(&with_artifacts(
        &["echo t > top.txt"],
        "  files: ['sub/../top.txt']\n",
    ))
    .run();
    ran.code(0).status("SUCCEEDED");
    assert_eq!(ran.zip_entries("artifacts.zip"), vec!["top.txt"]);
}

#[test]
fn b36_symlink_leading_outside_is_skipped_as_an_invalid_path() {
    let ran = Build::new(&with_artifacts(
        &["echo ok > ok.txt && ln -s /etc/passwd leak.txt"],
        "  files: ['*.txt']\n",
    ))
    .run();
    ran.code(0).status("SUCCEEDED");
    ran.agent_lines_in_order(&["Skipping invalid file path leak.txt", "Found 1 file(s)"]);
    assert_eq!(ran.zip_entries("artifacts.zip"), vec!["ok.txt"]);
}

#[test]
fn b37_no_file_at_all_fails_upload_and_the_build() {
    let ran = Build::new(&with_artifacts(
        &["mkdir -p empty/dir"],
        "  files:\n    - missing.txt\n    - 'empty/**/*'\n",
    ))
    .run();
    upload_failed_with(&ran, "no matching artifact paths found");
    assert!(!ran.has_artifacts());
    ran.phase_is("BUILD", "SUCCEEDED").no_leftovers();
}

#[test]
fn b37_one_matching_pattern_is_enough() {
    let ran = Build::new(&with_artifacts(
        &["echo x > there.txt"],
        "  files: [there.txt, missing.txt]\n",
    ))
    .run();
    ran.code(0).status("SUCCEEDED");
    assert_eq!(ran.zip_entries("artifacts.zip"), vec!["there.txt"]);
}

// B38: pattern meanings.

fn tree_build(artifacts: &str) -> Ran {
    Build::new(&with_artifacts(&["mkdir -p dir/empty"], artifacts))
        .file("target/app.jar", "jar")
        .file("target/other.jar", "other")
        .file("dir/a.txt", "a")
        .file("dir/.dot", "dot")
        .file("dir/sub/b.txt", "b")
        .file("dir/sub/deeper/c.txt", "c")
        .file(".hidden/h.txt", "h")
        .run()
}

#[test]
fn b38_plain_path_is_that_one_file() {
    let ran = tree_build("  files: [target/app.jar]\n");
    ran.code(0).status("SUCCEEDED");
    assert_eq!(ran.zip_entries("artifacts.zip"), vec!["target/app.jar"]);
    assert_eq!(ran.zip_text("artifacts.zip", "target/app.jar"), "jar");
}

#[test]
fn b38_dir_star_is_the_files_directly_inside() {
    let ran = tree_build("  files: ['dir/*']\n");
    ran.code(0).status("SUCCEEDED");
    assert_eq!(
        ran.zip_entries("artifacts.zip"),
        vec!["dir/.dot", "dir/a.txt"]
    );
}

#[test]
fn b38_dir_double_star_is_every_file_at_any_depth() {
    let ran = tree_build("  files: ['dir/**/*']\n");
    ran.code(0).status("SUCCEEDED");
    assert_eq!(
        ran.zip_entries("artifacts.zip"),
        vec![
            "dir/.dot",
            "dir/a.txt",
            "dir/sub/b.txt",
            "dir/sub/deeper/c.txt"
        ]
    );
}

#[test]
fn b38_double_star_is_every_file_with_dotfiles_and_no_directories() {
    let ran = tree_build("  files: ['**/*']\n");
    ran.code(0).status("SUCCEEDED");
    assert_eq!(
        ran.zip_entries("artifacts.zip"),
        vec![
            ".hidden/h.txt",
            "buildspec.yml",
            "dir/.dot",
            "dir/a.txt",
            "dir/sub/b.txt",
            "dir/sub/deeper/c.txt",
            "target/app.jar",
            "target/other.jar",
        ]
    );
}

// B39: base-directory.

#[test]
fn b39_base_directory_glob_strips_each_matched_base() {
    let ran = Build::new(&with_artifacts(
        &["true"],
        "  base-directory: 'my-build*'\n  files: ['**/*']\n",
    ))
    .file("my-build-1/a.txt", "a")
    .file("my-build-2/nested/b.txt", "b")
    .file("other/c.txt", "c")
    .run();
    ran.code(0).status("SUCCEEDED");
    assert_eq!(
        ran.zip_entries("artifacts.zip"),
        vec!["a.txt", "nested/b.txt"]
    );
}

#[test]
fn b39_base_directory_absolute_with_codebuild_src_dir() {
    let ran = Build::new(&with_artifacts(
        &["mkdir -p out/x && echo 1 > out/x/one.txt"],
        "  base-directory: $CODEBUILD_SRC_DIR/out\n  files: ['**/*']\n",
    ))
    .run();
    ran.code(0).status("SUCCEEDED");
    assert_eq!(ran.zip_entries("artifacts.zip"), vec!["x/one.txt"]);
    let expanded = ran
        .agent_texts()
        .into_iter()
        .find_map(|t| t.strip_prefix("Expanding base directory path: "))
        .unwrap_or_default()
        .to_owned();
    assert!(
        expanded.starts_with("/codebuild/output/src") && expanded.ends_with("/src/out"),
        "{expanded:?}"
    );
}

#[test]
fn b39_base_directory_variable_set_during_the_build() {
    let ran = Build::new(&with_artifacts(
        &["OUT_DIR=dist", "mkdir -p dist && echo d > dist/d.txt"],
        "  base-directory: $OUT_DIR\n  files: ['*']\n",
    ))
    .run();
    ran.code(0).status("SUCCEEDED");
    ran.agent_lines_in_order(&["Expanding base directory path: dist"]);
    assert_eq!(ran.zip_entries("artifacts.zip"), vec!["d.txt"]);
}

#[test]
fn b39_base_directory_of_a_secondary_source() {
    let build = Build::new(&with_artifacts(
        &["true"],
        "  base-directory: $CODEBUILD_SRC_DIR_source2\n  files: ['**/*']\n",
    ));
    let file = build.aside_file("from-source2.txt", "two");
    let dir = file.parent().expect("parent").display().to_string();
    let ran = build
        .args(["--secondary-source".to_owned(), format!("source2={dir}")])
        .run();
    ran.code(0).status("SUCCEEDED").no_leftovers();
    assert_eq!(ran.zip_entries("artifacts.zip"), vec!["from-source2.txt"]);
    assert_eq!(ran.zip_text("artifacts.zip", "from-source2.txt"), "two");
}

#[test]
fn b39_base_directory_that_matches_nothing_fails() {
    let ran = Build::new(&with_artifacts(
        &["true"],
        "  base-directory: nowhere\n  files: ['**/*']\n",
    ))
    .run();
    upload_failed_with(&ran, "no matching base directory path found for nowhere");
}

// B40, B41: discard-paths and exclude-paths.

#[test]
fn b40_discard_paths_flattens() {
    let ran = Build::new(&with_artifacts(
        &["true"],
        "  files: ['a/**/*', b/two.txt]\n  discard-paths: yes\n",
    ))
    .file("a/deep/one.txt", "1")
    .file("b/two.txt", "2")
    .run();
    ran.code(0).status("SUCCEEDED");
    assert_eq!(ran.zip_entries("artifacts.zip"), vec!["one.txt", "two.txt"]);
}

#[test]
fn b40_discard_paths_collision_fails_naming_both_paths() {
    let ran = Build::new(&with_artifacts(
        &["true"],
        "  files: ['**/x.txt']\n  discard-paths: yes\n",
    ))
    .file("a/x.txt", "a")
    .file("b/x.txt", "b")
    .run();
    upload_failed_with(
        &ran,
        "collect artifact: entry x.txt would hold both a/x.txt and b/x.txt",
    );
}

#[test]
fn b41_exclude_paths_beat_files() {
    let ran = Build::new(&with_artifacts(
        &["echo log > build.log"],
        "  files: ['**/*']\n  exclude-paths: ['**/*.log', 'secret/**/*', buildspec.yml]\n",
    ))
    .file("keep/a.txt", "a")
    .file("keep/a.log", "l")
    .file("secret/key.pem", "k")
    .run();
    ran.code(0).status("SUCCEEDED");
    assert_eq!(ran.zip_entries("artifacts.zip"), vec!["keep/a.txt"]);
}

#[test]
fn b41_exclude_paths_are_relative_to_base_directory() {
    let ran = Build::new(&with_artifacts(
        &["true"],
        "  base-directory: out\n  files: ['**/*']\n  exclude-paths: ['tmp/*']\n",
    ))
    .file("out/tmp/scratch.txt", "s")
    .file("out/keep/tmp/inner.txt", "i")
    .file("out/app.txt", "a")
    .run();
    ran.code(0).status("SUCCEEDED");
    assert_eq!(
        ran.zip_entries("artifacts.zip"),
        vec!["app.txt", "keep/tmp/inner.txt"]
    );
}

// B42: symlinks.

const S_IFMT: u32 = 0o170_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFREG: u32 = 0o100_000;

#[test]
fn b42_enable_symlinks_keeps_links() {
    let ran = Build::new(&with_artifacts(
        &["mkdir -p d && echo t > d/target.txt && ln -s target.txt d/link.txt"],
        "  files: ['d/*']\n  enable-symlinks: yes\n",
    ))
    .run();
    ran.code(0).status("SUCCEEDED").no_leftovers();
    assert_eq!(
        ran.zip_entries("artifacts.zip"),
        vec!["d/link.txt", "d/target.txt"]
    );
    let mode = ran
        .zip_unix_mode("artifacts.zip", "d/link.txt")
        .unwrap_or(0);
    assert_eq!(mode & S_IFMT, S_IFLNK, "mode {mode:o}");
    assert_eq!(ran.zip_text("artifacts.zip", "d/link.txt"), "target.txt");
}

#[test]
fn b42_without_enable_symlinks_a_link_is_stored_as_its_content() {
    let ran = Build::new(&with_artifacts(
        &["mkdir -p d && echo t > d/target.txt && ln -s target.txt d/link.txt"],
        "  files: ['d/*']\n",
    ))
    .run();
    ran.code(0).status("SUCCEEDED");
    let mode = ran
        .zip_unix_mode("artifacts.zip", "d/link.txt")
        .unwrap_or(0);
    assert_eq!(mode & S_IFMT, S_IFREG, "mode {mode:o}");
    assert_eq!(ran.zip_text("artifacts.zip", "d/link.txt"), "t\n");
}

#[test]
fn b42_unix_modes_are_kept() {
    let ran = Build::new(&with_artifacts(
        &["printf '#!/bin/sh\\n' > run.sh && chmod 755 run.sh"],
        "  files: [run.sh]\n",
    ))
    .run();
    ran.code(0).status("SUCCEEDED");
    let mode = ran.zip_unix_mode("artifacts.zip", "run.sh").unwrap_or(0);
    assert_eq!(mode & 0o777, 0o755, "mode {mode:o}");
}

// B43: name.

#[test]
fn b43_name_is_shell_expanded() {
    let ran = Build::new(&with_artifacts(
        &["echo x > x.txt"],
        "  files: [x.txt]\n  name: app-$(echo 42)\n",
    ))
    .run();
    ran.code(0).status("SUCCEEDED");
    assert_eq!(ran.artifact_files(), vec!["app-42.zip"]);
    assert_eq!(ran.zip_entries("app-42.zip"), vec!["x.txt"]);
    ran.stdout_has(&format!(
        "artifact primary (1 file(s)): {}",
        ran.artifacts().join("app-42.zip").display()
    ));
}

#[test]
fn b43_name_sees_variables_set_during_the_build_and_slash_makes_a_prefix() {
    let ran = Build::new(
        "version: 0.2\nphases:\n  build:\n    commands: [\"VERSION=1.0\", \"echo x > x.txt\"]\n  post_build:\n    commands: [\"FLAVOUR=release\"]\nartifacts:\n  files: [x.txt]\n  name: builds/$VERSION/app-$FLAVOUR\n",
    )
    .run();
    ran.code(0).status("SUCCEEDED");
    assert_eq!(ran.artifact_files(), vec!["builds/1.0/app-release.zip"]);
}

#[test]
fn b43_name_escaping_the_artifact_directory_is_refused() {
    let ran = Build::new(&with_artifacts(
        &["echo x > x.txt"],
        "  files: [x.txt]\n  name: ../../escaped\n",
    ))
    .run();
    upload_failed_with(
        &ran,
        "artifact name ../../escaped escapes the artifact directory",
    );
    assert!(
        ran.artifact_files().is_empty(),
        "{:?}",
        ran.artifact_files()
    );
}

// B44: secondary artifacts.

#[test]
fn b44_secondary_artifacts_each_get_their_own_zip() {
    let ran = Build::new(
        r#"version: 0.2
phases:
  build:
    commands: ["true"]
artifacts:
  files: [main.txt]
  secondary-artifacts:
    web:
      base-directory: web
      files: ['**/*']
    api:
      files: [api/api.txt]
      discard-paths: yes
"#,
    )
    .file("main.txt", "m")
    .file("web/index.html", "w")
    .file("web/css/site.css", "c")
    .file("api/api.txt", "a")
    .run();
    ran.code(0).status("SUCCEEDED").no_leftovers();
    assert_eq!(
        ran.artifact_files(),
        vec!["api.zip", "artifacts.zip", "web.zip"]
    );
    assert_eq!(ran.zip_entries("artifacts.zip"), vec!["main.txt"]);
    assert_eq!(
        ran.zip_entries("web.zip"),
        vec!["css/site.css", "index.html"]
    );
    assert_eq!(ran.zip_entries("api.zip"), vec!["api.txt"]);
    ran.stdout_has("artifact web (2 file(s)): ");
}

#[test]
fn b44_secondary_artifact_without_a_match_fails_the_upload() {
    let ran = Build::new(
        "version: 0.2\nphases:\n  build:\n    commands: [\"true\"]\nartifacts:\n  files: [main.txt]\n  secondary-artifacts:\n    api:\n      files: [missing.txt]\n",
    )
    .file("main.txt", "m")
    .run();
    upload_failed_with(&ran, "no matching artifact paths found");
}

#[test]
fn b44_artifacts_files_required_even_with_only_secondary_artifacts() {
    let ran = Build::new(
        "version: 0.2\nphases:\n  build:\n    commands: [\"echo ran\"]\nartifacts:\n  secondary-artifacts:\n    api:\n      files: [api.txt]\n",
    )
    .run();
    ran.code(1)
        .phase_is("DOWNLOAD_SOURCE", "FAILED")
        .stdout_has("YAML_FILE_ERROR")
        .stdout_lacks("Entering phase")
        .stderr_has("artifacts.files")
        .no_leftovers();
}

// B45: reports.

#[test]
fn b45_report_group_is_collected_as_its_own_zip() {
    let ran = Build::new(
        r"version: 0.2
phases:
  build:
    commands:
      - mkdir -p test-results && echo '<testsuite/>' > test-results/junit.xml
reports:
  unit-tests:
    files: ['**/*.xml']
    base-directory: test-results
    file-format: JUNITXML
",
    )
    .run();
    ran.code(0).status("SUCCEEDED");
    assert_eq!(ran.artifact_files(), vec!["reports/unit-tests.zip"]);
    assert_eq!(ran.zip_entries("reports/unit-tests.zip"), vec!["junit.xml"]);
    assert_eq!(
        ran.zip_text("reports/unit-tests.zip", "junit.xml"),
        "<testsuite/>\n"
    );
}

#[test]
fn b45_report_without_files_only_warns() {
    let ran = Build::new(
        "version: 0.2\nphases:\n  build:\n    commands: [\"echo x > x.txt\"]\nartifacts:\n  files: [x.txt]\nreports:\n  unit-tests:\n    files: ['**/*.xml']\n",
    )
    .run();
    ran.code(0)
        .status("SUCCEEDED")
        .phase_is("UPLOAD_ARTIFACTS", "SUCCEEDED");
    assert!(
        ran.agent_texts().iter().any(|t| t.starts_with("Report ")
            && t.contains("unit-tests")
            && t.ends_with("no matching artifact paths found")),
        "{}",
        ran.stdout
    );
    assert_eq!(ran.artifact_files(), vec!["artifacts.zip"]);
}

// B46, B47: the cache.

const CACHE_SPEC: &str = r#"version: 0.2
phases:
  install:
    commands:
      - cat /root/.cache/thing/sub/stamp 2>/dev/null || echo no-cache
  build:
    commands:
      - mkdir -p /root/.cache/thing/sub && echo "from-build-$CODEBUILD_BUILD_NUMBER" > /root/.cache/thing/sub/stamp
cache:
  paths:
    - /root/.cache/thing/**/*
"#;

#[test]
fn b46_cache_paths_carry_to_the_next_build_of_the_project() {
    let first = Build::new(CACHE_SPEC).run();
    first.code(0).status("SUCCEEDED");
    assert_eq!(first.output_lines(), vec!["no-cache"]);
    first.stdout_lacks("Unable to initialize cache download");

    let second = Build::new(CACHE_SPEC).same_project_as(&first.build).run();
    second.code(0).status("SUCCEEDED");
    assert_eq!(second.output_lines(), vec!["from-build-1"]);

    // Without a key the project's entry is refreshed by every build.
    let third = Build::new(CACHE_SPEC).same_project_as(&first.build).run();
    assert_eq!(third.output_lines(), vec!["from-build-2"]);

    // Another project has its own cache.
    let other = Build::new(CACHE_SPEC).run();
    assert_eq!(other.output_lines(), vec!["no-cache"]);
    other.no_leftovers();
}

#[test]
fn b46_relative_cache_paths_restore_into_the_new_source_dir() {
    let spec = r#"version: 0.2
phases:
  install:
    commands:
      - cat deps/lib.txt 2>/dev/null || echo no-cache
  build:
    commands:
      - mkdir -p deps && echo "deps-of-build-$CODEBUILD_BUILD_NUMBER" > deps/lib.txt
cache:
  paths:
    - 'deps/**/*'
"#;
    let first = Build::new(spec).run();
    first.code(0).status("SUCCEEDED").no_leftovers();
    assert_eq!(first.output_lines(), vec!["no-cache"]);
    let second = Build::new(spec).same_project_as(&first.build).run();
    second.code(0).status("SUCCEEDED");
    assert_eq!(second.output_lines(), vec!["deps-of-build-1"]);
}

fn keyed_spec(key: &str, fallback: &str) -> String {
    format!(
        r#"version: 0.2
env:
  variables:
    LOCK: v1
phases:
  install:
    commands:
      - cat /root/.cache/thing/stamp 2>/dev/null || echo no-cache
  build:
    commands:
      - mkdir -p /root/.cache/thing && echo "build-$CODEBUILD_BUILD_NUMBER" > /root/.cache/thing/stamp
cache:
  key: {key}
{fallback}  paths:
    - /root/.cache/thing/**/*
"#
    )
}

#[test]
fn b46_entry_under_an_explicit_key_is_never_updated() {
    let spec = keyed_spec("deps-$LOCK", "");
    let first = Build::new(&spec).run();
    first.code(0).status("SUCCEEDED");
    assert_eq!(first.output_lines(), vec!["no-cache"]);
    let second = Build::new(&spec).same_project_as(&first.build).run();
    assert_eq!(second.output_lines(), vec!["build-1"]);
    let third = Build::new(&spec).same_project_as(&first.build).run();
    assert_eq!(third.output_lines(), vec!["build-1"]);
}

#[test]
fn b46_fallback_keys_are_tried_in_order_by_exact_match() {
    let main = Build::new(&keyed_spec("main", "")).run();
    main.code(0);
    let feature_spec = keyed_spec("feature-x", "  fallback-keys: [nope, mai, main]\n");
    let feature = Build::new(&feature_spec).same_project_as(&main.build).run();
    feature.code(0).status("SUCCEEDED");
    assert_eq!(feature.output_lines(), vec!["build-1"]);
    // The feature build saved under its own key; the next one finds that first.
    let again = Build::new(&feature_spec).same_project_as(&main.build).run();
    assert_eq!(again.output_lines(), vec!["build-2"]);
    // A prefix is not a match.
    let prefix = Build::new(&keyed_spec("other", "  fallback-keys: [mai]\n"))
        .same_project_as(&main.build)
        .run();
    assert_eq!(prefix.output_lines(), vec!["no-cache"]);
}

#[test]
fn b46_cache_action_restore_and_save_go_one_way() {
    let with_action =
        |action: &str| CACHE_SPEC.replace("cache:\n", &format!("cache:\n  action: {action}\n"));
    let save = Build::new(&with_action("save")).run();
    save.code(0).status("SUCCEEDED");
    assert_eq!(save.output_lines(), vec!["no-cache"]);
    // A save-only build does not restore.
    let save_again = Build::new(&with_action("save"))
        .same_project_as(&save.build)
        .run();
    assert_eq!(save_again.output_lines(), vec!["no-cache"]);
    // A restore-only build restores, and does not save.
    let restore = Build::new(&with_action("restore"))
        .same_project_as(&save.build)
        .run();
    assert_eq!(restore.output_lines(), vec!["from-build-2"]);
    let restore_again = Build::new(&with_action("restore"))
        .same_project_as(&save.build)
        .run();
    assert_eq!(restore_again.output_lines(), vec!["from-build-2"]);
}

#[test]
fn b47_without_cache_the_agent_says_so_and_carries_on() {
    let ran = Build::new("version: 0.2\nphases:\n  build:\n    commands: [\"echo ok\"]\n").run();
    ran.code(0).status("SUCCEEDED");
    ran.agent_lines_in_order(&[
        "Processing environment variables",
        "Unable to initialize cache download: no paths specified to be cached",
        "Entering phase INSTALL",
    ]);
    assert_eq!(ran.output_lines(), vec!["ok"]);
}
