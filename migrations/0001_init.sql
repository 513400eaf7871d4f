-- Pipeline executions, their stage and action attempts, and what they produced.
--
-- Times are unix milliseconds (UTC). Statuses are stored in CodePipeline's and CodeBuild's
-- spellings. No table holds environment variables, credentials or artifact contents: secrets
-- are never written here.

-- One pipeline execution. `seq` orders executions by creation; `id` is the uuid users see.
-- `owner` is the runner process (see src/state/owner.rs) that last drove it.
CREATE TABLE executions (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT    NOT NULL UNIQUE,
    pipeline        TEXT    NOT NULL,
    pipeline_digest TEXT    NOT NULL,
    trigger_type    TEXT    NOT NULL,
    trigger_detail  TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    status_summary  TEXT,
    owner           TEXT,
    started_at      INTEGER NOT NULL,
    ended_at        INTEGER
);
CREATE INDEX executions_by_pipeline ON executions (pipeline, seq);
CREATE INDEX executions_by_status ON executions (status);

-- The revision each source action fetched; a retry reuses them (P38).
CREATE TABLE source_revisions (
    execution_id TEXT NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    action       TEXT NOT NULL,
    revision_id  TEXT NOT NULL,
    ref_name     TEXT,
    summary      TEXT,
    PRIMARY KEY (execution_id, action)
);

-- One attempt of one stage: attempt 1 is the first entry, later ones are retries (P36).
-- `id` orders entries into a stage across executions (P37).
CREATE TABLE stage_runs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    execution_id TEXT    NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    stage        TEXT    NOT NULL,
    attempt      INTEGER NOT NULL CHECK (attempt >= 1),
    retry_mode   TEXT,
    status       TEXT    NOT NULL,
    started_at   INTEGER NOT NULL,
    ended_at     INTEGER,
    UNIQUE (execution_id, stage, attempt)
);

-- One attempt of one action; `attempt` counts per action, `stage_attempt` says which stage
-- attempt ran it. Earlier attempts are kept (P38).
CREATE TABLE action_runs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    execution_id  TEXT    NOT NULL,
    stage         TEXT    NOT NULL,
    stage_attempt INTEGER NOT NULL,
    action        TEXT    NOT NULL,
    attempt       INTEGER NOT NULL CHECK (attempt >= 1),
    status        TEXT    NOT NULL,
    exit_code     INTEGER,
    build_id      TEXT,
    build_number  INTEGER,
    log_path      TEXT,
    error         TEXT,
    started_at    INTEGER NOT NULL,
    ended_at      INTEGER,
    UNIQUE (execution_id, stage, action, attempt),
    FOREIGN KEY (execution_id, stage, stage_attempt)
        REFERENCES stage_runs (execution_id, stage, attempt) ON DELETE CASCADE
);
CREATE INDEX action_runs_by_stage_attempt ON action_runs (execution_id, stage, stage_attempt);

-- The phase table of one action attempt (CodeBuild's phases).
CREATE TABLE phases (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    action_run_id   INTEGER NOT NULL REFERENCES action_runs (id) ON DELETE CASCADE,
    name            TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    started_at      INTEGER NOT NULL,
    ended_at        INTEGER,
    context_code    TEXT,
    context_message TEXT,
    UNIQUE (action_run_id, name)
);

-- Output artifacts, by where the artifact store keeps them; the latest attempt wins (P38).
CREATE TABLE artifacts (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    action_run_id INTEGER NOT NULL REFERENCES action_runs (id) ON DELETE CASCADE,
    name          TEXT    NOT NULL,
    digest        TEXT    NOT NULL,
    size          INTEGER NOT NULL CHECK (size >= 0),
    location      TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    UNIQUE (action_run_id, name)
);
CREATE INDEX artifacts_by_name ON artifacts (name);

-- Resolved variables of an execution: `variables` (pipeline level) and each action namespace.
-- A rerun action overwrites its own values.
CREATE TABLE variables (
    execution_id  TEXT    NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    namespace     TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    value         TEXT    NOT NULL,
    action_run_id INTEGER REFERENCES action_runs (id) ON DELETE SET NULL,
    PRIMARY KEY (execution_id, namespace, name)
);

-- The build counter of each CodeBuild project (CODEBUILD_BUILD_NUMBER).
CREATE TABLE build_numbers (
    project TEXT    PRIMARY KEY,
    last    INTEGER NOT NULL CHECK (last >= 1)
);
