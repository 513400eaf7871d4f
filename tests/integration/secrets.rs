//! `env.parameter-store` and `env.secrets-manager` (B12) against moto: the values reach the
//! container of `runner build` and of a pipeline build, with the buildspec's precedence (B48),
//! and the log (and the state database) shows `***` in their place; a
//! parameter, secret or JSON key that does not exist fails `DOWNLOAD_SOURCE` naming it, and no
//! container is created.

use std::fmt::Write as _;
use std::process::Command;

use crate::support::aws::{aws, moto, unique};
use crate::support::pipeline::{Pipeline, SRC};
use crate::support::{Build, Ran};

fn put_parameter(name: &str, value: &str) {
    aws(&[
        "ssm",
        "put-parameter",
        "--name",
        name,
        "--type",
        "SecureString",
        "--value",
        value,
        "--overwrite",
    ]);
}

fn buildspec(env: &str, commands: &[&str]) -> String {
    let mut text = format!("version: 0.2\nenv:\n{env}phases:\n  build:\n    commands:\n");
    for command in commands {
        text.push_str("      - ");
        text.push_str(command);
        text.push('\n');
    }
    text
}

/// Seconds since the epoch, as `docker events` takes them.
fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// Containers created for `project` since `since` (from Docker's event log, so a container
/// that was created and removed again still counts).
fn containers_created(project: &str, since: u64) -> Vec<String> {
    let output = Command::new("docker")
        .args([
            "events",
            "--since",
            &since.to_string(),
            "--until",
            &(now() + 1).to_string(),
            "--filter",
            "event=create",
            "--filter",
            &format!("label=runner.job={project}"),
            "--format",
            "{{.ID}}",
        ])
        .output()
        .expect("docker events");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Runs `build`, asserting it never created a container.
fn run_without_container(build: Build) -> Ran {
    let since = now();
    let project = build.project().to_owned();
    let ran = build.run();
    assert_eq!(
        containers_created(&project, since),
        Vec::<String>::new(),
        "a container was created{}",
        ran.stdout
    );
    ran
}

/// The state database with its write-ahead log, as text.
fn state_files(data: &std::path::Path) -> String {
    let mut text = String::new();
    for name in ["state.db", "state.db-wal"] {
        if let Ok(bytes) = std::fs::read(data.join(name)) {
            text.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    assert!(!text.is_empty(), "no state database in {}", data.display());
    text
}

/// The message of the failed `DOWNLOAD_SOURCE` phase context.
fn failure_context(ran: &Ran) -> String {
    ran.code(1)
        .status("FAILED")
        .phase_is("DOWNLOAD_SOURCE", "FAILED")
        .stdout_lacks("Entering phase INSTALL")
        .stdout_lacks("Running command");
    ran.agent_texts()
        .into_iter()
        .find(|text| {
            text.starts_with("Phase context status code: ") && !text.ends_with("Message: ")
        })
        .unwrap_or_else(|| panic!("no failure context:\n{}", ran.stdout))
        .to_owned()
}

#[test]
fn b12_parameters_and_secrets_reach_the_container_and_are_masked() {
    if !moto() {
        return;
    }
    let id = unique();
    let db = format!("db-password-{id}");
    put_parameter(&format!("/runner-test/{id}/db"), &db);
    // Eleven more parameters: two GetParameters calls.
    let mut parameters = String::new();
    let mut joined = String::new();
    let mut all_parameters = String::new();
    for index in 1..=11 {
        let value = format!("value-{index:02}-{id}");
        put_parameter(&format!("/runner-test/{id}/p{index:02}"), &value);
        let _ = writeln!(parameters, "    P{index:02}: /runner-test/{id}/p{index:02}");
        let _ = write!(all_parameters, "$P{index:02}");
        joined.push_str(&value);
    }
    let secret = format!("runner-test/{id}/api");
    let old_token = format!("old-token-{id}");
    let created = aws(&[
        "secretsmanager",
        "create-secret",
        "--name",
        &secret,
        "--secret-string",
        &format!(r#"{{"token":"{old_token}","port":5432}}"#),
        "--output",
        "json",
    ]);
    let created: serde_json::Value = serde_json::from_str(&created).expect("create-secret JSON");
    let (arn, first_version) = (
        created["ARN"].as_str().expect("ARN"),
        created["VersionId"].as_str().expect("VersionId"),
    );
    let token = format!("token-{id}");
    aws(&[
        "secretsmanager",
        "put-secret-value",
        "--secret-id",
        &secret,
        "--secret-string",
        &format!(r#"{{"token":"{token}","port":5432}}"#),
    ]);
    let whole = format!(r#"{{"token":"{token}","port":5432}}"#);

    let env = format!(
        "  variables:\n    PLAIN: plain\n  parameter-store:\n    DB_PASS: /runner-test/{id}/db\n{parameters}  secrets-manager:\n    TOKEN: {secret}:token\n    PORT: {secret}:port\n    BY_ARN: {arn}:token\n    PREVIOUS: {secret}:token:AWSPREVIOUS\n    FIRST: {secret}:token::{first_version}\n    WHOLE: {secret}\n    OVERRIDDEN: {secret}:token\n"
    );
    let ran = Build::new(&buildspec(
        &env,
        &[
            r#"echo "db=$DB_PASS token=$TOKEN whole=$WHOLE""#,
            &format!(r#"test "$DB_PASS" = "{db}""#),
            &format!(r#"test "{all_parameters}" = "{joined}""#),
            &format!(r#"test "$TOKEN" = "{token}" && test "$BY_ARN" = "{token}""#),
            &format!(r#"test "$PREVIOUS" = "{old_token}" && test "$FIRST" = "{old_token}""#),
            r#"test "$PORT" = 5432"#,
            &format!(r#"test "$WHOLE" = '{whole}'"#),
            r#"test "$OVERRIDDEN" = from-the-override"#,
        ],
    ))
    .env("OVERRIDDEN", "from-the-override")
    .run();
    ran.code(0)
        .status("SUCCEEDED")
        .no_leftovers()
        .stdout_has("db=*** token=*** whole=***")
        .agent_lines_in_order(&[
            "Processing environment variables",
            "Decrypting parameter store environment variables",
            "Phase complete: DOWNLOAD_SOURCE State: SUCCEEDED",
        ]);
    for value in [&db, &token, &old_token, &whole, &joined] {
        ran.stdout_lacks(value);
        assert!(!ran.stderr.contains(value.as_str()), "{}", ran.stderr);
    }
    let state = state_files(ran.build.data());
    assert!(
        !state.contains(&db) && !state.contains(&token),
        "secret values must never reach the state database"
    );
}

#[test]
fn b12_a_missing_parameter_fails_naming_it_before_any_container() {
    if !moto() {
        return;
    }
    let id = unique();
    put_parameter(&format!("/runner-test/{id}/present"), "present-value");
    let ran = run_without_container(Build::new(&buildspec(
        &format!(
            "  parameter-store:\n    HERE: /runner-test/{id}/present\n    GONE: /runner-test/{id}/absent\n"
        ),
        &["echo ran"],
    )));
    let context = failure_context(&ran);
    assert_eq!(
        context,
        format!(
            "Phase context status code: Decrypted Variables Error Message: parameter does not exist: /runner-test/{id}/absent (env.parameter-store.GONE)"
        )
    );
    ran.agent_lines_in_order(&[
        "Processing environment variables",
        "Decrypting parameter store environment variables",
        "Phase complete: DOWNLOAD_SOURCE State: FAILED",
    ]);
}

#[test]
fn b12_a_missing_secret_or_json_key_fails_naming_it_before_any_container() {
    if !moto() {
        return;
    }
    let id = unique();
    let secret = format!("runner-test/{id}/api");
    aws(&[
        "secretsmanager",
        "create-secret",
        "--name",
        &secret,
        "--secret-string",
        r#"{"token":"t0ken-value"}"#,
    ]);
    let missing = format!("runner-test/{id}/absent");
    for (reference, expected) in [
        (
            format!("{missing}:token"),
            format!(
                "find secret `{missing}` in Secrets Manager (GetSecretValue): it does not exist (env.secrets-manager.API)"
            ),
        ),
        (
            format!("{secret}:password"),
            format!("secret `{secret}` has no JSON key `password` (env.secrets-manager.API)"),
        ),
        (
            format!("{secret}:token:AWSPENDING"),
            format!(
                "find secret `{secret}` (version stage `AWSPENDING`) in Secrets Manager (GetSecretValue): it does not exist (env.secrets-manager.API)"
            ),
        ),
    ] {
        let ran = run_without_container(Build::new(&buildspec(
            &format!("  secrets-manager:\n    API: {reference}\n"),
            &["echo ran"],
        )));
        assert_eq!(
            failure_context(&ran),
            format!("Phase context status code: Secrets Manager Error Message: {expected}")
        );
    }
}

#[test]
fn b12_a_pipeline_build_gets_its_secrets_masked_in_logs_and_state() {
    if !moto() {
        return;
    }
    let id = unique();
    let value = format!("pipeline-secret-{id}");
    put_parameter(&format!("/runner-test/{id}/pipeline"), &value);
    let pipeline = Pipeline::new(&format!(
        "name: secrets-{id}\nsource:\n  repo: {SRC}\n  branch: main\ndefaults:\n  image: runner/test\nstages:\n  - name: source\n    actions:\n      - {{name: checkout, type: source, outputs: [Src]}}\n  - name: build\n    actions:\n      - name: show\n        type: build\n        inputs: [Src]\n        buildspec_inline: |\n          version: 0.2\n          env:\n            parameter-store:\n              FROM_SSM: /runner-test/{id}/pipeline\n          phases:\n            build:\n              commands:\n                - echo \"ssm=$FROM_SSM\"\n                - test \"$FROM_SSM\" = \"{value}\"\n"
    ))
    .file("a.txt", "a\n");
    let ran = pipeline.run_pipeline(&[]);
    ran.code(0).stdout_has("ssm=***").stdout_lacks(&value);
    let logs = pipeline.logs(&ran.execution_id(), "show");
    assert!(logs.iter().any(|line| line == "ssm=***"), "{logs:#?}");
    assert!(!logs.iter().any(|line| line.contains(&value)), "{logs:#?}");
    assert!(
        !state_files(&pipeline.data()).contains(&value),
        "the secret must never reach the state database"
    );
}

/// P43: a build action's `parameter_store` and `secrets_manager` are the `PARAMETER_STORE` and
/// `SECRETS_MANAGER` entries of CodePipeline's `EnvironmentVariables`: start-build overrides
/// that beat the buildspec's own variables, masked like every secret.
#[test]
fn p43_typed_action_variables_come_from_ssm_and_secrets_manager_and_override_the_buildspec() {
    if !moto() {
        return;
    }
    let id = unique();
    let password = format!("db-password-{id}");
    put_parameter(&format!("/runner-test/{id}/db"), &password);
    let token = format!("api-token-{id}");
    aws(&[
        "secretsmanager",
        "create-secret",
        "--name",
        &format!("runner-test/{id}/p43"),
        "--secret-string",
        &format!(r#"{{"token":"{token}"}}"#),
    ]);
    let pipeline = Pipeline::new(&format!(
        "name: p43-{id}\nsource:\n  repo: {SRC}\n  branch: main\nvariables:\n  - {{name: STAGE, default: '{id}'}}\ndefaults:\n  image: runner/test\nstages:\n  - name: source\n    actions:\n      - {{name: checkout, type: source, outputs: [Src]}}\n  - name: build\n    actions:\n      - name: show\n        type: build\n        inputs: [Src]\n        env: {{PLAIN: visible}}\n        parameter_store: {{DB_PASSWORD: '/runner-test/#{{variables.STAGE}}/db'}}\n        secrets_manager: {{API_TOKEN: 'runner-test/{id}/p43:token'}}\n        buildspec_inline: |\n          version: 0.2\n          env:\n            variables:\n              DB_PASSWORD: from-the-buildspec\n          phases:\n            build:\n              commands:\n                - echo \"db=$DB_PASSWORD token=$API_TOKEN plain=$PLAIN\"\n                - test \"$DB_PASSWORD\" = \"{password}\"\n                - test \"$API_TOKEN\" = \"{token}\"\n"
    ))
    .file("a.txt", "a\n");
    let ran = pipeline.run_pipeline(&[]);
    ran.code(0)
        .stdout_has("db=*** token=*** plain=visible")
        .stdout_lacks(&password)
        .stdout_lacks(&token);
    let state = state_files(&pipeline.data());
    assert!(!state.contains(&password) && !state.contains(&token));
}
