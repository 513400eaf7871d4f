//! Pipeline files: `load` reads YAML into a checked [`Pipeline`] (spec Section C), reporting
//! every problem with `file:line:column` and a field path; [`resolve_variables`] substitutes
//! `#{namespace.key}` when an action starts; [`digest`] fingerprints the structure.
//!
//! The text is read twice: by `serde_yaml` into `spec` types (unknown keys and wrong types stop
//! there), and into the marked tree of `crate::yaml`, which gives every later problem its
//! location. Keys are `snake_case`, as the issue defines the format, not B3's kebab-case. Nothing
//! past `load` sees a `*Spec` type, and this module does no I/O besides reading the file.

mod conditions;
#[cfg(test)]
mod declaration_tests;
mod deploy;
mod digest;
mod error;
pub mod glob;
mod locate;
mod model;
mod spec;
mod validate;
mod variables;

use std::path::Path;

pub use conditions::*;
pub use deploy::*;
pub use digest::digest;
pub use error::{Counted, NameKind, PipelineError, Problem, ProblemKind};
pub use model::*;
pub use variables::{
    CODEPIPELINE_KEYS, CODEPIPELINE_NAMESPACE, MalformedRef, UnresolvedVariable,
    VARIABLES_NAMESPACE, VariableRef, references, resolve_variables,
};

use self::locate::Locations;
use self::spec::PipelineSpec;
use crate::yaml;

/// Reads and checks a pipeline file; its path is the origin in messages.
pub fn load(path: &Path) -> Result<Pipeline, PipelineError> {
    let text = fs_err::read_to_string(path).map_err(|source| PipelineError::Io {
        path: path.to_owned(),
        source,
    })?;
    parse(&path.display().to_string(), &text)
}

/// Checks pipeline text. `origin` (a path, or `<inline>`) names it in messages.
pub fn parse(origin: &str, text: &str) -> Result<Pipeline, PipelineError> {
    let invalid = |problems: Vec<Problem>| PipelineError::Invalid {
        origin: origin.to_owned(),
        problems,
    };
    let root = yaml::parse(text).map_err(|error| {
        invalid(vec![Problem {
            location: error.location,
            field: String::new(),
            kind: ProblemKind::Syntax {
                message: pipeline_noun(&error.message),
            },
        }])
    })?;
    let spec: PipelineSpec = serde_yaml::from_str(text).map_err(|error| {
        let location = error
            .location()
            .map_or(Location { line: 1, column: 1 }, |at| Location {
                line: at.line(),
                column: at.column(),
            });
        let (field, message) = split_serde_message(&error.to_string());
        invalid(vec![Problem {
            location,
            field,
            kind: ProblemKind::Schema { message },
        }])
    })?;
    let mut problems = Vec::new();
    let locations = Locations::new(&root, &mut problems);
    let mut cx = validate::Ctx::new(&locations, problems);
    let pipeline = validate::pipeline(&mut cx, origin, spec);
    let mut problems = cx.problems;
    if problems.is_empty() {
        return Ok(pipeline);
    }
    problems.sort_by(|a, b| {
        (a.location.line, a.location.column, &a.field).cmp(&(
            b.location.line,
            b.location.column,
            &b.field,
        ))
    });
    // A default shared by many actions reports the same problem once.
    problems.dedup();
    Err(invalid(problems))
}

/// `crate::yaml` was written for buildspecs and says so in two messages.
fn pipeline_noun(message: &str) -> String {
    message
        .replace("the buildspec", "the pipeline file")
        .replace("a buildspec", "a pipeline file")
}

/// `serde_yaml` prints `path: message at line L column C`; the location is kept separately, and
/// the path becomes the problem's field.
fn split_serde_message(text: &str) -> (String, String) {
    let text = match text.rfind(" at line ") {
        Some(index) if text[index..].contains(" column ") => &text[..index],
        _ => text,
    };
    match text.split_once(": ") {
        Some((path, message)) if !path.is_empty() && !path.contains(' ') => {
            (path.to_owned(), message.to_owned())
        }
        _ => (String::new(), text.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use test_case::test_case;

    use super::*;

    /// Two stages: a source and one build. Tests splice their own stages after `stages:`.
    const HEADER: &str = "name: demo\nsource: {repo: acme/app, branch: main}\n";

    fn with_stages(stages: &str) -> String {
        format!("{HEADER}stages:\n{stages}")
    }

    const SOURCE_STAGE: &str =
        "  - name: source\n    actions:\n      - {name: checkout, type: source, outputs: [Src]}\n";

    #[track_caller]
    fn load_ok(text: &str) -> Pipeline {
        parse("pipeline.yml", text).unwrap_or_else(|error| panic!("{error}"))
    }

    #[track_caller]
    fn problems(text: &str) -> Vec<Problem> {
        match parse("pipeline.yml", text) {
            Ok(_) => panic!("expected problems"),
            Err(error) => error.problems().to_vec(),
        }
    }

    /// `field: message` of each problem, for short assertions.
    #[track_caller]
    fn messages(text: &str) -> Vec<String> {
        problems(text)
            .iter()
            .map(|problem| format!("{}: {}", problem.field, problem.kind))
            .collect()
    }

    #[track_caller]
    fn only_problem(text: &str) -> Problem {
        let problems = problems(text);
        assert_eq!(problems.len(), 1, "{problems:#?}");
        problems.into_iter().next().expect("one problem")
    }

    fn at(line: usize, column: usize) -> Location {
        Location { line, column }
    }

    pub(crate) fn futureim_path() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/futureim.yml")
    }

    #[test]
    fn valid_pipeline_loads_with_defaults_applied() {
        let text = "name: demo\nsource:\n  repo: ./repo\n  branch: main\nvariables:\n  - {name: ENV, default: '1.10'}\ndefaults:\n  image: img:1\n  env: {A: one, PORT: 8080}\n  network: host\nstages:\n  - name: source\n    actions:\n      - {name: checkout, type: source, outputs: [Src], namespace: SourceVars}\n  - name: build\n    actions:\n      - name: compile\n        type: build\n        inputs: [Src]\n        env: {A: two, B: '#{variables.ENV}', C: '#{SourceVars.CommitId}'}\n      - {name: gate, type: approval, run_order: 2}\n";
        let pipeline = load_ok(text);
        assert_eq!(pipeline.execution_mode, ExecutionMode::Superseded);
        assert_eq!(pipeline.artifact_store, ArtifactStore::Local);
        assert_eq!(pipeline.source.repo, RepoRef::Path("./repo".into()));
        assert_eq!(pipeline.variables[0].default.as_deref(), Some("1.10"));
        let compile = &pipeline.stages[1].actions[0];
        let ActionKind::Build(build) = &compile.kind else {
            panic!("a build action");
        };
        assert_eq!(
            build.buildspec,
            BuildspecRef::Path("buildspec.yml".to_owned())
        );
        assert_eq!(build.image.as_deref(), Some("img:1"));
        assert_eq!(build.network, Network::Host);
        assert_eq!(build.timeout, Duration::from_secs(3600));
        assert_eq!(build.primary_source, "Src");
        let env: Vec<(&str, &str)> = build
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            env,
            [
                ("A", "two"),
                ("PORT", "8080"),
                ("B", "#{variables.ENV}"),
                ("C", "#{SourceVars.CommitId}")
            ]
        );
        assert_eq!(compile.run_order, 1);
        assert_eq!(compile.location, at(17, 9));
        let producer = ActionId {
            stage: 0,
            action: 0,
        };
        assert_eq!(
            compile.consumes,
            [
                Consumed {
                    producer,
                    item: ConsumedItem::Artifact("Src".to_owned())
                },
                Consumed {
                    producer,
                    item: ConsumedItem::Variables("SourceVars".to_owned())
                },
            ]
        );
        let gate = &pipeline.stages[1].actions[1];
        assert_eq!(
            gate.kind,
            ActionKind::Approval(ApprovalAction {
                timeout: Duration::from_secs(7 * 24 * 3600)
            })
        );
        assert_eq!(gate.run_order, 2);
    }

    #[test]
    fn futureim_pipeline_loads() {
        let pipeline = load(&futureim_path()).unwrap_or_else(|error| panic!("{error}"));
        let stages: Vec<&str> = pipeline
            .stages
            .iter()
            .map(|stage| stage.name.as_str())
            .collect();
        assert_eq!(
            stages,
            [
                "source",
                "infrastructure",
                "build-lambdas",
                "build-frontend"
            ]
        );
        assert_eq!(
            pipeline.source.repo,
            RepoRef::GitHub {
                owner: "futureimadmin".to_owned(),
                name: "hackathons".to_owned()
            }
        );
        assert!(matches!(pipeline.artifact_store, ArtifactStore::S3 { .. }));
        let lambdas = &pipeline.stages[2].actions;
        assert_eq!((lambdas[0].run_order, lambdas[1].run_order), (1, 1));
    }

    #[test]
    fn missing_file_names_the_path() {
        let error = load(Path::new("/nonexistent/pipeline.yml")).expect_err("missing");
        assert_eq!(
            error.to_string(),
            "find pipeline file /nonexistent/pipeline.yml"
        );
    }

    #[test]
    fn unknown_key_has_its_location() {
        let text = with_stages(
            "  - name: source\n    actions:\n      - name: checkout\n        type: source\n        outputz: [Src]\n",
        );
        let problem = only_problem(&text);
        assert_eq!(problem.location, at(8, 9));
        assert_eq!(problem.field, "stages[0].actions[0]");
        assert_eq!(problem.kind.rule(), "schema");
        assert!(
            problem
                .kind
                .to_string()
                .starts_with("unknown field `outputz`, expected one of"),
            "{}",
            problem.kind
        );
    }

    #[test]
    fn wrong_type_has_its_location() {
        let text = with_stages(
            "  - name: source\n    actions:\n      - {name: checkout, type: source, outputs: Src}\n",
        );
        let error = parse("p.yml", &text).expect_err("wrong type");
        assert_eq!(
            error.to_string(),
            "p.yml:6:49: stages[0].actions[0].outputs: invalid type: string \"Src\", expected a sequence"
        );
    }

    #[test]
    fn action_that_is_not_a_mapping_says_what_is_expected() {
        let text = with_stages("  - name: source\n    actions:\n      - checkout\n");
        let error = parse("p.yml", &text).expect_err("wrong type");
        assert_eq!(
            error.to_string(),
            "p.yml:6:9: stages[0].actions[0]: invalid type: string \"checkout\", expected an action: a mapping with `name`, `type` and its settings"
        );
    }

    #[test]
    fn malformed_yaml_has_its_location() {
        let error = parse("p.yml", "name: demo\nstages: [\n").expect_err("malformed");
        assert_eq!(error.problems()[0].kind.rule(), "yaml");
        assert!(error.to_string().starts_with("p.yml:3:1: "), "{error}");
    }

    #[test]
    fn empty_file_is_reported_as_a_pipeline_file() {
        let error = parse("p.yml", "# nothing\n").expect_err("empty");
        assert_eq!(error.to_string(), "p.yml:1:1: the pipeline file is empty");
    }

    #[test]
    fn duplicate_env_key_is_reported() {
        let text = with_stages(&format!(
            "{SOURCE_STAGE}  - name: build\n    actions:\n      - name: compile\n        type: build\n        inputs: [Src]\n        env:\n          A: 1\n          A: 2\n"
        ));
        let problem = only_problem(&text);
        assert_eq!(
            (problem.location, problem.field.as_str()),
            (at(14, 11), "stages[1].actions[0].env.A")
        );
        assert_eq!(
            problem.kind.to_string(),
            "duplicate key `A` (first defined at line 13)"
        );
    }

    #[test]
    fn missing_required_keys_are_all_reported() {
        let messages = messages("execution_mode: fast\n");
        assert_eq!(
            messages,
            [
                "name: `name` is required",
                "source: `source` is required",
                "stages: `stages` is required",
                "execution_mode: unknown execution_mode `fast`, expected one of: superseded, queued, parallel",
            ]
        );
    }

    #[test]
    fn p2_stage_count() {
        let problem = only_problem(&with_stages(SOURCE_STAGE));
        assert_eq!(problem.kind.rule(), "P2");
        assert_eq!(
            problem.kind.to_string(),
            "the number of stages must be 2 to 50, found 1"
        );
    }

    #[test]
    fn p2_source_only_in_first_stage() {
        let text = with_stages(
            "  - name: first\n    actions:\n      - {name: gate, type: approval}\n  - name: second\n    actions:\n      - {name: checkout, type: source, outputs: [Src]}\n",
        );
        assert_eq!(
            messages(&text),
            [
                "stages[0].actions[0].type: the first stage may hold only source actions, found an approval action",
                "stages[1].actions[0].type: source actions are only allowed in the first stage",
            ]
        );
    }

    #[test]
    fn p2_stage_names_unique() {
        let text = with_stages(&format!(
            "{SOURCE_STAGE}  - name: source\n    actions:\n      - {{name: gate, type: approval}}\n"
        ));
        let problem = only_problem(&text);
        assert_eq!(
            problem.kind.to_string(),
            "duplicate stage name `source` (first at line 4)"
        );
        assert_eq!(problem.location, at(7, 11));
    }

    #[test]
    fn p3_action_names_unique_in_a_stage() {
        let text = with_stages(&format!(
            "{SOURCE_STAGE}  - name: gates\n    actions:\n      - {{name: gate, type: approval}}\n      - {{name: gate, type: approval}}\n"
        ));
        let problem = only_problem(&text);
        assert_eq!(problem.field, "stages[1].actions[1].name");
        assert_eq!(problem.kind.rule(), "P3");
    }

    #[test]
    fn p3_stage_needs_an_action() {
        let text = with_stages(&format!("{SOURCE_STAGE}  - name: empty\n    actions: []\n"));
        assert_eq!(
            messages(&text),
            ["stages[1].actions: the number of actions in a stage must be 1 to 50, found 0"]
        );
    }

    #[test_case("name: 'bad name'", "stages[1].actions[0].name: action name `bad name` must match `[A-Za-z0-9.@\\-_]{1,100}`" ; "action name")]
    #[test_case("name: gate, outputs: [Out.zip]", "stages[1].actions[0].outputs[0]: artifact name `Out.zip` must match `[A-Za-z0-9_\\-]{1,100}`" ; "artifact name")]
    #[test_case("name: gate, namespace: 'a.b'", "stages[1].actions[0].namespace: namespace name `a.b` must match `[A-Za-z0-9@\\-_]{1,100}`" ; "namespace name")]
    fn p3_name_patterns(fields: &str, expected: &str) {
        let text = with_stages(&format!(
            "{SOURCE_STAGE}  - name: gates\n    actions:\n      - {{{fields}, type: approval}}\n"
        ));
        let messages = messages(&text);
        assert!(
            messages.iter().any(|message| message == expected),
            "{messages:#?}"
        );
    }

    /// A source stage, then `stage` (a YAML list item of stages).
    fn pipeline_with(stage: &str) -> String {
        with_stages(&format!("{SOURCE_STAGE}{stage}"))
    }

    #[test]
    fn p6_output_names_unique() {
        let text = pipeline_with(
            "  - name: build\n    actions:\n      - {name: a, type: build, inputs: [Src], outputs: [Src]}\n",
        );
        let problem = only_problem(&text);
        assert_eq!(problem.field, "stages[1].actions[0].outputs[0]");
        assert_eq!(
            problem.kind.to_string(),
            "duplicate artifact name `Src` (first at line 6)"
        );
    }

    #[test]
    fn p6_unknown_artifact() {
        let text = pipeline_with(
            "  - name: build\n    actions:\n      - {name: a, type: build, inputs: [Nope]}\n",
        );
        let problem = only_problem(&text);
        assert_eq!(
            (problem.location, problem.field.as_str()),
            (at(9, 41), "stages[1].actions[0].inputs[0]")
        );
        assert_eq!(
            problem.kind,
            ProblemKind::UnknownArtifact {
                name: "Nope".to_owned()
            }
        );
    }

    #[test_case(1, 1 ; "same run order")]
    #[test_case(2, 1 ; "higher run order")]
    fn p6_input_before_produced(producer: u32, consumer: u32) {
        let text = pipeline_with(&format!(
            "  - name: build\n    actions:\n      - {{name: a, type: build, inputs: [Src], outputs: [Out], run_order: {producer}}}\n      - {{name: b, type: build, inputs: [Out], run_order: {consumer}}}\n"
        ));
        let problem = only_problem(&text);
        assert_eq!(problem.field, "stages[1].actions[1].inputs[0]");
        assert_eq!(
            problem.kind,
            ProblemKind::InputBeforeProduced {
                name: "Out".to_owned(),
                producer: "build.a".to_owned()
            }
        );
    }

    #[test]
    fn p6_input_from_a_later_stage() {
        let text = pipeline_with(
            "  - name: one\n    actions:\n      - {name: a, type: build, inputs: [Src, Late], primary_source: Src}\n  - name: two\n    actions:\n      - {name: b, type: build, inputs: [Src], outputs: [Late]}\n",
        );
        let problem = only_problem(&text);
        assert_eq!(problem.kind.rule(), "P6");
        assert!(matches!(
            problem.kind,
            ProblemKind::InputBeforeProduced { .. }
        ));
    }

    #[test]
    fn p7_namespace_clashes_with_artifact() {
        let text = pipeline_with(
            "  - name: build\n    actions:\n      - {name: a, type: build, inputs: [Src], namespace: Src}\n",
        );
        let problem = only_problem(&text);
        assert_eq!(problem.field, "stages[1].actions[0].namespace");
        assert_eq!(
            problem.kind,
            ProblemKind::NamespaceIsArtifact {
                namespace: "Src".to_owned()
            }
        );
    }

    #[test]
    fn p7_namespaces_unique_and_not_reserved() {
        let text = pipeline_with(
            "  - name: build\n    actions:\n      - {name: a, type: build, inputs: [Src], namespace: Vars}\n      - {name: b, type: build, inputs: [Src], namespace: Vars}\n      - {name: c, type: build, inputs: [Src], namespace: variables}\n",
        );
        let rules: Vec<String> = problems(&text)
            .iter()
            .map(|p| format!("{} {}", p.kind.rule(), p.kind))
            .collect();
        assert_eq!(
            rules,
            [
                "P7 duplicate namespace name `Vars` (first at line 9)",
                "P7 namespace `variables` is reserved",
            ]
        );
    }

    #[test]
    fn p8_build_needs_primary_source_with_two_inputs() {
        let text = pipeline_with(
            "  - name: build\n    actions:\n      - {name: a, type: build, inputs: [Src], outputs: [Other]}\n      - {name: b, type: build, inputs: [Src, Other], run_order: 2}\n",
        );
        let problem = only_problem(&text);
        assert_eq!(problem.field, "stages[1].actions[1].inputs");
        assert_eq!(problem.kind, ProblemKind::PrimarySourceRequired);
    }

    #[test]
    fn p8_primary_source_must_be_an_input() {
        let text = pipeline_with(
            "  - name: build\n    actions:\n      - {name: a, type: build, inputs: [Src], primary_source: Other}\n",
        );
        assert_eq!(
            only_problem(&text).kind,
            ProblemKind::PrimarySourceNotInput {
                name: "Other".to_owned()
            }
        );
    }

    #[test_case("{name: a, type: build}", "stages[1].actions[0].inputs: the number of inputs of a build action must be 1 to 5, found 0" ; "build without input")]
    #[test_case("{name: a, type: build, inputs: [Src], outputs: [A, B, C, D, E, F]}", "stages[1].actions[0].outputs: the number of outputs of a build action must be 0 to 5, found 6" ; "build with six outputs")]
    #[test_case("{name: a, type: approval, inputs: [Src]}", "stages[1].actions[0].inputs: the number of inputs of an approval action must be exactly 0, found 1" ; "approval with input")]
    fn p8_artifact_counts(action: &str, expected: &str) {
        let text = pipeline_with(&format!(
            "  - name: build\n    actions:\n      - {action}\n"
        ));
        assert_eq!(messages(&text), [expected]);
    }

    #[test]
    fn p8_source_has_exactly_one_output() {
        let text = with_stages(
            "  - name: source\n    actions:\n      - {name: checkout, type: source}\n  - name: gate\n    actions:\n      - {name: gate, type: approval}\n",
        );
        assert_eq!(
            messages(&text),
            [
                "stages[0].actions[0].outputs: the number of outputs of a source action must be exactly 1, found 0"
            ]
        );
    }

    #[test_case("0" ; "zero")]
    #[test_case("-1" ; "negative")]
    #[test_case("1000" ; "above 999")]
    fn p9_run_order_is_positive(run_order: &str) {
        let text = pipeline_with(&format!(
            "  - name: gate\n    actions:\n      - {{name: gate, type: approval, run_order: {run_order}}}\n"
        ));
        let problem = only_problem(&text);
        assert_eq!(problem.kind.rule(), "P9");
        assert_eq!(problem.field, "stages[1].actions[0].run_order");
    }

    #[test]
    fn d10_dash_in_secondary_input_rejected() {
        let text = pipeline_with(
            "  - name: one\n    actions:\n      - {name: a, type: build, inputs: [Src], outputs: [my_src]}\n      - {name: b, type: build, inputs: [Src], outputs: [ok-out], run_order: 1}\n  - name: two\n    actions:\n      - {name: c, type: build, inputs: [Src, ok-out], primary_source: Src}\n      - {name: d, type: build, inputs: [ok-out, Src], primary_source: ok-out}\n",
        );
        assert_eq!(
            messages(&text),
            [
                "stages[1].actions[1].outputs[0]: output `ok-out` of a build action may not contain `-`: CodeBuild source and artifact identifiers are `[A-Za-z0-9_]`",
                "stages[2].actions[0].inputs[1]: secondary input `ok-out` of a build action may not contain `-`: CodeBuild source and artifact identifiers are `[A-Za-z0-9_]`",
            ]
        );
    }

    fn with_triggers(triggers: &str) -> String {
        format!(
            "name: demo\nsource:\n  repo: acme/app\n  branch: main\n  triggers:\n{triggers}stages:\n{SOURCE_STAGE}  - name: gate\n    actions:\n      - {{name: gate, type: approval}}\n"
        )
    }

    #[test_case("    push:\n      - tags: {includes: ['v*']}\n" ; "tags")]
    #[test_case("    push:\n      - branches: {includes: [main]}\n" ; "branches")]
    #[test_case("    push:\n      - branches: {excludes: ['old/**']}\n        file_paths: {includes: ['src/**']}\n" ; "branches with file paths")]
    #[test_case("    pull_request:\n      - branches: {includes: [main]}\n        events: [open, closed]\n" ; "pull request")]
    fn p25_valid_filter_combinations(triggers: &str) {
        load_ok(&with_triggers(triggers));
    }

    #[test_case("    push:\n      - tags: {includes: ['v*']}\n        branches: {includes: [main]}\n", "source.triggers.push[0]: a push filter takes `tags`, `branches`, or `branches` with `file_paths`; found `tags` with `branches`" ; "tags with branches")]
    #[test_case("    push:\n      - file_paths: {includes: ['src/**']}\n", "source.triggers.push[0]: a push filter takes `tags`, `branches`, or `branches` with `file_paths`; found `file_paths`" ; "file paths alone")]
    #[test_case("    pull_request:\n      - file_paths: {includes: ['src/**']}\n", "source.triggers.pull_request[0]: a pull_request filter takes `branches`, or `branches` with `file_paths` (and optionally `events`); found `file_paths`" ; "pull request without branches")]
    #[test_case("    pull_request:\n      - branches: {includes: [main]}\n        events: [open, merged, open]\n", "source.triggers.pull_request[0].events[1]: unknown event `merged`, expected one of: open, updated, closed" ; "unknown event")]
    #[test_case("    push:\n      - branches: {}\n", "source.triggers.push[0].branches: a filter criterion needs `includes` or `excludes`" ; "empty criterion")]
    #[test_case("    push:\n      - branches: {includes: [a, b, c, d, e, f, g, h, i]}\n", "source.triggers.push[0].branches.includes: the number of patterns in a list must be 1 to 8, found 9" ; "nine patterns")]
    fn p25_filter_rules(triggers: &str, expected: &str) {
        let messages = messages(&with_triggers(triggers));
        assert_eq!(messages[0], expected, "{messages:#?}");
        assert!(
            problems(&with_triggers(triggers))
                .iter()
                .all(|p| p.kind.rule() == "P25")
        );
    }

    #[test]
    fn p25_duplicate_event() {
        let text = with_triggers(
            "    pull_request:\n      - branches: {includes: [main]}\n        events: [open, open]\n",
        );
        assert_eq!(
            only_problem(&text).kind,
            ProblemKind::DuplicateEvent {
                event: "open".to_owned()
            }
        );
    }

    #[test]
    fn p25_pull_request_events_default_to_all() {
        let pipeline = load_ok(&with_triggers(
            "    pull_request:\n      - branches: {includes: [main]}\n",
        ));
        let triggers = pipeline.source.triggers.expect("triggers");
        assert_eq!(triggers.pull_request[0].events.len(), 3);
    }

    #[test_case("'release/[z-a]'", "invalid pattern `release/[z-a]`: invalid range in character class at offset 10" ; "bad range")]
    #[test_case("'{a,{b}}'", "invalid pattern `{a,{b}}`: groups (`{a,b}`) cannot be nested" ; "nested group")]
    #[test_case("''", "a pattern must not be empty" ; "empty")]
    fn p26_glob_invalid_in_filter(pattern: &str, expected: &str) {
        let text = with_triggers(&format!(
            "    push:\n      - branches: {{includes: [{pattern}]}}\n"
        ));
        let problem = only_problem(&text);
        assert_eq!(
            (problem.kind.rule(), problem.kind.to_string().as_str()),
            ("P26", expected)
        );
        assert_eq!(
            problem.field,
            "source.triggers.push[0].branches.includes[0]"
        );
    }

    #[test]
    fn p27_e15_filter_matches() {
        let text = with_triggers(
            "    push:\n      - branches: {includes: ['release/**'], excludes: ['release/old*']}\n        file_paths: {includes: ['src/**']}\n",
        );
        let triggers = load_ok(&text).source.triggers.expect("triggers");
        let PushFilter::Branches {
            branches,
            file_paths,
        } = &triggers.push[0]
        else {
            panic!("a branches filter");
        };
        let file_paths = file_paths.as_ref().expect("file paths");
        assert!(branches.is_match("release/1.0") && file_paths.is_match("src/a.rs"));
        assert!(!branches.is_match("release/old-1"), "exclude beats include");
        assert!(!file_paths.is_match("docs/x.md"));
    }

    fn build_with_env(value: &str) -> String {
        pipeline_with(&format!(
            "  - name: build\n    actions:\n      - name: a\n        type: build\n        inputs: [Src]\n        env: {{X: '{value}'}}\n"
        ))
    }

    #[test_case("#{codepipeline.PipelineExecutionId}" ; "execution id")]
    #[test_case("#{SourceVariables.CommitId}-x" ; "source variable")]
    #[test_case("#{variables.ENVIRONMENT}" ; "pipeline variable")]
    fn p31_known_references(value: &str) {
        let text = build_with_env(value)
            .replace(
                "outputs: [Src]}",
                "outputs: [Src], namespace: SourceVariables}",
            )
            .replace("stages:\n", "variables: [{name: ENVIRONMENT}]\nstages:\n");
        load_ok(&text);
    }

    #[test_case("#{codepipeline.ExecutionId}", "`codepipeline` has no variable `ExecutionId`, expected one of: PipelineExecutionId" ; "unknown codepipeline key")]
    #[test_case("#{variables}", "malformed variable reference `#{variables}`: expected `#{namespace.key}`" ; "malformed")]
    #[test_case("x #{variables.X", "malformed variable reference `#{variables.X`: no closing `}`" ; "unterminated")]
    fn p31_bad_references(value: &str, expected: &str) {
        let problem = only_problem(&build_with_env(value));
        assert_eq!(
            (problem.kind.rule(), problem.kind.to_string().as_str()),
            ("P31", expected)
        );
        assert_eq!(problem.field, "stages[1].actions[0].env.X");
    }

    #[test]
    fn p31_source_variable_keys_are_fixed() {
        let text = build_with_env("#{SourceVariables.Commit}").replace(
            "outputs: [Src]}",
            "outputs: [Src], namespace: SourceVariables}",
        );
        let problem = only_problem(&text);
        assert!(
            matches!(problem.kind, ProblemKind::UnknownVariableKey { .. }),
            "{problem:?}"
        );
    }

    #[test]
    fn p31_references_in_buildspec_paths_are_checked() {
        let text = pipeline_with(
            "  - name: build\n    actions:\n      - {name: a, type: build, inputs: [Src], buildspec: 'ci/#{variables.NOPE}.yml'}\n",
        );
        assert_eq!(
            only_problem(&text).kind,
            ProblemKind::UnknownPipelineVariable {
                name: "NOPE".to_owned()
            }
        );
    }

    #[test]
    fn p32_unknown_namespace_rejected() {
        let problem = only_problem(&build_with_env("#{Nowhere.KEY}"));
        assert_eq!(problem.kind.rule(), "P32");
        assert_eq!(
            problem.kind.to_string(),
            "unknown namespace `Nowhere` in `#{Nowhere.KEY}`: no action declares it"
        );
    }

    #[test]
    fn p32_namespace_from_later_action_rejected() {
        let text = pipeline_with(
            "  - name: build\n    actions:\n      - {name: a, type: build, inputs: [Src], env: {V: '#{LaterVars.VER}'}}\n      - {name: b, type: build, inputs: [Src], namespace: LaterVars}\n",
        );
        let problem = only_problem(&text);
        assert_eq!(problem.field, "stages[1].actions[0].env.V");
        assert_eq!(
            problem.kind,
            ProblemKind::VariableFromLaterAction {
                namespace: "LaterVars".to_owned(),
                producer: "build.b".to_owned()
            }
        );
    }

    #[test]
    fn p32_namespace_from_lower_run_order_accepted() {
        let text = pipeline_with(
            "  - name: build\n    actions:\n      - {name: a, type: build, inputs: [Src], env: {V: '#{EarlyVars.VER}'}, run_order: 2}\n      - {name: b, type: build, inputs: [Src], namespace: EarlyVars}\n",
        );
        let pipeline = load_ok(&text);
        let consumes = &pipeline.stages[1].actions[0].consumes;
        assert!(consumes.contains(&Consumed {
            producer: ActionId {
                stage: 1,
                action: 1
            },
            item: ConsumedItem::Variables("EarlyVars".to_owned()),
        }));
    }

    #[test]
    fn p33_variable_rules() {
        let long = "x".repeat(1001);
        let text = build_with_env("#{variables.A}").replace(
            "stages:\n",
            &format!("variables:\n  - {{name: A, default: {long}}}\n  - {{name: A}}\n  - {{name: 'b c'}}\n  - {{name: D, default: ''}}\nstages:\n"),
        );
        let messages: Vec<String> = problems(&text)
            .iter()
            .map(|p| format!("{} {}", p.kind.rule(), p.field))
            .collect();
        assert_eq!(
            messages,
            [
                "P33 variables[0].default",
                "P33 variables[1].name",
                "P33 variables[2].name",
                "format variables[3].default"
            ]
        );
    }

    #[test]
    fn depends_on_resolves_to_earlier_actions() {
        let text = pipeline_with(
            "  - name: infra\n    actions:\n      - {name: tf, type: build, inputs: [Src]}\n  - name: lambdas\n    actions:\n      - {name: java, type: build, inputs: [Src]}\n  - name: web\n    actions:\n      - {name: frontend, type: build, inputs: [Src], depends_on: [infra.tf]}\n",
        );
        let pipeline = load_ok(&text);
        assert_eq!(
            pipeline.stages[3].actions[0].depends_on,
            Some(vec![ActionId {
                stage: 1,
                action: 0
            }])
        );
        assert_eq!(pipeline.stages[2].actions[0].depends_on, None);
    }

    #[test_case("[nope.tf]", "unknown action `nope.tf`: expected `stage.action`" ; "unknown")]
    #[test_case("[web.other]", "`web.other` is not in an earlier stage; depends_on may only name actions of earlier stages" ; "same stage")]
    #[test_case("[infra.tf, infra.tf]", "`infra.tf` is listed twice" ; "twice")]
    fn depends_on_rules(depends_on: &str, expected: &str) {
        let text = pipeline_with(&format!(
            "  - name: infra\n    actions:\n      - {{name: tf, type: build, inputs: [Src]}}\n  - name: web\n    actions:\n      - {{name: other, type: approval}}\n      - {{name: frontend, type: build, inputs: [Src], depends_on: {depends_on}}}\n"
        ));
        assert_eq!(only_problem(&text).kind.to_string(), expected);
    }

    #[test]
    fn depends_on_with_dotted_names_is_ambiguous_only_when_it_is() {
        let text = pipeline_with(
            "  - name: a\n    actions:\n      - {name: b.c, type: approval}\n  - name: a.b\n    actions:\n      - {name: c, type: approval}\n  - name: d\n    actions:\n      - {name: e, type: approval, depends_on: [a.b.c]}\n",
        );
        assert_eq!(
            only_problem(&text).kind,
            ProblemKind::AmbiguousAction {
                reference: "a.b.c".to_owned()
            }
        );
    }

    #[test_case("{name: a, type: deploy}", "stages[1].actions[0].type: unknown action type `deploy`, expected one of: source, build, approval, lambda-deploy, s3-deploy" ; "unknown type")]
    #[test_case("{name: a, type: approval, image: x}", "stages[1].actions[0].image: `image` does not apply to approval actions" ; "key of another type")]
    #[test_case("{name: a, type: build, inputs: [Src], buildspec: b.yml, buildspec_inline: 'version: 0.2'}", "stages[1].actions[0].buildspec_inline: `buildspec` and `buildspec_inline` are mutually exclusive" ; "two buildspecs")]
    #[test_case("{name: a, type: build, inputs: [Src], buildspec: ../b.yml}", "stages[1].actions[0].buildspec: buildspec path `../b.yml` must be relative to the primary input and stay inside it" ; "buildspec outside")]
    #[test_case("{name: a, type: build, inputs: [Src], timeout: 60}", "stages[1].actions[0].timeout: invalid timeout `60`: time unit needed, for example 60sec or 60ms" ; "timeout without unit")]
    #[test_case("{name: a, type: build, inputs: [Src], timeout: 9h}", "stages[1].actions[0].timeout: invalid timeout `9h`: must be at most 8h" ; "timeout too long")]
    #[test_case("{name: a, type: build, inputs: [Src], network: bridged}", "stages[1].actions[0].network: unknown network `bridged`, expected one of: bridge, host, none" ; "unknown network")]
    #[test_case("{name: a, type: build, inputs: [Src], env: {CODEBUILD_X: y}}", "stages[1].actions[0].env.CODEBUILD_X: environment variable `CODEBUILD_X` may not start with `CODEBUILD_`" ; "codebuild prefix")]
    fn action_settings(action: &str, expected: &str) {
        let text = pipeline_with(&format!(
            "  - name: build\n    actions:\n      - {action}\n"
        ));
        assert_eq!(messages(&text), [expected]);
    }

    #[test]
    fn inline_buildspec_is_kept() {
        let text = pipeline_with(
            "  - name: build\n    actions:\n      - name: a\n        type: build\n        inputs: [Src]\n        buildspec_inline: |\n          version: 0.2\n          phases: {build: {commands: [echo hi]}}\n",
        );
        let pipeline = load_ok(&text);
        let ActionKind::Build(build) = &pipeline.stages[1].actions[0].kind else {
            panic!("a build action");
        };
        assert!(
            matches!(&build.buildspec, BuildspecRef::Inline(text) if text.starts_with("version: 0.2\n"))
        );
    }

    #[test]
    fn artifact_store_rules() {
        let text = format!(
            "{HEADER}artifact_store: {{type: local, bucket: b}}\nstages:\n{SOURCE_STAGE}  - name: g\n    actions:\n      - {{name: g, type: approval}}\n"
        );
        assert_eq!(
            messages(&text),
            ["artifact_store.bucket: `bucket` does not apply to a local artifact store"]
        );
        let text = text.replace("type: local, bucket: b", "type: s3, bucket: Bad_Bucket");
        assert_eq!(
            only_problem(&text).kind,
            ProblemKind::InvalidBucket {
                bucket: "Bad_Bucket".to_owned()
            }
        );
        let text = text.replace("bucket: Bad_Bucket", "prefix: p");
        assert_eq!(
            messages(&text),
            ["artifact_store.bucket: `bucket` is required"]
        );
    }

    #[test]
    fn source_rules() {
        let text = with_stages(SOURCE_STAGE)
            .replace("repo: acme/app, branch: main", "repo: app, branch: 'a..b'");
        let messages = messages(&text);
        assert_eq!(
            &messages[..2],
            [
                "source.repo: repo `app` is not `owner/name`, a git URL or a local path (absolute, or starting with `./`, `../` or `~/`)",
                "source.branch: branch `a..b` is not a valid git branch name",
            ]
        );
    }

    /// Every kind of problem at once: the full list, each with `file:line:column`.
    #[test]
    fn broken_pipeline_reports_every_problem() {
        let text = r"name: broken pipeline
source:
  repo: acme/app
  branch: main
  triggers:
    push:
      - tags: {includes: ['v[9-0]']}
        file_paths: {includes: ['src/**']}
execution_mode: eventually
variables:
  - name: ENV
  - name: ENV
defaults:
  timeout: forever
  env: {AWS_REGION: '#{variables.REGION}'}
stages:
  - name: source
    actions:
      - {name: checkout, type: source, outputs: [Src], namespace: Src}
      - {name: lint, type: build, inputs: [Src]}
  - name: build
    actions:
      - name: compile
        type: build
        inputs: [Src, Generated, Missing]
        outputs: [Bin-out]
        run_order: 0
      - name: generate
        type: build
        inputs: [Src]
        outputs: [Generated, Src]
        namespace: GenVars
        depends_on: [deploy.ship]
      - name: compile
        type: approval
        env: {A: b}
  - name: deploy
    actions:
      - name: ship
        type: ecs-deploy
      - name: publish
        type: build
        inputs: [Bin-out]
        env: {VERSION: '#{GenVars.VERSION}', ID: '#{codepipeline.ExecutionId}'}
";
        let error = parse("broken.yml", text).expect_err("broken");
        insta::assert_snapshot!("broken_pipeline_problems", error.to_string());
        let rules: Vec<&str> = error.problems().iter().map(|p| p.kind.rule()).collect();
        insta::assert_snapshot!("broken_pipeline_rules", rules.join(" "));
    }

    #[test]
    fn digest_is_stable_across_layout_and_changes_with_structure() {
        let block = pipeline_with(
            "  - name: build\n    actions:\n      - name: a\n        type: build\n        inputs: [Src]\n",
        );
        let flow = format!(
            "# a comment\n{}",
            pipeline_with("  - {name: build, actions: [{name: a, type: build, inputs: [Src]}]}\n")
        );
        let (one, two) = (digest(&load_ok(&block)), digest(&load_ok(&flow)));
        assert_eq!(one, two);
        assert_eq!(one.len(), 64);
        assert!(one.chars().all(|c| c.is_ascii_hexdigit()));
        let changed = digest(&load_ok(
            &block.replace("inputs: [Src]\n", "inputs: [Src]\n        image: other\n"),
        ));
        assert_ne!(one, changed);
        let triggers = block.replace(
            "branch: main}",
            "branch: main, triggers: {push: [{tags: {includes: ['v*']}}]}}",
        );
        assert_eq!(
            digest(&load_ok(&triggers)),
            one,
            "triggers do not change what executions run"
        );
    }
}
