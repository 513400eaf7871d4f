//! Both ways of getting inputs into the container give the same build: bind-mount + copy (the
//! default for a local engine) and a tar upload through the Engine API (for a remote engine).

use crate::support::Build;

fn staged(mode: &str) -> crate::support::Ran {
    let build = Build::new(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - ls -l run.sh | cut -c1-10\n      - ./run.sh > out.txt\n      - cat \"$CODEBUILD_SRC_DIR_extra/extra.txt\" >> out.txt\n      - test \"$(cat \"$SSL_CERT_FILE\")\" = fake-ca && echo ca-ok\nartifacts:\n  files: [out.txt, link]\n  enable-symlinks: yes\n",
    )
    .file("run.sh", "#!/bin/sh\necho ran\n");
    std::os::unix::fs::symlink("out.txt", build.source().join("link")).expect("symlink");
    let mode_bits = std::os::unix::fs::PermissionsExt::from_mode(0o755);
    std::fs::set_permissions(build.source().join("run.sh"), mode_bits).expect("chmod");
    let extra = tempfile::tempdir().expect("temp dir");
    std::fs::write(extra.path().join("extra.txt"), "extra\n").expect("write");
    let ca = build.aside_file("ca.pem", "fake-ca");
    let ran = build
        .with_ca_bundle()
        .args([
            "--ca-bundle".to_owned(),
            ca.display().to_string(),
            "--secondary-source".to_owned(),
            format!("extra={}", extra.path().display()),
        ])
        .host_env("RUNNER_STAGING", mode)
        .run();
    drop(extra);
    ran
}

#[test]
fn mount_and_upload_staging_build_the_same_artifact() {
    for mode in ["mount", "upload"] {
        let ran = staged(mode);
        ran.code(0).status("SUCCEEDED");
        assert_eq!(
            ran.output_lines(),
            vec!["-rwxr-xr-x", "ca-ok"],
            "mode {mode}"
        );
        assert_eq!(
            ran.zip_entries("artifacts.zip"),
            vec!["link", "out.txt"],
            "mode {mode}"
        );
        assert_eq!(
            ran.zip_text("artifacts.zip", "out.txt"),
            "ran\nextra\n",
            "mode {mode}"
        );
    }
}

#[test]
fn unknown_staging_mode_is_a_usage_error() {
    let ran = Build::new("version: 0.2\nphases:\n  build:\n    commands: [\"true\"]\n")
        .host_env("RUNNER_STAGING", "teleport")
        .run();
    ran.code(2)
        .stderr_has("RUNNER_STAGING must be mount or upload");
}
