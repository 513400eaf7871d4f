//! What every action does before it runs: fetch and unpack its input artifacts, and resolve
//! `#{namespace.key}` variables in its configuration just before it starts (P31).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::ExecutionRequest;
use super::dispatcher::Inputs;
use crate::artifacts::ArtifactStore;
use crate::build;
use crate::pipeline::resolve_variables;

/// Fetches each named input from the store (digest verified) and unpacks it under
/// `work/inputs/<name>`; returns the directories by name.
pub(super) async fn fetch<S: ArtifactStore>(
    store: &S,
    names: &[String],
    inputs: &Inputs,
    work: &Path,
) -> Result<BTreeMap<String, PathBuf>, String> {
    let mut sources = BTreeMap::new();
    for name in names {
        let reference = inputs
            .artifacts
            .get(name)
            .ok_or_else(|| format!("input artifact {name} was not produced"))?;
        let zip = work.join(format!("{name}.zip"));
        store
            .get(reference, &zip)
            .await
            .map_err(|error| format!("fetch input artifact {name}: {error}"))?;
        let dir = work.join("inputs").join(name);
        build::collect::extract_zip(&zip, &dir)
            .map_err(|error| format!("unpack input artifact {name}: {error}"))?;
        sources.insert(name.clone(), dir);
    }
    Ok(sources)
}

/// `text` with `#{codepipeline.PipelineExecutionId}`, `#{variables.X}` and `#{Namespace.KEY}`
/// replaced; a reference that cannot be resolved fails the action (P32).
pub(super) fn resolve(
    request: &ExecutionRequest,
    inputs: &Inputs,
    text: &str,
) -> Result<String, String> {
    let lookup = |namespace: &str, key: &str| -> Option<String> {
        match namespace {
            "codepipeline" if key == "PipelineExecutionId" => Some(request.run_id.0.clone()),
            "variables" => request.pipeline_variables.get(key).cloned(),
            other => inputs.variables.get(other)?.get(key).cloned(),
        }
    };
    resolve_variables(text, lookup)
        .map_err(|error| format!("unresolved variable #{{{}.{}}}", error.namespace, error.key))
}
