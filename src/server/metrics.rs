//! The counters `/metrics` reports, and their Prometheus text rendering. Counters live in
//! memory (they restart at zero, as Prometheus expects of a counter); gauges such as executions
//! by status are read from the state database at scrape time.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::state::ExecutionStatus;

/// How a webhook delivery ended: the `result` label of `runner_webhook_deliveries_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryResult {
    /// A push queued at least one execution.
    Started,
    /// A push for served pipelines whose trigger filters all said no.
    Skipped,
    /// A redelivered id.
    Duplicate,
    /// A ping, or an event type the runner does not act on.
    Ignored,
    /// No or a wrong signature.
    Unauthorized,
    /// A body that is not the expected JSON, or no event header.
    Malformed,
    /// A body over the limit.
    TooLarge,
    /// No pipeline serves the repository.
    UnknownRepository,
    /// Refused for a reason on this side: no secret configured, a full queue.
    Unavailable,
}

impl DeliveryResult {
    const ALL: [DeliveryResult; 9] = [
        DeliveryResult::Started,
        DeliveryResult::Skipped,
        DeliveryResult::Duplicate,
        DeliveryResult::Ignored,
        DeliveryResult::Unauthorized,
        DeliveryResult::Malformed,
        DeliveryResult::TooLarge,
        DeliveryResult::UnknownRepository,
        DeliveryResult::Unavailable,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryResult::Started => "started",
            DeliveryResult::Skipped => "skipped",
            DeliveryResult::Duplicate => "duplicate",
            DeliveryResult::Ignored => "ignored",
            DeliveryResult::Unauthorized => "unauthorized",
            DeliveryResult::Malformed => "malformed",
            DeliveryResult::TooLarge => "too_large",
            DeliveryResult::UnknownRepository => "unknown_repository",
            DeliveryResult::Unavailable => "unavailable",
        }
    }

    fn index(self) -> usize {
        Self::ALL
            .iter()
            .position(|result| *result == self)
            .unwrap_or_default()
    }
}

/// In-memory counters shared by the handlers.
#[derive(Debug, Default)]
pub struct Metrics {
    deliveries: [AtomicU64; DeliveryResult::ALL.len()],
}

impl Metrics {
    /// Counts one webhook delivery.
    pub fn count_delivery(&self, result: DeliveryResult) {
        self.deliveries[result.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// How many deliveries ended with `result`.
    pub fn deliveries(&self, result: DeliveryResult) -> u64 {
        self.deliveries[result.index()].load(Ordering::Relaxed)
    }

    /// Every metric in the Prometheus text format (version 0.0.4), with the executions by
    /// `(pipeline, status)` and the queue depth read at scrape time.
    pub(crate) fn render(
        &self,
        executions: &[(String, ExecutionStatus, u64)],
        queue_depth: usize,
    ) -> String {
        let mut text = String::new();
        let _ = writeln!(
            text,
            "# HELP runner_executions Pipeline executions in the state database, by status.\n\
             # TYPE runner_executions gauge"
        );
        for (pipeline, status, count) in executions {
            let _ = writeln!(
                text,
                "runner_executions{{pipeline=\"{}\",status=\"{}\"}} {count}",
                escape(pipeline),
                status.as_str()
            );
        }
        let _ = writeln!(
            text,
            "# HELP runner_queue_depth Start requests waiting for their pipeline.\n\
             # TYPE runner_queue_depth gauge\n\
             runner_queue_depth {queue_depth}"
        );
        let _ = writeln!(
            text,
            "# HELP runner_webhook_deliveries_total Webhook deliveries received, by result.\n\
             # TYPE runner_webhook_deliveries_total counter"
        );
        for result in DeliveryResult::ALL {
            let _ = writeln!(
                text,
                "runner_webhook_deliveries_total{{result=\"{}\"}} {}",
                result.as_str(),
                self.deliveries(result)
            );
        }
        text
    }
}

/// A label value with `\`, `"` and newlines escaped, as the text format requires.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_gauges_and_escaped_labels() {
        let metrics = Metrics::default();
        metrics.count_delivery(DeliveryResult::Started);
        metrics.count_delivery(DeliveryResult::Started);
        metrics.count_delivery(DeliveryResult::Unauthorized);
        let text = metrics.render(&[("a\"b".into(), ExecutionStatus::Succeeded, 3)], 2);
        assert!(text.contains("runner_executions{pipeline=\"a\\\"b\",status=\"Succeeded\"} 3\n"));
        assert!(text.contains("runner_queue_depth 2\n"));
        assert!(text.contains("runner_webhook_deliveries_total{result=\"started\"} 2\n"));
        assert!(text.contains("runner_webhook_deliveries_total{result=\"unauthorized\"} 1\n"));
        assert!(text.contains("runner_webhook_deliveries_total{result=\"too_large\"} 0\n"));
    }
}
