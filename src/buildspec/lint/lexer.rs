//! Splits one command's text into shell words and operators for the linter.
//!
//! Single-quoted text is masked, comments and heredoc bodies are dropped, and `$( )` inside double
//! quotes is tokenized as code. It is a heuristic, not a shell parser: it never fails, it guesses.

/// A shell word; single-quoted text is masked with `_` so it cannot look like syntax.
#[derive(Debug, Clone, Default)]
pub(super) struct Word {
    /// The word as the shell sees it, quotes kept and single-quoted text masked.
    pub(super) text: String,
    /// Byte offset of its first byte in the command text.
    pub(super) start: usize,
    /// Byte offset just past it.
    pub(super) end: usize,
    /// 0-based line within the command text.
    pub(super) line: usize,
}

impl Word {
    /// Names this word reads as arrays (`${A[0]}`, `${#A[@]}`), and labels of the bash-only
    /// expansions in it (`${var/a/b}`, `${var:0:7}`, `${var^^}`, `${!var}`, `{a,b}`).
    pub(super) fn expansions(&self) -> (Vec<&str>, Vec<&'static str>) {
        let (mut arrays, mut bash) = (Vec::new(), Vec::new());
        for (index, _) in self.text.match_indices("${") {
            let rest = self.text.get(index + 2..).unwrap_or_default();
            let (prefix, body) = match rest.strip_prefix(['#', '!']) {
                Some(body) => (rest.chars().next(), body),
                None => (None, rest),
            };
            let length = body.find(|c: char| !is_name_char(c)).unwrap_or(body.len());
            let (name, after) = body.split_at(length);
            let mut next = after.chars();
            match (prefix, next.next(), next.next()) {
                _ if name.is_empty() => {}
                (_, Some('['), _) => arrays.push(name),
                (Some('!'), Some('}'), _) => bash.push("${!var}"),
                (None, Some('/'), _) => bash.push("${var/pattern/text}"),
                (None, Some(':'), Some(c))
                    if c.is_ascii_digit() || matches!(c, ' ' | '$' | '(') =>
                {
                    bash.push("${var:offset}");
                }
                (None, Some('^' | ','), _) => bash.push("${var^^}"),
                _ => {}
            }
        }
        if self.has_brace_expansion() {
            bash.push("{a,b}");
        }
        (arrays, bash)
    }

    /// `dir/{a,b}` or `{1..3}` outside quotes: dash leaves the braces as they are.
    fn has_brace_expansion(&self) -> bool {
        let text = self.text.as_str();
        !text.contains(['"', '\''])
            && text.match_indices('{').any(|(index, _)| {
                let inner = text.get(index + 1..).unwrap_or_default();
                let inner = inner
                    .find('}')
                    .and_then(|end| inner.get(..end))
                    .unwrap_or_default();
                !text.get(..index).unwrap_or_default().ends_with(['$', '\\'])
                    && !inner.contains('{')
                    && (inner.contains(',') || inner.contains(".."))
            })
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Whether `text` is a shell variable name.
pub(super) fn is_name(text: &str) -> bool {
    text.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && text.chars().all(is_name_char)
}

/// The variable a word assigns (`A=x`, `A+=x`), and whether it is an element (`A[0]=x`).
pub(super) fn assigned_name(text: &str) -> Option<(&str, bool)> {
    let (target, _) = text.split_once('=')?;
    let target = target.strip_suffix('+').unwrap_or(target);
    match target.split_once('[') {
        Some((name, index)) if index.ends_with(']') && is_name(name) => Some((name, true)),
        None if is_name(target) => Some((target, false)),
        _ => None,
    }
}

/// A word or an operator (`\n` included), in source order.
#[derive(Debug)]
pub(super) enum Token {
    Word(Word),
    Op {
        op: &'static str,
        start: usize,
        line: usize,
    },
}

/// Longest first, so `<<<` wins over `<<` and `<`.
const OPERATORS: [&str; 23] = [
    "<<<", "<<-", "&>>", ";;", "&&", "||", "|&", "&>", ">>", "<<", ">&", "<&", "<>", ">|", "<(",
    ">(", ";", "&", "|", "(", ")", "<", ">",
];

enum Context {
    Double,
    /// `$( )` with the count of `(` opened inside it.
    Substitution(usize),
}

/// Splits command text into words and operators; skips comments and heredoc bodies.
#[derive(Default)]
pub(super) struct Lexer<'a> {
    src: &'a [u8],
    pos: usize,
    line: usize,
    word: Option<(usize, usize)>,
    buffer: Vec<u8>,
    contexts: Vec<Context>,
    heredocs: Vec<String>,
    delimiter_next: bool,
    tokens: Vec<Token>,
    bashisms: Vec<&'static str>,
}

impl<'a> Lexer<'a> {
    /// Tokenizes `text` and returns the tokens with the bash-only operators it met.
    pub(super) fn run(text: &'a str) -> (Vec<Token>, Vec<&'static str>) {
        let mut lexer = Lexer {
            src: text.as_bytes(),
            ..Lexer::default()
        };
        while lexer.pos < lexer.src.len() {
            lexer.step();
        }
        lexer.flush();
        (lexer.tokens, lexer.bashisms)
    }

    fn peek(&self, offset: usize) -> u8 {
        self.src.get(self.pos + offset).copied().unwrap_or(0)
    }

    /// Moves the current byte into the word, or `mask` in its place.
    fn take(&mut self, mask: Option<u8>) {
        let Some(&byte) = self.src.get(self.pos) else {
            return;
        };
        self.word.get_or_insert((self.pos, self.line));
        self.buffer.push(mask.unwrap_or(byte));
        self.line += usize::from(byte == b'\n');
        self.pos += 1;
    }

    fn flush(&mut self) {
        let Some((start, line)) = self.word.take() else {
            return;
        };
        let text = String::from_utf8_lossy(&std::mem::take(&mut self.buffer)).into_owned();
        if std::mem::take(&mut self.delimiter_next) {
            let raw = self.src.get(start..self.pos).unwrap_or_default();
            let bare: Vec<u8> = raw
                .iter()
                .copied()
                .filter(|b| !matches!(b, b'\'' | b'"' | b'\\'))
                .collect();
            self.heredocs
                .push(String::from_utf8_lossy(&bare).into_owned());
        }
        self.tokens.push(Token::Word(Word {
            text,
            start,
            end: self.pos,
            line,
        }));
    }

    fn emit(&mut self, op: &'static str) {
        self.tokens.push(Token::Op {
            op,
            start: self.pos,
            line: self.line,
        });
        self.pos += op.len();
        self.line += usize::from(op == "\n");
    }

    fn step(&mut self) {
        let byte = self.peek(0);
        if matches!(self.contexts.last(), Some(Context::Double)) {
            return self.step_double(byte);
        }
        match byte {
            b'\\' if self.peek(1) == b'\n' => {
                self.pos += 2;
                self.line += 1;
            }
            b'\\' => {
                self.take(None);
                self.take(None);
            }
            b'\'' => {
                self.take(None);
                while self.pos < self.src.len() && self.peek(0) != b'\'' {
                    self.take(Some(b'_'));
                }
                self.take(None);
            }
            b'"' => {
                self.take(None);
                self.contexts.push(Context::Double);
            }
            b'#' if self.word.is_none() => {
                while self.pos < self.src.len() && self.peek(0) != b'\n' {
                    self.pos += 1;
                }
            }
            b'$' => self.dollar(),
            b' ' | b'\t' | b'\r' => {
                self.flush();
                self.pos += 1;
            }
            b'\n' => {
                self.flush();
                self.emit("\n");
                self.heredoc_bodies();
            }
            b';' | b'&' | b'|' | b'(' | b')' | b'<' | b'>' => self.operator(),
            _ => self.take(None),
        }
    }

    fn step_double(&mut self, byte: u8) {
        match byte {
            b'"' => {
                self.take(None);
                self.contexts.pop();
            }
            b'\\' => {
                self.take(None);
                self.take(None);
            }
            b'$' if matches!(self.peek(1), b'(' | b'{') => self.dollar(),
            _ => self.take(None),
        }
    }

    fn dollar(&mut self) {
        match self.peek(1) {
            b'\'' => {
                self.bashisms.push("$'...'");
                self.take(None);
            }
            b'(' => {
                self.flush();
                self.emit("$(");
                self.contexts.push(Context::Substitution(0));
            }
            b'{' => {
                // Copy `${...}` whole: `#` and spaces inside it are not syntax.
                let mut depth = 0usize;
                while self.pos < self.src.len() {
                    let byte = self.peek(0);
                    self.take(None);
                    match byte {
                        b'{' => depth += 1,
                        b'}' if depth <= 1 => return,
                        b'}' => depth -= 1,
                        _ => {}
                    }
                }
            }
            _ => self.take(None),
        }
    }

    fn operator(&mut self) {
        let rest = self.src.get(self.pos..).unwrap_or_default();
        let Some(op) = OPERATORS
            .into_iter()
            .find(|op| rest.starts_with(op.as_bytes()))
        else {
            return self.take(None);
        };
        if op.starts_with(['<', '>'])
            && !self.buffer.is_empty()
            && self.buffer.iter().all(u8::is_ascii_digit)
        {
            // `2>&1`: the digits name a file descriptor, they are not an argument.
            self.buffer.clear();
            self.word = None;
        }
        self.flush();
        match op {
            "<<<" | "&>" | "&>>" | "|&" => self.bashisms.push(op),
            "<<" | "<<-" => self.delimiter_next = true,
            "<(" | ">(" => {
                self.bashisms.push("<(...)");
                self.contexts.push(Context::Substitution(0));
            }
            _ => {}
        }
        match (op, self.contexts.last_mut()) {
            ("(", Some(Context::Substitution(depth))) => *depth += 1,
            (")", Some(Context::Substitution(0))) => {
                self.contexts.pop();
            }
            (")", Some(Context::Substitution(depth))) => *depth -= 1,
            _ => {}
        }
        self.emit(op);
    }

    /// Skips the bodies of heredocs opened on the line that just ended.
    fn heredoc_bodies(&mut self) {
        if !self.contexts.is_empty() {
            return;
        }
        for delimiter in std::mem::take(&mut self.heredocs) {
            while self.pos < self.src.len() {
                let rest = self.src.get(self.pos..).unwrap_or_default();
                let length = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
                let line = String::from_utf8_lossy(rest.get(..length).unwrap_or_default())
                    .trim()
                    .to_owned();
                self.pos += length + 1;
                self.line += 1;
                if line == delimiter {
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use test_case::test_case;

    use super::*;

    /// Words in brackets, operators in angle brackets, bash-only operators after `|`.
    fn render(text: &str) -> String {
        let (tokens, bashisms) = Lexer::run(text);
        let mut parts: Vec<String> = tokens
            .iter()
            .map(|token| match token {
                Token::Word(word) => format!("[{}]", word.text),
                Token::Op { op, .. } => format!("<{}>", op.escape_default()),
            })
            .collect();
        parts.extend(bashisms.iter().map(|label| format!("| {label}")));
        parts.join(" ")
    }

    #[test_case("echo 'a b' \"c d\" # e f", "[echo] ['___'] [\"c d\"]" ; "quotes_and_comment")]
    #[test_case("X=\"v-$(git rev-parse HEAD)\"", "[X=\"v-] <$(> [git] [rev-parse] [HEAD] <)> [\"]" ; "substitution_inside_double_quotes")]
    #[test_case("echo ${A:-a b} ${#A} a#b", "[echo] [${A:-a b}] [${#A}] [a#b]" ; "parameter_expansion_and_hash")]
    #[test_case("cat <<'EOF' > f\n[[ x ]]\nEOF\nls", "[cat] <<<> ['___'] <>> [f] <\\n> [ls]" ; "heredoc_body_skipped")]
    #[test_case("make 2>&1 >/dev/null &", "[make] <>&> [1] <>> [/dev/null] <&>" ; "redirections_and_background")]
    #[test_case("aws s3 cp \\\n  a b", "[aws] [s3] [cp] [a] [b]" ; "line_continuation")]
    #[test_case("cat <<< $'a' &> f |& tee", "[cat] <<<<> [$'_'] <&>> [f] <|&> [tee] | <<< | $'...' | &> | |&" ; "bash_operators")]
    #[test_case("echo \"it's\" '\"'", "[echo] [\"it's\"] ['_']" ; "quotes_inside_quotes")]
    fn lexes(text: &str, expected: &str) {
        assert_eq!(render(text), expected);
    }

    #[test_case("${A[@]}", &["A"], &[] ; "array_read")]
    #[test_case("\"${#FILES[@]}\"", &["FILES"], &[] ; "array_length")]
    #[test_case("${A//-/_}${B:0:7}${C^^}${!D}", &[], &["${var/pattern/text}", "${var:offset}", "${var^^}", "${!var}"] ; "bash_expansions")]
    #[test_case("${A:-x}${A%.*}${A#*/}${#A}$A", &[], &[] ; "posix_expansions")]
    #[test_case("out/{a,b}", &[], &["{a,b}"] ; "brace_list")]
    #[test_case("{1..3}", &[], &["{a,b}"] ; "brace_range")]
    #[test_case("'{a,b}'", &[], &[] ; "quoted_braces")]
    #[test_case("{}", &[], &[] ; "find_placeholder")]
    fn finds_expansions(text: &str, arrays: &[&str], bash: &[&str]) {
        let word = Word {
            text: text.to_owned(),
            ..Word::default()
        };
        assert_eq!(word.expansions(), (arrays.to_vec(), bash.to_vec()));
    }

    #[test_case("A=1", Some(("A", false)) ; "scalar")]
    #[test_case("A+=(x)", Some(("A", false)) ; "append")]
    #[test_case("A[0]=x", Some(("A", true)) ; "element")]
    #[test_case("--flag=x", None ; "option")]
    #[test_case("echo", None ; "no_equals")]
    fn finds_assignments(text: &str, expected: Option<(&str, bool)>) {
        assert_eq!(assigned_name(text), expected);
    }
}
