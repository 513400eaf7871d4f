//! Rule tests for what a pipeline and an action declare (P1, P4) and for the trigger
//! declaration (P24), in this runner's YAML format.
//!
//! P1 and P4 name CodePipeline's JSON fields; the mapping is: `name` → `name`, `artifact_store`
//! → `artifactStore` (one store; `artifactStores` per region is not supported), `stages` →
//! `stages`, `execution_mode` → `executionMode`, `variables` → `variables`,
//! `source.triggers` → `triggers`. `roleArn`, `version` and `pipelineType` have no counterpart:
//! the runner has no service role of its own, versions are the structure digest (P37), and every
//! pipeline is V2. An action's `type` stands for `actionTypeId`, its type-specific keys for
//! `configuration`, `timeout` for `timeoutInMinutes`.

use std::time::Duration;

use test_case::test_case;

use super::*;

const SOURCE_STAGE: &str =
    "  - name: source\n    actions:\n      - {name: checkout, type: source, outputs: [Src]}\n";

fn messages(text: &str) -> Vec<String> {
    match parse("pipeline.yml", text) {
        Ok(_) => Vec::new(),
        Err(error) => error
            .problems()
            .iter()
            .map(|p| format!("{} {}: {}", p.kind.rule(), p.field, p.kind))
            .collect(),
    }
}

#[test]
fn p1_name_and_stages_are_required_and_v2_fields_default_as_codepipeline() {
    assert_eq!(
        messages("source: {repo: acme/app, branch: main}\n"),
        [
            "format name: `name` is required",
            "format stages: `stages` is required"
        ]
    );
    let text = format!(
        "name: demo\nsource: {{repo: acme/app, branch: main}}\nstages:\n{SOURCE_STAGE}  - name: gate\n    actions:\n      - {{name: ok, type: approval}}\n"
    );
    let pipeline = parse("p.yml", &text).expect("valid");
    assert_eq!(pipeline.execution_mode, ExecutionMode::Superseded);
    assert_eq!(pipeline.artifact_store, ArtifactStore::Local);
    assert!(pipeline.variables.is_empty());
    assert_eq!(pipeline.source.triggers, None);
}

#[test_case("queued", ExecutionMode::Queued ; "queued")]
#[test_case("parallel", ExecutionMode::Parallel ; "parallel")]
#[test_case("superseded", ExecutionMode::Superseded ; "superseded")]
fn p1_execution_modes(mode: &str, expected: ExecutionMode) {
    let text = format!(
        "name: demo\nexecution_mode: {mode}\nsource: {{repo: acme/app, branch: main}}\nstages:\n{SOURCE_STAGE}  - name: gate\n    actions:\n      - {{name: ok, type: approval}}\n"
    );
    assert_eq!(
        parse("p.yml", &text).expect("valid").execution_mode,
        expected
    );
}

#[test]
fn p1_unknown_top_level_keys_are_refused() {
    let found = messages("name: demo\nroleArn: arn:aws:iam::1:role/x\n");
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].starts_with("schema : unknown field `roleArn`"),
        "{found:#?}"
    );
}

#[test]
fn p4_an_action_declares_name_type_run_order_settings_artifacts_namespace_and_timeout() {
    let text = format!(
        "name: demo\nsource: {{repo: acme/app, branch: main}}\nstages:\n{SOURCE_STAGE}  - name: build\n    actions:\n      - name: compile\n        type: build\n        run_order: 3\n        inputs: [Src]\n        outputs: [Bin]\n        namespace: BuildVars\n        timeout: 20m\n        buildspec: ci/build.yml\n        image: runner/test\n"
    );
    let pipeline = parse("p.yml", &text).expect("valid");
    let action = &pipeline.stages[1].actions[0];
    assert_eq!(action.name, "compile");
    assert_eq!(action.type_name(), "build");
    assert_eq!(action.run_order, 3);
    assert_eq!(action.inputs, ["Src"]);
    assert_eq!(action.outputs, ["Bin"]);
    assert_eq!(action.namespace.as_deref(), Some("BuildVars"));
    let ActionKind::Build(build) = &action.kind else {
        panic!("a build action");
    };
    assert_eq!(build.timeout, Duration::from_secs(20 * 60));
    assert_eq!(build.buildspec, BuildspecRef::Path("ci/build.yml".into()));
}

#[test]
fn p4_name_and_type_are_required_and_types_are_known() {
    let text = format!(
        "name: demo\nsource: {{repo: acme/app, branch: main}}\nstages:\n{SOURCE_STAGE}  - name: build\n    actions:\n      - {{inputs: [Src]}}\n      - {{name: x, type: invoke}}\n"
    );
    let found = messages(&text);
    assert!(
        found.contains(&"format stages[1].actions[0].name: `name` is required".to_owned()),
        "{found:#?}"
    );
    assert!(
        found.contains(&"format stages[1].actions[0].type: `type` is required".to_owned()),
        "{found:#?}"
    );
    assert!(
        found.iter().any(|m| m.starts_with(
            "format stages[1].actions[1].type: unknown action type `invoke`, expected one of: source, build, approval, lambda-deploy, s3-deploy"
        )),
        "{found:#?}"
    );
}

fn with_triggers(source: &str) -> String {
    format!(
        "name: demo\nsource:\n  repo: acme/app\n  branch: main\n{source}stages:\n{SOURCE_STAGE}  - name: gate\n    actions:\n      - {{name: gate, type: approval}}\n"
    )
}

#[test]
fn p24_one_trigger_configuration_with_one_to_three_filters_per_list() {
    let twice = "  triggers:\n    push:\n      - branches: {includes: [main]}\n  triggers:\n    push:\n      - tags: {includes: ['v*']}\n";
    let found = messages(&with_triggers(twice));
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0], "schema source: duplicate field `triggers`");

    let four = "  triggers:\n    push:\n      - tags: {includes: [a]}\n      - tags: {includes: [b]}\n      - tags: {includes: [c]}\n      - tags: {includes: [d]}\n";
    assert_eq!(
        messages(&with_triggers(four)),
        ["P24 source.triggers.push: the number of filters in a list must be 1 to 3, found 4"]
    );
    let none = "  triggers:\n    pull_request: []\n";
    assert_eq!(
        messages(&with_triggers(none)),
        [
            "P24 source.triggers.pull_request: the number of filters in a list must be 1 to 3, found 0"
        ]
    );
    let both = "  triggers:\n    push:\n      - branches: {includes: [main]}\n    pull_request:\n      - branches: {includes: [main]}\n";
    let pipeline = parse("p.yml", &with_triggers(both)).expect("valid");
    let triggers = pipeline.source.triggers.expect("triggers");
    assert_eq!((triggers.push.len(), triggers.pull_request.len()), (1, 1));
}

#[test]
fn p43_typed_variables_of_a_build_action() {
    let action = "      - name: compile\n        type: build\n        inputs: [Src]\n        env: {PLAIN: x}\n        parameter_store: {DB: /prod/db}\n        secrets_manager: {TOKEN: 'prod/api:token'}\n";
    let text = format!(
        "name: demo\nsource: {{repo: acme/app, branch: main}}\nstages:\n{SOURCE_STAGE}  - name: build\n    actions:\n{action}"
    );
    let pipeline = parse("p.yml", &text).expect("valid");
    let ActionKind::Build(build) = &pipeline.stages[1].actions[0].kind else {
        panic!("a build action");
    };
    assert_eq!(
        build.secret_env,
        [
            (
                "DB".to_owned(),
                SecretSource::ParameterStore("/prod/db".into())
            ),
            (
                "TOKEN".to_owned(),
                SecretSource::SecretsManager("prod/api:token".into())
            ),
        ]
    );
    let twice = text.replace("parameter_store: {DB:", "parameter_store: {PLAIN:");
    assert_eq!(
        messages(&twice),
        [
            "format stages[1].actions[0].parameter_store.PLAIN: duplicate environment variable name `PLAIN` (first at line 12)"
        ]
    );
    let on_approval = text.replace(
        "      - name: compile\n        type: build\n        inputs: [Src]\n        env: {PLAIN: x}\n",
        "      - name: compile\n        type: approval\n",
    );
    let found = messages(&on_approval);
    assert!(
        found
            .iter()
            .any(|m| m.ends_with("`parameter_store` does not apply to approval actions")),
        "{found:#?}"
    );
}
