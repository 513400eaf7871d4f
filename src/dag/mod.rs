//! Planning: a checked [`Pipeline`](crate::pipeline::Pipeline) becomes a [`Plan`], a petgraph
//! DAG of actions, with cycle and missing-dependency errors, ready-set queries for the engine,
//! and text, DOT and Mermaid renderings. Pure: it runs nothing.

mod error;
mod plan;
mod render;

pub use crate::pipeline::ActionId;
pub use error::PlanError;
pub use plan::{EdgeKind, Plan};
