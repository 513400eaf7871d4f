//! Groups a command's tokens into simple commands, noting compound commands, subshells and
//! `$( )`, function definitions and array assignments: what the lint rules ask about.

use super::lexer::{Lexer, Token, Word, assigned_name, is_name};
use crate::buildspec::model::Command;

/// One command, tokenized.
pub(super) struct Parsed<'a> {
    /// The command as written.
    pub(super) command: &'a Command,
    /// Simple commands in source order, including those inside `$( )` and compound commands.
    pub(super) simples: Vec<Simple>,
    /// Labels of bash-only syntax found while tokenizing (see `BASHISMS` in the parent).
    pub(super) bashisms: Vec<&'static str>,
    /// Names this command assigns as arrays.
    pub(super) arrays: Vec<String>,
    /// Whether the command starts a background job with `&`.
    pub(super) background: bool,
}

/// Tokenizes `command` into simple commands.
pub(super) fn parse(command: &Command) -> Parsed<'_> {
    let (tokens, mut bashisms) = Lexer::run(&command.text);
    let background = tokens
        .iter()
        .any(|token| matches!(token, Token::Op { op: "&", .. }));
    let mut builder = Builder::default();
    for token in tokens {
        builder.token(token);
    }
    builder.finish("");
    let mut simples = builder.simples;
    simples.sort_by_key(|simple| simple.start);
    bashisms.extend(builder.bashisms);
    let mut arrays = builder.arrays;
    arrays.extend(simples.iter().flat_map(declared_arrays));
    Parsed {
        command,
        simples,
        bashisms,
        arrays,
        background,
    }
}

/// Arrays named by `declare -a`, `local -A`, `readarray`, `mapfile` or `read -a`.
fn declared_arrays(simple: &Simple) -> Vec<String> {
    let is_flag = |word: &Word| word.text.starts_with('-') && word.text.contains(['a', 'A']);
    let mut names = simple
        .args
        .iter()
        .filter(|word| !word.text.starts_with('-'))
        .filter_map(|word| {
            let name = word.text.split('=').next().unwrap_or_default();
            is_name(name).then(|| name.to_owned())
        });
    match simple.name() {
        Some("declare" | "typeset" | "local") if simple.args.iter().any(is_flag) => names.collect(),
        Some("readarray" | "mapfile") => names.next_back().into_iter().collect(),
        Some("read") => simple
            .args
            .iter()
            .position(is_flag)
            .and_then(|index| simple.args.get(index + 1))
            .map(|word| word.text.clone())
            .into_iter()
            .collect(),
        _ => Vec::new(),
    }
}

/// Where a simple command sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum Nesting {
    /// At the top level of the command.
    #[default]
    Top,
    /// Inside `if`/`for`/`while`/`case`/`{ }` or a function body.
    Compound,
    /// Inside `( )`, `$( )` or `<( )`.
    Subshell,
}

/// A simple command: assignments, a command name and its arguments.
#[derive(Debug, Default)]
pub(super) struct Simple {
    /// The command word, once one is seen.
    pub(super) name: Option<Word>,
    /// Words after the command word (or a `for`/`case` header's words).
    pub(super) args: Vec<Word>,
    /// `NAME=value` words before the command word.
    pub(super) assignments: Vec<Word>,
    /// The function this segment defines (`name()` or `function name`).
    pub(super) defines: Option<String>,
    /// Whether it contains `$( )`.
    pub(super) substitution: bool,
    /// The operator before it (`""` at the start).
    pub(super) before: &'static str,
    /// The operator after it.
    pub(super) after: &'static str,
    /// How many compound commands or parentheses were open when it started.
    pub(super) depth: usize,
    /// Where the command word sits.
    pub(super) nesting: Nesting,
    /// Byte offset where it starts.
    pub(super) start: usize,
    /// 0-based line within the command text.
    pub(super) line: usize,
}

impl Simple {
    /// The command word's text.
    pub(super) fn name(&self) -> Option<&str> {
        self.name.as_ref().map(|word| word.text.as_str())
    }

    /// Every word: assignments, command word and arguments.
    pub(super) fn words(&self) -> impl Iterator<Item = &Word> {
        self.assignments.iter().chain(&self.name).chain(&self.args)
    }

    /// `set -e`, `set -euo pipefail`, `set -o errexit`.
    pub(super) fn is_errexit(&self) -> bool {
        let cluster = |word: &Word| {
            word.text.starts_with('-') && !word.text.starts_with("--") && word.text.contains('e')
        };
        self.name() == Some("set")
            && (self.args.iter().any(cluster)
                || self
                    .args
                    .windows(2)
                    .any(|pair| matches!(pair, [o, e] if o.text == "-o" && e.text == "errexit")))
    }
}

#[derive(Debug, Default)]
enum Skip {
    #[default]
    Nothing,
    /// The target word of a redirection.
    Word,
    /// The `)` of `name()`.
    Close,
    /// The inside of an array literal `A=( ... )`, with its open parentheses.
    Literal(usize),
}

/// A simple command being built.
#[derive(Default)]
struct Segment {
    simple: Simple,
    /// Inside a `for`/`case`/`select` header, whose words are not a command.
    header: bool,
    touched: bool,
    skip: Skip,
    /// The last word's text and end, to spot `A=(`.
    previous: Option<(String, usize)>,
}

impl Segment {
    fn new(before: &'static str, depth: usize) -> Self {
        Segment {
            simple: Simple {
                before,
                depth,
                ..Simple::default()
            },
            ..Segment::default()
        }
    }
}

enum Frame {
    Group,
    /// `case`; `pattern` while reading a pattern up to its `)`.
    Case {
        pattern: bool,
    },
    Subshell,
    /// `$( )`, holding the command it interrupted.
    Substitution(Box<Segment>),
}

/// Groups tokens into [`Simple`] commands, tracking compound commands and parentheses.
#[derive(Default)]
struct Builder {
    frames: Vec<Frame>,
    current: Segment,
    simples: Vec<Simple>,
    bashisms: Vec<&'static str>,
    arrays: Vec<String>,
    last_open: Option<usize>,
}

impl Builder {
    fn token(&mut self, token: Token) {
        if matches!(self.frames.last(), Some(Frame::Case { pattern: true })) {
            match token {
                Token::Op { op: ")", .. } => {
                    self.set_pattern(false);
                    self.finish(")");
                }
                Token::Word(word) if word.text == "esac" => {
                    self.frames.pop();
                }
                _ => {}
            }
            return;
        }
        match token {
            Token::Word(word) => self.word(word),
            Token::Op { op, start, line } => self.op(op, start, line),
        }
    }

    fn nesting(&self) -> Nesting {
        let subshell = |frame: &Frame| matches!(frame, Frame::Subshell | Frame::Substitution(_));
        match (self.frames.iter().any(subshell), self.frames.is_empty()) {
            (true, _) => Nesting::Subshell,
            (false, true) => Nesting::Top,
            (false, false) => Nesting::Compound,
        }
    }

    fn touch(&mut self, start: usize, line: usize) {
        if !self.current.touched {
            self.current.touched = true;
            self.current.simple.start = start;
            self.current.simple.line = line;
        }
    }

    fn set_pattern(&mut self, value: bool) {
        if let Some(Frame::Case { pattern }) = self.frames.last_mut() {
            *pattern = value;
        }
    }

    fn word(&mut self, word: Word) {
        self.touch(word.start, word.line);
        self.current.previous = Some((word.text.clone(), word.end));
        match self.current.skip {
            Skip::Word => {
                self.current.skip = Skip::Nothing;
                return;
            }
            Skip::Literal(_) => return,
            Skip::Nothing | Skip::Close => {}
        }
        let simple = &mut self.current.simple;
        if simple.defines.as_deref() == Some("") {
            simple.defines = Some(word.text);
            return;
        }
        if simple.defines.is_some() {
            // The body after `function name`: `{` starts a compound command.
            self.finish(";");
            return self.word(word);
        }
        if self.current.header || simple.name.is_some() {
            if self.current.header
                && word.text == "in"
                && matches!(self.frames.last(), Some(Frame::Case { .. }))
            {
                self.set_pattern(true);
                return self.finish("\n");
            }
            self.current.simple.args.push(word);
            return;
        }
        match word.text.as_str() {
            "if" | "while" | "until" | "{" => self.frames.push(Frame::Group),
            "for" | "select" => {
                self.frames.push(Frame::Group);
                self.current.header = true;
            }
            "case" => {
                self.frames.push(Frame::Case { pattern: false });
                self.current.header = true;
            }
            "fi" | "done" | "}" if matches!(self.frames.last(), Some(Frame::Group)) => {
                self.frames.pop();
            }
            "esac" if matches!(self.frames.last(), Some(Frame::Case { .. })) => {
                self.frames.pop();
            }
            "then" | "do" | "else" | "elif" | "!" | "time" => {}
            "function" => {
                self.bashisms.push("function");
                self.current.simple.defines = Some(String::new());
            }
            text => {
                if let Some((name, element)) = assigned_name(text) {
                    if element {
                        self.bashisms.push("arrays");
                        self.arrays.push(name.to_owned());
                    }
                    self.current.simple.assignments.push(word);
                } else {
                    self.current.simple.nesting = self.nesting();
                    self.current.simple.name = Some(word);
                }
            }
        }
    }

    fn op(&mut self, op: &'static str, start: usize, line: usize) {
        if let Skip::Literal(depth) = &mut self.current.skip {
            match op {
                "(" | "$(" | "<(" | ">(" => *depth += 1,
                ")" => *depth -= 1,
                _ => {}
            }
            if *depth == 0 {
                self.current.skip = Skip::Nothing;
            }
            return;
        }
        match op {
            "(" => self.open(start, line),
            ")" => self.close(),
            "$(" | "<(" | ">(" => {
                self.touch(start, line);
                self.current.simple.substitution = true;
                let mut outer = std::mem::take(&mut self.current);
                outer.skip = Skip::Nothing;
                self.frames.push(Frame::Substitution(Box::new(outer)));
                self.current = Segment::new(op, self.frames.len());
            }
            ";;" => {
                self.set_pattern(true);
                self.finish(op);
            }
            "\n" if !self.current.touched
                && matches!(self.current.simple.before, "&&" | "||" | "|" | "|&") => {}
            ";" | "\n" | "&" | "&&" | "||" | "|" | "|&" => self.finish(op),
            _ => self.current.skip = Skip::Word,
        }
    }

    fn open(&mut self, start: usize, line: usize) {
        let literal = (self.current.previous.as_ref())
            .filter(|(_, end)| *end == start)
            .and_then(|(text, _)| text.strip_suffix('='))
            .map(|target| target.strip_suffix('+').unwrap_or(target))
            .filter(|name| is_name(name))
            .map(str::to_owned);
        let simple = &mut self.current.simple;
        if let Some(name) = literal {
            self.bashisms.push("arrays");
            self.arrays.push(name);
            self.current.skip = Skip::Literal(1);
        } else if simple.defines.is_some() || (simple.name.is_some() && simple.args.is_empty()) {
            // `name()` or `function name()`.
            if simple.defines.is_none() {
                simple.defines = simple.name.take().map(|word| word.text);
            }
            self.current.skip = Skip::Close;
        } else if !self.current.header && simple.name.is_none() {
            if self.last_open.is_some_and(|open| open + 1 == start) {
                self.bashisms.push("((");
            }
            self.last_open = Some(start);
            self.touch(start, line);
            self.frames.push(Frame::Subshell);
        }
    }

    fn close(&mut self) {
        if matches!(self.current.skip, Skip::Close) {
            self.current.skip = Skip::Nothing;
            return self.finish(")");
        }
        let frame = match self.frames.last() {
            Some(Frame::Subshell | Frame::Substitution(_)) => self.frames.pop(),
            _ => None,
        };
        self.finish(")");
        if let Some(Frame::Substitution(outer)) = frame {
            self.current = *outer;
        }
    }

    fn finish(&mut self, op: &'static str) {
        let next = Segment::new(op, self.frames.len());
        let mut done = std::mem::replace(&mut self.current, next).simple;
        done.after = op;
        let empty = done.name.is_none()
            && done.defines.is_none()
            && done.assignments.is_empty()
            && done.args.is_empty();
        if !empty || done.substitution {
            self.simples.push(done);
        }
    }
}

#[cfg(test)]
mod tests {
    use test_case::test_case;

    use super::*;
    use crate::buildspec::model::Location;

    /// One line per simple command: name (or `=` for assignments, `def f`), depth, nesting and
    /// the operators around it; then the arrays.
    fn render(text: &str) -> String {
        let command = Command {
            text: text.to_owned(),
            location: Location::default(),
        };
        let parsed = parse(&command);
        let mut lines: Vec<String> = (parsed.simples.iter())
            .map(|simple| {
                let name = match (&simple.defines, simple.name()) {
                    (Some(function), _) => format!("def {function}"),
                    (None, Some(name)) => name.to_owned(),
                    (None, None) if simple.assignments.is_empty() => "-".to_owned(),
                    (None, None) => "=".to_owned(),
                };
                let (before, after) = (
                    simple.before.escape_default(),
                    simple.after.escape_default(),
                );
                format!(
                    "{name} {} {:?} [{before}|{after}]",
                    simple.depth, simple.nesting
                )
            })
            .collect();
        lines.push(format!("arrays {:?}", parsed.arrays));
        lines.join("\n")
    }

    #[test_case("if make; then cd x; fi && ls", "make 0 Compound [|;]\ncd 1 Compound [;|;]\nls 0 Top [&&|]\narrays []" ; "if_then_and_list")]
    #[test_case("f() {\n  make\n}\nf", "def f 0 Top [|)]\nmake 1 Compound [\\n|\\n]\nf 0 Top [\\n|]\narrays []" ; "function_definition")]
    #[test_case("function f {\n  cd x\n}", "def f 0 Top [|;]\ncd 1 Compound [\\n|\\n]\narrays []" ; "function_keyword_body")]
    #[test_case("(cd a && make) | tee log", "cd 0 Subshell [|&&]\nmake 1 Subshell [&&|)]\ntee 0 Top [||]\narrays []" ; "subshell_and_pipe")]
    #[test_case("X=$(cd a && pwd) ls", "ls 0 Top [|]\ncd 1 Subshell [$(|&&]\npwd 1 Subshell [&&|)]\narrays []" ; "substitution_resumes_outer")]
    #[test_case("case $x in\n  a|b) make ;;\n  *) ls ;;\nesac", "- 0 Top [|\\n]\nmake 1 Compound [)|;;]\nls 1 Compound [)|;;]\narrays []" ; "case_patterns_are_not_commands")]
    #[test_case("a &&\n  b", "a 0 Top [|&&]\nb 0 Top [&&|]\narrays []" ; "newline_after_and")]
    #[test_case("A=(1 2) B[0]=x; declare -a C; read -ra D; mapfile -t E < f", "= 0 Top [|;]\ndeclare 0 Top [;|;]\nread 0 Top [;|;]\nmapfile 0 Top [;|]\narrays [\"A\", \"B\", \"C\", \"D\", \"E\"]" ; "arrays")]
    fn builds_simple_commands(text: &str, expected: &str) {
        assert_eq!(render(text), expected);
    }
}
