//! Integration tests: one binary. Modules that start real containers need the `docker-tests`
//! feature (`.ci/run` turns it on); the rest run anywhere.

#![expect(
    clippy::disallowed_methods,
    reason = "tests use std::fs directly: a failing call panics with its own message"
)]

mod support;

mod cli;
mod layering;
mod pipeline_cli;
mod service_unit;

#[cfg(feature = "docker-tests")]
mod auto_retry;
#[cfg(all(feature = "docker-tests", feature = "aws-tests"))]
mod aws_faults;
#[cfg(all(feature = "docker-tests", feature = "aws-tests"))]
mod aws_store;
#[cfg(all(feature = "docker-tests", feature = "aws-tests"))]
mod build_credentials;
#[cfg(feature = "docker-tests")]
mod conditions;
#[cfg(feature = "docker-tests")]
mod dashboard;
#[cfg(all(feature = "docker-tests", feature = "aws-tests"))]
mod deploy;
#[cfg(feature = "docker-tests")]
mod execution_modes;
#[cfg(feature = "docker-tests")]
mod futureim;
#[cfg(all(feature = "docker-tests", feature = "aws-tests"))]
mod futureim_aws;
#[cfg(feature = "docker-tests")]
mod logs_follow;
#[cfg(feature = "docker-tests")]
mod pipeline_retry;
#[cfg(feature = "docker-tests")]
mod pipeline_rules;
#[cfg(feature = "docker-tests")]
mod pipeline_run;
#[cfg(feature = "docker-tests")]
mod pull_requests;
#[cfg(feature = "docker-tests")]
mod robustness;
#[cfg(feature = "docker-tests")]
mod rollback;
#[cfg(feature = "docker-tests")]
mod rules_artifacts;
#[cfg(feature = "docker-tests")]
mod rules_env;
#[cfg(feature = "docker-tests")]
mod rules_exec;
#[cfg(feature = "docker-tests")]
mod rules_load;
#[cfg(feature = "docker-tests")]
mod scenarios;
#[cfg(all(feature = "docker-tests", feature = "aws-tests"))]
mod secrets;
#[cfg(feature = "docker-tests")]
mod serve;
#[cfg(feature = "docker-tests")]
mod staging;
#[cfg(feature = "docker-tests")]
mod transitions;
#[cfg(feature = "docker-tests")]
mod warm_pool;
#[cfg(feature = "docker-tests")]
mod watch;
