//! Logging setup: `runner=info` by default, `-v` debug, `-vv` trace, `RUST_LOG` overrides;
//! pretty on a terminal, JSON when `RUNNER_LOG_FORMAT=json`. Logs go to stderr.

use tracing_subscriber::EnvFilter;

use crate::env;

/// Installs the global subscriber.
pub(crate) fn init(verbose: u8) {
    let default = match verbose {
        0 => "runner=info",
        1 => "runner=debug",
        _ => "runner=trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let json = std::env::var(env::RUNNER_LOG_FORMAT).is_ok_and(|f| f == "json");
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
