//! Globs in the java.nio style that CodePipeline trigger filters use (P26): `*` stays inside one
//! path segment, `**` crosses `/`, `?` is one character, `[...]`/`[!...]` are classes, `{a,b}` is
//! a group that cannot nest, and `\` escapes the next character. A pattern matches the whole text.
//!
//! The rules follow `sun.nio.fs.Globs.toRegexPattern`: classes and `?` never match `/`, `\` is
//! literal inside a class, `-` is literal first in a class, a `,` or `}` outside a group is literal.

use std::fmt;

/// A compiled glob.
#[derive(Clone, PartialEq, Eq)]
pub struct Glob {
    pattern: String,
    tokens: Vec<Token>,
}

/// Why a pattern does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GlobError {
    /// A `\` at the end of the pattern.
    #[error("`\\` at the end has no character to escape")]
    TrailingEscape,
    /// A `[` without its `]`.
    #[error("`[` at offset {offset} is never closed")]
    UnclosedClass {
        /// Character offset of the `[`.
        offset: usize,
    },
    /// `/` inside a class, which could never match.
    #[error("a character class cannot contain `/`")]
    SeparatorInClass,
    /// A range without a start, or whose end is below its start.
    #[error("invalid range in character class at offset {offset}")]
    InvalidRange {
        /// Character offset of the `-`.
        offset: usize,
    },
    /// `{` inside `{...}`.
    #[error("groups (`{{a,b}}`) cannot be nested")]
    NestedGroup,
    /// A `{` without its `}`.
    #[error("`{{` is never closed")]
    UnclosedGroup,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(char),
    /// `?`: one character other than `/`.
    Any,
    /// `*`: any run of characters other than `/`.
    Star,
    /// `**`: any run of characters.
    DoubleStar,
    Class {
        negated: bool,
        items: Vec<(char, char)>,
    },
    /// `{a,b}`: each alternative is a token list without groups.
    Group(Vec<Vec<Token>>),
}

impl Glob {
    /// Compiles a pattern.
    pub fn new(pattern: &str) -> Result<Self, GlobError> {
        let tokens = compile(pattern)?;
        Ok(Glob {
            pattern: pattern.to_owned(),
            tokens,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// Whether the pattern matches all of `text`.
    pub fn is_match(&self, text: &str) -> bool {
        let chars: Vec<char> = text.chars().collect();
        let mut positions = vec![false; chars.len() + 1];
        positions[0] = true;
        let positions = advance(&self.tokens, &chars, positions);
        positions[chars.len()]
    }
}

impl fmt::Debug for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Glob({:?})", self.pattern)
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.pattern)
    }
}

fn compile(pattern: &str) -> Result<Vec<Token>, GlobError> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut tokens = Vec::new();
    // Inside a group: the finished alternatives and the current one.
    let mut group: Option<(Vec<Vec<Token>>, Vec<Token>)> = None;
    let mut index = 0;
    while index < chars.len() {
        let c = chars[index];
        index += 1;
        let token = match c {
            '\\' => {
                let escaped = *chars.get(index).ok_or(GlobError::TrailingEscape)?;
                index += 1;
                Token::Literal(escaped)
            }
            '[' => class(&chars, &mut index)?,
            '{' if group.is_some() => return Err(GlobError::NestedGroup),
            '{' => {
                group = Some((Vec::new(), Vec::new()));
                continue;
            }
            '}' if group.is_some() => {
                let (mut alternatives, current) = group.take().expect("checked by the guard");
                alternatives.push(current);
                Token::Group(alternatives)
            }
            ',' if group.is_some() => {
                let (alternatives, current) = group.as_mut().expect("checked by the guard");
                alternatives.push(std::mem::take(current));
                continue;
            }
            '*' if chars.get(index) == Some(&'*') => {
                index += 1;
                Token::DoubleStar
            }
            '*' => Token::Star,
            '?' => Token::Any,
            other => Token::Literal(other),
        };
        match &mut group {
            Some((_, current)) => current.push(token),
            None => tokens.push(token),
        }
    }
    if group.is_some() {
        return Err(GlobError::UnclosedGroup);
    }
    Ok(tokens)
}

/// Parses a class after its `[`, leaving `index` after the `]`.
fn class(chars: &[char], index: &mut usize) -> Result<Token, GlobError> {
    let open = *index - 1;
    let mut negated = false;
    let mut items = Vec::new();
    // Java keeps a leading `^` literal rather than a negation; a `-` first (after any `!`) is
    // literal. Neither can start a range.
    if chars.get(*index) == Some(&'^') {
        items.push(('^', '^'));
        *index += 1;
    } else {
        if chars.get(*index) == Some(&'!') {
            negated = true;
            *index += 1;
        }
        if chars.get(*index) == Some(&'-') {
            items.push(('-', '-'));
            *index += 1;
        }
    }
    let mut range_start = None;
    loop {
        let Some(&c) = chars.get(*index) else {
            return Err(GlobError::UnclosedClass { offset: open });
        };
        *index += 1;
        match c {
            ']' => break,
            '/' => return Err(GlobError::SeparatorInClass),
            '-' => {
                let start = range_start
                    .take()
                    .ok_or(GlobError::InvalidRange { offset: *index - 1 })?;
                match chars.get(*index) {
                    None => return Err(GlobError::UnclosedClass { offset: open }),
                    // A trailing `-` closes the class, as in Java.
                    Some(']') => {
                        *index += 1;
                        items.push(('-', '-'));
                        break;
                    }
                    Some(&end) if end < start => {
                        return Err(GlobError::InvalidRange { offset: *index - 1 });
                    }
                    Some(&end) => {
                        *index += 1;
                        items.pop();
                        items.push((start, end));
                    }
                }
            }
            other => {
                items.push((other, other));
                range_start = Some(other);
            }
        }
    }
    Ok(Token::Class { negated, items })
}

/// Moves every reachable position in `chars` across `tokens`.
fn advance(tokens: &[Token], chars: &[char], mut positions: Vec<bool>) -> Vec<bool> {
    for token in tokens {
        let mut next = vec![false; positions.len()];
        for start in (0..positions.len()).filter(|&start| positions[start]) {
            step(token, chars, start, &mut next);
        }
        positions = next;
        if !positions.contains(&true) {
            break;
        }
    }
    positions
}

/// Marks in `next` every position one token can reach from `start`.
fn step(token: &Token, chars: &[char], start: usize, next: &mut [bool]) {
    let current = chars.get(start).copied();
    match token {
        Token::Literal(c) => {
            if current == Some(*c) {
                next[start + 1] = true;
            }
        }
        Token::Any => {
            if current.is_some_and(|c| c != '/') {
                next[start + 1] = true;
            }
        }
        Token::Class { negated, items } => {
            if let Some(c) = current.filter(|&c| c != '/') {
                let inside = items.iter().any(|&(low, high)| (low..=high).contains(&c));
                if inside != *negated {
                    next[start + 1] = true;
                }
            }
        }
        Token::Star => {
            next[start] = true;
            for (offset, &c) in chars[start..].iter().enumerate() {
                if c == '/' {
                    break;
                }
                next[start + offset + 1] = true;
            }
        }
        Token::DoubleStar => next[start..].fill(true),
        Token::Group(alternatives) => {
            for alternative in alternatives {
                let mut from = vec![false; next.len()];
                from[start] = true;
                let reached = advance(alternative, chars, from);
                for (slot, reached) in next.iter_mut().zip(reached) {
                    *slot |= reached;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use test_case::test_case;

    use super::*;

    #[test_case("master", "master", true ; "literal")]
    #[test_case("master", "master2", false ; "whole text only")]
    #[test_case("release/*", "release/1.0", true ; "star in a segment")]
    #[test_case("release/*", "release/1.0/hotfix", false ; "star stops at slash")]
    #[test_case("release/**", "release/1.0/hotfix", true ; "double star crosses slash")]
    #[test_case("release/**", "release", false ; "double star after slash needs the slash")]
    #[test_case("**", "", true ; "double star matches empty")]
    #[test_case("*", "", true ; "star matches empty")]
    #[test_case("src/**/*.rs", "src/a/b/c.rs", true ; "nested files")]
    #[test_case("src/**/*.rs", "src/c.rs", false ; "double star slash needs a directory")]
    #[test_case("**.rs", "src/c.rs", true ; "double star then suffix")]
    #[test_case("v?", "v1", true ; "question mark")]
    #[test_case("v?", "v12", false ; "question mark is one character")]
    #[test_case("a?b", "a/b", false ; "question mark never matches slash")]
    #[test_case("v[0-9].*", "v3.1", true ; "range")]
    #[test_case("v[0-9].*", "vx.1", false ; "range miss")]
    #[test_case("v[!0-9]", "vx", true ; "negated class")]
    #[test_case("v[!0-9]", "v7", false ; "negated class miss")]
    #[test_case("a[!x]b", "a/b", false ; "negated class never matches slash")]
    #[test_case("[-a]", "-", true ; "leading dash is literal")]
    #[test_case("[a-]", "-", true ; "trailing dash is literal")]
    #[test_case("[^a]", "^", true ; "leading caret is literal")]
    #[test_case("[\\]", "\\", true ; "backslash is literal in a class")]
    #[test_case("{main,master}", "master", true ; "group")]
    #[test_case("{main,master}", "develop", false ; "group miss")]
    #[test_case("feature/{a,b/c}*", "feature/b/cx", true ; "group alternative with slash")]
    #[test_case("x{}", "x", true ; "empty group")]
    #[test_case("a,b", "a,b", true ; "comma outside a group is literal")]
    #[test_case("a}", "a}", true ; "closing brace outside a group is literal")]
    #[test_case("\\*", "*", true ; "escaped star")]
    #[test_case("\\*", "x", false ; "escaped star is literal")]
    #[test_case("\\{a,b\\}", "{a,b}", true ; "escaped braces")]
    #[test_case("*a*a*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false ; "no exponential backtracking")]
    #[test_case("réa*", "réaliser", true ; "unicode")]
    fn p26_glob_matches(pattern: &str, text: &str, expected: bool) {
        let glob = Glob::new(pattern).expect("pattern compiles");
        assert_eq!(glob.is_match(text), expected, "{pattern} vs {text}");
    }

    #[test_case("abc\\", &GlobError::TrailingEscape ; "trailing escape")]
    #[test_case("a[bc", &GlobError::UnclosedClass { offset: 1 } ; "unclosed class")]
    #[test_case("[a/b]", &GlobError::SeparatorInClass ; "slash in class")]
    #[test_case("[z-a]", &GlobError::InvalidRange { offset: 2 } ; "reversed range")]
    #[test_case("[a-b-c]", &GlobError::InvalidRange { offset: 4 } ; "range without start")]
    #[test_case("{a,{b}}", &GlobError::NestedGroup ; "nested group")]
    #[test_case("{a,b", &GlobError::UnclosedGroup ; "unclosed group")]
    fn p26_glob_rejects(pattern: &str, expected: &GlobError) {
        assert_eq!(Glob::new(pattern).as_ref(), Err(expected));
    }

    #[test]
    fn p26_glob_error_messages() {
        let error = Glob::new("{a,{b}}").expect_err("nested");
        assert_eq!(error.to_string(), "groups (`{a,b}`) cannot be nested");
    }
}
