//! The counters `/metrics` reports, and their Prometheus text rendering. Counters live in
//! memory (they restart at zero, as Prometheus expects of a counter); gauges such as executions
//! by status are read from the state database at scrape time.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::state::{ActionDuration, ExecutionStatus};

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

    /// Every metric in the Prometheus text format (version 0.0.4), with what `scrape` read from
    /// the state database at scrape time.
    pub(crate) fn render(&self, scrape: &Scrape) -> String {
        let Scrape {
            executions,
            queue_depth,
            ..
        } = scrape;
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
            "# HELP runner_queue_depth Start requests and executions waiting (for their pipeline, or in front of a locked stage).\n\
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
        render_durations(&mut text, &scrape.durations);
        let _ = writeln!(
            text,
            "# HELP runner_artifact_bytes_total Bytes of the artifacts actions produced.\n\
             # TYPE runner_artifact_bytes_total counter"
        );
        for (pipeline, bytes) in &scrape.artifact_bytes {
            let _ = writeln!(
                text,
                "runner_artifact_bytes_total{{pipeline=\"{}\"}} {bytes}",
                escape(pipeline)
            );
        }
        text
    }
}

/// What `/metrics` reads from the state database and the launcher at scrape time.
#[derive(Debug, Default)]
pub(crate) struct Scrape {
    /// Executions by `(pipeline, status)`.
    pub(crate) executions: Vec<(String, ExecutionStatus, u64)>,
    /// Start requests waiting.
    pub(crate) queue_depth: usize,
    /// Finished action attempts.
    pub(crate) durations: Vec<ActionDuration>,
    /// Artifact bytes by pipeline.
    pub(crate) artifact_bytes: Vec<(String, u64)>,
}

/// Upper bounds of the action duration histogram, in seconds: a quick check to a long build.
const DURATION_BUCKETS: [f64; 10] = [
    1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];

/// `runner_action_duration_seconds`, a histogram by pipeline and status.
fn render_durations(text: &mut String, durations: &[ActionDuration]) {
    let _ = writeln!(
        text,
        "# HELP runner_action_duration_seconds How long finished action attempts ran.\n\
         # TYPE runner_action_duration_seconds histogram"
    );
    let mut series: BTreeMap<(&str, &str), Vec<f64>> = BTreeMap::new();
    for duration in durations {
        #[expect(
            clippy::cast_precision_loss,
            reason = "milliseconds below 2^52 are exact in an f64"
        )]
        let seconds = duration.millis as f64 / 1000.0;
        series
            .entry((duration.pipeline.as_str(), duration.status.as_str()))
            .or_default()
            .push(seconds);
    }
    for ((pipeline, status), seconds) in series {
        let labels = format!("pipeline=\"{}\",status=\"{status}\"", escape(pipeline));
        for bound in DURATION_BUCKETS {
            let count = seconds.iter().filter(|s| **s <= bound).count();
            let _ = writeln!(
                text,
                "runner_action_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {count}"
            );
        }
        let _ = writeln!(
            text,
            "runner_action_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}\n\
             runner_action_duration_seconds_sum{{{labels}}} {}\n\
             runner_action_duration_seconds_count{{{labels}}} {}",
            seconds.len(),
            seconds.iter().sum::<f64>(),
            seconds.len()
        );
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
    use crate::state::ActionStatus;

    #[test]
    fn renders_counters_gauges_and_escaped_labels() {
        let metrics = Metrics::default();
        metrics.count_delivery(DeliveryResult::Started);
        metrics.count_delivery(DeliveryResult::Started);
        metrics.count_delivery(DeliveryResult::Unauthorized);
        let scrape = Scrape {
            executions: vec![("a\"b".into(), ExecutionStatus::Succeeded, 3)],
            queue_depth: 2,
            durations: vec![
                ActionDuration {
                    pipeline: "app".into(),
                    status: ActionStatus::Succeeded,
                    millis: 4_500,
                },
                ActionDuration {
                    pipeline: "app".into(),
                    status: ActionStatus::Succeeded,
                    millis: 45_000,
                },
            ],
            artifact_bytes: vec![("app".into(), 2048)],
        };
        let text = metrics.render(&scrape);
        for line in [
            "runner_action_duration_seconds_bucket{pipeline=\"app\",status=\"Succeeded\",le=\"1\"} 0\n",
            "runner_action_duration_seconds_bucket{pipeline=\"app\",status=\"Succeeded\",le=\"5\"} 1\n",
            "runner_action_duration_seconds_bucket{pipeline=\"app\",status=\"Succeeded\",le=\"60\"} 2\n",
            "runner_action_duration_seconds_bucket{pipeline=\"app\",status=\"Succeeded\",le=\"+Inf\"} 2\n",
            "runner_action_duration_seconds_sum{pipeline=\"app\",status=\"Succeeded\"} 49.5\n",
            "runner_action_duration_seconds_count{pipeline=\"app\",status=\"Succeeded\"} 2\n",
            "runner_artifact_bytes_total{pipeline=\"app\"} 2048\n",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
        assert!(text.contains("runner_executions{pipeline=\"a\\\"b\",status=\"Succeeded\"} 3\n"));
        assert!(text.contains("runner_queue_depth 2\n"));
        assert!(text.contains("runner_webhook_deliveries_total{result=\"started\"} 2\n"));
        assert!(text.contains("runner_webhook_deliveries_total{result=\"unauthorized\"} 1\n"));
        assert!(text.contains("runner_webhook_deliveries_total{result=\"too_large\"} 0\n"));
    }
}
