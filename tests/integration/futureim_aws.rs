//! The FutureIM-shaped pipeline end to end against moto (issue 4, item 4): our own fixture in
//! `tests/fixtures/repos/futureim` (a terraform stage, a Java 17 auth Lambda, five Python AI
//! Lambdas, a storefront built with Node) runs in `runner/aws-test` with an S3 + KMS artifact
//! store, in two variants. `pipeline-cli.yml`: the builds deploy with the AWS CLI, as the
//! customer's do. `pipeline-native.yml`: the builds only build, `lambda-deploy` and `s3-deploy`
//! deploy, and a second run of the same source deploys nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read as _;
use std::path::PathBuf;
use std::process::Command;

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use crate::support::aws::{aws, aws_json, moto};
use crate::support::pipeline::{Exited, Pipeline, copy_tree};
use crate::support::{repo_root, runner_bin};

/// The AI functions of the fixture, as named in its buildspec and pipelines.
const AI_FUNCTIONS: [&str; 5] = [
    "recommendation",
    "fraud-detection",
    "sentiment",
    "forecasting",
    "chatbot",
];

fn fixture() -> PathBuf {
    repo_root().join("tests/fixtures/repos/futureim")
}

/// Builds `runner/aws-test` unless it is up to date. The two tests of this module run as two
/// processes under nextest; `flock` lets one build while the other waits.
#[track_caller]
fn ensure_image() {
    let lock = std::env::temp_dir().join("runner-aws-test-image.lock");
    let output = Command::new("flock")
        .arg(&lock)
        .arg(runner_bin())
        .arg("--runners-dir")
        .arg(repo_root().join("runners"))
        .args(["images", "build", "aws-test"])
        .env("RUST_LOG", "runner=warn")
        .output()
        .expect("run flock (util-linux)");
    assert!(
        output.status.success(),
        "runner images build aws-test: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// What one test creates in moto: the names its pipeline file is written with.
struct Account {
    environment: String,
    role_arn: String,
    kms_key_id: String,
    artifact_bucket: String,
    frontend_bucket: String,
}

impl Account {
    /// A KMS key, an artifact bucket, a website bucket and a Lambda execution role, all named
    /// apart from earlier runs against the same moto.
    fn create(variant: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_nanos();
        let environment = format!("{variant}{:x}", nanos % (1 << 40));
        let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
        let role_arn = aws(&[
            "iam",
            "create-role",
            "--role-name",
            &format!("futureim-lambda-{environment}"),
            "--assume-role-policy-document",
            trust,
            "--query",
            "Role.Arn",
            "--output",
            "text",
        ]);
        let kms_key_id = aws(&[
            "kms",
            "create-key",
            "--query",
            "KeyMetadata.KeyId",
            "--output",
            "text",
        ]);
        let account = Self {
            artifact_bucket: format!("futureim-artifacts-{environment}"),
            frontend_bucket: format!("futureim-frontend-{environment}"),
            environment,
            role_arn,
            kms_key_id,
        };
        for bucket in [&account.artifact_bucket, &account.frontend_bucket] {
            aws(&["s3api", "create-bucket", "--bucket", bucket]);
        }
        account
    }

    /// `pipeline-<variant>.yml` with this account's names, on a copy of the fixture.
    fn pipeline(&self, file: &str) -> Pipeline {
        let template = std::fs::read_to_string(fixture().join(file)).expect("read the pipeline");
        let yaml = template
            .replace("@ENVIRONMENT@", &self.environment)
            .replace("@LAMBDA_ROLE_ARN@", &self.role_arn)
            .replace("@KMS_KEY_ID@", &self.kms_key_id)
            .replace("@ARTIFACT_BUCKET@", &self.artifact_bucket)
            .replace("@FRONTEND_BUCKET@", &self.frontend_bucket);
        let pipeline = Pipeline::new(&yaml);
        copy_tree(&fixture(), &pipeline.source());
        pipeline
    }

    /// The six function names: the auth function first.
    fn functions(&self) -> Vec<String> {
        std::iter::once("auth")
            .chain(AI_FUNCTIONS)
            .map(|name| format!("futureim-{name}-{}", self.environment))
            .collect()
    }
}

/// `runner run` with the runner's AWS credentials passed into the builds.
#[track_caller]
fn run(pipeline: &Pipeline) -> Exited {
    let output = pipeline
        .command(["run", "--pipeline", "{pipeline}"])
        .env("RUNNER_BUILD_AWS_CREDENTIALS", "runner")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run the runner binary");
    Exited {
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        code: output.status.code().unwrap_or(-1),
    }
}

/// The `CodeSha256` a log line reports for `function`: the text after `<marker>` and up to the
/// next `,` or `)` on the line that names the function.
#[track_caller]
fn reported(stdout: &str, line_start: &str, marker: &str) -> String {
    stdout
        .lines()
        .find_map(|line| {
            let rest = &line[line.find(line_start)? + line_start.len()..];
            let value = &rest[rest.find(marker)? + marker.len()..];
            Some(value.split([',', ')']).next()?.to_owned())
        })
        .unwrap_or_else(|| panic!("no {line_start:?} line with {marker:?} in:\n{stdout}"))
}

/// One S3 object: its `get-object` metadata and its body.
struct Object {
    head: serde_json::Value,
    body: Vec<u8>,
}

/// Every object of `bucket` under `prefix`, by key: one `get-object` each.
#[track_caller]
fn objects(bucket: &str, prefix: &str) -> BTreeMap<String, Object> {
    let listed = aws_json(&[
        "s3api",
        "list-objects-v2",
        "--bucket",
        bucket,
        "--prefix",
        prefix,
        "--query",
        "Contents[].Key",
    ]);
    let download = tempfile::tempdir().expect("temp dir");
    let path = download.path().join("body");
    let path_text = path.display().to_string();
    listed
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(serde_json::Value::as_str)
        .map(|key| {
            let head = aws_json(&[
                "s3api",
                "get-object",
                "--bucket",
                bucket,
                "--key",
                key,
                &path_text,
            ]);
            let body = std::fs::read(&path).expect("read the downloaded object");
            (key.to_owned(), Object { head, body })
        })
        .collect()
}

/// Every artifact object under the store's prefix is SSE-KMS with the pipeline's key; returns
/// their bodies (each one a ZIP).
#[track_caller]
fn artifact_objects(account: &Account, prefix: &str) -> Vec<Vec<u8>> {
    let objects = objects(&account.artifact_bucket, &format!("{prefix}/"));
    // Source, terraform outputs, the Java JAR, the Python ZIPs and the site.
    assert!(objects.len() >= 5, "artifact objects: {:?}", objects.keys());
    objects
        .into_iter()
        .map(|(key, object)| {
            let head = &object.head;
            assert_eq!(head["ServerSideEncryption"], "aws:kms", "{key}: {head}");
            assert!(
                head["SSEKMSKeyId"]
                    .as_str()
                    .is_some_and(|id| id.contains(&account.kms_key_id)),
                "{key} is not encrypted with {}: {head}",
                account.kms_key_id
            );
            object.body
        })
        .collect()
}

/// The ZIP files inside the artifact ZIPs, by name.
fn inner_zips(artifacts: &[Vec<u8>]) -> BTreeMap<String, Vec<u8>> {
    let mut found = BTreeMap::new();
    for artifact in artifacts {
        let mut archive =
            zip::ZipArchive::new(std::io::Cursor::new(artifact)).expect("an artifact is a ZIP");
        for index in 0..archive.len() {
            let mut entry = archive.by_index(index).expect("entry");
            if entry.is_file()
                && std::path::Path::new(entry.name())
                    .extension()
                    .is_some_and(|extension| extension == "zip")
            {
                let mut bytes = Vec::new();
                entry.read_to_end(&mut bytes).expect("read entry");
                found.insert(entry.name().to_owned(), bytes);
            }
        }
    }
    found
}

fn entry_names(zip_bytes: &[u8]) -> Vec<String> {
    let archive = zip::ZipArchive::new(std::io::Cursor::new(zip_bytes)).expect("a Lambda ZIP");
    archive.file_names().map(str::to_owned).collect()
}

/// Lambda's `CodeSha256`: the base64 SHA-256 of the ZIP.
fn code_sha256(zip_bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(zip_bytes))
}

/// The configuration of each of the account's six functions (one `list-functions`).
#[track_caller]
fn lambda_functions(account: &Account) -> BTreeMap<String, serde_json::Value> {
    let query = format!(
        "Functions[?ends_with(FunctionName, '-{}')]",
        account.environment
    );
    let listed = aws_json(&["lambda", "list-functions", "--query", &query]);
    let found: BTreeMap<String, serde_json::Value> = listed
        .as_array()
        .expect("functions")
        .iter()
        .map(|function| {
            let name = function["FunctionName"].as_str().expect("FunctionName");
            (name.to_owned(), function.clone())
        })
        .collect();
    let names: Vec<&String> = found.keys().collect();
    let mut expected = account.functions();
    expected.sort();
    assert_eq!(
        names,
        expected.iter().collect::<Vec<_>>(),
        "the six functions"
    );
    found
}

/// The six functions exist with the code the artifacts hold (the auth JAR has the compiled
/// classes, each AI ZIP its handler) and the `CodeSha256` the runner reported; returns
/// `CodeSha256` by function.
#[track_caller]
fn check_functions(
    account: &Account,
    artifacts: &[Vec<u8>],
    reported: impl Fn(&str) -> String,
) -> BTreeMap<String, String> {
    let zips = inner_zips(artifacts);
    let functions = lambda_functions(account);
    let zip_names = std::iter::once("auth-lambda.zip".to_owned())
        .chain(AI_FUNCTIONS.iter().map(|name| format!("{name}.zip")));
    let mut deployed = BTreeMap::new();
    for (function, zip_name) in account.functions().into_iter().zip(zip_names) {
        let configuration = &functions[&function];
        let sha = configuration["CodeSha256"]
            .as_str()
            .expect("CodeSha256")
            .to_owned();
        assert_eq!(sha, reported(&function), "{function}: reported CodeSha256");
        let code = zips
            .get(&zip_name)
            .unwrap_or_else(|| panic!("no {zip_name} in the artifacts: {:?}", zips.keys()));
        assert_eq!(code_sha256(code), sha, "{function} runs {zip_name}");
        let names = entry_names(code);
        if zip_name == "auth-lambda.zip" {
            assert_eq!(configuration["Runtime"], "java17", "{configuration}");
            for class in [
                "com/futureim/auth/AuthHandler.class",
                "com/futureim/auth/TokenValidator.class",
            ] {
                assert!(names.iter().any(|n| n == class), "{class}: {names:?}");
            }
        } else {
            assert_eq!(configuration["Runtime"], "python3.11", "{configuration}");
            assert_eq!(names, ["handler.py"], "{zip_name}");
        }
        deployed.insert(function, sha);
    }
    deployed
}

/// The website bucket holds exactly the built files (hashed assets named after their content),
/// with these content types (by extension) and cache headers; the app calls the API terraform
/// reported and `build-info.json` names the deployed code.
#[track_caller]
fn check_site(account: &Account, types: &[(&str, &str)], deployed: &BTreeMap<String, String>) {
    let site = objects(&account.frontend_bucket, "");
    let text = |key: &str| {
        let object = site
            .get(key)
            .unwrap_or_else(|| panic!("no {key} in {:?}", site.keys()));
        String::from_utf8(object.body.clone()).expect("UTF-8 text")
    };
    let index = text("index.html");
    let assets: Vec<String> = ["/assets/app.", "/assets/styles."]
        .iter()
        .map(|start| {
            let from = index.find(start).expect("index.html links its assets") + 1;
            let end = from + index[from..].find('"').expect("closing quote");
            index[from..end].to_owned()
        })
        .collect();
    let mut expected: BTreeSet<String> = ["index.html", "build-info.json", "favicon.svg"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    expected.extend(assets.iter().cloned());
    let keys: BTreeSet<String> = site.keys().cloned().collect();
    assert_eq!(keys, expected, "the website bucket holds exactly the build");
    for asset in &assets {
        let digest = hex::encode(Sha256::digest(&site[asset].body));
        assert!(
            asset.contains(&format!(".{}.", &digest[..12])),
            "{asset} is not named after its content"
        );
    }

    for (key, object) in &site {
        let head = &object.head;
        let extension = key.rsplit('.').next().expect("extension");
        let content_type = types
            .iter()
            .find(|(known, _)| *known == extension)
            .map_or_else(|| panic!("no type for {key}"), |(_, t)| *t);
        assert_eq!(head["ContentType"], content_type, "{key}: {head}");
        let cache_control = if key.starts_with("assets/") {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        assert_eq!(head["CacheControl"], cache_control, "{key}: {head}");
    }

    let api = format!(
        "https://futureim-api.execute-api.us-east-1.amazonaws.com/{}",
        account.environment
    );
    assert!(
        text(&assets[0]).contains(&format!("const API = \"{api}\";")),
        "the app is built against the API terraform reported"
    );
    let info: serde_json::Value =
        serde_json::from_str(&text("build-info.json")).expect("build-info.json is JSON");
    assert_eq!(info["api"], api.as_str(), "{info}");
    assert_eq!(info["environment"], account.environment.as_str(), "{info}");
    let functions: BTreeMap<String, String> =
        serde_json::from_value(info["functions"].clone()).expect("functions");
    assert_eq!(
        &functions, deployed,
        "the site was built with the CodeSha256 of every deployed function"
    );
}

#[test]
fn futureim_pipeline_deploys_with_the_aws_cli_from_its_builds() {
    if !moto() {
        return;
    }
    ensure_image();
    let account = Account::create("c");
    let pipeline = account.pipeline("pipeline-cli.yml");
    let ran = run(&pipeline);
    ran.code(0)
        .stdout_has("auth self-check passed")
        .stdout_has("Apply complete! Resources: 3 added, 0 changed, 0 destroyed.");

    let artifacts = artifact_objects(&account, "futureim-cli");
    // What the buildspecs report, and, through their exported variables, what the site says.
    let deployed = check_functions(&account, &artifacts, |function| {
        reported(
            &ran.stdout,
            &format!("Deployed {function} "),
            "(CodeSha256 ",
        )
    });
    check_site(
        &account,
        // As the AWS CLI guesses them (Python's mimetypes with Debian's /etc/mime.types).
        &[
            ("html", "text/html"),
            ("js", "text/javascript"),
            ("css", "text/css"),
            ("svg", "image/svg+xml"),
            ("json", "application/json"),
        ],
        &deployed,
    );
}

#[test]
fn futureim_pipeline_with_deploy_actions_then_a_rerun_that_deploys_nothing() {
    if !moto() {
        return;
    }
    ensure_image();
    let account = Account::create("n");
    let pipeline = account.pipeline("pipeline-native.yml");
    let first = run(&pipeline);
    first
        .code(0)
        .stdout_has("Deploying is left to the pipeline")
        .stdout_has("lambda-deploy: 1 created, 0 updated, 0 unchanged, 0 failed")
        .stdout_has("lambda-deploy: 5 created, 0 updated, 0 unchanged, 0 failed")
        .stdout_has(&format!(
            "s3-deploy s3://{}/: 5 uploaded, 0 unchanged, 0 deleted, ",
            account.frontend_bucket
        ))
        .stdout_lacks("upload: dist/");

    let artifacts = artifact_objects(&account, "futureim-native");
    // What lambda-deploy reports, and, through its output variables, what the site says.
    let deployed = check_functions(&account, &artifacts, |function| {
        reported(
            &first.stdout,
            &format!("lambda {function}: created "),
            "(CodeSha256 ",
        )
    });
    let types = [
        ("html", "text/html; charset=utf-8"),
        ("js", "text/javascript; charset=utf-8"),
        ("css", "text/css; charset=utf-8"),
        ("svg", "image/svg+xml"),
        ("json", "application/json"),
    ];
    check_site(&account, &types, &deployed);

    // The same source again: every build runs, and nothing is deployed.
    let functions_before = last_modified(&account);
    let objects_before = site_listing(&account);
    let second = run(&pipeline);
    second
        .code(0)
        .stdout_has("lambda-deploy: 0 created, 0 updated, 1 unchanged, 0 failed")
        .stdout_has("lambda-deploy: 0 created, 0 updated, 5 unchanged, 0 failed")
        .stdout_has(&format!(
            "s3-deploy s3://{}/: 0 uploaded, 5 unchanged, 0 deleted, 0 bytes",
            account.frontend_bucket
        ));
    for function in account.functions() {
        second.stdout_has(&format!(
            "lambda {function}: unchanged (CodeSha256 {}",
            deployed[&function]
        ));
    }
    assert_eq!(last_modified(&account), functions_before);
    assert_eq!(site_listing(&account), objects_before);
}

/// `LastModified` of each function.
fn last_modified(account: &Account) -> BTreeMap<String, serde_json::Value> {
    lambda_functions(account)
        .into_iter()
        .map(|(name, configuration)| (name, configuration["LastModified"].clone()))
        .collect()
}

/// Key, `ETag` and `LastModified` of every object in the website bucket.
fn site_listing(account: &Account) -> serde_json::Value {
    aws_json(&[
        "s3api",
        "list-objects-v2",
        "--bucket",
        &account.frontend_bucket,
        "--query",
        "Contents[].[Key,ETag,LastModified]",
    ])
}
