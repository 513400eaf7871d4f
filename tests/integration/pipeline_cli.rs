//! Pipeline files without Docker: `runner graph` and `runner validate` on the bundled pipelines,
//! and broken pipelines refused by `validate` (exit 1) and `run` (exit 2) with
//! `file:line:column: field: message` (P2, P3, P6, P9).

use crate::support::pipeline::Pipeline;
use crate::support::repo_root;

fn bundled(args: &[&str]) -> crate::support::pipeline::Exited {
    let pipeline = Pipeline::bundled_example();
    pipeline.run(args)
}

#[test]
fn graph_prints_the_example_as_a_tree() {
    let ran = bundled(&["graph", "pipelines/example.yml"]);
    ran.code(0);
    assert_eq!(
        ran.stdout,
        "example (superseded)
├── source
│   └── [1] checkout (source): - → SourceOutput
├── infrastructure
│   └── [1] terraform (build): SourceOutput → InfraOutput, namespace InfraVars
├── build-lambdas
│   ├── [1] auth (build): SourceOutput → AuthPackage, namespace AuthVars
│   └── [1] recommender (build): SourceOutput → RecommenderPackage, namespace RecommenderVars
└── build-frontend
    └── [1] site (build): SourceOutput, AuthPackage → SiteOutput
"
    );
}

#[test]
fn graph_prints_the_example_as_dot() {
    let ran = bundled(&["graph", "--format", "dot", "pipelines/example.yml"]);
    ran.code(0);
    let dot = &ran.stdout;
    assert!(dot.starts_with("digraph \"example\" {\n"), "{dot}");
    assert!(dot.trim_end().ends_with('}'), "{dot}");
    for stage in [
        "source",
        "infrastructure",
        "build-lambdas",
        "build-frontend",
    ] {
        assert!(
            dot.contains(&format!("label=\"{stage}\";")),
            "{stage}: {dot}"
        );
    }
    // The two lambdas are parallel: each waits only for terraform, and the site waits for both.
    for edge in [
        "\"source.checkout\" -> \"infrastructure.terraform\" [label=\"SourceOutput\"];",
        "\"infrastructure.terraform\" -> \"build-lambdas.auth\";",
        "\"infrastructure.terraform\" -> \"build-lambdas.recommender\";",
        "\"build-lambdas.auth\" -> \"build-frontend.site\" [label=\"AuthPackage\"];",
        "\"build-lambdas.recommender\" -> \"build-frontend.site\";",
    ] {
        assert!(dot.contains(edge), "{edge}: {dot}");
    }
    assert_eq!(dot.matches(" -> ").count(), 5, "{dot}");
}

#[test]
fn graph_prints_the_example_as_mermaid() {
    let ran = bundled(&["graph", "--format", "mermaid", "pipelines/example.yml"]);
    ran.code(0);
    let text = &ran.stdout;
    assert!(text.starts_with("flowchart LR\n"), "{text}");
    for line in [
        "  subgraph s2[\"build-lambdas\"]",
        "    a2_0[\"auth (build)\"]",
        "    a2_1[\"recommender (build)\"]",
        "  a1_0 --> a2_0",
        "  a1_0 --> a2_1",
        "  a2_0 -->|\"AuthPackage\"| a3_0",
    ] {
        assert!(text.lines().any(|l| l == line), "{line}: {text}");
    }
}

#[test]
fn validate_accepts_the_futureim_pipeline() {
    let ran = bundled(&["validate", "pipelines/futureim.yml"]);
    ran.code(0);
    assert_eq!(
        ran.stdout,
        "pipelines/futureim.yml: valid pipeline futureim (4 stages, 5 actions)\n"
    );
    let graph = bundled(&["graph", "pipelines/futureim.yml"]);
    graph.code(0);
    let stages: Vec<&str> = graph
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("├── ").or_else(|| l.strip_prefix("└── ")))
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
    assert!(
        graph
            .stdout
            .contains("[1] java-lambdas (build): SourceOutput → JavaLambdaOutput"),
        "{}",
        graph.stdout
    );
}

#[test]
fn validate_accepts_the_example_pipeline() {
    let ran = bundled(&["validate", "pipelines/example.yml"]);
    ran.code(0);
    assert_eq!(
        ran.stdout,
        "pipelines/example.yml: valid pipeline example (4 stages, 5 actions)\n"
    );
    assert!(repo_root().join("pipelines/example.yml").is_file());
}

/// A good two-stage pipeline with `STAGE` standing for the second stage's actions.
fn broken(build_stage: &str) -> Pipeline {
    let text = format!(
        "name: broken
source:
  repo: ./src
  branch: main
stages:
  - name: source
    actions:
      - name: checkout
        type: source
        outputs: [Src]
  - name: build
    actions:
{build_stage}  - name: ship
    actions:
      - name: deploy
        type: approval
"
    );
    Pipeline::new(&text)
}

/// `validate` exits 1 and `run` exits 2, both printing exactly `expected` (after `error: `),
/// with the pipeline file's path in front of each problem; nothing is recorded.
#[track_caller]
fn refused(pipeline: &Pipeline, expected: &[&str]) {
    let file = pipeline.pipeline_file().display().to_string();
    let lines: Vec<String> = expected.iter().map(|l| format!("{file}:{l}")).collect();
    let want = format!("error: {}\n", lines.join("\n"));
    let validate = pipeline.run(["validate", "{pipeline}"]);
    validate.code(1);
    assert_eq!(validate.stderr, want, "validate");
    assert_eq!(validate.stdout, "");
    let run = pipeline.run_pipeline(&[]);
    run.code(2);
    assert_eq!(run.stderr, want, "run");
    run.stdout_lacks("==> execution");
    assert!(
        !pipeline.data().join("state.db").exists(),
        "a refused pipeline must not reach the state database"
    );
}

#[test]
fn p6_a_cycle_between_two_actions_is_refused() {
    let pipeline = broken(
        "      - name: a
        type: build
        inputs: [Src, FromB]
        primary_source: Src
        outputs: [FromA]
      - name: b
        type: build
        inputs: [Src, FromA]
        primary_source: Src
        outputs: [FromB]
",
    );
    refused(
        &pipeline,
        &[
            "15:23: stages[1].actions[0].inputs[1]: artifact `FromB` is consumed before it is produced: `build.b` does not run before this action (it must be in an earlier stage or have a lower run_order)",
            "20:23: stages[1].actions[1].inputs[1]: artifact `FromA` is consumed before it is produced: `build.a` does not run before this action (it must be in an earlier stage or have a lower run_order)",
        ],
    );
}

#[test]
fn p6_depends_on_a_later_stage_is_refused() {
    let pipeline = broken(
        "      - name: compile
        type: build
        inputs: [Src]
        depends_on: [ship.deploy]
",
    );
    refused(
        &pipeline,
        &[
            "16:22: stages[1].actions[0].depends_on[0]: `ship.deploy` is not in an earlier stage; depends_on may only name actions of earlier stages",
        ],
    );
}

#[test]
fn p6_an_unknown_input_artifact_is_refused() {
    let pipeline = broken(
        "      - name: compile
        type: build
        inputs: [Src, Docs]
        primary_source: Src
",
    );
    refused(
        &pipeline,
        &["15:23: stages[1].actions[0].inputs[1]: unknown artifact `Docs`: no action produces it"],
    );
}

#[test]
fn p3_a_duplicate_action_name_is_refused() {
    let pipeline = broken(
        "      - name: compile
        type: build
        inputs: [Src]
      - name: compile
        type: build
        inputs: [Src]
",
    );
    refused(
        &pipeline,
        &["16:15: stages[1].actions[1].name: duplicate action name `compile` (first at line 13)"],
    );
}

#[test]
fn p9_a_run_order_below_one_is_refused() {
    let pipeline = broken(
        "      - name: compile
        type: build
        inputs: [Src]
        run_order: 0
",
    );
    refused(
        &pipeline,
        &[
            "16:20: stages[1].actions[0].run_order: run_order must be a positive integer up to 999, found 0",
        ],
    );
}

#[test]
fn p37_retry_names_the_stages_it_can_retry() {
    let ran = bundled(&[
        "retry",
        "--pipeline",
        "pipelines/example.yml",
        "--stage",
        "nope",
    ]);
    ran.code(2);
    assert_eq!(
        ran.stderr,
        "error: the pipeline has no stage nope; its stages are source, infrastructure, build-lambdas, build-frontend\n"
    );
    let ran = bundled(&[
        "retry",
        "--pipeline",
        "pipelines/example.yml",
        "--stage",
        "source",
    ]);
    ran.code(2);
    assert_eq!(
        ran.stderr,
        "error: the source stage cannot be retried; start a new execution instead\n"
    );
}
