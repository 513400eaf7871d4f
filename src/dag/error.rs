//! `PlanError`: a pipeline whose actions cannot be ordered.

use crate::pipeline::{ActionId, Location};

/// Why a pipeline could not be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The actions wait on each other in a circle.
    #[error("{origin}:{location}: dependency cycle: {}", path.join(" -> "))]
    Cycle {
        /// The pipeline file.
        origin: String,
        /// Where the first action of the cycle is.
        location: Location,
        /// `stage.action` of each action on the cycle, the first repeated at the end.
        path: Vec<String>,
    },
    /// An action refers to an action id that does not exist (only a pipeline built by hand,
    /// not one that passed validation, can do this).
    #[error(
        "{origin}:{location}: action `{action}` depends on action {dependency}, which does not exist"
    )]
    MissingDependency {
        /// The pipeline file.
        origin: String,
        /// Where the action is.
        location: Location,
        /// `stage.action` of the action.
        action: String,
        /// The id it names.
        dependency: ActionId,
    },
    /// A subplan was asked for from a stage that does not exist.
    #[error("stage {stage} does not exist: the pipeline has {stages} stages")]
    UnknownStage {
        /// The index asked for.
        stage: usize,
        /// How many stages there are.
        stages: usize,
    },
}
