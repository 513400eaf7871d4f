//! `load`: buildspec YAML text → checked [`Buildspec`], with every problem found, not just the first.
//!
//! The YAML goes through `yaml::parse` (a marked tree), then each block is converted by hand so
//! that scalars keep their source text (B5) and each problem has a location and a field path.
//! Unknown keys are warnings (B7); everything else that breaks Section A is a [`Problem`].

mod env;
mod node;
mod outputs;
mod phases;

use std::path::Path;

use self::node::{Entry, child, flag, mapping, string};
use super::error::{BuildspecError, Problem, ProblemCode};
use super::model::{Buildspec, Location, Warning};
use crate::yaml::{self, Node};

/// A buildspec that loaded, and the warnings found on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// The checked buildspec.
    pub buildspec: Buildspec,
    /// Unknown keys and other things worth fixing, in document order.
    pub warnings: Vec<Warning>,
}

/// Parses and checks buildspec text. `origin` (a path, or `<inline>`) names it in messages.
pub fn load(origin: &str, text: &str) -> Result<Loaded, BuildspecError> {
    let root = yaml::parse(text).map_err(|error| BuildspecError::Invalid {
        origin: origin.to_owned(),
        problems: vec![Problem {
            location: error.location,
            field: String::new(),
            message: error.message,
            code: ProblemCode::YamlFileError,
        }],
    })?;
    let mut cx = Ctx::default();
    let buildspec = buildspec(&mut cx, origin, &root);
    cx.problems
        .sort_by_key(|problem| (problem.location.line, problem.location.column));
    cx.warnings
        .sort_by_key(|warning| (warning.location.line, warning.location.column));
    if cx.problems.is_empty() {
        Ok(Loaded {
            buildspec,
            warnings: cx.warnings,
        })
    } else {
        Err(BuildspecError::Invalid {
            origin: origin.to_owned(),
            problems: cx.problems,
        })
    }
}

/// Reads and loads a buildspec file; its path is the origin.
pub fn load_file(path: &Path) -> Result<Loaded, BuildspecError> {
    let text = fs_err::read_to_string(path).map_err(|source| BuildspecError::Io {
        path: path.to_owned(),
        source,
    })?;
    load(&path.display().to_string(), &text)
}

/// Collects problems and warnings while the tree is converted.
#[derive(Default)]
struct Ctx {
    problems: Vec<Problem>,
    warnings: Vec<Warning>,
}

impl Ctx {
    fn problem(
        &mut self,
        code: ProblemCode,
        location: Location,
        field: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.problems.push(Problem {
            location,
            field: field.into(),
            message: message.into(),
            code,
        });
    }

    fn invalid(
        &mut self,
        location: Location,
        field: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.problem(ProblemCode::Invalid, location, field, message);
    }

    fn unsupported(
        &mut self,
        location: Location,
        field: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.problem(ProblemCode::Unsupported, location, field, message);
    }

    fn warn(&mut self, location: Location, rule: &'static str, message: impl Into<String>) {
        self.warnings.push(Warning {
            location,
            rule,
            message: message.into(),
        });
    }

    /// B7: an unknown key is ignored with a warning.
    fn unknown_key(&mut self, entry: &Entry<'_>, parent: &str) {
        let message = format!("unknown key `{}` is ignored", child(parent, entry.key));
        self.warn(entry.key_location, "B7", message);
    }
}

fn buildspec(cx: &mut Ctx, origin: &str, root: &Node) -> Buildspec {
    let mut buildspec = Buildspec {
        origin: origin.to_owned(),
        ..Buildspec::default()
    };
    let Some(entries) = mapping(cx, root, "") else {
        return buildspec;
    };
    let (mut has_version, mut has_phases) = (false, false);
    for entry in &entries {
        let value = entry.value;
        match entry.key {
            "version" => {
                has_version = true;
                version(cx, value);
            }
            "run-as" => buildspec.run_as = string(cx, value, "run-as"),
            "env" => buildspec.env = env::env(cx, value),
            "proxy" => buildspec.proxy = proxy(cx, value),
            "batch" => cx.unsupported(
                entry.key_location,
                "batch",
                "batch builds are not supported",
            ),
            "phases" => {
                has_phases = true;
                buildspec.phases = phases::phases(cx, value);
            }
            "artifacts" => buildspec.artifacts = outputs::artifacts(cx, value),
            "reports" => buildspec.reports = outputs::reports(cx, value),
            "cache" => buildspec.cache = outputs::cache(cx, value),
            _ => cx.unknown_key(entry, ""),
        }
    }
    if !has_version {
        cx.invalid(
            root.location,
            "version",
            "`version` is required; use `version: 0.2`",
        );
    }
    if !has_phases {
        cx.invalid(root.location, "phases", "`phases` is required");
    }
    buildspec
}

/// B2: only 0.2, given as a float or a string.
fn version(cx: &mut Ctx, node: &Node) {
    let Some(text) = node.as_scalar() else {
        node::type_error(cx, node, "version", "`0.2`");
        return;
    };
    match text.trim().parse::<f64>() {
        Ok(number) if (number - 0.2).abs() < f64::EPSILON => {}
        Ok(number) if (number - 0.1).abs() < f64::EPSILON => cx.unsupported(
            node.location,
            "version",
            "version 0.1 is not supported: it runs each command in a separate shell, \
             so variables and `cd` do not carry over; use version 0.2",
        ),
        _ => cx.unsupported(
            node.location,
            "version",
            format!("unsupported buildspec version `{text}`: only 0.2 is supported"),
        ),
    }
}

/// B15: `proxy.upload-artifacts` and `proxy.logs`, parsed and otherwise ignored.
fn proxy(cx: &mut Ctx, node: &Node) -> (bool, bool) {
    let mut proxy = (false, false);
    for entry in mapping(cx, node, "proxy").unwrap_or_default() {
        match entry.key {
            "upload-artifacts" => proxy.0 = flag(cx, entry.value, "proxy.upload-artifacts"),
            "logs" => proxy.1 = flag(cx, entry.value, "proxy.logs"),
            _ => cx.unknown_key(&entry, "proxy"),
        }
    }
    proxy
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use test_case::test_case;

    use super::*;
    use crate::buildspec::error::STATUS_CODE;
    use crate::buildspec::model::{CacheAction, OnFailure, Phase, PhaseName, SecretRef, Shell};

    /// Loads `text`, failing the test with the rendered problems if it does not load.
    #[track_caller]
    fn ok(text: &str) -> Loaded {
        load("buildspec.yml", text)
            .unwrap_or_else(|error| panic!("expected to load, got:\n{error}"))
    }

    /// Loads `text` and returns its problems, failing the test if it loads.
    #[track_caller]
    fn problems(text: &str) -> Vec<Problem> {
        match load("buildspec.yml", text) {
            Ok(loaded) => panic!("expected problems, got {loaded:#?}"),
            Err(error) => error.problems().to_vec(),
        }
    }

    /// The rendered error for `text`.
    #[track_caller]
    fn rendered(text: &str) -> String {
        load("buildspec.yml", text)
            .expect_err("expected problems")
            .to_string()
    }

    /// A minimal valid buildspec with `extra` appended at the top level.
    fn with(extra: &str) -> String {
        format!("version: 0.2\nphases:\n  build:\n    commands:\n      - make\n{extra}")
    }

    /// A buildspec whose build phase holds `body` (indented to sit under `build:`).
    fn build_phase(body: &str) -> String {
        format!("version: 0.2\nphases:\n  build:\n{body}")
    }

    fn commands(loaded: &Loaded, phase: PhaseName) -> Vec<&str> {
        loaded.buildspec.phases[&phase]
            .commands
            .iter()
            .map(|command| command.text.as_str())
            .collect()
    }

    fn at(line: usize, column: usize) -> Location {
        Location { line, column }
    }

    #[test]
    fn full_buildspec_loads_into_the_model() {
        let loaded = ok(r#"
version: 0.2
run-as: builder
env:
  shell: bash
  variables:
    PORT: 8080
    GREETING: "hello world"
  parameter-store:
    DB_PASSWORD: /prod/db/password
  secrets-manager:
    TOKEN: prod/token:api-key:AWSCURRENT
  exported-variables:
    - PORT
  git-credential-helper: yes
proxy:
  upload-artifacts: no
  logs: yes
phases:
  install:
    runtime-versions:
      python: 3.10
    commands:
      - pip install -r requirements.txt
  pre_build:
    on-failure: CONTINUE
    commands:
      - echo pre
  build:
    run-as: root
    on-failure: ABORT
    commands:
      - |
        set -e
        make all
    finally:
      - echo done
  post_build:
    commands: [ "echo post" ]
artifacts:
  files:
    - '**/*'
  name: app-$(date +%s)
  base-directory: out
  discard-paths: yes
  exclude-paths: ['**/*.log']
  enable-symlinks: no
  s3-prefix: builds
  secondary-artifacts:
    docs:
      files: docs/index.html
reports:
  unit:
    files: ['**/*.xml']
    base-directory: reports
    file-format: cucumberjson
cache:
  paths: ['/root/.cache/pip/**/*']
  key: pip-$(codebuild-hash-files requirements.txt)
  fallback-keys: [pip-]
  action: restore
"#);
        assert!(loaded.warnings.is_empty(), "{:#?}", loaded.warnings);
        insta::assert_debug_snapshot!(loaded.buildspec);
    }

    #[test_case("0.2" ; "float")]
    #[test_case("\"0.2\"" ; "double quoted string")]
    #[test_case("'0.2'" ; "single quoted string")]
    #[test_case("0.20" ; "same float")]
    fn b2_version_accepts_float_and_string(version: &str) {
        ok(&format!(
            "version: {version}\nphases:\n  build:\n    commands: [make]\n"
        ));
    }

    #[test]
    fn b2_version_0_1_is_rejected_with_reason() {
        let problems = problems("version: 0.1\nphases:\n  build:\n    commands: [make]\n");
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].code, ProblemCode::Unsupported);
        assert_eq!(problems[0].location, at(1, 10));
        assert!(
            problems[0].message.contains("separate shell"),
            "{}",
            problems[0].message
        );
    }

    #[test_case("0.3")]
    #[test_case("1")]
    #[test_case("latest")]
    #[test_case("[0.2]")]
    fn b2_unknown_version_is_rejected(version: &str) {
        let problems = problems(&format!(
            "version: {version}\nphases:\n  build:\n    commands: [make]\n"
        ));
        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert_eq!(problems[0].field, "version");
    }

    #[test]
    fn b2_version_and_phases_are_required() {
        insta::assert_snapshot!(rendered("env:\n  shell: bash\n"), @r"
        buildspec.yml:1:1: version: `version` is required; use `version: 0.2`
        buildspec.yml:1:1: phases: `phases` is required
        ");
    }

    #[test_case("phases:\n" ; "empty value")]
    #[test_case("phases: {}\n" ; "empty mapping")]
    fn b2_phases_must_declare_a_phase(phases: &str) {
        let problems = problems(&format!("version: 0.2\n{phases}"));
        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert_eq!(problems[0].field, "phases");
    }

    #[test]
    fn e10_unquoted_colon_in_flow_list_is_yaml_file_error() {
        let error = load(
            "buildspec.yml",
            "version: 0.2\nphases:\n  build:\n    commands: [ echo Step 1: compile ]\n",
        )
        .expect_err("E10 must not load");
        assert_eq!(STATUS_CODE, "YAML_FILE_ERROR");
        assert_eq!(error.problems().len(), 1);
        assert_eq!(error.problems()[0].code, ProblemCode::YamlFileError);
        insta::assert_snapshot!(error.to_string(), @r#"buildspec.yml:4:17: phases.build.commands[0]: Expected Commands[0] to be of string type: found subkeys instead at line 4; quote the command if it contains ": " or starts with `{` or `[`"#);
    }

    #[test]
    fn b3_mapping_command_is_yaml_file_error() {
        let problems = problems(&build_phase(
            "    commands:\n      - echo one\n      - echo two\n      - echo Step 3: deploy\n",
        ));
        assert_eq!(problems.len(), 1);
        let problem = &problems[0];
        assert_eq!(problem.code, ProblemCode::YamlFileError);
        assert_eq!(problem.field, "phases.build.commands[2]");
        assert_eq!(problem.location, at(7, 9));
        assert!(
            problem.message.starts_with(
                "Expected Commands[2] to be of string type: found subkeys instead at line 7"
            ),
            "{}",
            problem.message
        );
    }

    #[test]
    fn b3_finally_and_nested_list_items_are_yaml_file_errors() {
        let problems = problems(&build_phase(
            "    commands:\n      - [make, all]\n    finally:\n      - {echo: x}\n",
        ));
        let summary: Vec<_> = problems
            .iter()
            .map(|problem| (problem.code, problem.field.as_str()))
            .collect();
        assert_eq!(
            summary,
            [
                (ProblemCode::YamlFileError, "phases.build.commands[0]"),
                (ProblemCode::YamlFileError, "phases.build.finally[0]"),
            ]
        );
        assert!(problems[0].message.contains("found a list instead"));
        assert!(problems[1].message.starts_with("Expected Finally[0]"));
    }

    #[test]
    fn b3_numbers_and_bools_are_commands_as_written() {
        let loaded = ok(&build_phase(
            "    commands:\n      - 42\n      - true\n      - yes\n      - 1.10\n",
        ));
        assert_eq!(
            commands(&loaded, PhaseName::Build),
            ["42", "true", "yes", "1.10"]
        );
    }

    #[test]
    fn b3_single_string_commands_is_one_command_with_warning() {
        let loaded = ok(&build_phase("    commands: make all\n"));
        assert_eq!(commands(&loaded, PhaseName::Build), ["make all"]);
        assert_eq!(loaded.warnings.len(), 1);
        assert_eq!(loaded.warnings[0].rule, "B3");
        assert_eq!(loaded.warnings[0].location, at(4, 15));
    }

    #[test]
    fn b3_empty_command_item_is_ignored_with_warning() {
        let loaded = ok(&build_phase("    commands:\n      -\n      - make\n"));
        assert_eq!(commands(&loaded, PhaseName::Build), ["make"]);
        assert_eq!(loaded.warnings.len(), 1);
        assert!(loaded.warnings[0].message.contains("commands[0]"));
    }

    #[test]
    fn b22_block_scalar_is_one_command_located_at_its_first_line() {
        let loaded = ok(&build_phase(
            "    commands:\n      - echo a\n      - |\n        false\n        echo masked\n",
        ));
        let phase = &loaded.buildspec.phases[&PhaseName::Build];
        assert_eq!(phase.commands[1].text, "false\necho masked\n");
        assert_eq!(phase.commands[0].location, at(5, 9));
        // yaml-rust2 places a block scalar at its first content line, not at the `|`.
        assert_eq!(phase.commands[1].location, at(7, 9));
    }

    #[test_case("yes", true ; "yes")]
    #[test_case("YES", true ; "upper yes")]
    #[test_case("True", true ; "title true")]
    #[test_case("'yes'", true ; "quoted yes")]
    #[test_case("no", false ; "no")]
    #[test_case("FALSE", false ; "upper false")]
    #[test_case("No", false ; "title no")]
    fn b4_flags_accept_yes_no_true_false_in_any_case(value: &str, expected: bool) {
        let loaded = ok(&with(&format!(
            "env:\n  git-credential-helper: {value}\nproxy:\n  logs: {value}\n  upload-artifacts: {value}\n\
             artifacts:\n  files: [a]\n  discard-paths: {value}\n  enable-symlinks: {value}\n\
             reports:\n  r:\n    files: [x.xml]\n    discard-paths: {value}\n"
        )));
        let buildspec = &loaded.buildspec;
        let artifacts = buildspec.artifacts.as_ref().expect("artifacts");
        let flags = [
            buildspec.env.git_credential_helper,
            buildspec.proxy.0,
            buildspec.proxy.1,
            artifacts.primary.discard_paths,
            artifacts.primary.enable_symlinks,
            buildspec.reports["r"].discard_paths,
        ];
        assert_eq!(flags, [expected; 6]);
    }

    #[test_case("1")]
    #[test_case("on")]
    #[test_case("y")]
    #[test_case("[yes]")]
    fn b4_other_flag_values_are_rejected(value: &str) {
        let problems = problems(&with(&format!(
            "artifacts:\n  files: [a]\n  discard-paths: {value}\n"
        )));
        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert_eq!(problems[0].field, "artifacts.discard-paths");
        assert_eq!(problems[0].location, at(8, 18));
    }

    #[test_case("8080", "8080" ; "integer")]
    #[test_case("1.10", "1.10" ; "float keeps trailing zero")]
    #[test_case("yes", "yes" ; "yaml 1.1 bool")]
    #[test_case("true", "true" ; "bool")]
    #[test_case("0x1F", "0x1F" ; "hex")]
    #[test_case("1e3", "1e3" ; "exponent")]
    #[test_case("007", "007" ; "leading zeros")]
    #[test_case("$PATH:/x", "$PATH:/x" ; "not expanded")]
    #[test_case("\"8080\"", "8080" ; "quoted")]
    #[test_case("", "" ; "empty value")]
    #[test_case("~", "" ; "tilde")]
    #[test_case("null", "" ; "null")]
    fn b5_numeric_variable_keeps_source_text(written: &str, expected: &str) {
        let loaded = ok(&with(&format!("env:\n  variables:\n    X: {written}\n")));
        assert_eq!(loaded.buildspec.env.variables["X"], expected);
    }

    #[test]
    fn b5_list_variable_value_is_rejected() {
        let problems = problems(&with("env:\n  variables:\n    X: [a, b]\n"));
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].field, "env.variables.X");
        assert_eq!(problems[0].message, "expected a string, found a list");
    }

    #[test]
    fn b6_single_string_is_a_one_element_list() {
        let loaded = ok(&with(
            "artifacts:\n  files: imagedefinitions.json\n  exclude-paths: '*.log'\n\
             cache:\n  paths: /root/.m2/**/*\nreports:\n  r:\n    files: report.xml\n",
        ));
        let buildspec = &loaded.buildspec;
        let artifacts = buildspec.artifacts.as_ref().expect("artifacts");
        assert_eq!(artifacts.primary.files, ["imagedefinitions.json"]);
        assert_eq!(artifacts.primary.exclude_paths, ["*.log"]);
        assert_eq!(
            buildspec.cache.as_ref().expect("cache").paths,
            ["/root/.m2/**/*"]
        );
        assert_eq!(buildspec.reports["r"].files, ["report.xml"]);
    }

    #[test]
    fn b7_unknown_keys_are_warnings_with_locations() {
        let loaded = ok(&with(
            "colour: blue\nenv:\n  shel: bash\nproxy:\n  foo: 1\nartifacts:\n  files: [a]\n  type: zip\n\
             cache:\n  path: x\nreports:\n  r:\n    files: [a]\n    format: JUNITXML\n",
        ));
        let loaded_build = ok(&build_phase("    comands:\n      - make\n"));
        let warnings: Vec<_> = loaded
            .warnings
            .iter()
            .chain(&loaded_build.warnings)
            .map(|warning| format!("{} {} {}", warning.location, warning.rule, warning.message))
            .collect();
        insta::assert_debug_snapshot!(warnings);
    }

    #[test_case("test")]
    #[test_case("Build")]
    #[test_case("prebuild")]
    fn b7_unknown_phase_name_is_an_error(name: &str) {
        let problems = problems(&format!(
            "version: 0.2\nphases:\n  {name}:\n    commands: [make]\n"
        ));
        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert_eq!(problems[0].field, format!("phases.{name}"));
        assert_eq!(problems[0].location, at(3, 3));
    }

    #[test_case("bash", Shell::Bash)]
    #[test_case("/bin/sh", Shell::Sh)]
    #[test_case("sh", Shell::Sh)]
    fn b9_linux_shells_are_accepted(shell: &str, expected: Shell) {
        let loaded = ok(&with(&format!("env:\n  shell: {shell}\n")));
        assert_eq!(loaded.buildspec.env.shell, expected);
    }

    #[test]
    fn b9_shell_defaults_to_sh() {
        assert_eq!(ok(&with("")).buildspec.env.shell, Shell::Sh);
    }

    #[test_case("powershell.exe", ProblemCode::Unsupported)]
    #[test_case("cmd.exe", ProblemCode::Unsupported)]
    #[test_case("PowerShell.exe", ProblemCode::Unsupported)]
    #[test_case("zsh", ProblemCode::Invalid)]
    #[test_case("/bin/bash", ProblemCode::Invalid)]
    fn b9_other_shells_are_rejected(shell: &str, code: ProblemCode) {
        let problems = problems(&with(&format!("env:\n  shell: {shell}\n")));
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].code, code);
        assert_eq!(problems[0].field, "env.shell");
        if code == ProblemCode::Unsupported {
            assert!(
                problems[0]
                    .message
                    .contains("Windows shells are not supported")
            );
        }
    }

    #[test]
    fn b11_codebuild_prefix_is_rejected_in_every_env_map() {
        insta::assert_snapshot!(rendered(&with(concat!(
            "env:\n",
            "  variables:\n    CODEBUILD_FOO: x\n",
            "  parameter-store:\n    CODEBUILD_P: /p\n",
            "  secrets-manager:\n    CODEBUILD_S: s\n",
            "  exported-variables: [CODEBUILD_E]\n",
        ))));
    }

    #[test]
    fn b12_secret_refs_are_parsed() {
        let loaded = ok(&with(
            "env:\n  parameter-store:\n    DB: /prod/db\n  secrets-manager:\n    TOKEN: arn:aws:secretsmanager:eu-west-1:1:secret:t:key::v1\n",
        ));
        let secrets = &loaded.buildspec.env.secrets;
        assert_eq!(
            secrets["DB"],
            SecretRef::ParameterStore("/prod/db".to_owned())
        );
        assert_eq!(
            secrets["TOKEN"],
            SecretRef::SecretsManager(
                "arn:aws:secretsmanager:eu-west-1:1:secret:t:key::v1".to_owned()
            )
        );
    }

    #[test]
    fn b12_empty_secret_ref_is_rejected() {
        let problems = problems(&with(
            "env:\n  parameter-store:\n    DB:\n  secrets-manager:\n    T: ''\n",
        ));
        let fields: Vec<_> = problems
            .iter()
            .map(|problem| problem.field.as_str())
            .collect();
        assert_eq!(fields, ["env.parameter-store.DB", "env.secrets-manager.T"]);
        assert_eq!(problems[0].location, at(8, 5));
    }

    #[test]
    fn b13_aws_prefix_and_secrets_cannot_be_exported() {
        insta::assert_snapshot!(rendered(&with(
            "env:\n  parameter-store:\n    DB: /db\n  secrets-manager:\n    TOKEN: t\n  exported-variables:\n    - AWS_FOO\n    - DB\n    - TOKEN\n    - VER\n"
        )), @r"
        buildspec.yml:12:7: env.exported-variables[0]: `AWS_FOO` cannot be exported: names starting with AWS_ are reserved
        buildspec.yml:13:7: env.exported-variables[1]: `DB` cannot be exported: it is a secret from env.parameter-store
        buildspec.yml:14:7: env.exported-variables[2]: `TOKEN` cannot be exported: it is a secret from env.secrets-manager
        ");
    }

    #[test]
    fn b13_exported_variables_keep_order_and_drop_repeats() {
        let loaded = ok(&with(
            "env:\n  variables:\n    VER: '1'\n  exported-variables: [VER, IMAGE, VER]\n",
        ));
        assert_eq!(loaded.buildspec.env.exported_variables, ["VER", "IMAGE"]);
        assert_eq!(loaded.warnings.len(), 1);
        assert_eq!(loaded.warnings[0].rule, "B13");
    }

    #[test]
    fn b16_batch_is_rejected() {
        let problems = problems(&with("batch:\n  fast-fail: true\n  build-list: []\n"));
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].code, ProblemCode::Unsupported);
        assert_eq!(problems[0].message, "batch builds are not supported");
        assert_eq!(problems[0].location, at(6, 1));
    }

    #[test]
    fn b24_runtime_versions_keep_source_text() {
        let loaded = ok(
            "version: 0.2\nphases:\n  install:\n    runtime-versions:\n      python: 3.10\n      nodejs: latest\n      java: \"$JAVA\"\n",
        );
        let versions = &loaded.buildspec.phases[&PhaseName::Install].runtime_versions;
        let versions: Vec<_> = versions
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            versions,
            [("java", "$JAVA"), ("nodejs", "latest"), ("python", "3.10")]
        );
    }

    #[test_case("pre_build")]
    #[test_case("build")]
    #[test_case("post_build")]
    fn b24_runtime_versions_outside_install_is_rejected(phase: &str) {
        let problems = problems(&format!(
            "version: 0.2\nphases:\n  {phase}:\n    runtime-versions:\n      python: 3.12\n"
        ));
        assert_eq!(problems.len(), 1);
        assert_eq!(
            problems[0].field,
            format!("phases.{phase}.runtime-versions")
        );
    }

    #[test_case("CONTINUE", OnFailure::Continue, 0 ; "continue")]
    #[test_case("ABORT", OnFailure::Abort, 0 ; "abort")]
    #[test_case("continue", OnFailure::Continue, 1 ; "lower case continue warns")]
    #[test_case("Abort", OnFailure::Abort, 1 ; "mixed case abort warns")]
    fn b31_on_failure_continue_and_abort(value: &str, expected: OnFailure, warnings: usize) {
        let loaded = ok(&build_phase(&format!(
            "    on-failure: {value}\n    commands: [make]\n"
        )));
        assert_eq!(
            loaded.buildspec.phases[&PhaseName::Build].on_failure,
            expected
        );
        assert_eq!(loaded.warnings.len(), warnings);
    }

    #[test_case("RETRY")]
    #[test_case("RETRY-3")]
    #[test_case("RETRY-3-.*timeout.*")]
    #[test_case("retry-.*flaky.*")]
    fn b31_retry_is_unsupported(value: &str) {
        let problems = problems(&build_phase(&format!(
            "    on-failure: {value}\n    commands: [make]\n"
        )));
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].code, ProblemCode::Unsupported);
        assert!(problems[0].message.contains("not supported"));
    }

    #[test]
    fn b31_unknown_on_failure_is_rejected() {
        let problems = problems(&build_phase(
            "    on-failure: IGNORE\n    commands: [make]\n",
        ));
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].code, ProblemCode::Invalid);
        assert_eq!(problems[0].field, "phases.build.on-failure");
    }

    #[test]
    fn b44_artifacts_files_is_required_even_with_secondary() {
        insta::assert_snapshot!(rendered(&with(
            "artifacts:\n  secondary-artifacts:\n    docs:\n      files: [docs/**/*]\n    bin:\n      name: bin\n"
        )), @r"
        buildspec.yml:7:3: artifacts.files: `files` is required
        buildspec.yml:10:5: artifacts.secondary-artifacts.bin.files: `files` is required
        ");
    }

    #[test_case("  files: []\n", 7, 10 ; "empty list")]
    #[test_case("  files:\n", 7, 3 ; "empty value")]
    fn b44_artifacts_files_must_not_be_empty(files: &str, line: usize, column: usize) {
        let problems = problems(&with(&format!("artifacts:\n{files}")));
        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert_eq!(
            problems[0].message,
            "`files` must list at least one pattern"
        );
        assert_eq!(problems[0].location, at(line, column));
    }

    #[test]
    fn b44_secondary_artifacts_share_the_primary_syntax() {
        let loaded = ok(&with(
            "artifacts:\n  files: [a]\n  secondary-artifacts:\n    docs:\n      files: site/**/*\n      base-directory: site\n      discard-paths: yes\n      name: docs-$VER\n",
        ));
        let artifacts = loaded.buildspec.artifacts.expect("artifacts");
        let docs = &artifacts.secondary["docs"];
        assert_eq!(docs.files, ["site/**/*"]);
        assert_eq!(docs.base_directory.as_deref(), Some("site"));
        assert!(docs.discard_paths);
        assert_eq!(docs.name.as_deref(), Some("docs-$VER"));
        assert_eq!(docs.location, at(9, 5));
    }

    #[test]
    fn b44_secondary_artifacts_cannot_nest() {
        let loaded = ok(&with(
            "artifacts:\n  files: [a]\n  secondary-artifacts:\n    docs:\n      files: [b]\n      secondary-artifacts: {}\n",
        ));
        assert_eq!(loaded.warnings.len(), 1);
        assert_eq!(loaded.warnings[0].rule, "B7");
    }

    #[test_case("", "JUNITXML" ; "default")]
    #[test_case("    file-format: cucumberjson\n", "CUCUMBERJSON" ; "lower case")]
    #[test_case("    file-format: JacocoXml\n", "JACOCOXML" ; "mixed case coverage")]
    fn b45_report_file_format_defaults_and_ignores_case(line: &str, expected: &str) {
        let loaded = ok(&with(&format!(
            "reports:\n  unit:\n    files: [a.xml]\n{line}"
        )));
        assert_eq!(loaded.buildspec.reports["unit"].file_format, expected);
    }

    #[test]
    fn b45_unknown_report_file_format_is_rejected() {
        let problems = problems(&with(
            "reports:\n  unit:\n    files: [a.xml]\n    file-format: XUNIT\n",
        ));
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].field, "reports.unit.file-format");
        assert_eq!(problems[0].location, at(9, 18));
    }

    #[test]
    fn b45_at_most_five_report_groups() {
        let groups = (1..=6).fold(String::new(), |mut groups, n| {
            writeln!(groups, "  g{n}:\n    files: [a.xml]").expect("write to a String");
            groups
        });
        let problems = problems(&with(&format!("reports:\n{groups}")));
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].field, "reports.g6");
        assert_eq!(
            problems[0].message,
            "at most 5 report groups are allowed, found 6"
        );
    }

    #[test_case("", CacheAction::Both ; "default")]
    #[test_case("  action: restore\n", CacheAction::Restore ; "restore")]
    #[test_case("  action: save\n", CacheAction::Save ; "save")]
    fn b46_cache_keys(action: &str, expected: CacheAction) {
        let loaded = ok(&with(&format!(
            "cache:\n  paths:\n    - node_modules/**/*\n  key: npm-$(codebuild-hash-files package-lock.json)\n  fallback-keys:\n    - npm-\n{action}"
        )));
        let cache = loaded.buildspec.cache.expect("cache");
        assert_eq!(cache.paths, ["node_modules/**/*"]);
        assert_eq!(
            cache.key.as_deref(),
            Some("npm-$(codebuild-hash-files package-lock.json)")
        );
        assert_eq!(cache.fallback_keys, ["npm-"]);
        assert_eq!(cache.action, expected);
    }

    #[test]
    fn b46_unknown_cache_action_is_rejected() {
        let problems = problems(&with("cache:\n  paths: [a]\n  action: both\n"));
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].field, "cache.action");
    }

    #[test]
    fn b50_same_name_in_two_env_maps_is_rejected() {
        insta::assert_snapshot!(rendered(&with(
            "env:\n  variables:\n    TOKEN: x\n  parameter-store:\n    TOKEN: /t\n  secrets-manager:\n    TOKEN: t\n"
        )), @r"
        buildspec.yml:10:5: env.parameter-store.TOKEN: `TOKEN` is defined in both env.variables and env.parameter-store
        buildspec.yml:12:5: env.secrets-manager.TOKEN: `TOKEN` is defined in both env.variables and env.secrets-manager
        ");
    }

    #[test_case("my-var")]
    #[test_case("1ST")]
    #[test_case("A.B")]
    #[test_case("'A B'")]
    fn variable_names_must_be_shell_identifiers(name: &str) {
        let problems = problems(&with(&format!("env:\n  variables:\n    {name}: x\n")));
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0]
                .message
                .contains("not a valid environment variable name")
        );
    }

    #[test]
    fn wrong_types_are_errors_with_field_paths() {
        insta::assert_snapshot!(rendered(
            "version: 0.2\nrun-as: [a]\nenv: plain\nphases:\n  build:\n    commands:\n      a: b\n  install: []\n\
             artifacts:\n  files: {a: b}\ncache: [x]\nreports:\n  r: x\n"
        ));
    }

    #[test]
    fn phases_as_a_list_is_an_error() {
        let problems = problems("version: 0.2\nphases: []\n");
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].field, "phases");
        assert_eq!(problems[0].message, "expected a mapping, found a list");
    }

    #[test]
    fn duplicate_keys_are_yaml_file_errors() {
        let problems = problems(&build_phase("    commands: [a]\n    commands: [b]\n"));
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].code, ProblemCode::YamlFileError);
        assert_eq!(problems[0].field, "phases.build.commands");
        assert_eq!(
            problems[0].message,
            "duplicate key `commands` (first defined at line 4)"
        );
    }

    #[test]
    fn yaml_syntax_error_is_yaml_file_error_with_location() {
        let error = load(
            "ci/buildspec.yml",
            "version: 0.2\nphases:\n  build:\n\tcommands: [a]\n",
        )
        .expect_err("tab");
        assert_eq!(error.problems()[0].code, ProblemCode::YamlFileError);
        insta::assert_snapshot!(error.to_string(), @"ci/buildspec.yml:4:2: tabs disallowed within this context (block indentation)");
    }

    #[test]
    fn every_problem_is_reported_not_just_the_first() {
        insta::assert_snapshot!(rendered(
            "version: 0.1\nbatch:\n  fast-fail: true\nenv:\n  shell: zsh\n  variables:\n    CODEBUILD_X: 1\n\
             phases:\n  compile:\n    commands: [make]\n  build:\n    on-failure: RETRY\n    commands:\n      - echo a: b\n\
             artifacts:\n  discard-paths: maybe\n"
        ));
    }

    #[test]
    fn anchors_aliases_and_merge_keys_expand() {
        let loaded = ok(
            "version: 0.2\nx-common: &common\n  commands:\n    - make\n  on-failure: ABORT\nphases:\n  build: *common\n  post_build:\n    <<: *common\n    on-failure: CONTINUE\n",
        );
        assert_eq!(commands(&loaded, PhaseName::Build), ["make"]);
        assert_eq!(commands(&loaded, PhaseName::PostBuild), ["make"]);
        let phases = &loaded.buildspec.phases;
        assert_eq!(phases[&PhaseName::Build].on_failure, OnFailure::Abort);
        assert_eq!(
            phases[&PhaseName::PostBuild].on_failure,
            OnFailure::Continue
        );
        // The unknown `x-common` key is still a warning.
        assert_eq!(loaded.warnings.len(), 1);
    }

    #[test]
    fn phase_records_its_key_location() {
        let loaded = ok("version: 0.2\nphases:\n  pre_build:\n    commands: [a]\n  build:\n");
        let phases = &loaded.buildspec.phases;
        assert_eq!(phases[&PhaseName::PreBuild].location, at(3, 3));
        assert_eq!(
            phases[&PhaseName::Build],
            Phase {
                location: at(5, 3),
                ..Phase::default()
            }
        );
    }

    #[test]
    fn load_file_reads_the_file_and_uses_its_path_as_origin() {
        let path = std::env::temp_dir().join(format!("bs-parser-{}.yml", std::process::id()));
        fs_err::write(
            &path,
            "version: 0.2\nphases:\n  build:\n    commands: [make]\n",
        )
        .expect("write temp file");
        let loaded = load_file(&path);
        fs_err::remove_file(&path).expect("remove temp file");
        assert_eq!(
            loaded.expect("loads").buildspec.origin,
            path.display().to_string()
        );
    }

    #[test]
    fn load_file_missing_names_the_path() {
        let error = load_file(Path::new("/nonexistent/dir/buildspec.yml")).expect_err("missing");
        assert!(
            matches!(&error, BuildspecError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
        );
        assert_eq!(
            error.to_string(),
            "find buildspec file /nonexistent/dir/buildspec.yml"
        );
    }
}
