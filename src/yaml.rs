//! A small YAML tree with a 1-based `line:column` on every node, built from yaml-rust2's events.
//!
//! Scalars keep the text the author wrote and are never re-typed, so `8080`, `1.10` and `yes`
//! stay strings (B5). Anchors and merge keys (`<<`) are expanded here. Shared by the buildspec
//! and pipeline loaders; it knows no keys of either.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::{Marker, ScanError, TScalarStyle};

use std::fmt;

/// A position in a YAML file, 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Location {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Deeper nesting than this is refused: no buildspec needs it, and it bounds recursion.
const MAX_DEPTH: usize = 64;

/// The most nodes one document may expand to, counting every alias copy ("billion laughs").
const MAX_NODES: usize = 100_000;

/// How a scalar was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScalarStyle {
    /// Unquoted.
    Plain,
    /// `'single'` or `"double"` quoted.
    Quoted,
    /// A `|` block.
    Literal,
    /// A `>` block.
    Folded,
}

/// What a node holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NodeKind {
    /// Any non-null scalar, as text; numbers and booleans are not converted.
    Scalar {
        /// The scalar's value: the source text for plain scalars, unescaped for quoted ones.
        text: String,
        /// How it was written.
        style: ScalarStyle,
    },
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in document order, merge keys already applied.
    Map(Vec<(Node, Node)>),
    /// An empty value, `~` or `null`.
    Null,
}

/// One node of the tree and where it starts.
///
/// A mapping starts at its first key, an implicit empty value (`X:`) at its key, and a block
/// scalar (`|`, `>`) at its first line of content, which is where yaml-rust2 places it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    /// What the node holds.
    pub(crate) kind: NodeKind,
    /// Where it starts.
    pub(crate) location: Location,
}

impl Node {
    /// The scalar text, if this is a scalar.
    pub(crate) fn as_scalar(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// What kind of node this is, for messages: "a string", "a mapping", ...
    pub(crate) fn describe(&self) -> &'static str {
        match self.kind {
            NodeKind::Scalar { .. } => "a string",
            NodeKind::Seq(_) => "a list",
            NodeKind::Map(_) => "a mapping",
            NodeKind::Null => "an empty value",
        }
    }
}

/// Malformed YAML, or a document this tree refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct YamlError {
    /// Where the parser stopped.
    pub(crate) location: Location,
    /// yaml-rust2's description, or ours.
    pub(crate) message: String,
}

/// Parses one YAML document into a tree. An empty document, or more than one, is an error.
pub(crate) fn parse(text: &str) -> Result<Node, YamlError> {
    // yaml-rust2 would make a UTF-8 byte order mark part of the first key.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut parser = Parser::new_from_str(text);
    let mut builder = Builder::default();
    loop {
        let (event, marker) = parser.next_token().map_err(|error| scan_error(&error))?;
        if event == Event::StreamEnd {
            break;
        }
        builder.push(event, location(marker))?;
    }
    match builder.root {
        Some(root) if root.kind != NodeKind::Null => Ok(root),
        Some(root) => Err(error(root.location, "the buildspec is empty")),
        None => Err(error(
            Location { line: 1, column: 1 },
            "the buildspec is empty",
        )),
    }
}

/// An open sequence or mapping.
struct Frame {
    anchor: usize,
    location: Location,
    /// Nodes in this subtree so far, itself included.
    size: usize,
    kind: FrameKind,
}

enum FrameKind {
    Seq(Vec<Node>),
    Map {
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
    },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    /// Finished anchored nodes by the parser's anchor id, with their subtree size.
    anchors: HashMap<usize, (Node, usize)>,
    documents: usize,
    nodes: usize,
    root: Option<Node>,
}

impl Builder {
    fn push(&mut self, event: Event, at: Location) -> Result<(), YamlError> {
        match event {
            Event::DocumentStart => {
                self.documents += 1;
                if self.documents > 1 {
                    return Err(error(at, "a buildspec must be a single yaml document"));
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
                self.count(1, at)?;
                let node = self.scalar(text, style, tag.as_ref(), at);
                self.finish_node(node, anchor, 1);
            }
            Event::SequenceStart(anchor, _) => self.open(anchor, at, FrameKind::Seq(Vec::new()))?,
            Event::MappingStart(anchor, _) => {
                let kind = FrameKind::Map {
                    entries: Vec::new(),
                    key: None,
                };
                self.open(anchor, at, kind)?;
            }
            Event::SequenceEnd | Event::MappingEnd => self.close()?,
            Event::Alias(id) => {
                let Some((node, size)) = self.anchors.get(&id).cloned() else {
                    return Err(error(
                        at,
                        "an alias cannot refer to the node that contains it",
                    ));
                };
                self.count(size, at)?;
                self.finish_node(
                    Node {
                        location: at,
                        ..node
                    },
                    0,
                    size,
                );
            }
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
        }
        Ok(())
    }

    fn count(&mut self, nodes: usize, at: Location) -> Result<(), YamlError> {
        self.nodes += nodes;
        if self.nodes > MAX_NODES {
            return Err(error(
                at,
                "the document expands to too many nodes (aliases)",
            ));
        }
        Ok(())
    }

    fn scalar(&self, text: String, style: TScalarStyle, tag: Option<&Tag>, at: Location) -> Node {
        let is_str_tag =
            tag.is_some_and(|tag| tag.handle == "tag:yaml.org,2002:" && tag.suffix == "str");
        let style = match style {
            TScalarStyle::Plain => ScalarStyle::Plain,
            TScalarStyle::SingleQuoted | TScalarStyle::DoubleQuoted => ScalarStyle::Quoted,
            TScalarStyle::Literal => ScalarStyle::Literal,
            TScalarStyle::Folded => ScalarStyle::Folded,
        };
        if style != ScalarStyle::Plain
            || is_str_tag
            || !matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL")
        {
            return Node {
                kind: NodeKind::Scalar { text, style },
                location: at,
            };
        }
        // The parser places an implicit empty value (`X:`) at the next token, often on a later
        // line; the key's own position is what a reader expects.
        let location = match self.stack.last() {
            Some(Frame {
                kind: FrameKind::Map { key: Some(key), .. },
                ..
            }) if text.is_empty() => key.location,
            _ => at,
        };
        Node {
            kind: NodeKind::Null,
            location,
        }
    }

    fn open(&mut self, anchor: usize, at: Location, kind: FrameKind) -> Result<(), YamlError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(error(
                at,
                format!("nesting deeper than {MAX_DEPTH} levels is not supported"),
            ));
        }
        self.count(1, at)?;
        self.stack.push(Frame {
            anchor,
            location: at,
            size: 1,
            kind,
        });
        Ok(())
    }

    fn close(&mut self) -> Result<(), YamlError> {
        let frame = self
            .stack
            .pop()
            .expect("the parser only ends a collection it started");
        let node = match frame.kind {
            FrameKind::Seq(items) => Node {
                kind: NodeKind::Seq(items),
                location: frame.location,
            },
            FrameKind::Map { entries, .. } => {
                // yaml-rust2 marks a block mapping at its first `:`; point at the first key.
                let location = entries
                    .first()
                    .map_or(frame.location, |(key, _)| key.location);
                Node {
                    kind: NodeKind::Map(merge(entries)?),
                    location,
                }
            }
        };
        self.finish_node(node, frame.anchor, frame.size);
        Ok(())
    }

    fn finish_node(&mut self, node: Node, anchor: usize, size: usize) {
        if anchor != 0 {
            self.anchors.insert(anchor, (node.clone(), size));
        }
        let Some(parent) = self.stack.last_mut() else {
            self.root.get_or_insert(node);
            return;
        };
        parent.size += size;
        match &mut parent.kind {
            FrameKind::Seq(items) => items.push(node),
            FrameKind::Map { entries, key } => match key.take() {
                Some(key) => entries.push((key, node)),
                None => *key = Some(node),
            },
        }
    }
}

/// Applies YAML merge keys (`<<: *defaults`): keys written in the mapping win, then earlier
/// merged mappings win over later ones.
fn merge(entries: Vec<(Node, Node)>) -> Result<Vec<(Node, Node)>, YamlError> {
    let is_merge = |key: &Node| matches!(&key.kind, NodeKind::Scalar { text, style: ScalarStyle::Plain } if text == "<<");
    if !entries.iter().any(|(key, _)| is_merge(key)) {
        return Ok(entries);
    }
    let (merges, mut result): (Vec<_>, Vec<_>) =
        entries.into_iter().partition(|(key, _)| is_merge(key));
    for (_, value) in merges {
        let sources = match value.kind {
            NodeKind::Map(map) => vec![map],
            NodeKind::Seq(items) => items
                .into_iter()
                .map(|item| match item.kind {
                    NodeKind::Map(map) => Ok(map),
                    _ => Err(merge_error(item.location)),
                })
                .collect::<Result<_, _>>()?,
            _ => return Err(merge_error(value.location)),
        };
        for (key, value) in sources.into_iter().flatten() {
            let present = result.iter().any(|(existing, _)| {
                existing.as_scalar().is_some() && existing.as_scalar() == key.as_scalar()
            });
            if !present {
                result.push((key, value));
            }
        }
    }
    Ok(result)
}

fn merge_error(location: Location) -> YamlError {
    error(
        location,
        "a merge key (`<<`) takes a mapping or a list of mappings",
    )
}

fn error(location: Location, message: impl Into<String>) -> YamlError {
    YamlError {
        location,
        message: message.into(),
    }
}

/// yaml-rust2 counts lines from 1 and columns from 0.
fn location(marker: Marker) -> Location {
    Location {
        line: marker.line().max(1),
        column: marker.col() + 1,
    }
}

fn scan_error(error: &ScanError) -> YamlError {
    YamlError {
        location: location(*error.marker()),
        message: error.info().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use test_case::test_case;

    use super::*;

    fn at(line: usize, column: usize) -> Location {
        Location { line, column }
    }

    fn scalar(text: &str, style: ScalarStyle) -> NodeKind {
        NodeKind::Scalar {
            text: text.to_owned(),
            style,
        }
    }

    /// The mapping's pairs, or a panic.
    #[track_caller]
    fn pairs(node: &Node) -> &[(Node, Node)] {
        match &node.kind {
            NodeKind::Map(pairs) => pairs,
            other => panic!("expected a mapping, found {other:?}"),
        }
    }

    /// The value under `key` in the root mapping of `text`.
    #[track_caller]
    fn value(text: &str, key: &str) -> Node {
        let root = parse(text).expect("valid yaml");
        pairs(&root)
            .iter()
            .find(|(k, _)| k.as_scalar() == Some(key))
            .map_or_else(|| panic!("no key {key}"), |(_, v)| v.clone())
    }

    #[test]
    fn locations_are_one_based_line_and_column() {
        let root = parse("a: 1\nb:\n  - x\n  - {c: d}\n").expect("valid yaml");
        assert_eq!(root.location, at(1, 1));
        let pairs = pairs(&root);
        assert_eq!(
            (pairs[0].0.location, pairs[0].1.location),
            (at(1, 1), at(1, 4))
        );
        let NodeKind::Seq(items) = &pairs[1].1.kind else {
            panic!("expected a list");
        };
        assert_eq!(pairs[1].1.location, at(3, 3));
        assert_eq!(items[0].location, at(3, 5));
        assert_eq!(items[1].location, at(4, 6));
    }

    #[test_case("8080" ; "integer")]
    #[test_case("1.10" ; "float with trailing zero")]
    #[test_case("yes" ; "yaml 1.1 bool")]
    #[test_case("True" ; "bool")]
    #[test_case("0o17" ; "octal")]
    #[test_case(".inf" ; "infinity")]
    fn b5_plain_scalars_keep_source_text(text: &str) {
        let node = value(&format!("x: {text}\n"), "x");
        assert_eq!(node.kind, scalar(text, ScalarStyle::Plain));
    }

    #[test_case("x:\n" ; "empty")]
    #[test_case("x: ~\n" ; "tilde")]
    #[test_case("x: null\n" ; "null")]
    #[test_case("x: Null\n" ; "title null")]
    #[test_case("x: NULL\n" ; "upper null")]
    fn null_forms_are_null(text: &str) {
        assert_eq!(value(text, "x").kind, NodeKind::Null);
    }

    #[test_case("x: '~'\n", "~", ScalarStyle::Quoted ; "quoted tilde")]
    #[test_case("x: \"null\"\n", "null", ScalarStyle::Quoted ; "quoted null")]
    #[test_case("x: !!str null\n", "null", ScalarStyle::Plain ; "str tag")]
    #[test_case("x: !!str\n", "", ScalarStyle::Plain ; "empty str tag")]
    fn quoted_or_tagged_null_is_a_string(text: &str, expected: &str, style: ScalarStyle) {
        assert_eq!(value(text, "x").kind, scalar(expected, style));
    }

    #[test]
    fn implicit_empty_value_is_located_at_its_key() {
        let node = value("a: 1\nx:\n\n\ny: 2\n", "x");
        assert_eq!(node.location, at(2, 1));
    }

    #[test_case("x: plain text\n", "plain text", ScalarStyle::Plain ; "plain")]
    #[test_case("x: 'it''s'\n", "it's", ScalarStyle::Quoted ; "single quoted")]
    #[test_case("x: \"a\\tb\"\n", "a\tb", ScalarStyle::Quoted ; "double quoted")]
    #[test_case("x: |\n  one\n  two\n", "one\ntwo\n", ScalarStyle::Literal ; "literal")]
    #[test_case("x: >\n  one\n  two\n", "one two\n", ScalarStyle::Folded ; "folded")]
    fn scalar_styles_are_recorded(text: &str, expected: &str, style: ScalarStyle) {
        assert_eq!(value(text, "x").kind, scalar(expected, style));
    }

    #[test]
    fn aliases_clone_the_anchored_node() {
        let text = "a: &cmds [make, test]\nb: *cmds\n";
        let (a, b) = (value(text, "a"), value(text, "b"));
        assert_eq!(a.kind, b.kind);
        assert_eq!(b.location, at(2, 4));
    }

    #[test]
    fn merge_keys_apply_and_written_keys_win() {
        let text = "base: &base {x: 1, y: 2}\nother: &other {y: 3, z: 4}\nm:\n  <<: [*base, *other]\n  x: 9\n";
        let merged: Vec<_> = pairs(&value(text, "m"))
            .iter()
            .map(|(k, v)| {
                (
                    k.as_scalar().unwrap_or_default().to_owned(),
                    v.as_scalar().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        let expected =
            [("x", "9"), ("y", "2"), ("z", "4")].map(|(k, v)| (k.to_owned(), v.to_owned()));
        assert_eq!(merged, expected);
    }

    #[test]
    fn merge_key_needs_a_mapping() {
        let error = parse("a: &a [1]\nb:\n  <<: *a\n").expect_err("bad merge");
        assert!(error.message.contains("merge key"), "{}", error.message);
    }

    #[test_case("" ; "nothing")]
    #[test_case("# only a comment\n" ; "comment")]
    #[test_case("---\n" ; "bare document marker")]
    #[test_case("~\n" ; "null document")]
    fn empty_document_is_an_error(text: &str) {
        let error = parse(text).expect_err("empty");
        assert_eq!(error.message, "the buildspec is empty");
    }

    #[test]
    fn second_document_is_an_error() {
        let error = parse("a: 1\n---\nb: 2\n").expect_err("two documents");
        assert_eq!(error.location, at(2, 1));
        assert_eq!(error.message, "a buildspec must be a single yaml document");
    }

    #[test_case("key: value: x\n", 1, 11 ; "colon in plain scalar")]
    #[test_case("a: [1, 2\n", 2, 1 ; "unclosed flow list")]
    #[test_case("a: *nope\n", 1, 4 ; "unknown alias")]
    fn syntax_errors_have_one_based_locations(text: &str, line: usize, column: usize) {
        let error = parse(text).expect_err("malformed");
        assert_eq!(error.location, at(line, column), "{}", error.message);
    }

    #[test]
    fn alias_expansion_is_bounded() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for level in 1..8 {
            let previous = format!("*a{}", level - 1);
            let items = [previous.as_str(); 10].join(", ");
            writeln!(text, "a{level}: &a{level} [{items}]").expect("write to a String");
        }
        let error = parse(&text).expect_err("billion laughs");
        assert!(
            error.message.contains("too many nodes"),
            "{}",
            error.message
        );
    }

    #[test]
    fn deep_nesting_is_refused() {
        let text: String = (0..100).fold(String::new(), |mut text, depth| {
            writeln!(text, "{}k{depth}:", " ".repeat(depth)).expect("write to a String");
            text
        });
        let error = parse(&text).expect_err("too deep");
        assert!(
            error.message.contains("nesting deeper than"),
            "{}",
            error.message
        );
    }

    #[test]
    fn recursive_alias_is_an_error() {
        let error = parse("a: &x [1, *x]\n").expect_err("recursive");
        assert_eq!(error.location, at(1, 11));
    }

    #[test]
    fn byte_order_mark_is_skipped() {
        assert_eq!(
            value("\u{feff}x: 1\n", "x").kind,
            scalar("1", ScalarStyle::Plain)
        );
    }

    /// Every prefix of a realistic file either parses or fails cleanly: no panic.
    #[test]
    fn truncated_input_never_panics() {
        let text = "version: 0.2\nenv:\n  variables: {A: \"1\", B: &b [x, 'y']}\nphases:\n  build:\n    commands:\n      - *b\n      - |\n        make\n      - >-\n        folded\n    <<: {k: v}\n";
        for (end, _) in text.char_indices() {
            let _ = parse(&text[..end]);
        }
    }

    /// One line per node: `line:column kind`, children indented.
    fn outline(node: &Node, depth: usize, out: &mut String) {
        let indent = "  ".repeat(depth);
        let Location { line, column } = node.location;
        let label = match &node.kind {
            NodeKind::Scalar { text, style } => format!("{style:?} {text:?}"),
            NodeKind::Null => "null".to_owned(),
            NodeKind::Seq(_) => "seq".to_owned(),
            NodeKind::Map(_) => "map".to_owned(),
        };
        writeln!(out, "{indent}{line}:{column} {label}").expect("write to a String");
        match &node.kind {
            NodeKind::Seq(items) => {
                for item in items {
                    outline(item, depth + 1, out);
                }
            }
            NodeKind::Map(pairs) => {
                for (key, value) in pairs {
                    outline(key, depth + 1, out);
                    outline(value, depth + 2, out);
                }
            }
            NodeKind::Scalar { .. } | NodeKind::Null => {}
        }
    }

    #[test]
    fn tree_snapshot() {
        let text = "version: 0.2\nenv:\n  variables:\n    EMPTY:\n    PORT: 8080\nphases:\n  build:\n    commands:\n      - echo \"hi\"\n      - |\n        make\n      - [a, {b: c}]\n";
        let mut out = String::new();
        outline(&parse(text).expect("valid yaml"), 0, &mut out);
        insta::assert_snapshot!(out);
    }
}
