//! Renders a buildspec into the scripts that run it inside the build container.
//!
//! CodeBuild does not keep one shell alive (B20): each command is written to `script.sh`, which
//! restores the saved working directory, turns on `set -a`, sources the saved environment, runs
//! the command at line 4, and saves `export -p` and `pwd` again. A small POSIX driver holds every
//! wrapped command, writes each to `script.sh` in turn (on a tmpfs, so the per-command cost is a
//! fork and no disk I/O), runs the phases with the transitions of B26–B32, and prints markers
//! ([`MARKER`]) that the host turns into CodeBuild's log lines. Pure: no I/O here.

use std::fmt::Write as _;

use super::model::{Buildspec, OnFailure, PhaseName};

/// Every marker line the driver prints starts with this (an ASCII record separator), so that
/// build output can never be mistaken for one.
pub const MARKER: &str = "\u{1e}runner:";

/// Where things live inside the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// `$CODEBUILD_SRC_DIR`, e.g. `/codebuild/output/src123456789/src`.
    pub src_dir: String,
    /// The agent's scratch directory, `/codebuild/output/tmp`: `script.sh`, `env.sh`, the saved
    /// working directory. A tmpfs, created empty when the container starts.
    pub tmp_dir: String,
    /// Where the driver leaves its results (`out/`), on the container's own filesystem so they
    /// can be read after the exit.
    pub agent_dir: String,
    /// Where `driver.sh` and `finish.sh` are placed (uploaded or bind-mounted).
    pub script_dir: String,
    /// Read-only inputs the driver copies into place before the first phase: `(from, to)`.
    pub copies: Vec<(String, String)>,
}

impl Layout {
    /// A layout whose source directory has the given digits, like CodeBuild's.
    pub fn with_digits(digits: &str) -> Self {
        Self {
            src_dir: format!("/codebuild/output/src{digits}/src"),
            tmp_dir: "/codebuild/output/tmp".to_owned(),
            agent_dir: "/codebuild/output/agent".to_owned(),
            script_dir: "/codebuild/output/agent".to_owned(),
            copies: Vec::new(),
        }
    }
}

/// One command the driver may run, in the order of its index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandRef {
    /// The phase it belongs to.
    pub phase: PhaseName,
    /// Whether it is a `finally` command.
    pub finally: bool,
    /// The command text as written.
    pub text: String,
}

/// A file to place in the container's [`Layout::script_dir`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptFile {
    /// File name.
    pub path: String,
    /// Content.
    pub content: String,
    /// Unix mode.
    pub mode: u32,
}

/// The rendered scripts and the table that maps command indices back to the buildspec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// Files to upload before the container starts.
    pub files: Vec<ScriptFile>,
    /// Commands by index (index 0 is unused so that indices start at 1 in logs).
    pub commands: Vec<CommandRef>,
    /// The container command that starts the driver.
    pub entrypoint: Vec<String>,
    /// Expressions the driver expands at the end (artifact names and base directories), in
    /// order; their values come back in `<tmp>/out/expand/<index>`.
    pub expansions: Vec<String>,
}

/// Single-quotes `text` for POSIX sh.
pub fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Renders `buildspec` for `layout`; `expansions` are texts to shell-expand after `post_build`
/// (B39, B43).
pub fn render(buildspec: &Buildspec, layout: &Layout, expansions: Vec<String>) -> Rendered {
    let shell = buildspec.env.shell.program();
    let mut commands = vec![CommandRef {
        phase: PhaseName::Install,
        finally: false,
        text: String::new(),
    }];
    // The finish step costs a shell; skip it when there is nothing to freeze or expand.
    let finish = !buildspec.env.exported_variables.is_empty() || !expansions.is_empty();
    let mut driver = driver_prelude(layout, shell, has_run_as(buildspec), finish);
    for phase_name in PhaseName::ALL {
        let phase = buildspec.phases.get(&phase_name);
        let run_as = phase
            .and_then(|p| p.run_as.as_deref())
            .or(buildspec.run_as.as_deref())
            .unwrap_or("");
        let mut chains: Vec<Vec<(usize, String)>> = Vec::new();
        for (finally, list) in phase
            .map(|p| [(false, &p.commands), (true, &p.finally)])
            .into_iter()
            .flatten()
        {
            let mut chain = Vec::new();
            for command in list {
                chain.push((commands.len(), command_script(layout, &command.text)));
                commands.push(CommandRef {
                    phase: phase_name,
                    finally,
                    text: command.text.clone(),
                });
            }
            chains.push(chain);
        }
        let on_failure = phase.map(|p| p.on_failure).unwrap_or_default();
        write_phase(&mut driver, phase_name, &chains, run_as, on_failure);
    }
    driver.push_str("m \"upload $upload\"\n");
    if finish {
        let _ = writeln!(driver, "{shell} {}/finish.sh", quote(&layout.script_dir));
    }
    driver.push_str("m done\n");
    let files = vec![
        ScriptFile {
            path: "driver.sh".to_owned(),
            content: driver,
            mode: 0o755,
        },
        ScriptFile {
            path: "finish.sh".to_owned(),
            content: finish_script(buildspec, layout, &expansions),
            mode: 0o755,
        },
    ];
    Rendered {
        files,
        commands,
        entrypoint: vec!["/bin/sh".into(), format!("{}/driver.sh", layout.script_dir)],
        expansions,
    }
}

fn has_run_as(buildspec: &Buildspec) -> bool {
    buildspec.run_as.is_some() || buildspec.phases.values().any(|p| p.run_as.is_some())
}

/// The wrapper for one command: the command's first line is line 4, as in CodeBuild (B20).
fn command_script(layout: &Layout, text: &str) -> String {
    let tmp = &layout.tmp_dir;
    let mut script = String::new();
    let _ = writeln!(
        script,
        "IFS= read -r __runner_wd < {dir} && cd \"$__runner_wd\"; unset __runner_wd",
        dir = quote(&format!("{tmp}/dir.txt"))
    );
    script.push_str("set -a\n");
    let _ = writeln!(script, ". {}", quote(&format!("{tmp}/env.sh")));
    script.push_str(text);
    if !text.ends_with('\n') {
        script.push('\n');
    }
    script.push_str("CODEBUILD_LAST_EXIT=$?\n");
    let _ = writeln!(script, "export -p > {}", quote(&format!("{tmp}/env.sh")));
    let _ = writeln!(script, "pwd > {}", quote(&format!("{tmp}/dir.txt")));
    script.push_str("exit \"$CODEBUILD_LAST_EXIT\"\n");
    script
}

fn driver_prelude(layout: &Layout, shell: &str, run_as: bool, finish: bool) -> String {
    let tmp = quote(&layout.tmp_dir);
    let src = quote(&layout.src_dir);
    let mut driver = format!(
        "#!/bin/sh\n\
         # Generated by runner: the buildspec's phases with CodeBuild's transitions (B17-B32).\n\
         T={tmp}\n\
         SH={shell}\n\
         exec 2>&1 </dev/null\n\
         {{ [ -d \"$T\" ] || mkdir -p \"$T\"; }} && : > \"$T/env.sh\" && printf '%s\\n' {src} > \"$T/dir.txt\" || exit 97\n\
         ok=1\n\
         skip=0\n\
         upload=1\n\
         m() {{ printf '\\036runner:%s\\n' \"$*\"; }}\n\
         r() {{\n\
         \x20 m \"cmd $1\"\n\
         \x20 printf '%s' \"$3\" > \"$T/script.sh\"\n\
         \x20 if [ -n \"$2\" ]; then su -m -s \"$(command -v $SH)\" \"$2\" -c \"$SH $T/script.sh\"; else $SH \"$T/script.sh\"; fi\n\
         \x20 rc=$?\n\
         \x20 m \"end $1 $rc\"\n\
         \x20 [ \"$rc\" -eq 0 ] && return 0\n\
         \x20 if [ \"$ok\" = 1 ]; then ok=0; printf \"export CODEBUILD_BUILD_SUCCEEDING='0'\\n\" >> \"$T/env.sh\"; fi\n\
         \x20 return \"$rc\"\n\
         }}\n"
    );
    // One mkdir and one cp per input: each external command is a fork in the build's time.
    let agent = quote(&layout.agent_dir);
    let mut dirs: Vec<String> = layout.copies.iter().map(|(_, to)| quote(to)).collect();
    if finish {
        dirs.push(format!("{agent}/out/var {agent}/out/expand"));
    }
    if !dirs.is_empty() {
        let mut setup = format!("mkdir -p {}", dirs.join(" "));
        for (from, to) in &layout.copies {
            let _ = write!(
                setup,
                " && cp -a {} {}",
                quote(&format!("{from}/.")),
                quote(to)
            );
        }
        let _ = writeln!(
            driver,
            "{setup} || {{ echo 'runner: could not stage the build inputs'; exit 97; }}"
        );
    }
    if run_as {
        // B25: a run-as user can read the source and write the agent's state files.
        let _ = writeln!(driver, "chmod -R a+rwX \"$T\"; chmod -R a+rX {src}");
    }
    driver
}

fn write_phase(
    driver: &mut String,
    phase: PhaseName,
    chains: &[Vec<(usize, String)>],
    run_as: &str,
    on_failure: OnFailure,
) {
    let name = phase.log_name();
    let user = quote(run_as);
    let _ = writeln!(driver, "if [ \"$skip\" = 0 ]; then");
    let _ = writeln!(driver, "  m \"phase {name}\"");
    let _ = writeln!(driver, "  f=0");
    for chain in chains.iter().filter(|chain| !chain.is_empty()) {
        let calls: Vec<String> = chain
            .iter()
            .map(|(index, script)| format!("r {index} {user} {}", quote(script)))
            .collect();
        let _ = writeln!(driver, "  {{ {}; }} || f=1", calls.join(" &&\n    "));
    }
    let transition = match (on_failure, phase) {
        (OnFailure::Continue, _)
        | (OnFailure::Default, PhaseName::Build | PhaseName::PostBuild) => "",
        (OnFailure::Abort, _) | (OnFailure::Default, PhaseName::Install | PhaseName::PreBuild) => {
            " skip=1; upload=0;"
        }
    };
    let _ = writeln!(
        driver,
        "  if [ \"$f\" = 0 ]; then m \"phase-end {name} SUCCEEDED\"; else m \"phase-end {name} FAILED\";{transition} fi"
    );
    let _ = writeln!(driver, "fi");
}

/// Runs after `post_build`: freezes exported variables (B13) and expands artifact names and
/// base directories in the build's final environment (B39, B43).
fn finish_script(buildspec: &Buildspec, layout: &Layout, expansions: &[String]) -> String {
    let tmp = &layout.tmp_dir;
    let mut script = String::new();
    let _ = writeln!(
        script,
        "IFS= read -r __runner_wd < {} && cd \"$__runner_wd\"; unset __runner_wd",
        quote(&format!("{tmp}/dir.txt"))
    );
    let _ = writeln!(
        script,
        "set -a\n. {}\nset +a",
        quote(&format!("{tmp}/env.sh"))
    );
    for name in &buildspec.env.exported_variables {
        let _ = writeln!(
            script,
            "printf '%s' \"${{{name}-}}\" > {}",
            quote(&format!("{}/out/var/{name}", layout.agent_dir))
        );
    }
    for (index, text) in expansions.iter().enumerate() {
        let _ = writeln!(
            script,
            "IFS= read -r __runner_x <<__RUNNER_EXPAND__ || true\n{text}\n__RUNNER_EXPAND__\n\
             printf '%s' \"$__runner_x\" > {}",
            quote(&format!("{}/out/expand/{index}", layout.agent_dir))
        );
    }
    script
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buildspec::model::{Command, Phase};

    fn spec() -> Buildspec {
        let mut buildspec = Buildspec::default();
        let command = |text: &str| Command {
            text: text.into(),
            location: crate::buildspec::Location::default(),
        };
        buildspec.phases.insert(
            PhaseName::Build,
            Phase {
                commands: vec![command("echo one"), command("false")],
                finally: vec![command("echo cleanup")],
                ..Phase::default()
            },
        );
        buildspec.phases.insert(
            PhaseName::Install,
            Phase {
                on_failure: OnFailure::Continue,
                commands: vec![command("cd sub && FOO=bar")],
                ..Phase::default()
            },
        );
        buildspec.env.exported_variables = vec!["VER".into()];
        buildspec
    }

    #[test]
    fn b20_command_starts_at_line_four() {
        let script = command_script(&Layout::with_digits("1"), "cd sub && FOO=bar");
        assert_eq!(script.lines().nth(3), Some("cd sub && FOO=bar"));
        assert!(script.contains("export -p >"));
    }

    #[test]
    fn driver_snapshot() {
        let rendered = render(&spec(), &Layout::with_digits("1"), vec!["$NAME-x".into()]);
        let driver = rendered
            .files
            .iter()
            .find(|f| f.path.ends_with("driver.sh"))
            .unwrap();
        let finish = rendered
            .files
            .iter()
            .find(|f| f.path.ends_with("finish.sh"))
            .unwrap();
        insta::assert_snapshot!(format!(
            "{}\n----- finish.sh\n{}",
            driver.content, finish.content
        ));
        assert_eq!(rendered.commands.len(), 5);
        assert!(rendered.commands[4].finally);
    }
}
