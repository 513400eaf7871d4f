//! `runner serve --warm-pool 1`: after a pipeline's first build, an idle container of the same
//! shape waits, started; the next build runs in it (its hostname is that container's id) with
//! exactly the environment, working directory and stdin a cold container gives; an image that
//! changed under its tag, or a container that stopped, is never used; shutdown removes the idle
//! containers and a daemon restarted after a crash removes what the dead one left (issue 5).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::serve::{TOKEN, request, serve_on_loopback};
use crate::support::pipeline::{Pipeline, Running, bare_repository, labelled_containers};

/// What the build prints: everything a warm container must reproduce, then its hostname.
const BUILDSPEC: &str = r#"version: 0.2
env:
  variables:
    TRICKY: "it's $HOME \"quoted\" `tick` \\ end"
phases:
  build:
    commands:
      - 'printf "tricky=[%s]\n" "$TRICKY"'
      - echo "pwd=$([ "$(pwd)" = "$CODEBUILD_SRC_DIR" ] && echo src) id=${CODEBUILD_BUILD_ID%%:*}"
      - echo "user=$(id -u) home=$HOME path=$PATH"
      - timeout 5 cat; echo "stdin=$?"
      - test -e /.runner-go.sh && echo go-script-left || echo go-script-gone
      - cat msg.txt
      - echo "host=$(hostname)"
"#;

/// A bare repository with [`BUILDSPEC`] on `main`.
fn repository(root: &Path) -> String {
    let files = [("buildspec.yml", BUILDSPEC), ("msg.txt", "from the repo\n")];
    bare_repository(root, "app.git", &files).0
}

/// Ids of the containers (running or not) of the pool owned by `data`.
fn pool_containers(data: &Path) -> Vec<String> {
    let owner = std::fs::canonicalize(data).expect("data dir");
    labelled_containers("runner.pool", &owner.display().to_string())
}

/// Waits until the pool holds exactly one container other than `not`; returns it.
#[track_caller]
fn one_idle(data: &Path, not: Option<&str>) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let list = pool_containers(data);
        if let [id] = list.as_slice()
            && Some(id.as_str()) != not
        {
            return id.clone();
        }
        assert!(Instant::now() < deadline, "pool holds {list:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Starts one execution through the API; once it ended (the `round`-th to end), returns the
/// build's log lines.
#[track_caller]
fn run_build(pipeline: &Pipeline, serve: &Running, address: &str, round: usize) -> Vec<String> {
    let path = "/api/v1/pipelines/pooled/executions";
    let (status, body) = request(address, "POST", path, Some(TOKEN), "");
    assert_eq!(status, 202, "{body}");
    let deadline = Instant::now() + Duration::from_secs(120);
    let ended = loop {
        let ended: Vec<(String, String)> = serve
            .stdout()
            .lines()
            .filter_map(|line| {
                let rest = line.strip_prefix("==> execution ")?;
                let (id, rest) = rest.split_once(' ')?;
                let status = rest.split_whitespace().next()?;
                ["Succeeded", "Failed"]
                    .contains(&status)
                    .then(|| (id.to_owned(), status.to_owned()))
            })
            .collect();
        if ended.len() >= round {
            break ended[round - 1].clone();
        }
        assert!(Instant::now() < deadline, "{}", serve.stdout());
        std::thread::sleep(Duration::from_millis(100));
    };
    let (id, status) = ended;
    assert_eq!(status, "Succeeded", "{}", serve.stdout());
    pipeline.logs(&id, "build.probe")
}

fn line<'a>(lines: &'a [String], prefix: &str) -> &'a str {
    lines
        .iter()
        .find_map(|line| line.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} line in {lines:#?}"))
}

/// The lines that must be the same in a cold and a warm container.
fn environment(lines: &[String]) -> Vec<String> {
    [
        "tricky=",
        "pwd=",
        "user=",
        "stdin=",
        "go-script-",
        "from the repo",
    ]
    .iter()
    .map(|prefix| format!("{prefix}{}", line(lines, prefix)))
    .collect()
}

#[test]
fn builds_run_in_warm_containers_exactly_as_in_cold_ones() {
    let root = tempfile::tempdir().expect("temp dir");
    let url = repository(root.path());
    let first_image = retag("one");
    let pipeline = Pipeline::new(&format!(
        "name: pooled\nsource:\n  repo: {url}\n  branch: main\ndefaults:\n  image: {IMAGE}\nstages:\n  - name: source\n    actions:\n      - name: checkout\n        type: source\n        outputs: [Src]\n  - name: build\n    actions:\n      - name: probe\n        type: build\n        inputs: [Src]\n"
    ));
    let data = pipeline.data();
    let (serve, address) = serve_pooled(&pipeline);
    assert!(
        pool_containers(&data).is_empty(),
        "nothing is warmed before a build needs it"
    );

    // First build: cold (no shape known yet); it teaches the pool its shape.
    let cold = run_build(&pipeline, &serve, &address, 1);
    let idle = one_idle(&data, None);
    assert!(
        !line(&cold, "host=").is_empty() && !idle.starts_with(line(&cold, "host=")),
        "the first build ran cold"
    );

    // Second build: in the idle container, with the same environment.
    let warm = run_build(&pipeline, &serve, &address, 2);
    assert!(
        idle.starts_with(line(&warm, "host=")),
        "warm build ran in {}, the idle container was {idle}",
        line(&warm, "host=")
    );
    assert_eq!(environment(&warm), environment(&cold));
    assert_eq!(
        line(&warm, "tricky="),
        r#"[it's $HOME "quoted" `tick` \ end]"#
    );
    assert_eq!(
        line(&warm, "stdin="),
        "0",
        "stdin is /dev/null, as in a cold container"
    );
    assert_eq!(line(&warm, "go-script-"), "gone");
    let next = one_idle(&data, Some(&idle));
    assert!(
        !pool_containers(&data).contains(&idle),
        "the claimed container is removed after its build"
    );

    // The tag moves to a new image: the idle container of the old one is not used.
    let second_image = retag("two");
    let fresh = run_build(&pipeline, &serve, &address, 3);
    assert!(
        !next.starts_with(line(&fresh, "host=")),
        "a container of the replaced image ran the build"
    );
    let after_retag = one_idle(&data, Some(&next));

    // An idle container that stopped (as an engine restart stops them) is not used either.
    let stopped = Command::new("docker")
        .args(["stop", "-t", "0", &after_retag])
        .output()
        .expect("docker stop");
    assert!(stopped.status.success(), "{stopped:?}");
    let after_stop = run_build(&pipeline, &serve, &address, 4);
    assert!(
        !after_retag.starts_with(line(&after_stop, "host=")),
        "a stopped container ran the build"
    );
    assert_eq!(environment(&after_stop), environment(&cold));
    let last = one_idle(&data, Some(&after_retag));

    // A crash leaves the idle container; the next daemon of this data directory removes it.
    serve.kill_9();
    assert_eq!(pool_containers(&data), vec![last]);
    let (serve, address) = serve_pooled(&pipeline);
    assert!(pool_containers(&data).is_empty(), "swept at start");

    // A graceful shutdown removes the idle containers (here, one made by a build of this daemon).
    run_build(&pipeline, &serve, &address, 1);
    one_idle(&data, None);
    Command::new("kill")
        .args(["-TERM", &serve.pid().to_string()])
        .status()
        .expect("kill");
    serve.finish(Duration::from_secs(60)).code(0);
    assert!(pool_containers(&data).is_empty());
    let _ = Command::new("docker")
        .args(["rmi", "-f", IMAGE, &first_image, &second_image])
        .output();
}

/// An image of our own whose tag can be moved under the pool: `FROM runner/test`, one label.
const IMAGE: &str = "runner/pool-test";

/// Points [`IMAGE`] at a new image (a new id, the same layers); returns its id.
#[track_caller]
fn retag(label: &str) -> String {
    let built = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "printf 'FROM runner/test\\nLABEL pool={label}\\n' | docker build -q -t {IMAGE} -"
        ))
        .output()
        .expect("docker build");
    assert!(built.status.success(), "{built:?}");
    String::from_utf8_lossy(&built.stdout).trim().to_owned()
}

/// `runner serve --warm-pool 1` for `pipeline` with [`TOKEN`], once it listens; the process and
/// its `host:port`.
#[track_caller]
fn serve_pooled(pipeline: &Pipeline) -> (Running, String) {
    let token_file = pipeline.pipeline_file().with_file_name("api-token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).expect("write");
    let token = token_file.to_str().expect("utf-8");
    serve_on_loopback(pipeline, &["--warm-pool", "1", "--api-token-file", token])
}
