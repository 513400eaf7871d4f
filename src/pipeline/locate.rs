//! Field paths (`stages[1].actions[0].inputs[0]`) to `line:column`, from the marked YAML tree,
//! so that problems found after serde has run still point into the file.
//!
//! The same walk reports duplicate keys, which `serde_yaml` would silently resolve.

use std::collections::HashMap;

use super::error::{Problem, ProblemKind};
use super::model::Location;
use crate::yaml::{Node, NodeKind};

/// Where each field path's value starts, and a scalar's exact text.
#[derive(Debug, Default)]
pub(super) struct Locations {
    values: HashMap<String, (Location, Option<String>)>,
}

impl Locations {
    /// Indexes every node under `root`, reporting duplicate keys into `problems`.
    pub(super) fn new(root: &Node, problems: &mut Vec<Problem>) -> Self {
        let mut locations = Locations::default();
        locations.walk(root, "", problems);
        locations
    }

    /// Where `field` is, or the nearest enclosing field that exists (for a missing key, the
    /// mapping that lacks it).
    pub(super) fn get(&self, field: &str) -> Location {
        let mut field = field;
        loop {
            if let Some((location, _)) = self.values.get(field) {
                return *location;
            }
            match field.rfind(['.', '[']) {
                Some(end) => field = &field[..end],
                None if !field.is_empty() => field = "",
                None => return Location { line: 1, column: 1 },
            }
        }
    }

    /// The text of the scalar at `field` exactly as written; `""` for an empty value.
    pub(super) fn text(&self, field: &str) -> Option<&str> {
        self.values.get(field)?.1.as_deref()
    }

    /// Every field path with its location and, for a scalar, its text.
    pub(super) fn fields(&self) -> impl Iterator<Item = (&str, Location, Option<&str>)> {
        self.values
            .iter()
            .map(|(path, (location, text))| (path.as_str(), *location, text.as_deref()))
    }

    fn walk(&mut self, node: &Node, path: &str, problems: &mut Vec<Problem>) {
        let text = match &node.kind {
            NodeKind::Scalar { text, .. } => Some(text.clone()),
            NodeKind::Null => Some(String::new()),
            NodeKind::Seq(_) | NodeKind::Map(_) => None,
        };
        self.values
            .entry(path.to_owned())
            .or_insert((node.location, text));
        match &node.kind {
            NodeKind::Seq(items) => {
                for (index, item) in items.iter().enumerate() {
                    self.walk(item, &format!("{path}[{index}]"), problems);
                }
            }
            NodeKind::Map(pairs) => {
                let mut seen: HashMap<&str, Location> = HashMap::new();
                for (key, value) in pairs {
                    let Some(name) = key.as_scalar() else {
                        continue;
                    };
                    let child = if path.is_empty() {
                        name.to_owned()
                    } else {
                        format!("{path}.{name}")
                    };
                    if let Some(first) = seen.insert(name, key.location) {
                        problems.push(Problem {
                            location: key.location,
                            field: child,
                            kind: ProblemKind::DuplicateKey {
                                key: name.to_owned(),
                                first_line: first.line,
                            },
                        });
                        continue;
                    }
                    self.walk(value, &child, problems);
                }
            }
            NodeKind::Scalar { .. } | NodeKind::Null => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml;

    fn at(line: usize, column: usize) -> Location {
        Location { line, column }
    }

    #[test]
    fn paths_map_to_values_and_missing_fields_to_their_parent() {
        let root = yaml::parse("a:\n  b: [x, 1.10]\n  c: ~\n").expect("valid yaml");
        let mut problems = Vec::new();
        let locations = Locations::new(&root, &mut problems);
        assert!(problems.is_empty());
        assert_eq!(locations.get("a.b[1]"), at(2, 10));
        assert_eq!(locations.text("a.b[1]"), Some("1.10"));
        assert_eq!(locations.text("a.c"), Some(""));
        assert_eq!(locations.get("a.missing"), at(2, 3));
        assert_eq!(locations.get("nothing.here[3]"), at(1, 1));
    }

    #[test]
    fn duplicate_keys_are_problems() {
        let root = yaml::parse("env:\n  A: 1\n  A: 2\n").expect("valid yaml");
        let mut problems = Vec::new();
        let locations = Locations::new(&root, &mut problems);
        assert_eq!(locations.text("env.A"), Some("1"));
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].location, at(3, 3));
        assert_eq!(problems[0].field, "env.A");
    }
}
