//! `runner`: a self-hosted replacement for AWS CodePipeline V2 + CodeBuild.
//!
//! Buildspec v0.2 files run unchanged in Docker containers with CodeBuild's semantics. The
//! layers, lowest first: [`buildspec`] and [`env`](mod@env) (pure), [`executor`] (containers), [`build`]
//! (one build through an executor), and [`cli`] (wiring). See `ARCHITECTURE.md`.

pub mod artifacts;
pub mod aws;
pub mod build;
pub mod buildspec;
pub mod cli;
pub mod daemon;
pub mod dag;
pub mod engine;
pub mod env;
pub mod executor;
pub mod pipeline;
pub mod server;
pub mod source;
pub mod state;
pub mod yaml;
