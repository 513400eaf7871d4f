//! Variable references, `#{namespace.key}` (P31): finding them in text for validation, and
//! substituting them when an action starts ([`resolve_variables`]).
//!
//! There is no escape syntax, as in CodePipeline. Substitution is a single pass: a value that
//! itself contains `#{...}` is inserted as it is, never resolved again.

use std::ops::Range;

/// The reserved namespace of execution-wide values (P31).
pub const CODEPIPELINE_NAMESPACE: &str = "codepipeline";

/// The namespace of pipeline-level variables (P31, P33).
pub const VARIABLES_NAMESPACE: &str = "variables";

/// The keys of the `codepipeline` namespace this runner provides.
pub const CODEPIPELINE_KEYS: &[&str] = &["PipelineExecutionId"];

/// One `#{namespace.key}` in a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariableRef {
    /// The part before the first `.`.
    pub namespace: String,
    /// The part after it.
    pub key: String,
    /// Byte range of the whole reference, `#{` to `}`.
    pub span: Range<usize>,
}

/// A `#{` that does not start a well-formed reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed variable reference `{text}`: {reason}")]
pub struct MalformedRef {
    /// The text from `#{` to the closing `}` or the end.
    pub text: String,
    /// What is wrong with it.
    pub reason: &'static str,
    /// Byte range of `text`.
    pub span: Range<usize>,
}

/// A reference that the lookup could not resolve when the action started (P32: a missing key
/// fails the consuming action).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unresolved variable `#{{{namespace}.{key}}}`")]
pub struct UnresolvedVariable {
    /// The namespace.
    pub namespace: String,
    /// The key.
    pub key: String,
}

/// Every reference in `text`, in order, well-formed or not.
pub fn references(text: &str) -> Vec<Result<VariableRef, MalformedRef>> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(offset) = text[from..].find("#{") {
        let start = from + offset;
        let body_start = start + 2;
        let Some(length) = text[body_start..].find('}') else {
            found.push(Err(MalformedRef {
                text: text[start..].to_owned(),
                reason: "no closing `}`",
                span: start..text.len(),
            }));
            break;
        };
        let end = body_start + length + 1;
        found.push(
            reference(&text[body_start..end - 1], start..end).map_err(|reason| MalformedRef {
                text: text[start..end].to_owned(),
                reason,
                span: start..end,
            }),
        );
        from = end;
    }
    found
}

fn reference(body: &str, span: Range<usize>) -> Result<VariableRef, &'static str> {
    let Some((namespace, key)) = body.split_once('.') else {
        return Err("expected `#{namespace.key}`");
    };
    if namespace.is_empty() || key.is_empty() {
        return Err("the namespace and the key must not be empty");
    }
    let valid = |part: &str| {
        part.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '@' | '-' | '_'))
    };
    if !valid(namespace) || !valid(key) {
        return Err("names may contain only letters, digits, `@`, `-` and `_`");
    }
    Ok(VariableRef {
        namespace: namespace.to_owned(),
        key: key.to_owned(),
        span,
    })
}

/// Replaces every `#{namespace.key}` in `text` with `lookup(namespace, key)`.
///
/// Validation has rejected malformed references in pipeline files; any that reach here stay
/// literal. The first reference `lookup` cannot resolve is the error.
pub fn resolve_variables(
    text: &str,
    mut lookup: impl FnMut(&str, &str) -> Option<String>,
) -> Result<String, UnresolvedVariable> {
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for reference in references(text).into_iter().flatten() {
        let Some(value) = lookup(&reference.namespace, &reference.key) else {
            return Err(UnresolvedVariable {
                namespace: reference.namespace,
                key: reference.key,
            });
        };
        out.push_str(&text[copied..reference.span.start]);
        out.push_str(&value);
        copied = reference.span.end;
    }
    out.push_str(&text[copied..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use test_case::test_case;

    use super::*;

    fn lookup(namespace: &str, key: &str) -> Option<String> {
        match (namespace, key) {
            ("variables", "ENVIRONMENT") => Some("dev".to_owned()),
            ("codepipeline", "PipelineExecutionId") => Some("e-1".to_owned()),
            ("BuildVars", "VER") => Some("#{variables.ENVIRONMENT}".to_owned()),
            _ => None,
        }
    }

    #[test_case("auth-#{variables.ENVIRONMENT}", "auth-dev" ; "pipeline variable")]
    #[test_case("#{codepipeline.PipelineExecutionId}/#{variables.ENVIRONMENT}", "e-1/dev" ; "two references")]
    #[test_case("no references", "no references" ; "plain text")]
    #[test_case("#{BuildVars.VER}", "#{variables.ENVIRONMENT}" ; "single pass")]
    #[test_case("${HOME} #{broken", "${HOME} #{broken" ; "malformed stays literal")]
    #[test_case("#{a b} x", "#{a b} x" ; "malformed body stays literal")]
    fn p31_resolve_variables(text: &str, expected: &str) {
        assert_eq!(resolve_variables(text, lookup).as_deref(), Ok(expected));
    }

    #[test]
    fn p32_missing_key_is_unresolved() {
        let error = resolve_variables("x #{BuildVars.MISSING}", lookup).expect_err("missing");
        assert_eq!(
            error.to_string(),
            "unresolved variable `#{BuildVars.MISSING}`"
        );
    }

    #[test_case("#{novalue}", "expected `#{namespace.key}`" ; "no dot")]
    #[test_case("#{.key}", "the namespace and the key must not be empty" ; "empty namespace")]
    #[test_case("#{ns.k y}", "names may contain only letters, digits, `@`, `-` and `_`" ; "space")]
    #[test_case("#{ns.key", "no closing `}`" ; "unterminated")]
    #[test_case("#{ns.a.b}", "names may contain only letters, digits, `@`, `-` and `_`" ; "dot in key")]
    fn p31_malformed_references(text: &str, reason: &str) {
        let found = references(text);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].as_ref().map_err(|error| error.reason), Err(reason));
    }
}
