//! The GitOps service: turns webhook and poll triggers into pipeline executions.
//!
//! [`trigger`] says whether an event starts a pipeline, [`intake`] debounces triggers and drops
//! redelivered webhooks, [`stages`] orders executions through stages by execution mode (pure),
//! and [`locks`] is that order as futures an execution awaits in front of each stage.

pub mod intake;
pub mod locks;
pub mod poll;
pub mod stages;
pub mod trigger;
