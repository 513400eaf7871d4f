//! Renderings of a [`Plan`]: a text tree for `runner graph`, Graphviz DOT and Mermaid.
//!
//! Each stage is a group (a DOT cluster, a Mermaid subgraph); edges are labelled with the
//! artifacts and variable namespaces they carry, and with `depends_on` when named.

use std::fmt::Write as _;

use super::plan::{EdgeKind, Plan};
use crate::pipeline::{ActionId, Stage};

impl Plan {
    /// A tree: the pipeline, its stages, and each action with its run order, type,
    /// inputs → outputs, namespace and `depends_on`.
    pub fn to_text(&self) -> String {
        let pipeline = self.pipeline();
        let mut out = String::new();
        line(
            &mut out,
            format_args!("{} ({})", pipeline.name, mode_name(self)),
        );
        let stages = self.stages();
        for (position, (_, stage, ids)) in stages.iter().enumerate() {
            let last_stage = position + 1 == stages.len();
            let (branch, indent) = if last_stage {
                ("└── ", "    ")
            } else {
                ("├── ", "│   ")
            };
            line(&mut out, format_args!("{branch}{}", stage.name));
            for (position, &id) in ids.iter().enumerate() {
                let twig = if position + 1 == ids.len() {
                    "└── "
                } else {
                    "├── "
                };
                let action = &stage.actions[id.action];
                let mut text = format!(
                    "[{}] {} ({}): {} → {}",
                    action.run_order,
                    action.name,
                    action.type_name(),
                    list(&action.inputs),
                    list(&action.outputs),
                );
                if let Some(namespace) = &action.namespace {
                    write!(text, ", namespace {namespace}").expect("write to a String");
                }
                if let Some(depends_on) = &action.depends_on {
                    let names: Vec<String> = depends_on
                        .iter()
                        .map(|&id| pipeline.qualified_name(id))
                        .collect();
                    write!(text, ", depends on {}", list(&names)).expect("write to a String");
                }
                line(&mut out, format_args!("{indent}{twig}{text}"));
            }
        }
        out
    }

    /// Graphviz DOT, one cluster per stage.
    pub fn to_dot(&self) -> String {
        let mut out = String::new();
        line(
            &mut out,
            format_args!("digraph {} {{", dot_quote(&self.pipeline().name)),
        );
        out.push_str("  rankdir=LR;\n  node [shape=box];\n");
        for (index, stage, ids) in self.stages() {
            line(&mut out, format_args!("  subgraph \"cluster_{index}\" {{"));
            line(
                &mut out,
                format_args!("    label={};", dot_quote(&stage.name)),
            );
            for id in ids {
                let action = &stage.actions[id.action];
                let label = format!(
                    "{}\n{} · run_order {}",
                    action.name,
                    action.type_name(),
                    action.run_order
                );
                let node = dot_quote(&self.pipeline().qualified_name(id));
                line(
                    &mut out,
                    format_args!("    {node} [label={}];", dot_quote(&label)),
                );
            }
            out.push_str("  }\n");
        }
        for (from, to, kinds) in self.edges() {
            let (from, to) = (
                self.pipeline().qualified_name(from),
                self.pipeline().qualified_name(to),
            );
            let mut attributes = Vec::new();
            if let Some(label) = edge_label(kinds) {
                attributes.push(format!("label={}", dot_quote(&label)));
            }
            if kinds.contains(&EdgeKind::DependsOn) {
                attributes.push("style=bold".to_owned());
            }
            let attributes = if attributes.is_empty() {
                String::new()
            } else {
                format!(" [{}]", attributes.join(", "))
            };
            line(
                &mut out,
                format_args!("  {} -> {}{attributes};", dot_quote(&from), dot_quote(&to)),
            );
        }
        out.push_str("}\n");
        out
    }

    /// A Mermaid flowchart, one subgraph per stage.
    pub fn to_mermaid(&self) -> String {
        let mut out = String::from("flowchart LR\n");
        for (index, stage, ids) in self.stages() {
            line(
                &mut out,
                format_args!("  subgraph s{index}[{}]", mermaid_quote(&stage.name)),
            );
            for id in ids {
                let action = &stage.actions[id.action];
                let label = format!("{} ({})", action.name, action.type_name());
                line(
                    &mut out,
                    format_args!("    {}[{}]", mermaid_id(id), mermaid_quote(&label)),
                );
            }
            out.push_str("  end\n");
        }
        for (from, to, kinds) in self.edges() {
            let arrow = match edge_label(kinds) {
                Some(label) => format!("-->|{}|", mermaid_quote(&label)),
                None => "-->".to_owned(),
            };
            line(
                &mut out,
                format_args!("  {} {arrow} {}", mermaid_id(from), mermaid_id(to)),
            );
        }
        out
    }

    /// The stages that hold actions of this plan, with those actions in id order.
    fn stages(&self) -> Vec<(usize, &Stage, Vec<ActionId>)> {
        let mut stages: Vec<(usize, &Stage, Vec<ActionId>)> = Vec::new();
        for id in self.action_ids() {
            match stages.last_mut() {
                Some((index, _, ids)) if *index == id.stage => ids.push(id),
                _ => stages.push((id.stage, &self.pipeline().stages[id.stage], vec![id])),
            }
        }
        stages
    }

    /// Every edge, ordered by source then target.
    fn edges(&self) -> Vec<(ActionId, ActionId, &[EdgeKind])> {
        let mut edges: Vec<_> = self
            .graph
            .edge_indices()
            .filter_map(|edge| {
                let (from, to) = self.graph.edge_endpoints(edge)?;
                Some((
                    self.graph[from],
                    self.graph[to],
                    self.graph[edge].as_slice(),
                ))
            })
            .collect();
        edges.sort_by_key(|&(from, to, _)| (from, to));
        edges
    }
}

fn mode_name(plan: &Plan) -> &'static str {
    use crate::pipeline::ExecutionMode;
    ExecutionMode::ALL
        .iter()
        .find(|(_, mode)| *mode == plan.pipeline().execution_mode)
        .map_or("superseded", |(name, _)| name)
}

fn line(out: &mut String, args: std::fmt::Arguments<'_>) {
    out.write_fmt(args).expect("write to a String");
    out.push('\n');
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "-".to_owned()
    } else {
        items.join(", ")
    }
}

/// The artifacts, namespaces and `depends_on` an edge carries; `None` for plain ordering.
fn edge_label(kinds: &[EdgeKind]) -> Option<String> {
    let parts: Vec<String> = kinds
        .iter()
        .filter_map(|kind| match kind {
            EdgeKind::Stage | EdgeKind::RunOrder => None,
            EdgeKind::DependsOn => Some("depends_on".to_owned()),
            EdgeKind::Artifact(name) => Some(name.clone()),
            EdgeKind::Variables(namespace) => Some(format!("variables {namespace}")),
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

fn dot_quote(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n");
    format!("\"{escaped}\"")
}

fn mermaid_id(id: ActionId) -> String {
    format!("a{}_{}", id.stage, id.action)
}

fn mermaid_quote(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "#quot;"))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::pipeline;

    fn futureim_plan() -> Plan {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/futureim.yml");
        let pipeline = pipeline::load(&path).unwrap_or_else(|error| panic!("{error}"));
        Plan::new(&pipeline).unwrap_or_else(|error| panic!("{error}"))
    }

    #[test]
    fn futureim_text() {
        insta::assert_snapshot!(futureim_plan().to_text());
    }

    #[test]
    fn futureim_dot() {
        insta::assert_snapshot!(futureim_plan().to_dot());
    }

    #[test]
    fn futureim_mermaid() {
        insta::assert_snapshot!(futureim_plan().to_mermaid());
    }

    #[test]
    fn depends_on_and_subplans_render() {
        let text = "name: demo\nsource: {repo: acme/app, branch: main}\nexecution_mode: queued\nstages:\n  - name: source\n    actions:\n      - {name: checkout, type: source, outputs: [Src]}\n  - name: infra\n    actions:\n      - {name: tf, type: build, inputs: [Src], outputs: [Tf], namespace: TfVars}\n      - {name: check, type: approval, run_order: 2}\n  - name: web\n    actions:\n      - {name: site, type: build, inputs: [Src], depends_on: [source.checkout], env: {U: '#{TfVars.URL}'}}\n";
        let pipeline = pipeline::parse("p.yml", text).unwrap_or_else(|error| panic!("{error}"));
        let plan = Plan::new(&pipeline).expect("plans");
        insta::assert_snapshot!(plan.to_text(), @r"
        demo (queued)
        ├── source
        │   └── [1] checkout (source): - → Src
        ├── infra
        │   ├── [1] tf (build): Src → Tf, namespace TfVars
        │   └── [2] check (approval): - → -
        └── web
            └── [1] site (build): Src → -, depends on source.checkout
        ");
        insta::assert_snapshot!(plan.to_mermaid(), @r#"
        flowchart LR
          subgraph s0["source"]
            a0_0["checkout (source)"]
          end
          subgraph s1["infra"]
            a1_0["tf (build)"]
            a1_1["check (approval)"]
          end
          subgraph s2["web"]
            a2_0["site (build)"]
          end
          a0_0 -->|"Src"| a1_0
          a0_0 -->|"depends_on, Src"| a2_0
          a1_0 --> a1_1
          a1_0 -->|"variables TfVars"| a2_0
        "#);
        let retry = plan.subplan_from_stage(2).expect("stage exists");
        insta::assert_snapshot!(retry.to_text(), @r"
        demo (queued)
        └── web
            └── [1] site (build): Src → -, depends on source.checkout
        ");
    }
}
