//! One file per resource; each handler translates between HTTP and the `Store` or the
//! `Launcher`, and nothing more.

pub(crate) mod control;
pub(crate) mod executions;
pub(crate) mod health;
pub(crate) mod hooks;
pub(crate) mod logs;
pub(crate) mod openapi;
pub(crate) mod pipelines;
