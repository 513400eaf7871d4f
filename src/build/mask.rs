//! Masks secret values in build log lines.
//!
//! Values from secret sources (B12: `env.parameter-store`, `env.secrets-manager`), values the
//! user marked secret, and AWS credentials are replaced by `***` wherever they appear. The log is
//! masked line by line, so each line of a multi-line value (a PEM key) is masked on its own too.
//! Values (and lines) shorter than four characters are not masked: masking `1` or `a` would shred
//! the log without protecting anything.

/// Replaces secrets in text.
#[derive(Debug, Clone, Default)]
pub struct Masker {
    secrets: Vec<String>,
}

/// Shortest value worth masking.
const MIN_SECRET_LEN: usize = 4;

impl Masker {
    /// A masker for these values.
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Self {
        let mut secrets: Vec<String> = secrets
            .into_iter()
            .flat_map(|secret| {
                let lines: Vec<String> = if secret.contains('\n') {
                    secret
                        .lines()
                        .filter(|line| line.trim().len() >= MIN_SECRET_LEN)
                        .map(str::to_owned)
                        .collect()
                } else {
                    Vec::new()
                };
                lines.into_iter().chain([secret])
            })
            .filter(|s| s.len() >= MIN_SECRET_LEN)
            .collect();
        // Longest first, so a secret that contains another is masked whole.
        secrets.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        secrets.dedup();
        Self { secrets }
    }

    /// `text` with every secret replaced by `***`, and AWS access key ids masked (B12).
    pub fn mask(&self, text: &str) -> String {
        let mut masked = text.to_owned();
        for secret in &self.secrets {
            if masked.contains(secret.as_str()) {
                masked = masked.replace(secret.as_str(), "***");
            }
        }
        mask_access_key_ids(&masked)
    }
}

/// Masks anything shaped like an AWS access key id (`AKIA`/`ASIA` + 16 upper-case alphanumerics).
fn mask_access_key_ids(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let rest = &bytes[i..];
        if (rest.starts_with(b"AKIA") || rest.starts_with(b"ASIA"))
            && rest.len() >= 20
            && rest[4..20]
                .iter()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            && rest.get(20).is_none_or(|b| !b.is_ascii_alphanumeric())
            && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric())
        {
            out.push_str("***");
            i += 20;
        } else {
            let ch = text[i..].chars().next().unwrap_or('\u{fffd}');
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn b12_secrets_and_access_key_ids_are_masked() {
        let masker = Masker::new(["hunter22".to_owned(), "abc".to_owned()]);
        assert_eq!(masker.mask("pw=hunter22 abc"), "pw=*** abc");
        assert_eq!(masker.mask("key AKIAIOSFODNN7EXAMPLE done"), "key *** done");
        assert_eq!(
            masker.mask("XAKIAIOSFODNN7EXAMPLE"),
            "XAKIAIOSFODNN7EXAMPLE"
        );
        assert_eq!(masker.mask("héllo"), "héllo");
    }

    #[test]
    fn b12_each_line_of_a_multi_line_secret_is_masked() {
        let masker = Masker::new(["-----BEGIN KEY-----\nc2VjcmV0\n-----END KEY-----\n".to_owned()]);
        assert_eq!(masker.mask("c2VjcmV0"), "***");
        assert_eq!(masker.mask("x -----END KEY----- y"), "x *** y");
    }
}
