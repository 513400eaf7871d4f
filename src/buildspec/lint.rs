//! Lints a [`Buildspec`] for traps that only show up on a real build (B20–B22, B36, D-15).
//!
//! The entry point is [`lint`]. It is pure: it never runs a shell or touches a file. Commands are
//! read by a small heuristic tokenizer (`lexer`, then `syntax`: quotes, comments, heredocs, `$( )`,
//! compound commands), not a shell parser, so every rule stays silent when it is unsure.

use std::collections::BTreeMap;
use std::iter;

use crate::buildspec::model::{Buildspec, Command, Shell, Warning};
use syntax::{Nesting, Parsed, Simple, parse};

mod lexer;
mod syntax;

/// Lints `buildspec` and returns its warnings ordered by location.
pub fn lint(buildspec: &Buildspec) -> Vec<Warning> {
    let phases = buildspec.phases.values();
    let commands = phases.flat_map(|phase| phase.commands.iter().chain(&phase.finally));
    let parsed: Vec<Parsed<'_>> = commands.map(parse).collect();
    let mut warnings = Vec::new();
    functions_across_commands(&parsed, &mut warnings);
    arrays_across_commands(&parsed, &mut warnings);
    if buildspec.env.shell == Shell::Sh {
        bash_under_sh(&parsed, &mut warnings);
    }
    block_hides_failure(&parsed, &mut warnings);
    artifact_relative_to_cd(buildspec, &parsed, &mut warnings);
    background_wait(&parsed, &mut warnings);
    warnings.sort_by_key(|warning| (warning.location.line, warning.location.column));
    warnings
}

fn warning(command: &Command, rule: &'static str, message: String) -> Warning {
    let location = command.location;
    Warning {
        location,
        rule,
        message,
    }
}

/// B20c: shell functions die with the shell that ran the command.
fn functions_across_commands(parsed: &[Parsed<'_>], warnings: &mut Vec<Warning>) {
    let defined = |command: &Parsed<'_>| -> Vec<String> {
        let names = command.simples.iter().filter_map(|s| s.defines.clone());
        names.filter(|name| !name.is_empty()).collect()
    };
    let used = |command: &Parsed<'_>| -> Vec<String> {
        command
            .simples
            .iter()
            .filter_map(Simple::name)
            .map(str::to_owned)
            .collect()
    };
    let rule = "lint/function-across-commands";
    used_across_commands(parsed, rule, defined, used, warnings, |name, line| {
        format!(
            "function `{name}` is defined by the command at line {line}, but functions do not \
             survive into later commands (B20c); define it in this command or in a script file"
        )
    });
}

/// B20b, D-1: arrays are not saved between commands, even under bash.
fn arrays_across_commands(parsed: &[Parsed<'_>], warnings: &mut Vec<Warning>) {
    let defined = |command: &Parsed<'_>| command.arrays.clone();
    let used = |command: &Parsed<'_>| -> Vec<String> {
        let words = command.simples.iter().flat_map(Simple::words);
        let names = words.flat_map(|word| word.expansions().0.into_iter().map(str::to_owned));
        names.collect()
    };
    let rule = "lint/array-across-commands";
    used_across_commands(parsed, rule, defined, used, warnings, |name, line| {
        format!(
            "array `{name}` is assigned by the command at line {line}, but arrays are empty in \
             later commands (B20b); use it in the same command or in a script file"
        )
    });
}

/// Warns once per command that uses a name only an earlier command defined.
fn used_across_commands(
    parsed: &[Parsed<'_>],
    rule: &'static str,
    defined: impl Fn(&Parsed<'_>) -> Vec<String>,
    used: impl Fn(&Parsed<'_>) -> Vec<String>,
    warnings: &mut Vec<Warning>,
    message: impl Fn(&str, usize) -> String,
) {
    let mut origins: BTreeMap<String, usize> = BTreeMap::new();
    for command in parsed {
        let here = defined(command);
        let mut reported = Vec::new();
        for name in used(command) {
            let Some(&line) = origins.get(&name) else {
                continue;
            };
            if !here.contains(&name) && !reported.contains(&name) {
                warnings.push(warning(command.command, rule, message(&name, line)));
                reported.push(name);
            }
        }
        origins.extend(
            here.into_iter()
                .map(|name| (name, command.command.location.line)),
        );
    }
}

/// Bash-only constructs with the POSIX alternative, keyed by the labels the scanners report.
const BASHISMS: [(&str, &str); 25] = [
    ("[[", "use `[ ]`"),
    ("==", "use `=` inside `[ ]`"),
    ("source", "use `.`"),
    ("function", "use `name() {`"),
    ("arrays", "use `set --` or a script file run by bash"),
    ("declare", "use plain assignments"),
    ("local -a", "use `set --`"),
    ("set -o pipefail", "dash 0.5.12 rejects it and stops"),
    ("<<<", "use `printf '%s\\n' ... |`"),
    ("$'...'", "use `printf`"),
    ("${var/pattern/text}", "use `sed`"),
    ("${var:offset}", "use `cut` or `expr`"),
    ("${var^^}", "use `tr`"),
    ("${!var}", "use `eval`"),
    ("&>", "use `>file 2>&1`"),
    ("&>>", "use `>>file 2>&1`"),
    ("|&", "use `2>&1 |`"),
    ("<(...)", "use a temporary file"),
    ("((", "use `[ ]` with `$(( ))`"),
    ("{a,b}", "spell out each word"),
    ("shopt", "drop it"),
    ("pushd", "use `cd`"),
    ("popd", "use `cd -`"),
    ("readarray", "use `while read`"),
    ("mapfile", "use `while read`"),
];

/// Command names that are bash builtins or keywords, reported under their own label.
const BASH_COMMANDS: [&str; 8] = [
    "[[",
    "source",
    "declare",
    "shopt",
    "pushd",
    "popd",
    "readarray",
    "mapfile",
];

/// B21, D-2: the default shell is dash, which rejects bash syntax.
fn bash_under_sh(parsed: &[Parsed<'_>], warnings: &mut Vec<Warning>) {
    for command in parsed {
        let mut found = command.bashisms.clone();
        for simple in &command.simples {
            let has_arg = |wanted: &str| simple.args.iter().any(|arg| arg.text == wanted);
            let array_flag = |text: &str| text.starts_with('-') && text.contains(['a', 'A']);
            let name = simple.name().unwrap_or_default();
            found.extend(match name {
                "[" | "test" if has_arg("==") => Some("=="),
                "typeset" => Some("declare"),
                "local" if simple.args.iter().any(|arg| array_flag(&arg.text)) => Some("local -a"),
                "set" if has_arg("pipefail") => Some("set -o pipefail"),
                _ => BASH_COMMANDS.into_iter().find(|command| *command == name),
            });
            found.extend(simple.words().flat_map(|word| word.expansions().1));
        }
        let hints: Vec<String> = (BASHISMS.iter())
            .filter(|(label, _)| found.contains(label))
            .map(|(label, hint)| format!("`{label}` ({hint})"))
            .collect();
        if !hints.is_empty() {
            let message = format!(
                "bash-only syntax under the default /bin/sh (dash): {}; set `env.shell: bash` or \
                 use the POSIX form (B21)",
                hints.join(", ")
            );
            warnings.push(warning(command.command, "lint/bash-under-sh", message));
        }
    }
}

/// Commands whose failure does not matter, or cannot be seen anyway.
const HARMLESS: [&str; 14] = [
    "echo", "printf", "set", "export", "unset", "readonly", "local", "shopt", "trap", "ulimit",
    "umask", "alias", "true", ":",
];

/// B22, D-3: a `- |` block reports only its last statement's status.
fn block_hides_failure(parsed: &[Parsed<'_>], warnings: &mut Vec<Warning>) {
    for command in parsed {
        if !command.command.text.trim_end_matches('\n').contains('\n') {
            continue;
        }
        let statements = statements(&command.simples);
        let errexit = statements
            .iter()
            .position(|statement| statement.iter().any(|s| s.is_errexit()));
        let end = errexit
            .unwrap_or(statements.len())
            .min(statements.len().saturating_sub(1));
        let risky = statements
            .iter()
            .take(end)
            .find(|statement| is_risky(statement));
        let Some(first) = risky.and_then(|statement| statement.first()) else {
            continue;
        };
        let text = &command.command.text;
        let line = text.lines().nth(first.line).unwrap_or_default();
        let shown: String = line.trim().chars().take(60).collect();
        let message = format!(
            "only the last line of this multi-line command sets its exit status, so a failure in \
             `{shown}` goes unnoticed (B22); start the block with `set -e`"
        );
        let rule = "lint/block-hides-failure";
        warnings.push(warning(command.command, rule, message));
    }
}

/// Whether a failure of `statement` would go unseen without `set -e`.
fn is_risky(statement: &[&Simple]) -> bool {
    let defines = statement
        .first()
        .is_some_and(|simple| simple.defines.is_some());
    // Only the outer command's status counts: `export A=$(x)` is 0 whatever `x` does.
    let harmless = statement
        .iter()
        .filter(|simple| simple.depth == 0)
        .all(|simple| {
            let assignments = simple.name.is_none() && !simple.assignments.is_empty();
            simple.name().is_some_and(|name| HARMLESS.contains(&name))
                || (assignments && !simple.substitution)
        });
    let guarded = statement.iter().any(|simple| {
        simple.before == "||" || simple.after == "||" || simple.name() == Some("exit")
    });
    !defines && !harmless && !guarded
}

/// Groups simple commands into top-level statements (lists separated by newlines, `;` or `&`).
fn statements(simples: &[Simple]) -> Vec<Vec<&Simple>> {
    let mut statements: Vec<Vec<&Simple>> = Vec::new();
    for simple in simples {
        let starts = simple.depth == 0 && matches!(simple.before, "" | "\n" | ";" | "&");
        match statements.last_mut() {
            Some(last) if !starts => last.push(simple),
            _ => statements.push(vec![simple]),
        }
    }
    statements
}

/// B36, D-6: artifacts are resolved against `$CODEBUILD_SRC_DIR`, not the last `cd`.
fn artifact_relative_to_cd(
    buildspec: &Buildspec,
    parsed: &[Parsed<'_>],
    warnings: &mut Vec<Warning>,
) {
    let Some(artifacts) = &buildspec.artifacts else {
        return;
    };
    let Some((directory, cd)) = final_directory(parsed) else {
        return;
    };
    let specs = iter::once(&artifacts.primary).chain(artifacts.secondary.values());
    for spec in specs.filter(|spec| spec.base_directory.is_none()) {
        for pattern in &spec.files {
            let path = pattern.trim_start_matches("./");
            let rest = path.strip_prefix(&directory);
            if rest.is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
                || path.starts_with(['*', '/', '$', '.'])
            {
                continue;
            }
            let message = format!(
                "the build ends in `{directory}` after this `cd`, but artifact pattern `{pattern}` \
                 (line {}) is resolved against $CODEBUILD_SRC_DIR, not the last `cd` (B36); write \
                 `{directory}/{path}` or set `base-directory: {directory}`",
                spec.location.line
            );
            warnings.push(warning(cd, "lint/artifact-relative-to-cd", message));
        }
    }
}

/// The working directory relative to `$CODEBUILD_SRC_DIR`, when the linter is sure of it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Directory {
    Known(Vec<String>),
    Unknown,
}

/// Follows every `cd` of the build (B23) and returns where it surely ends, if not at the source
/// root, with the command of the last `cd`.
fn final_directory<'a>(parsed: &[Parsed<'a>]) -> Option<(String, &'a Command)> {
    let (mut current, mut previous) = (Directory::Known(Vec::new()), Directory::Unknown);
    let mut last_cd = None;
    for command in parsed {
        for (index, simple) in command.simples.iter().enumerate() {
            let is_cd = match simple.name() {
                Some("cd") => true,
                Some("pushd" | "popd") => false,
                _ => continue,
            };
            let piped =
                matches!(simple.after, "|" | "|&" | "&") || matches!(simple.before, "|" | "|&");
            if simple.nesting == Nesting::Subshell || piped {
                continue;
            }
            let prior = index
                .checked_sub(1)
                .and_then(|prior| command.simples.get(prior));
            let after_test =
                prior.is_some_and(|prior| matches!(prior.name(), Some("[" | "[[" | "test")));
            let conditional = simple.nesting == Nesting::Compound
                || simple.before == "||"
                || (simple.before == "&&" && after_test);
            let target = if is_cd && !conditional {
                change_directory(&current, &previous, simple, &command.command.text)
            } else {
                Directory::Unknown
            };
            previous = std::mem::replace(&mut current, target);
            last_cd = Some(command.command);
        }
    }
    match (current, last_cd) {
        (Directory::Known(parts), Some(cd)) if !parts.is_empty() => Some((parts.join("/"), cd)),
        _ => None,
    }
}

/// Applies one unconditional `cd` to `current`.
fn change_directory(
    current: &Directory,
    previous: &Directory,
    cd: &Simple,
    text: &str,
) -> Directory {
    let mut targets = cd
        .args
        .iter()
        .filter(|arg| !(arg.text.starts_with('-') && arg.text.len() > 1));
    let (Some(target), None) = (targets.next(), targets.next()) else {
        return Directory::Unknown;
    };
    let raw = text.get(target.start..target.end).unwrap_or_default();
    if raw == "-" {
        return previous.clone();
    }
    let path = raw.trim_matches('"');
    let variables = ["$CODEBUILD_SRC_DIR", "${CODEBUILD_SRC_DIR}"];
    let from_source = variables
        .iter()
        .find_map(|variable| path.strip_prefix(variable));
    let (mut parts, rest) = match (from_source, current) {
        (Some(rest), _) if rest.is_empty() || rest.starts_with('/') => (Vec::new(), rest),
        (None, Directory::Known(parts)) if !path.starts_with('/') => (parts.clone(), path),
        _ => return Directory::Unknown,
    };
    if rest.contains(['$', '~', '*', '?', '[', '{', '`', '\\', '"', '\'']) {
        return Directory::Unknown;
    }
    for part in rest.split('/') {
        match part {
            ".." if parts.pop().is_none() => return Directory::Unknown,
            "" | "." | ".." => {}
            _ => parts.push(part.to_owned()),
        }
    }
    Directory::Known(parts)
}

/// D-15: `wait` only knows the children of its own shell, and each command gets a new one.
fn background_wait(parsed: &[Parsed<'_>], warnings: &mut Vec<Warning>) {
    let mut started = None;
    for command in parsed {
        if command.background {
            started = Some(command.command.location.line);
            continue;
        }
        let Some(line) = started else { continue };
        if command
            .simples
            .iter()
            .any(|simple| simple.name() == Some("wait"))
        {
            let message = format!(
                "`wait` cannot wait for the job started with `&` by the command at line {line}: \
                 every command runs in a new shell, so that job is not its child (B20, D-15); start \
                 and wait for it in the same command"
            );
            warnings.push(warning(command.command, "lint/background-wait", message));
        }
    }
}

#[cfg(test)]
mod tests {
    use test_case::test_case;

    use super::*;
    use crate::buildspec::model::{ArtifactSpec, Artifacts, Location, PhaseName};

    /// Commands start in `install`; each `---` moves on to the next phase. Command `i` sits on line `i + 1`.
    fn buildspec(items: &[&str]) -> Buildspec {
        let mut buildspec = Buildspec::default();
        let mut phases = PhaseName::ALL.into_iter();
        let mut phase = phases.next().expect("four phases");
        for (index, text) in items.iter().enumerate() {
            if *text == "---" {
                phase = phases.next().expect("at most four phases");
                continue;
            }
            let location = Location {
                line: index + 1,
                column: 7,
            };
            let commands = &mut buildspec.phases.entry(phase).or_default().commands;
            commands.push(Command {
                text: (*text).to_owned(),
                location,
            });
        }
        buildspec
    }

    fn with_files(mut buildspec: Buildspec, files: &[&str]) -> Buildspec {
        let primary = ArtifactSpec {
            files: files.iter().map(|file| (*file).to_owned()).collect(),
            location: Location {
                line: 90,
                column: 1,
            },
            ..ArtifactSpec::default()
        };
        buildspec.artifacts = Some(Artifacts {
            primary,
            ..Artifacts::default()
        });
        buildspec
    }

    fn hits(buildspec: &Buildspec, rule: &str) -> Vec<String> {
        lint(buildspec)
            .into_iter()
            .filter(|warning| warning.rule == rule)
            .map(|warning| format!("{} {}", warning.location, warning.message))
            .collect()
    }

    #[test_case(&["greet() { echo hi; }", "greet"], 1 ; "b20c_function_defined_in_one_command_used_in_next")]
    #[test_case(&["deploy() {\n  aws s3 sync . s3://b\n}\n", "---", "---", "deploy"], 1 ; "b20c_function_used_in_later_phase")]
    #[test_case(&["function build_all {\n  make\n}\n", "build_all"], 1 ; "b20c_function_keyword_definition")]
    #[test_case(&["tag() { git rev-parse HEAD; }", "TAG=\"$(tag)\""], 1 ; "b20c_function_called_in_substitution")]
    #[test_case(&["f() { :; }", "if true; then f; fi", "f"], 2 ; "b20c_one_warning_per_command")]
    #[test_case(&["greet() {\n  echo hi\n}\ngreet\n"], 0 ; "b20c_function_defined_and_used_in_same_block")]
    #[test_case(&["f() { :; }", "f() { echo; }; f"], 0 ; "b20c_function_redefined_before_use")]
    #[test_case(&["greet() { :; }", "echo greet 'greet' \"greet\" # greet"], 0 ; "b20c_name_as_argument_quote_or_comment")]
    #[test_case(&["greet", "greet() { :; }"], 0 ; "b20c_call_before_definition")]
    fn function_across_commands(items: &[&str], expected: usize) {
        let found = hits(&buildspec(items), "lint/function-across-commands");
        assert_eq!(found.len(), expected, "{found:#?}");
    }

    #[test]
    fn b20c_message_names_function_and_definition_line() {
        let found = hits(
            &buildspec(&["echo", "greet() { :; }", "greet"]),
            "lint/function-across-commands",
        );
        assert_eq!(found.len(), 1);
        assert!(
            found[0].starts_with("3:7 function `greet` is defined by the command at line 2"),
            "{found:?}"
        );
    }

    #[test_case(&["FILES=(a b c)", "echo \"${FILES[@]}\""], 1 ; "b20b_array_assigned_then_read_in_next_command")]
    #[test_case(&["declare -A MAP", "---", "echo ${#MAP[@]}"], 1 ; "b20b_declared_map_then_length_in_later_phase")]
    #[test_case(&["A[0]=x", "echo ${A[0]}"], 1 ; "b20b_element_assignment")]
    #[test_case(&["local -a PARTS=(x)", "echo ${PARTS[1]}"], 1 ; "b20b_local_array")]
    #[test_case(&["mapfile -t LINES < f", "echo \"${LINES[0]}\""], 1 ; "b20b_mapfile")]
    #[test_case(&["FILES=(a b)\nfor f in \"${FILES[@]}\"; do echo $f; done\n"], 0 ; "b20b_array_used_in_same_block")]
    #[test_case(&["A=(x)", "echo '${A[0]}'"], 0 ; "b20b_single_quoted_read")]
    #[test_case(&["A=x", "echo ${A} ${B[0]}"], 0 ; "b20b_scalar_and_unknown_names")]
    #[test_case(&["A=$(ls)", "echo ${A[0]}"], 0 ; "b20b_command_substitution_is_not_an_array")]
    fn array_across_commands(items: &[&str], expected: usize) {
        let found = hits(&buildspec(items), "lint/array-across-commands");
        assert_eq!(found.len(), expected, "{found:#?}");
    }

    #[test_case("[[ -f x ]] && echo y", "`[[`" ; "b21_double_bracket")]
    #[test_case("if [ \"$A\" == b ]; then echo; fi", "`==`" ; "b21_double_equals_in_test")]
    #[test_case("test $A == b", "`==`" ; "b21_double_equals_in_test_command")]
    #[test_case("source env.sh", "`source`" ; "b21_source")]
    #[test_case("set -euo pipefail", "`set -o pipefail`" ; "b21_pipefail")]
    #[test_case("grep x <<< \"$A\"", "`<<<`" ; "b21_here_string")]
    #[test_case("printf $'a\\tb'", "`$'...'`" ; "b21_ansi_c_quote")]
    #[test_case("echo ${CODEBUILD_RESOLVED_SOURCE_VERSION:0:7}", "`${var:offset}`" ; "b21_substring")]
    #[test_case("echo \"${BRANCH//\\//-}\"", "`${var/pattern/text}`" ; "b21_replace")]
    #[test_case("echo ${A^^}", "`${var^^}`" ; "b21_case_change")]
    #[test_case("make &> build.log", "`&>`" ; "b21_ampersand_redirect")]
    #[test_case("make |& tee log", "`|&`" ; "b21_pipe_stderr")]
    #[test_case("diff <(ls a) <(ls b)", "`<(...)`" ; "b21_process_substitution")]
    #[test_case("mkdir -p out/{a,b}", "`{a,b}`" ; "b21_brace_expansion")]
    #[test_case("declare X=1", "`declare`" ; "b21_declare")]
    #[test_case("function f { :; }", "`function`" ; "b21_function_keyword")]
    #[test_case("A=(x y)", "`arrays`" ; "b21_array_literal")]
    #[test_case("(( n += 1 ))", "`((`" ; "b21_arithmetic_command")]
    #[test_case("pushd app", "`pushd`" ; "b21_pushd")]
    fn b21_bash_syntax_under_sh(text: &str, label: &str) {
        let found = hits(&buildspec(&[text]), "lint/bash-under-sh");
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(found[0].contains(label), "{found:#?}");
    }

    #[test_case("echo '[[ source ]]' \"a == b\"" ; "b21_syntax_inside_quotes")]
    #[test_case("# [[ source x\necho ok # pushd\n" ; "b21_syntax_in_comments")]
    #[test_case("[ \"$A\" = b ] && echo ${A:-default} ${A%%.*} ${#A}" ; "b21_posix_test_and_expansions")]
    #[test_case("cat > run.sh <<'EOF'\n[[ -f x ]] && source y\nEOF\n" ; "b21_heredoc_body")]
    #[test_case("x=$((1 + 2)); echo $x 2>&1 >/dev/null" ; "b21_arithmetic_expansion_and_redirects")]
    #[test_case("find . -name '*.{js,ts}' -exec rm {} +" ; "b21_quoted_braces_and_find")]
    #[test_case(". ./env.sh && set -eu && local x=1" ; "b21_dot_and_set_eu")]
    fn b21_posix_syntax_is_fine(text: &str) {
        let found = hits(&buildspec(&[text]), "lint/bash-under-sh");
        assert!(found.is_empty(), "{found:#?}");
    }

    #[test]
    fn b21_bash_shell_allows_bash_syntax() {
        let mut spec = buildspec(&["[[ -f x ]] && source y", "A=(1 2); echo ${A[@]}"]);
        spec.env.shell = Shell::Bash;
        assert!(hits(&spec, "lint/bash-under-sh").is_empty());
    }

    #[test_case("npm ci\nnpm test\n", 1 ; "b22_block_without_set_e")]
    #[test_case("if [ -f x ]; then\n  make\nfi\nls\n", 1 ; "b22_compound_statement_then_command")]
    #[test_case("echo \"$PASS\" | docker login --password-stdin\ndocker push x\n", 1 ; "b22_pipeline_is_not_harmless")]
    #[test_case("make\nset -e\nls\n", 1 ; "b22_set_e_too_late")]
    #[test_case("cd app && make\nls\n", 1 ; "b22_and_list_then_command")]
    #[test_case("X=$(make version)\nls\n", 1 ; "b22_assignment_from_failing_substitution")]
    #[test_case("export V=$(cat v)\necho \"$(make)\"\nls\n", 0 ; "b22_status_masked_by_export_or_echo")]
    #[test_case("set -e\nnpm ci\nnpm test\n", 0 ; "b22_block_starting_with_set_e")]
    #[test_case("#!/bin/bash\nset -euo pipefail\nnpm ci\nnpm test\n", 0 ; "b22_set_euo_pipefail_after_comment")]
    #[test_case("set -o errexit\nnpm ci\nnpm test\n", 0 ; "b22_set_o_errexit")]
    #[test_case("npm ci &&\n  npm test &&\n  npm run build\n", 0 ; "b22_lines_chained_with_and")]
    #[test_case("aws s3 cp \\\n  a \\\n  s3://b\n", 0 ; "b22_continuation_lines")]
    #[test_case("npm test\n", 0 ; "b22_single_line_block")]
    #[test_case("echo building\nexport A=1\nB=2\nmake\n", 0 ; "b22_harmless_lines_before_last")]
    #[test_case("# build\n\nmake\n", 0 ; "b22_comments_and_blank_lines")]
    #[test_case("make || exit 1\nls\n", 0 ; "b22_guarded_line")]
    #[test_case("f() {\n  make\n  ls\n}\nf\n", 0 ; "b22_function_definition")]
    #[test_case("cat > f <<EOF\na\nb\nEOF\n", 0 ; "b22_heredoc")]
    fn block_hides_failure(text: &str, expected: usize) {
        let found = hits(&buildspec(&[text]), "lint/block-hides-failure");
        assert_eq!(found.len(), expected, "{found:#?}");
    }

    #[test_case(&["cd app", "npm run build"], &["dist/index.js"], 1 ; "b36_cd_into_subdir_then_artifact_from_root")]
    #[test_case(&["cd app", "---", "---", "make"], &["out/a", "app/out/b"], 1 ; "b36_cd_in_install_carries_to_the_end")]
    #[test_case(&["cd services/api/", "cd ../web"], &["dist/x"], 1 ; "b36_relative_cds_compose")]
    #[test_case(&["cd sub && make && cd .."], &["sub/out"], 0 ; "b36_cd_and_back_with_dotdot")]
    #[test_case(&["cd sub && make && cd -"], &["sub/out"], 0 ; "b36_cd_and_back_with_dash")]
    #[test_case(&["cd sub", "make", "cd -"], &["sub/out"], 0 ; "b36_cd_dash_in_later_command")]
    #[test_case(&["cd app"], &["app/dist/**/*", "./app/x"], 0 ; "b36_patterns_under_the_directory")]
    #[test_case(&["(cd app && npm run build)", "x=$(cd app && pwd)"], &["dist/x"], 0 ; "b36_cd_in_subshells")]
    #[test_case(&["cd app", "cd \"$CODEBUILD_SRC_DIR\""], &["dist/x"], 0 ; "b36_cd_back_to_source_dir")]
    #[test_case(&["[ -d app ] && cd app"], &["dist/x"], 0 ; "b36_conditional_cd")]
    #[test_case(&["if true; then cd app; fi"], &["dist/x"], 0 ; "b36_cd_in_compound")]
    #[test_case(&["cd $DIR", "cd /tmp", "cd"], &["dist/x"], 0 ; "b36_unknown_targets")]
    #[test_case(&["cd app"], &["**/*", "$OUT/x"], 0 ; "b36_glob_and_variable_patterns")]
    #[test_case(&["echo cd app"], &["dist/x"], 0 ; "b36_cd_as_argument")]
    #[test_case(&["function go {\n  cd app\n}\n"], &["dist/x"], 0 ; "b36_cd_in_function_body")]
    fn artifact_relative_to_cd(items: &[&str], files: &[&str], expected: usize) {
        let found = hits(
            &with_files(buildspec(items), files),
            "lint/artifact-relative-to-cd",
        );
        assert_eq!(found.len(), expected, "{found:#?}");
    }

    #[test]
    fn b36_base_directory_and_secondary_artifacts() {
        let mut spec = with_files(buildspec(&["cd app"]), &["dist/x"]);
        let artifacts = spec.artifacts.as_mut().expect("set above");
        artifacts.primary.base_directory = Some("app".to_owned());
        let secondary = ArtifactSpec {
            files: vec!["report.xml".to_owned()],
            ..ArtifactSpec::default()
        };
        artifacts.secondary.insert("reports".to_owned(), secondary);
        let found = hits(&spec, "lint/artifact-relative-to-cd");
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(found[0].contains("`report.xml`"), "{found:#?}");
    }

    #[test_case(&["nohup dockerd > /tmp/d.log 2>&1 &", "---", "wait"], 1 ; "d15_wait_in_later_phase")]
    #[test_case(&["./server & echo $! > pid", "wait $(cat pid)"], 1 ; "d15_wait_pid_from_file")]
    #[test_case(&["./a &\n./b &\nwait\n"], 0 ; "d15_wait_in_same_command")]
    #[test_case(&["wait"], 0 ; "d15_wait_without_background")]
    #[test_case(&["make &> log && make 2>&1", "wait"], 0 ; "d15_redirect_is_not_background")]
    #[test_case(&["echo 'a & b' \"&\"", "wait"], 0 ; "d15_quoted_ampersand")]
    fn background_wait(items: &[&str], expected: usize) {
        let found = hits(&buildspec(items), "lint/background-wait");
        assert_eq!(found.len(), expected, "{found:#?}");
    }

    #[test]
    fn malformed_shell_does_not_panic() {
        let items = [
            ")))",
            "(((",
            "\"open",
            "'open",
            "$(",
            "${",
            "<<",
            "cat <<EOF",
            "\\",
            "case",
            "esac)",
            "A=(",
            "f(",
            "function",
            "}",
            "\n\n",
            "",
            "cd",
            "é 'ñ' \"ö\" 中文 ${ü:0:1}",
            "`x`",
            ";;",
            "done fi",
            "cd \"${CODEBUILD_SRC_DIR}",
            "a=(b (c) \"$(d)\")",
            "wait &",
        ];
        let spec = with_files(buildspec(&items), &["x"]);
        assert!(lint(&spec).len() < 100);
    }

    #[test]
    fn clean_buildspec_has_no_warnings() {
        let spec = with_files(
            buildspec(&[
                "npm ci",
                "---",
                "IMAGE_TAG=$(echo $CODEBUILD_RESOLVED_SOURCE_VERSION | cut -c 1-7)",
                "---",
                "set -e\ndocker build -t app:$IMAGE_TAG .\ndocker push app:$IMAGE_TAG\n",
                "cd web && npm run build && cd ..",
                "---",
                "[ \"$CODEBUILD_BUILD_SUCCEEDING\" = 1 ] || exit 1",
                "printf '[{\"name\":\"app\",\"imageUri\":\"%s\"}]' app:$IMAGE_TAG > imagedefinitions.json",
            ]),
            &["imagedefinitions.json", "web/dist/**/*"],
        );
        assert_eq!(lint(&spec), Vec::new());
    }

    #[test]
    fn messy_buildspec() {
        let mut spec = with_files(
            buildspec(&[
                "nohup /usr/local/bin/dockerd --host=unix:///var/run/docker.sock &",
                "log() { echo \"[$(date +%T)] $*\"; }",
                "---",
                "SERVICES=(api web worker)",
                "if [[ \"$CODEBUILD_WEBHOOK_HEAD_REF\" == refs/heads/main ]]; then export STAGE=prod; fi",
                "source ./ci/env.sh",
                "---",
                "log building",
                "for s in \"${SERVICES[@]}\"; do\n  docker build -t $s ./$s\ndone\n",
                "TAG=${CODEBUILD_RESOLVED_SOURCE_VERSION:0:7}",
                "cd api\nnpm ci\nnpm run build\n",
                "---",
                "wait $(cat /tmp/dockerd.pid)",
                "set -o pipefail; npm test | tee test.log",
            ]),
            &["dist/**/*", "test.log"],
        );
        spec.artifacts.as_mut().expect("set above").primary.location = Location {
            line: 20,
            column: 3,
        };
        let rendered: Vec<String> = lint(&spec)
            .iter()
            .map(|warning| format!("{} {}: {}", warning.location, warning.rule, warning.message))
            .collect();
        insta::assert_snapshot!(rendered.join("\n"));
    }
}
