//! `lambda-deploy` and `s3-deploy` against moto (issue 3, AWS item 3): a build packages two
//! handlers and a site, the deploy stage creates both functions and syncs the site; a second run
//! of the same source updates no function and uploads no object; a function whose role does not
//! exist fails the action with a message that names the role.

use crate::support::aws::{aws, moto, unique};
use crate::support::pipeline::{Pipeline, SRC};

/// An IAM role Lambda may assume; returns its ARN.
fn lambda_role(name: &str) -> String {
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    aws(&[
        "iam",
        "create-role",
        "--role-name",
        name,
        "--assume-role-policy-document",
        trust,
        "--query",
        "Role.Arn",
        "--output",
        "text",
    ])
}

/// Packages two handlers into ZIPs with fixed timestamps (so the same source gives the same
/// bytes) and builds a site with a hashed asset.
const BUILDSPEC: &str = r"version: 0.2
phases:
  build:
    commands:
      - mkdir -p lambda site/assets
      - touch -d '2020-01-01 00:00:00' analytics.py search.py
      - zip -X -q lambda/analytics.zip analytics.py
      - zip -X -q lambda/search.zip search.py
      - cp index.html site/index.html
      - cp app.js site/assets/app.3f2a9c.js
      - cp logo.svg site/logo.svg
artifacts:
  files: ['lambda/*']
  secondary-artifacts:
    Lambdas:
      base-directory: lambda
      files: ['**/*']
    Site:
      base-directory: site
      files: ['**/*']
";

fn site_pipeline(suffix: &str, role: &str, bucket: &str, key: &str) -> Pipeline {
    let yaml = format!(
        r##"name: deploy-{suffix}
source:
  repo: {SRC}
  branch: main
variables:
  - {{name: SUFFIX, default: "{suffix}"}}
defaults:
  image: runner/test
  timeout: 5m
stages:
  - name: source
    actions:
      - {{name: checkout, type: source, outputs: [Src]}}
  - name: build
    actions:
      - {{name: package, type: build, inputs: [Src], outputs: [Lambdas, Site]}}
  - name: deploy
    actions:
      - name: lambdas
        type: lambda-deploy
        inputs: [Lambdas]
        namespace: AiDeploy
        parallelism: 2
        functions:
          - name: "analytics-#{{variables.SUFFIX}}"
            zip: analytics.zip
            runtime: python3.11
            handler: analytics.handler
            role: {role}
            memory: 256
            timeout: 30
            env: {{ENVIRONMENT: "#{{variables.SUFFIX}}"}}
            publish: true
            alias: live
          - name: "search-#{{variables.SUFFIX}}"
            zip: search.zip
            runtime: python3.11
            handler: search.handler
            role: {role}
      - name: site
        type: s3-deploy
        inputs: [Site]
        bucket: {bucket}
        prefix: web
        delete: true
        kms_key_id: {key}
        cache_control:
          - {{pattern: index.html, value: no-cache}}
          - {{pattern: "assets/**", value: "public, max-age=31536000, immutable"}}
"##
    );
    Pipeline::new(&yaml)
        .file("buildspec.yml", BUILDSPEC)
        .file(
            "analytics.py",
            "def handler(event, context):\n    return 'analytics'\n",
        )
        .file(
            "search.py",
            "def handler(event, context):\n    return 'search'\n",
        )
        .file(
            "index.html",
            "<!doctype html><script src=assets/app.3f2a9c.js></script>\n",
        )
        .file("app.js", "console.log('app');\n")
        .file("logo.svg", "<svg xmlns='http://www.w3.org/2000/svg'/>\n")
}

/// The `CodeSha256` the runner reported for `function` in a line like
/// `lambda NAME: created (CodeSha256 X, version N)`.
#[track_caller]
fn reported_sha(stdout: &str, function: &str) -> String {
    let prefix = format!("lambda {function}: ");
    stdout
        .lines()
        .find_map(|line| {
            let rest = &line[line.find(&prefix)? + prefix.len()..];
            let sha = rest.split("CodeSha256 ").nth(1)?;
            Some(sha.split(',').next()?.to_owned())
        })
        .unwrap_or_else(|| panic!("no line for {function} in:\n{stdout}"))
}

fn head(bucket: &str, key: &str) -> serde_json::Value {
    let text = aws(&[
        "s3api",
        "head-object",
        "--bucket",
        bucket,
        "--key",
        key,
        "--output",
        "json",
    ]);
    serde_json::from_str(&text).expect("head-object JSON")
}

#[test]
fn lambda_and_s3_deploy_create_then_skip_what_is_unchanged() {
    if !moto() {
        return;
    }
    let suffix = unique();
    let role = lambda_role(&format!("runner-deploy-{suffix}"));
    let bucket = format!("runner-site-{suffix}");
    aws(&["s3api", "create-bucket", "--bucket", &bucket]);
    let key = aws(&[
        "kms",
        "create-key",
        "--query",
        "KeyMetadata.KeyId",
        "--output",
        "text",
    ]);
    let pipeline = site_pipeline(&suffix, &role, &bucket, &key);
    let analytics = format!("analytics-{suffix}");
    let search = format!("search-{suffix}");

    let first = pipeline.run_pipeline(&[]);
    first.code(0);
    first
        .stdout_has(&format!("lambda {analytics}: created (CodeSha256 "))
        .stdout_has(&format!("lambda {search}: created (CodeSha256 "))
        .stdout_has("lambda-deploy: 2 created, 0 updated, 0 unchanged, 0 failed")
        .stdout_has(&format!(
            "s3-deploy s3://{bucket}/web/: 3 uploaded, 0 unchanged, 0 deleted, "
        ));
    for function in [&analytics, &search] {
        let deployed = aws(&[
            "lambda",
            "get-function",
            "--function-name",
            function,
            "--query",
            "Configuration.CodeSha256",
            "--output",
            "text",
        ]);
        assert_eq!(
            reported_sha(&first.stdout, function),
            deployed,
            "{function}"
        );
    }
    check_functions(&first.stdout, &analytics, &suffix, "created");
    check_objects(&bucket, &key);

    // A stale object under the prefix goes; one outside it stays.
    let body = pipeline.pipeline_file().display().to_string();
    for stale in ["web/old.html", "elsewhere.txt"] {
        aws(&[
            "s3api",
            "put-object",
            "--bucket",
            &bucket,
            "--key",
            stale,
            "--body",
            &body,
        ]);
    }
    let second = pipeline.run_pipeline(&[]);
    second.code(0);
    second
        .stdout_has(&format!("lambda {analytics}: unchanged"))
        .stdout_has(&format!("lambda {search}: unchanged"))
        .stdout_has("lambda-deploy: 0 created, 0 updated, 2 unchanged, 0 failed")
        .stdout_has(&format!(
            "s3-deploy s3://{bucket}/web/: 0 uploaded, 3 unchanged, 1 deleted, 0 bytes"
        ));
    assert_eq!(
        reported_sha(&second.stdout, &analytics),
        reported_sha(&first.stdout, &analytics)
    );
    check_keys(&bucket);

    // A changed handler updates only its function, publishes a version and moves the alias.
    std::fs::write(
        pipeline.source().join("analytics.py"),
        "def handler(event, context):\n    return 'analytics v2'\n",
    )
    .expect("change the handler");
    let third = pipeline.run_pipeline(&[]);
    third.code(0);
    third
        .stdout_has(&format!("lambda {analytics}: updated (CodeSha256 "))
        .stdout_has(&format!("lambda {search}: unchanged"))
        .stdout_has("lambda-deploy: 0 created, 1 updated, 1 unchanged, 0 failed")
        .stdout_has(&format!(
            "s3-deploy s3://{bucket}/web/: 0 uploaded, 3 unchanged, 0 deleted, 0 bytes"
        ));
    let updated = reported_sha(&third.stdout, &analytics);
    assert_ne!(updated, reported_sha(&first.stdout, &analytics));
    check_functions(&third.stdout, &analytics, &suffix, "updated");
}

/// Only the site's objects and the object outside the prefix are left.
fn check_keys(bucket: &str) {
    let keys = aws(&[
        "s3api",
        "list-objects-v2",
        "--bucket",
        bucket,
        "--query",
        "Contents[].Key",
        "--output",
        "text",
    ]);
    let mut keys: Vec<&str> = keys.split_whitespace().collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "elsewhere.txt",
            "web/assets/app.3f2a9c.js",
            "web/index.html",
            "web/logo.svg"
        ]
    );
}

#[test]
fn lambda_create_with_a_missing_role_fails_naming_the_role() {
    if !moto() {
        return;
    }
    let suffix = unique();
    let role = format!("arn:aws:iam::123456789012:role/runner-missing-{suffix}");
    let yaml = format!(
        r#"name: deploy-role-{suffix}
source:
  repo: {SRC}
  branch: main
defaults:
  image: runner/test
  timeout: 5m
stages:
  - name: source
    actions:
      - {{name: checkout, type: source, outputs: [Src]}}
  - name: build
    actions:
      - name: package
        type: build
        inputs: [Src]
        outputs: [Handler]
        buildspec_inline: |
          version: 0.2
          phases:
            build:
              commands: ["true"]
          artifacts:
            files: [handler.py]
  - name: deploy
    actions:
      - name: lambdas
        type: lambda-deploy
        inputs: [Handler]
        functions:
          - name: orphan-{suffix}
            runtime: python3.11
            handler: handler.handler
            role: {role}
"#
    );
    let pipeline =
        Pipeline::new(&yaml).file("handler.py", "def handler(event, context):\n    return 1\n");
    let ran = pipeline.run_pipeline(&[]);
    ran.code(1);
    let status = pipeline.status(None);
    let error = status
        .action("deploy", "lambdas")
        .error
        .clone()
        .unwrap_or_default();
    assert!(
        error.contains(&format!(
            "its role `{role}` does not exist or cannot be assumed"
        )),
        "{error}"
    );
    assert!(error.contains(&format!("orphan-{suffix}")), "{error}");
}

/// The alias `live` points at the version the runner reported, and the environment is set.
fn check_functions(stdout: &str, analytics: &str, suffix: &str, change: &str) {
    let alias = aws(&[
        "lambda",
        "get-alias",
        "--function-name",
        analytics,
        "--name",
        "live",
        "--query",
        "FunctionVersion",
        "--output",
        "text",
    ]);
    assert!(
        stdout.contains(&format!("lambda {analytics}: {change} (CodeSha256 "))
            && stdout.contains(&format!("version {alias})")),
        "{stdout}"
    );
    let environment = aws(&[
        "lambda",
        "get-function-configuration",
        "--function-name",
        analytics,
        "--query",
        "Environment.Variables.ENVIRONMENT",
        "--output",
        "text",
    ]);
    assert_eq!(environment, suffix);
}

/// Content-Type, Cache-Control and SSE-KMS of the site's objects.
fn check_objects(bucket: &str, key: &str) {
    let index = head(bucket, "web/index.html");
    assert_eq!(index["ContentType"], "text/html; charset=utf-8", "{index}");
    assert_eq!(index["CacheControl"], "no-cache", "{index}");
    assert_eq!(index["ServerSideEncryption"], "aws:kms", "{index}");
    assert!(
        index["SSEKMSKeyId"]
            .as_str()
            .is_some_and(|id| id.contains(key)),
        "{index}"
    );
    let asset = head(bucket, "web/assets/app.3f2a9c.js");
    assert_eq!(asset["ContentType"], "text/javascript; charset=utf-8");
    assert_eq!(asset["CacheControl"], "public, max-age=31536000, immutable");
    let logo = head(bucket, "web/logo.svg");
    assert_eq!(logo["ContentType"], "image/svg+xml");
    assert!(logo.get("CacheControl").is_none(), "{logo}");
}
