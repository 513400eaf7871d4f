//! Builds of a pipeline receive the runner's AWS credentials, region and endpoint when
//! `RUNNER_BUILD_AWS_CREDENTIALS=runner` (a CodeBuild service role's stand-in): masked in every
//! log line, never in the state database; without the setting no AWS variable enters a build.

use std::process::Stdio;

use crate::support::pipeline::{Pipeline, SRC};

fn pipeline() -> Pipeline {
    Pipeline::new(&format!(
        "name: creds\nsource:\n  repo: {SRC}\n  branch: main\ndefaults:\n  image: runner/test\nstages:\n  - name: source\n    actions:\n      - name: checkout\n        type: source\n        outputs: [Src]\n  - name: build\n    actions:\n      - name: show\n        type: build\n        inputs: [Src]\n        buildspec_inline: |\n          version: 0.2\n          phases:\n            build:\n              commands:\n                - echo \"key=$AWS_ACCESS_KEY_ID region=$AWS_DEFAULT_REGION endpoint=$AWS_ENDPOINT_URL\"\n                - '[ -n \"$AWS_SECRET_ACCESS_KEY\" ] && echo has-secret || echo no-secret'\n"
    ))
    .file("a.txt", "a\n")
}

#[test]
#[expect(clippy::print_stderr, reason = "a skipped test says why")]
fn build_receives_masked_runner_credentials_only_when_asked() {
    let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL") else {
        eprintln!(
            "skipped: AWS_ENDPOINT_URL is not set (run `eval \"$(bash .ci/moto.sh)\"` for moto)"
        );
        return;
    };
    let secret = std::env::var("AWS_SECRET_ACCESS_KEY").expect("moto.sh sets credentials");
    let key_id = std::env::var("AWS_ACCESS_KEY_ID").expect("moto.sh sets credentials");

    let pipeline = pipeline();
    let output = pipeline
        .command(["run", "--pipeline", "{pipeline}"])
        .env("RUNNER_BUILD_AWS_CREDENTIALS", "runner")
        .stdin(Stdio::null())
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains(&format!("key=*** region=us-east-1 endpoint={endpoint}")),
        "{stdout}"
    );
    assert!(stdout.contains("] has-secret"), "{stdout}");
    assert!(
        !stdout.contains(&secret) && !stdout.contains(&format!("key={key_id}")),
        "{stdout}"
    );
    let database = std::fs::read(pipeline.data().join("state.db")).expect("state db");
    let text = String::from_utf8_lossy(&database);
    assert!(
        !text.contains(&secret),
        "the secret key must never reach the state database"
    );

    let plain = pipeline.run(["run", "--pipeline", "{pipeline}"]);
    plain
        .code(0)
        .stdout_has("key= region=")
        .stdout_has("] no-secret");
}
