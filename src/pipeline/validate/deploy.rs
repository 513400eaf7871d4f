//! The settings of the deploy action types: `lambda-deploy` (its `functions`) and `s3-deploy`
//! (bucket, prefix, deletions, encryption, `cache_control`). Texts that may hold `#{...}` are
//! checked for their form only when they hold none, and their references go to `flow`.

use super::super::deploy::{
    CacheControlRule, Deletions, LAMBDA_PARALLELISM_DEFAULT, LambdaDeployAction, LambdaFunction,
    Publish, S3DeployAction,
};
use super::super::error::{NameKind, ProblemKind};
use super::super::glob::Glob;
use super::super::spec::{ActionSpec, CacheControlSpec, FunctionSpec};
use super::action::{Draft, env};
use super::source::is_bucket_name;
use super::{Ctx, NameRule, required_at};

/// Lambda's function names: `[A-Za-z0-9_-]{1,64}` (an ARN is taken as it is).
const FUNCTION_NAME: NameRule = NameRule {
    kind: NameKind::LambdaFunction,
    pattern: "[A-Za-z0-9_\\-]{1,64}",
    punctuation: "_-",
    max: 64,
};
/// Lambda's alias names.
const ALIAS_NAME: NameRule = NameRule {
    kind: NameKind::LambdaAlias,
    pattern: "[A-Za-z0-9_\\-]{1,128}",
    punctuation: "_-",
    max: 128,
};
/// How many functions may deploy at once.
const PARALLELISM: (i64, i64) = (1, 16);
/// Lambda's memory range in MB.
const MEMORY: (i64, i64) = (128, 10_240);
/// Lambda's timeout range in seconds.
const TIMEOUT: (i64, i64) = (1, 900);

/// `type: lambda-deploy`.
pub(super) fn lambda_deploy(
    cx: &mut Ctx<'_>,
    spec: ActionSpec,
    draft: &mut Draft,
) -> LambdaDeployAction {
    let field = draft.field.clone();
    let region = non_empty(cx, spec.region, "region", &format!("{field}.region"));
    let parallelism = spec
        .parallelism
        .map_or(LAMBDA_PARALLELISM_DEFAULT, |found| {
            let key_field = format!("{field}.parallelism");
            usize::try_from(in_range(cx, "parallelism", PARALLELISM, found, &key_field))
                .unwrap_or(LAMBDA_PARALLELISM_DEFAULT)
        });
    let upload_bucket = spec.upload_bucket.and_then(|bucket| {
        let bucket_field = format!("{field}.upload_bucket");
        check_bucket(cx, "upload_bucket", &bucket, &bucket_field, draft);
        (!bucket.is_empty()).then_some(bucket)
    });
    let functions_field = format!("{field}.functions");
    let specs = match spec.functions {
        None => {
            cx.report(&functions_field, ProblemKind::Missing { key: "functions" });
            Vec::new()
        }
        Some(specs) if specs.is_empty() => {
            cx.report(&functions_field, ProblemKind::Empty { key: "functions" });
            specs
        }
        Some(specs) => specs,
    };
    let functions: Vec<LambdaFunction> = specs
        .into_iter()
        .enumerate()
        .map(|(index, spec)| function(cx, spec, &format!("{functions_field}[{index}]"), draft))
        .collect();
    let names = functions
        .iter()
        .enumerate()
        .map(|(index, function)| {
            (
                function.name.as_str(),
                format!("{functions_field}[{index}].name"),
            )
        })
        .filter(|(name, _)| !name.is_empty());
    cx.unique(NameKind::LambdaFunction, names);
    LambdaDeployAction {
        region,
        parallelism,
        upload_bucket,
        functions,
    }
}

fn function(
    cx: &mut Ctx<'_>,
    spec: FunctionSpec,
    field: &str,
    draft: &mut Draft,
) -> LambdaFunction {
    let name_field = format!("{field}.name");
    let name = required_at(cx, spec.name, "name", &name_field).unwrap_or_default();
    if !name.is_empty() && !name.contains("#{") && !name.starts_with("arn:") {
        cx.name(FUNCTION_NAME, &name, &name_field);
    }
    draft.references.push((name_field, name.clone()));
    let zip = spec.zip.and_then(|path| {
        let zip_field = format!("{field}.zip");
        if path.is_empty() {
            cx.report(zip_field, ProblemKind::Empty { key: "zip" });
            return None;
        }
        if path.starts_with('/') || path.split('/').any(|part| part == "..") {
            let kind = ProblemKind::ArtifactPath {
                key: "zip",
                path: path.clone(),
            };
            cx.report(zip_field, kind);
        } else {
            draft.references.push((zip_field, path.clone()));
        }
        Some(path)
    });
    let runtime = non_empty(cx, spec.runtime, "runtime", &format!("{field}.runtime"));
    let handler = non_empty(cx, spec.handler, "handler", &format!("{field}.handler"));
    let role = non_empty(cx, spec.role, "role", &format!("{field}.role"));
    if let Some(role) = &role {
        let role_field = format!("{field}.role");
        if !role.contains("#{") && !is_role_arn(role) {
            let kind = ProblemKind::InvalidRoleArn { role: role.clone() };
            cx.report(role_field.clone(), kind);
        }
        draft.references.push((role_field, role.clone()));
    }
    let memory = spec
        .memory
        .map(|found| in_range(cx, "memory", MEMORY, found, &format!("{field}.memory")));
    let timeout = spec
        .timeout
        .map(|found| in_range(cx, "timeout", TIMEOUT, found, &format!("{field}.timeout")));
    let env = env(cx, spec.env.unwrap_or_default(), &format!("{field}.env"));
    for entry in &env {
        draft
            .references
            .push((entry.field.clone(), entry.value.clone()));
    }
    let publish = match spec.publish {
        Some(true) => Publish::NewVersion,
        Some(false) | None => Publish::LatestOnly,
    };
    let alias = spec.alias.inspect(|alias| {
        let alias_field = format!("{field}.alias");
        cx.name(ALIAS_NAME, alias, &alias_field);
        if publish == Publish::LatestOnly {
            cx.report(alias_field, ProblemKind::AliasNeedsPublish);
        }
    });
    LambdaFunction {
        name,
        zip,
        runtime,
        handler,
        role,
        memory: memory.and_then(|value| u32::try_from(value).ok()),
        timeout: timeout.and_then(|value| u32::try_from(value).ok()),
        env: env
            .into_iter()
            .map(|entry| (entry.name, entry.value))
            .collect(),
        publish,
        alias,
    }
}

/// `type: s3-deploy`.
pub(super) fn s3_deploy(cx: &mut Ctx<'_>, spec: ActionSpec, draft: &mut Draft) -> S3DeployAction {
    let field = draft.field.clone();
    let region = non_empty(cx, spec.region, "region", &format!("{field}.region"));
    let bucket_field = format!("{field}.bucket");
    let bucket = required_at(cx, spec.bucket, "bucket", &bucket_field).unwrap_or_default();
    if !bucket.is_empty() {
        check_bucket(cx, "bucket", &bucket, &bucket_field, draft);
    }
    let prefix = spec.prefix.unwrap_or_default();
    let prefix_field = format!("{field}.prefix");
    if prefix.starts_with('/') || prefix.split('/').any(|part| part == "..") {
        let kind = ProblemKind::InvalidPrefix {
            prefix: prefix.clone(),
        };
        cx.report(prefix_field, kind);
    } else {
        draft.references.push((prefix_field, prefix.clone()));
    }
    let deletions = match spec.delete {
        Some(true) => Deletions::Delete,
        Some(false) | None => Deletions::Keep,
    };
    let kms_key_id = non_empty(
        cx,
        spec.kms_key_id,
        "kms_key_id",
        &format!("{field}.kms_key_id"),
    );
    let cache_control = spec
        .cache_control
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .filter_map(|(index, rule)| {
            cache_control_rule(cx, rule, &format!("{field}.cache_control[{index}]"))
        })
        .collect();
    S3DeployAction {
        region,
        bucket,
        prefix,
        deletions,
        kms_key_id,
        cache_control,
    }
}

fn cache_control_rule(
    cx: &mut Ctx<'_>,
    spec: CacheControlSpec,
    field: &str,
) -> Option<CacheControlRule> {
    let pattern_field = format!("{field}.pattern");
    let pattern = required_at(cx, spec.pattern, "pattern", &pattern_field);
    let value = required_at(cx, spec.value, "value", &format!("{field}.value"));
    let pattern = match Glob::new(&pattern?) {
        Ok(glob) => glob,
        Err(reason) => {
            let pattern = cx.text(&pattern_field, "");
            cx.report(pattern_field, ProblemKind::InvalidGlob { pattern, reason });
            return None;
        }
    };
    Some(CacheControlRule {
        pattern,
        value: value?,
    })
}

/// A bucket name S3 accepts, or one that holds `#{...}` (checked once resolved); its references
/// go to `flow`.
fn check_bucket(cx: &mut Ctx<'_>, key: &'static str, bucket: &str, field: &str, draft: &mut Draft) {
    if bucket.is_empty() {
        cx.report(field, ProblemKind::Empty { key });
    } else if bucket.contains("#{") {
        draft.references.push((field.to_owned(), bucket.to_owned()));
    } else if !is_bucket_name(bucket) {
        let bucket = bucket.to_owned();
        cx.report(field, ProblemKind::InvalidBucket { bucket });
    }
}

/// `Some` non-empty text, after reporting an empty one.
fn non_empty(
    cx: &mut Ctx<'_>,
    value: Option<String>,
    key: &'static str,
    field: &str,
) -> Option<String> {
    let value = value?;
    if value.is_empty() {
        cx.report(field, ProblemKind::Empty { key });
        return None;
    }
    Some(value)
}

/// `found` when it is in `min..=max`, else `min` after reporting it.
fn in_range(
    cx: &mut Ctx<'_>,
    key: &'static str,
    (min, max): (i64, i64),
    found: i64,
    field: &str,
) -> i64 {
    if (min..=max).contains(&found) {
        return found;
    }
    let kind = ProblemKind::OutOfRange {
        key,
        min,
        max,
        found,
    };
    cx.report(field, kind);
    min
}

/// `arn:<partition>:iam::<account>:role/<name>`.
fn is_role_arn(role: &str) -> bool {
    let parts: Vec<&str> = role.splitn(6, ':').collect();
    matches!(
        parts.as_slice(),
        ["arn", partition, "iam", "", account, resource]
            if !partition.is_empty()
                && !account.is_empty()
                && account.chars().all(|c| c.is_ascii_digit())
                && resource.strip_prefix("role/").is_some_and(|name| !name.is_empty())
    )
}

#[cfg(test)]
mod tests {
    use test_case::test_case;

    use super::*;
    use crate::pipeline::{ActionKind, Location, Pipeline, parse};

    /// A source stage, then `actions` (YAML list items indented by six spaces) in a deploy stage.
    fn pipeline(actions: &str) -> String {
        format!(
            "name: demo\nsource: {{repo: acme/app, branch: main}}\nvariables:\n  - {{name: ENVIRONMENT, default: dev}}\nstages:\n  - name: source\n    actions:\n      - {{name: checkout, type: source, outputs: [Src]}}\n  - name: deploy\n    actions:\n{actions}"
        )
    }

    #[track_caller]
    fn load_ok(actions: &str) -> Pipeline {
        parse("pipeline.yml", &pipeline(actions)).unwrap_or_else(|error| panic!("{error}"))
    }

    /// `line:column field: message` of every problem.
    #[track_caller]
    fn problems(actions: &str) -> Vec<String> {
        match parse("pipeline.yml", &pipeline(actions)) {
            Ok(_) => panic!("expected problems"),
            Err(error) => error
                .problems()
                .iter()
                .map(|problem| {
                    let Location { line, column } = problem.location;
                    format!("{line}:{column} {}: {}", problem.field, problem.kind)
                })
                .collect(),
        }
    }

    const LAMBDA: &str = "      - name: ai
        type: lambda-deploy
        inputs: [Src]
        namespace: AiDeploy
        region: us-east-1
        parallelism: 2
        upload_bucket: big-zips
        functions:
          - name: \"analytics-#{variables.ENVIRONMENT}\"
            zip: analytics-lambda.zip
            runtime: python3.11
            handler: handler.lambda_handler
            role: arn:aws:iam::000000000000:role/lambda
            memory: 512
            timeout: 60
            env: {ENVIRONMENT: \"#{variables.ENVIRONMENT}\"}
            publish: true
            alias: live
          - name: search
";

    const SITE: &str = "      - name: site
        type: s3-deploy
        inputs: [Src]
        bucket: \"frontend-#{variables.ENVIRONMENT}\"
        prefix: app
        delete: true
        kms_key_id: alias/site
        cache_control:
          - {pattern: index.html, value: no-cache}
          - {pattern: \"assets/**\", value: \"public, max-age=31536000, immutable\"}
";

    #[test]
    fn lambda_deploy_loads_every_key() {
        let pipeline = load_ok(LAMBDA);
        let action = &pipeline.stages[1].actions[0];
        assert_eq!(action.type_name(), "lambda-deploy");
        let ActionKind::LambdaDeploy(deploy) = &action.kind else {
            panic!("a lambda-deploy action: {action:?}");
        };
        assert_eq!(deploy.region.as_deref(), Some("us-east-1"));
        assert_eq!(deploy.parallelism, 2);
        assert_eq!(deploy.upload_bucket.as_deref(), Some("big-zips"));
        let analytics = &deploy.functions[0];
        assert_eq!(
            analytics,
            &LambdaFunction {
                name: "analytics-#{variables.ENVIRONMENT}".to_owned(),
                zip: Some("analytics-lambda.zip".to_owned()),
                runtime: Some("python3.11".to_owned()),
                handler: Some("handler.lambda_handler".to_owned()),
                role: Some("arn:aws:iam::000000000000:role/lambda".to_owned()),
                memory: Some(512),
                timeout: Some(60),
                env: vec![(
                    "ENVIRONMENT".to_owned(),
                    "#{variables.ENVIRONMENT}".to_owned()
                )],
                publish: Publish::NewVersion,
                alias: Some("live".to_owned()),
            }
        );
        let search = &deploy.functions[1];
        assert_eq!(search.zip, None);
        assert_eq!(search.publish, Publish::LatestOnly);
        assert_eq!((search.role.as_ref(), search.memory), (None, None));
    }

    #[test]
    fn lambda_deploy_defaults() {
        let pipeline = load_ok(
            "      - {name: ai, type: lambda-deploy, inputs: [Src], functions: [{name: f}]}\n",
        );
        let ActionKind::LambdaDeploy(deploy) = &pipeline.stages[1].actions[0].kind else {
            panic!("a lambda-deploy action");
        };
        assert_eq!(deploy.parallelism, LAMBDA_PARALLELISM_DEFAULT);
        assert_eq!(
            (deploy.region.as_ref(), deploy.upload_bucket.as_ref()),
            (None, None)
        );
    }

    #[test]
    fn s3_deploy_loads_every_key() {
        let pipeline = load_ok(SITE);
        let ActionKind::S3Deploy(deploy) = &pipeline.stages[1].actions[0].kind else {
            panic!("an s3-deploy action");
        };
        assert_eq!(deploy.bucket, "frontend-#{variables.ENVIRONMENT}");
        assert_eq!(deploy.prefix, "app");
        assert_eq!(deploy.deletions, Deletions::Delete);
        assert_eq!(deploy.kms_key_id.as_deref(), Some("alias/site"));
        assert_eq!(deploy.region, None);
        assert_eq!(deploy.cache_control_for("index.html"), Some("no-cache"));
        assert_eq!(
            deploy.cache_control_for("assets/app.3f2a.js"),
            Some("public, max-age=31536000, immutable")
        );
        assert_eq!(deploy.cache_control_for("about/index.html"), None);
        assert_eq!(deploy.cache_control_for("favicon.ico"), None);
    }

    #[test]
    fn s3_deploy_defaults() {
        let pipeline =
            load_ok("      - {name: site, type: s3-deploy, inputs: [Src], bucket: my-site}\n");
        let ActionKind::S3Deploy(deploy) = &pipeline.stages[1].actions[0].kind else {
            panic!("an s3-deploy action");
        };
        assert_eq!(deploy.prefix, "");
        assert_eq!(deploy.deletions, Deletions::Keep);
        assert_eq!(deploy.kms_key_id, None);
        assert!(deploy.cache_control.is_empty());
    }

    #[test]
    fn cache_control_first_match_wins() {
        let pipeline = load_ok(
            "      - name: site
        type: s3-deploy
        inputs: [Src]
        bucket: my-site
        cache_control:
          - {pattern: \"**.html\", value: no-cache}
          - {pattern: \"**\", value: max-age=60}
",
        );
        let ActionKind::S3Deploy(deploy) = &pipeline.stages[1].actions[0].kind else {
            panic!("an s3-deploy action");
        };
        assert_eq!(deploy.cache_control_for("docs/a.html"), Some("no-cache"));
        assert_eq!(deploy.cache_control_for("docs/a.css"), Some("max-age=60"));
    }

    #[test]
    fn lambda_deploy_problems_have_locations() {
        let found = problems(
            "      - name: ai
        type: lambda-deploy
        inputs: [Src, Src2]
        outputs: [Out]
        parallelism: 0
        upload_bucket: Big_Zips
        bucket: not-for-lambda
        functions:
          - name: \"bad name\"
            zip: ../outside.zip
            role: lambda
            memory: 64
            timeout: 901
            env: {1X: a}
            alias: live
          - name: \"bad name\"
            runtime: \"\"
          - zip: a.zip
",
        );
        assert_eq!(
            found,
            [
                "13:17 stages[1].actions[0].inputs: the number of inputs of a lambda-deploy action must be exactly 1, found 2",
                "13:23 stages[1].actions[0].inputs[1]: unknown artifact `Src2`: no action produces it",
                "14:18 stages[1].actions[0].outputs: the number of outputs of a lambda-deploy action must be exactly 0, found 1",
                "15:22 stages[1].actions[0].parallelism: `parallelism` must be 1 to 16, found 0",
                "16:24 stages[1].actions[0].upload_bucket: bucket `Big_Zips` is not a valid S3 bucket name (3-63 lowercase letters, digits, `.` and `-`, starting and ending with a letter or digit)",
                "17:17 stages[1].actions[0].bucket: `bucket` does not apply to lambda-deploy actions",
                "19:19 stages[1].actions[0].functions[0].name: Lambda function name `bad name` must match `[A-Za-z0-9_\\-]{1,64}`",
                "20:18 stages[1].actions[0].functions[0].zip: zip path `../outside.zip` must be relative to the input artifact and stay inside it",
                "21:19 stages[1].actions[0].functions[0].role: role `lambda` is not an IAM role ARN (`arn:aws:iam::<account>:role/<name>`)",
                "22:21 stages[1].actions[0].functions[0].memory: `memory` must be 128 to 10240, found 64",
                "23:22 stages[1].actions[0].functions[0].timeout: `timeout` must be 1 to 900, found 901",
                "24:23 stages[1].actions[0].functions[0].env.1X: environment variable name `1X` must match `[A-Za-z_][A-Za-z0-9_]*`",
                "25:20 stages[1].actions[0].functions[0].alias: `alias` needs `publish: true`: an alias points at a published version",
                "26:19 stages[1].actions[0].functions[1].name: Lambda function name `bad name` must match `[A-Za-z0-9_\\-]{1,64}`",
                "26:19 stages[1].actions[0].functions[1].name: duplicate Lambda function name `bad name` (first at line 19)",
                "27:22 stages[1].actions[0].functions[1].runtime: `runtime` must not be empty",
                "28:13 stages[1].actions[0].functions[2].name: `name` is required",
            ]
        );
    }

    #[test]
    fn lambda_deploy_needs_functions() {
        assert_eq!(
            problems("      - {name: ai, type: lambda-deploy, inputs: [Src]}\n"),
            ["11:10 stages[1].actions[0].functions: `functions` is required"]
        );
        assert_eq!(
            problems("      - {name: ai, type: lambda-deploy, inputs: [Src], functions: []}\n"),
            ["11:67 stages[1].actions[0].functions: `functions` must not be empty"]
        );
    }

    #[test]
    fn s3_deploy_problems_have_locations() {
        let found = problems(
            "      - name: site
        type: s3-deploy
        inputs: [Src]
        prefix: /abs
        kms_key_id: \"\"
        functions: []
        cache_control:
          - {pattern: \"[a\", value: x}
          - {value: y}
          - {pattern: \"*.html\"}
",
        );
        assert_eq!(
            found,
            [
                "11:9 stages[1].actions[0].bucket: `bucket` is required",
                "14:17 stages[1].actions[0].prefix: prefix `/abs` must not start with `/` or contain a `..` segment",
                "15:21 stages[1].actions[0].kms_key_id: `kms_key_id` must not be empty",
                "16:20 stages[1].actions[0].functions: `functions` does not apply to s3-deploy actions",
                "18:23 stages[1].actions[0].cache_control[0].pattern: invalid pattern `[a`: `[` at offset 0 is never closed",
                "19:14 stages[1].actions[0].cache_control[1].pattern: `pattern` is required",
                "20:14 stages[1].actions[0].cache_control[2].value: `value` is required",
            ]
        );
    }

    #[test]
    fn deploy_references_are_checked() {
        let found = problems(
            "      - name: site
        type: s3-deploy
        inputs: [Src]
        bucket: \"site-#{variables.NOPE}\"
        prefix: \"#{Later.Key}\"
",
        );
        assert_eq!(
            found,
            [
                "14:17 stages[1].actions[0].bucket: unknown pipeline variable `NOPE`: declare it under `variables`",
                "15:17 stages[1].actions[0].prefix: unknown namespace `Later` in `#{Later.Key}`: no action declares it",
            ]
        );
    }

    #[test]
    fn deploy_actions_cannot_open_the_pipeline() {
        let text = "name: demo\nsource: {repo: acme/app, branch: main}\nstages:\n  - name: first\n    actions:\n      - {name: site, type: s3-deploy, inputs: [Src], bucket: my-site}\n  - name: second\n    actions:\n      - {name: gate, type: approval}\n";
        let error = parse("pipeline.yml", text).expect_err("a deploy in the first stage");
        assert!(
            error
                .problems()
                .iter()
                .any(|problem| problem.kind.to_string()
                    == "the first stage may hold only source actions, found an s3-deploy action"),
            "{error}"
        );
    }

    #[test_case("arn:aws:iam::000000000000:role/lambda", true ; "plain")]
    #[test_case("arn:aws:iam::123456789012:role/service/lambda", true ; "with a path")]
    #[test_case("arn:aws-cn:iam::123456789012:role/x", true ; "other partition")]
    #[test_case("lambda", false ; "bare name")]
    #[test_case("arn:aws:iam::123456789012:user/x", false ; "a user")]
    #[test_case("arn:aws:iam::abc:role/x", false ; "account not digits")]
    #[test_case("arn:aws:iam::123456789012:role/", false ; "no name")]
    fn role_arns(role: &str, expected: bool) {
        assert_eq!(is_role_arn(role), expected);
    }
}
