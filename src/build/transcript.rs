//! Turns the driver's output into CodeBuild's log (B35) and the per-phase status table.
//!
//! [`Transcript`] is fed raw container output; it splits it into lines, recognises the driver's
//! markers, prints `[Container] <time> ...` lines the way the CodeBuild agent does, masks
//! secrets, and records each phase's status, timing and context. Pure: the caller passes the
//! clock in.

use chrono::{DateTime, Utc};

use super::mask::Masker;
use crate::buildspec::script::{CommandRef, MARKER};

/// A build or phase status (B33).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Finished without error.
    Succeeded,
    /// A command or step failed.
    Failed,
    /// The runner itself failed (container runtime error).
    Fault,
    /// The build timeout expired.
    TimedOut,
    /// Stopped by the user.
    Stopped,
    /// Still running.
    InProgress,
}

impl Status {
    /// CodeBuild's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Succeeded => "SUCCEEDED",
            Status::Failed => "FAILED",
            Status::Fault => "FAULT",
            Status::TimedOut => "TIMED_OUT",
            Status::Stopped => "STOPPED",
            Status::InProgress => "IN_PROGRESS",
        }
    }
}

/// One row of the phase table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhaseRecord {
    /// `INSTALL`, `UPLOAD_ARTIFACTS`...
    pub name: String,
    /// Final status.
    pub status: Status,
    /// When the phase was entered.
    pub started: DateTime<Utc>,
    /// When it ended.
    pub ended: Option<DateTime<Utc>>,
    /// `(code, message)` of `Phase context status code`, for a failed phase.
    pub context: Option<(String, String)>,
}

/// Formats one agent log line.
pub fn agent_line(at: DateTime<Utc>, text: &str) -> String {
    format!("[Container] {} {text}", at.format("%Y/%m/%d %H:%M:%S%.6f"))
}

/// The state of one build's log.
#[derive(Debug)]
pub struct Transcript {
    commands: Vec<CommandRef>,
    masker: Masker,
    pending: Vec<u8>,
    phases: Vec<PhaseRecord>,
    last_failure: Option<(usize, i32)>,
    upload: Option<bool>,
    done: bool,
}

impl Transcript {
    /// A transcript for the rendered commands, masking `masker`'s secrets.
    pub fn new(commands: Vec<CommandRef>, masker: Masker) -> Self {
        Self {
            commands,
            masker,
            pending: Vec::new(),
            phases: Vec::new(),
            last_failure: None,
            upload: None,
            done: false,
        }
    }

    /// The masker, for lines the caller writes itself.
    pub fn masker(&self) -> &Masker {
        &self.masker
    }

    /// Feeds raw output; returns complete log lines.
    pub fn feed(&mut self, chunk: &[u8], now: DateTime<Utc>) -> Vec<String> {
        self.pending.extend_from_slice(chunk);
        let mut lines = Vec::new();
        while let Some(newline) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=newline).collect();
            let text = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
            self.line(&text, now, &mut lines);
        }
        lines
    }

    /// Flushes a last line that had no newline.
    pub fn finish_output(&mut self, now: DateTime<Utc>) -> Vec<String> {
        let mut lines = Vec::new();
        if !self.pending.is_empty() {
            let text = String::from_utf8_lossy(&std::mem::take(&mut self.pending)).into_owned();
            self.line(&text, now, &mut lines);
        }
        lines
    }

    fn line(&mut self, text: &str, now: DateTime<Utc>, out: &mut Vec<String>) {
        match text.find(MARKER) {
            None => out.push(self.masker.mask(text)),
            Some(at) => {
                if at > 0 {
                    out.push(self.masker.mask(&text[..at]));
                }
                self.marker(&text[at + MARKER.len()..], now, out);
            }
        }
    }

    fn marker(&mut self, marker: &str, now: DateTime<Utc>, out: &mut Vec<String>) {
        let words: Vec<&str> = marker.split(' ').collect();
        match words.as_slice() {
            ["phase", name] => {
                self.last_failure = None;
                self.enter(name, now, out);
            }
            ["cmd", index] => {
                if let Some(command) = index.parse().ok().and_then(|i: usize| self.commands.get(i))
                {
                    let text = format!("Running command {}", command.text.trim_end_matches('\n'));
                    out.push(self.masker.mask(&agent_line(now, &text)));
                }
            }
            ["end", index, code] => {
                let (Ok(index), Ok(code)) = (index.parse::<usize>(), code.parse::<i32>()) else {
                    return;
                };
                if code != 0 {
                    self.last_failure = Some((index, code));
                    if let Some(command) = self.commands.get(index) {
                        let text = format!(
                            "Command did not exit successfully {} exit status {code}",
                            command.text.trim_end_matches('\n')
                        );
                        out.push(self.masker.mask(&agent_line(now, &text)));
                    }
                }
            }
            ["phase-end", name, state] => {
                let status = if *state == "SUCCEEDED" {
                    Status::Succeeded
                } else {
                    Status::Failed
                };
                let context = (status == Status::Failed).then(|| self.failure_context());
                self.complete(name, status, context, now, out);
            }
            ["upload", flag] => self.upload = Some(*flag == "1"),
            ["done"] => self.done = true,
            _ => {}
        }
    }

    fn failure_context(&self) -> (String, String) {
        match self
            .last_failure
            .and_then(|(i, code)| Some((self.commands.get(i)?, code)))
        {
            Some((command, code)) => (
                "COMMAND_EXECUTION_ERROR".to_owned(),
                format!(
                    "Error while executing command: {}. Reason: exit status {code}",
                    command.text.trim_end_matches('\n')
                ),
            ),
            None => ("COMMAND_EXECUTION_ERROR".to_owned(), String::new()),
        }
    }

    /// Starts a phase and prints `Entering phase`.
    pub fn enter(&mut self, name: &str, now: DateTime<Utc>, out: &mut Vec<String>) {
        out.push(agent_line(now, &format!("Entering phase {name}")));
        self.begin(name, now);
    }

    /// Starts a phase without a log line (CodeBuild never prints one for `DOWNLOAD_SOURCE`).
    pub fn begin(&mut self, name: &str, now: DateTime<Utc>) {
        self.phases.push(PhaseRecord {
            name: name.to_owned(),
            status: Status::InProgress,
            started: now,
            ended: None,
            context: None,
        });
    }

    /// Ends the open phase `name` with `status`, printing CodeBuild's two closing lines.
    pub fn complete(
        &mut self,
        name: &str,
        status: Status,
        context: Option<(String, String)>,
        now: DateTime<Utc>,
        out: &mut Vec<String>,
    ) {
        out.push(agent_line(
            now,
            &format!("Phase complete: {name} State: {}", status.as_str()),
        ));
        let (code, message) = context.clone().unwrap_or_default();
        out.push(self.masker.mask(&agent_line(
            now,
            &format!("Phase context status code: {code} Message: {message}"),
        )));
        if let Some(record) = self.phases.iter_mut().rev().find(|p| p.name == name) {
            record.status = status;
            record.ended = Some(now);
            record.context = context;
        }
    }

    /// [`Transcript::complete`] at the current time, returning the lines.
    pub fn complete_now(
        &mut self,
        name: &str,
        status: Status,
        context: Option<(String, String)>,
    ) -> Vec<String> {
        let mut out = Vec::new();
        self.complete(name, status, context, Utc::now(), &mut out);
        out
    }

    /// Ends whatever phase is still open (the build was killed) with `status`.
    pub fn abort_open_phase(
        &mut self,
        status: Status,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(name) = self
            .phases
            .iter()
            .rev()
            .find(|p| p.status == Status::InProgress)
            .map(|p| p.name.clone())
        {
            let context = Some((status.as_str().to_owned(), reason.to_owned()));
            self.complete(&name, status, context, now, &mut out);
        }
        out
    }

    /// Whether the driver said artifacts should be uploaded (`None` if it never got there).
    pub fn upload(&self) -> Option<bool> {
        self.upload
    }

    /// Whether the driver ran to its end.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The phase table so far.
    pub fn phases(&self) -> &[PhaseRecord] {
        &self.phases
    }

    /// Whether any phase failed.
    pub fn any_failed(&self) -> bool {
        self.phases.iter().any(|p| p.status != Status::Succeeded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buildspec::PhaseName;

    fn at() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 123_456_000).unwrap()
    }

    fn transcript() -> Transcript {
        let command = |text: &str| CommandRef {
            phase: PhaseName::Build,
            finally: false,
            text: text.into(),
        };
        Transcript::new(
            vec![command(""), command("echo $TOKEN"), command("false")],
            Masker::new(["s3cr3t-value".to_owned()]),
        )
    }

    #[test]
    fn b35_log_lines_and_failure_context() {
        let mut t = transcript();
        let input = "\u{1e}runner:phase BUILD\n\u{1e}runner:cmd 1\ns3cr3t-value\n\u{1e}runner:end 1 0\n\
                     \u{1e}runner:cmd 2\n\u{1e}runner:end 2 1\n\u{1e}runner:phase-end BUILD FAILED\n";
        let lines = t.feed(input.as_bytes(), at());
        insta::assert_snapshot!(lines.join("\n"));
        assert_eq!(t.phases()[0].status, Status::Failed);
    }

    #[test]
    fn marker_after_output_without_newline_is_split() {
        let mut t = transcript();
        let lines = t.feed(b"partial\x1erunner:phase BUILD\n", at());
        assert_eq!(lines[0], "partial");
        assert!(lines[1].ends_with("Entering phase BUILD"));
    }

    #[test]
    fn chunks_split_mid_line_are_joined() {
        let mut t = transcript();
        assert!(t.feed(b"hel", at()).is_empty());
        assert_eq!(t.feed(b"lo\nwor", at()), vec!["hello"]);
        assert_eq!(t.finish_output(at()), vec!["wor"]);
    }
}
