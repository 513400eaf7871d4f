//! The GitOps service: turns webhook and poll triggers into pipeline executions.
//!
//! This module holds the pure decisions: [`trigger`] says whether an event starts a pipeline,
//! and [`scheduler`] orders executions through stages by execution mode and debounces triggers.
//! Neither does I/O nor reads a clock.

pub mod poll;
pub mod scheduler;
pub mod trigger;
