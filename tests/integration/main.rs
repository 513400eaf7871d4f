//! Integration tests: one binary. Modules that start real containers need the `docker-tests`
//! feature (`.ci/run` turns it on); the rest run anywhere.

mod support;

mod cli;
#[cfg(feature = "docker-tests")]
mod futureim;
#[cfg(feature = "docker-tests")]
mod robustness;
#[cfg(feature = "docker-tests")]
mod scenarios;
