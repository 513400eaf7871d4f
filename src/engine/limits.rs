//! P5 at run time: all output variables of one action together may total at most 122880 bytes.
//! An action that exports more fails, and nothing it produced is passed on.

use super::event::{ActionOutcome, ActionStatus};

/// P5: the most bytes (names plus values) one action's output variables may total.
pub(crate) const OUTPUT_VARIABLES_MAX: usize = 122_880;

/// `outcome`, turned into a failure when its output variables are too large.
pub(crate) fn enforce(outcome: ActionOutcome) -> ActionOutcome {
    if outcome.status != ActionStatus::Succeeded {
        return outcome;
    }
    let total: usize = outcome
        .outputs
        .variables
        .iter()
        .map(|(name, value)| name.len() + value.len())
        .sum();
    if total <= OUTPUT_VARIABLES_MAX {
        return outcome;
    }
    ActionOutcome {
        phases: outcome.phases,
        build_id: outcome.build_id,
        ..ActionOutcome::failed(format!(
            "the action's output variables total {total} bytes; CodePipeline allows at most {OUTPUT_VARIABLES_MAX} for one action (P5)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::engine::ActionOutputs;

    fn succeeded(value_bytes: usize) -> ActionOutcome {
        ActionOutcome {
            status: ActionStatus::Succeeded,
            outputs: ActionOutputs {
                artifacts: BTreeMap::new(),
                variables: BTreeMap::from([("V".to_owned(), "x".repeat(value_bytes))]),
            },
            error: None,
            build_id: Some("b:1".into()),
            ..ActionOutcome::failed("")
        }
    }

    #[test]
    fn p5_output_variables_up_to_122880_bytes_pass_and_more_fail_the_action() {
        let fits = enforce(succeeded(OUTPUT_VARIABLES_MAX - 1));
        assert_eq!(fits.status, ActionStatus::Succeeded);
        let over = enforce(succeeded(OUTPUT_VARIABLES_MAX));
        assert_eq!(over.status, ActionStatus::Failed);
        assert!(over.outputs.variables.is_empty(), "nothing is passed on");
        assert_eq!(over.build_id.as_deref(), Some("b:1"));
        assert_eq!(
            over.error.as_deref(),
            Some(
                "the action's output variables total 122881 bytes; CodePipeline allows at most 122880 for one action (P5)"
            )
        );
    }
}
