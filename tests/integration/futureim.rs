//! The `FutureIM` python-lambdas buildspec shape (our own fixture in `tests/fixtures/repos/ai-lambdas`)
//! runs unchanged: pip installs from `PyPI` inside the container, five zips, heredocs in `- |`
//! blocks, an export in `pre_build` read in `post_build`, exported variables.

use std::io::Read as _;

use crate::support::{Build, repo_root};

fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
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

#[test]
fn futureim_python_lambdas_buildspec_runs_unchanged() {
    let build = Build::empty();
    copy_tree(
        &repo_root().join("tests/fixtures/repos/ai-lambdas"),
        build.source(),
    );
    let ran = build
        .with_ca_bundle()
        .args([
            "--network",
            "host",
            "--ca-bundle",
            "/etc/ssl/certs/ca-certificates.crt",
        ])
        .env("ENVIRONMENT", "dev")
        .env("PROJECT_NAME", "futureim")
        .env("LAMBDA_ROLE_ARN", "arn:aws:iam::000000000000:role/lambda")
        .run();
    ran.code(0)
        .status("SUCCEEDED")
        .phase_is("BUILD", "SUCCEEDED");
    ran.stdout_has("Python 3.11");
    ran.stdout_has("Package size OK: ");
    ran.stdout_has("Built futureim-dev-1 with: analytics market-intelligence-hub demand-insights-engine compliance-guardian retail-copilot");
    ran.stdout_has("exported BUILD_TAG=futureim-dev-1");
    ran.stdout_has("exported PACKAGES= analytics market-intelligence-hub");
    assert_eq!(
        ran.zip_entries("artifacts.zip"),
        vec![
            "analytics-lambda.zip",
            "compliance-guardian-lambda.zip",
            "demand-insights-engine-lambda.zip",
            "manifest.json",
            "market-intelligence-hub-lambda.zip",
            "retail-copilot-lambda.zip",
        ]
    );
    let manifest = ran.zip_text("artifacts.zip", "manifest.json");
    assert!(
        manifest.contains("\"tag\": \"futureim-dev-1\""),
        "{manifest}"
    );
    assert!(
        manifest.contains("\"role\": \"arn:aws:iam::000000000000:role/lambda\""),
        "{manifest}"
    );

    // Each inner lambda zip holds the handler and the dependency pip installed from PyPI,
    // without the dist-info metadata the buildspec removes.
    let outer = std::fs::File::open(ran.artifacts().join("artifacts.zip")).expect("open");
    let mut outer = zip::ZipArchive::new(outer).expect("zip");
    let mut inner_bytes = Vec::new();
    outer
        .by_name("retail-copilot-lambda.zip")
        .expect("entry")
        .read_to_end(&mut inner_bytes)
        .expect("read");
    let inner = zip::ZipArchive::new(std::io::Cursor::new(inner_bytes)).expect("inner zip");
    let names: Vec<&str> = inner.file_names().collect();
    assert!(names.contains(&"handler.py"), "{names:?}");
    assert!(names.contains(&"six.py"), "{names:?}");
    assert!(!names.iter().any(|n| n.contains(".dist-info")), "{names:?}");
}

#[test]
fn futureim_buildspec_fails_in_pre_build_without_role() {
    let build = Build::empty();
    copy_tree(
        &repo_root().join("tests/fixtures/repos/ai-lambdas"),
        build.source(),
    );
    let ran = build
        .env("ENVIRONMENT", "dev")
        .env("PROJECT_NAME", "futureim")
        .run();
    ran.code(1)
        .status("FAILED")
        .phase_is("PRE_BUILD", "FAILED")
        .phase_absent("BUILD")
        .stdout_has("ERROR: LAMBDA_ROLE_ARN environment variable is not set");
    assert!(!ran.has_artifacts());
}
