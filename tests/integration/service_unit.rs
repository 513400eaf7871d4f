//! The systemd unit in `deploy/` (issue 5): a non-root user in the docker group, restarted on
//! failure, stopped with SIGTERM and a grace long enough for running builds.

use crate::support::repo_root;

fn directive(unit: &str, key: &str) -> Vec<String> {
    unit.lines()
        .filter_map(|line| line.trim().strip_prefix(&format!("{key}=")))
        .map(str::to_owned)
        .collect()
}

#[test]
fn systemd_unit_runs_serve_unprivileged_and_restarts_on_failure() {
    let unit =
        std::fs::read_to_string(repo_root().join("deploy/runner.service")).expect("read unit");
    assert_eq!(directive(&unit, "User"), ["runner"]);
    assert_eq!(directive(&unit, "SupplementaryGroups"), ["docker"]);
    assert_eq!(directive(&unit, "Restart"), ["on-failure"]);
    assert_eq!(directive(&unit, "KillSignal"), ["SIGTERM"]);
    assert_eq!(directive(&unit, "NoNewPrivileges"), ["true"]);
    assert!(directive(&unit, "ExecStart")[0].starts_with("/usr/local/bin/runner serve "));
    assert!(
        directive(&unit, "Environment").contains(&"RUNNER_DATA_DIR=/var/lib/runner".to_owned())
    );
    assert!(directive(&unit, "Requires").contains(&"docker.service".to_owned()));
}
