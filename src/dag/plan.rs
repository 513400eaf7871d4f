//! [`Plan`]: one node per action, one edge per "must finish before".
//!
//! Edges, in the order they are added:
//! - run order (P9): each run-order group waits for every action of the next lower group of its
//!   stage, and so, transitively, for all lower groups;
//! - stage order: an action without `depends_on` waits for the highest run-order group of the
//!   previous stage (and so for the whole stage), unless an action of a lower group of its own
//!   stage already does;
//! - `depends_on`: exactly the named actions, instead of the previous stage;
//! - data: the producer of each input artifact and of each variable namespace the action reads,
//!   unless the graph already orders them (then an existing direct edge only gains the label).
//!
//! A validated pipeline never has a cycle, because every edge points to an earlier stage or a
//! lower run order; [`PlanError::Cycle`] guards pipelines built or edited in code.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};

use petgraph::Direction;
use petgraph::algo::{has_path_connecting, tarjan_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;

use super::error::PlanError;
use crate::pipeline::{Action, ActionId, ConsumedItem, Pipeline, Stage};

/// Why one action waits for another.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EdgeKind {
    /// The previous stage.
    Stage,
    /// A lower run-order group of the same stage (P9).
    RunOrder,
    /// Named in `depends_on`.
    DependsOn,
    /// Produces this input artifact (P6).
    Artifact(String),
    /// Owns this variable namespace (P32).
    Variables(String),
}

/// The actions of a pipeline (or of its tail, see [`Plan::subplan_from_stage`]) as a DAG.
#[derive(Debug, Clone)]
pub struct Plan {
    pub(super) pipeline: Pipeline,
    pub(super) graph: DiGraph<ActionId, Vec<EdgeKind>>,
    nodes: HashMap<ActionId, NodeIndex>,
}

impl Plan {
    /// Plans every action of `pipeline`.
    pub fn new(pipeline: &Pipeline) -> Result<Plan, PlanError> {
        check_ids(pipeline)?;
        let mut plan = Plan {
            pipeline: pipeline.clone(),
            graph: DiGraph::new(),
            nodes: HashMap::new(),
        };
        for id in pipeline.action_ids() {
            let node = plan.graph.add_node(id);
            plan.nodes.insert(id, node);
        }
        for (index, stage) in pipeline.stages.iter().enumerate() {
            plan.order_edges(index, stage);
        }
        for id in pipeline.action_ids() {
            plan.data_edges(id);
        }
        plan.check_acyclic()?;
        Ok(plan)
    }

    /// The pipeline this plan was made from.
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// The action at `id`, if the plan holds it.
    pub fn action(&self, id: ActionId) -> Option<&Action> {
        self.nodes.get(&id).and(self.pipeline.action(id))
    }

    /// The stage `id` belongs to, if the plan holds the action.
    pub fn stage_of(&self, id: ActionId) -> Option<&Stage> {
        self.nodes.get(&id).and(self.pipeline.stages.get(id.stage))
    }

    /// Whether the plan holds `id`.
    pub fn contains(&self, id: ActionId) -> bool {
        self.nodes.contains_key(&id)
    }

    /// How many actions the plan holds.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the plan holds no action.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The actions `id` waits for directly, in id order.
    pub fn dependencies(&self, id: ActionId) -> Vec<ActionId> {
        self.neighbors(id, Direction::Incoming)
    }

    /// The actions that wait for `id` directly, in id order.
    pub fn dependents(&self, id: ActionId) -> Vec<ActionId> {
        self.neighbors(id, Direction::Outgoing)
    }

    /// Why `to` waits for `from` directly; empty when it does not.
    pub fn edge(&self, from: ActionId, to: ActionId) -> &[EdgeKind] {
        let (Some(&a), Some(&b)) = (self.nodes.get(&from), self.nodes.get(&to)) else {
            return &[];
        };
        self.graph
            .find_edge(a, b)
            .map_or(&[], |edge| self.graph[edge].as_slice())
    }

    /// Every action that is neither done nor running and whose dependencies are all done, in id
    /// order. Each action is released as soon as its own dependencies finish, not stage by stage.
    pub fn ready(&self, done: &HashSet<ActionId>, running: &HashSet<ActionId>) -> Vec<ActionId> {
        let mut ready: Vec<ActionId> = self
            .graph
            .node_indices()
            .filter(|&node| {
                let id = self.graph[node];
                !done.contains(&id)
                    && !running.contains(&id)
                    && self
                        .graph
                        .neighbors_directed(node, Direction::Incoming)
                        .all(|dependency| done.contains(&self.graph[dependency]))
            })
            .map(|node| self.graph[node])
            .collect();
        ready.sort_unstable();
        ready
    }

    /// Every action, dependencies first; among actions free to go, the lowest id first.
    pub fn topo_order(&self) -> Vec<ActionId> {
        let mut waiting: HashMap<NodeIndex, usize> = self
            .graph
            .node_indices()
            .map(|node| {
                (
                    node,
                    self.graph
                        .neighbors_directed(node, Direction::Incoming)
                        .count(),
                )
            })
            .collect();
        let mut free: BinaryHeap<Reverse<(ActionId, NodeIndex)>> = waiting
            .iter()
            .filter(|&(_, &count)| count == 0)
            .map(|(&node, _)| Reverse((self.graph[node], node)))
            .collect();
        let mut order = Vec::with_capacity(self.graph.node_count());
        while let Some(Reverse((id, node))) = free.pop() {
            order.push(id);
            for next in self.graph.neighbors_directed(node, Direction::Outgoing) {
                if let Some(count) = waiting.get_mut(&next) {
                    *count -= 1;
                    if *count == 0 {
                        free.push(Reverse((self.graph[next], next)));
                    }
                }
            }
        }
        order
    }

    /// The actions of `stage` and every later stage, with the edges among them: what a retry
    /// from that stage runs (P36, P38). Earlier stages count as done.
    pub fn subplan_from_stage(&self, stage: usize) -> Result<Plan, PlanError> {
        let stages = self.pipeline.stages.len();
        if stage >= stages {
            return Err(PlanError::UnknownStage { stage, stages });
        }
        let graph = self.graph.filter_map(
            |_, &id| (id.stage >= stage).then_some(id),
            |_, kinds| Some(kinds.clone()),
        );
        let nodes = graph
            .node_indices()
            .map(|node| (graph[node], node))
            .collect();
        Ok(Plan {
            pipeline: self.pipeline.clone(),
            graph,
            nodes,
        })
    }

    /// Every action id in the plan, in id order.
    pub fn action_ids(&self) -> Vec<ActionId> {
        let mut ids: Vec<ActionId> = self.nodes.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    fn neighbors(&self, id: ActionId, direction: Direction) -> Vec<ActionId> {
        let Some(&node) = self.nodes.get(&id) else {
            return Vec::new();
        };
        let mut ids: Vec<ActionId> = self
            .graph
            .neighbors_directed(node, direction)
            .map(|neighbor| self.graph[neighbor])
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    fn add_edge(&mut self, from: ActionId, to: ActionId, kind: EdgeKind) {
        let (a, b) = (self.nodes[&from], self.nodes[&to]);
        match self.graph.find_edge(a, b) {
            Some(edge) if self.graph[edge].contains(&kind) => {}
            Some(edge) => self.graph[edge].push(kind),
            None => {
                self.graph.add_edge(a, b, vec![kind]);
            }
        }
    }

    /// Run-order, stage-order and `depends_on` edges into `stage`.
    fn order_edges(&mut self, index: usize, stage: &Stage) {
        let groups = run_order_groups(stage);
        let previous_last_group: Vec<usize> = index
            .checked_sub(1)
            .and_then(|previous| run_order_groups(&self.pipeline.stages[previous]).pop())
            .unwrap_or_default();
        let mut lower: Vec<usize> = Vec::new();
        for group in groups {
            let lower_waits_on_stage = lower
                .iter()
                .any(|&action| stage.actions[action].depends_on.is_none());
            for &action in &group {
                let id = ActionId {
                    stage: index,
                    action,
                };
                let last_lower = lower_group_before(stage, &lower, stage.actions[action].run_order);
                for &before in &last_lower {
                    let from = ActionId {
                        stage: index,
                        action: before,
                    };
                    self.add_edge(from, id, EdgeKind::RunOrder);
                }
                match &stage.actions[action].depends_on {
                    Some(depends_on) => {
                        for &from in depends_on {
                            self.add_edge(from, id, EdgeKind::DependsOn);
                        }
                    }
                    None if !lower_waits_on_stage => {
                        for &before in &previous_last_group {
                            let from = ActionId {
                                stage: index - 1,
                                action: before,
                            };
                            self.add_edge(from, id, EdgeKind::Stage);
                        }
                    }
                    None => {}
                }
            }
            lower.extend(group);
        }
    }

    /// Edges from the producers of what `id` reads, where the graph does not already order them.
    fn data_edges(&mut self, id: ActionId) {
        let Some(action) = self.pipeline.action(id) else {
            return;
        };
        let consumes = action.consumes.clone();
        let to = self.nodes[&id];
        for consumed in consumes {
            let kind = match consumed.item {
                ConsumedItem::Artifact(name) => EdgeKind::Artifact(name),
                ConsumedItem::Variables(namespace) => EdgeKind::Variables(namespace),
            };
            let from = self.nodes[&consumed.producer];
            let direct = self.graph.find_edge(from, to).is_some();
            if direct || !has_path_connecting(&self.graph, from, to, None) {
                self.add_edge(consumed.producer, id, kind);
            }
        }
    }

    fn check_acyclic(&self) -> Result<(), PlanError> {
        if toposort(&self.graph, None).is_ok() {
            return Ok(());
        }
        let path = cycle_path(&self.graph).expect("toposort found a cycle");
        let first = path[0];
        Err(PlanError::Cycle {
            origin: self.pipeline.origin.clone(),
            location: self
                .pipeline
                .action(first)
                .map(|action| action.location)
                .unwrap_or_default(),
            path: path
                .iter()
                .map(|&id| self.pipeline.qualified_name(id))
                .collect(),
        })
    }
}

/// The action indices of `stage` grouped by run order, lowest first.
fn run_order_groups(stage: &Stage) -> Vec<Vec<usize>> {
    let mut groups: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (index, action) in stage.actions.iter().enumerate() {
        groups.entry(action.run_order).or_default().push(index);
    }
    groups.into_values().collect()
}

/// The actions of the highest run order below `run_order`, among `lower`.
fn lower_group_before(stage: &Stage, lower: &[usize], run_order: u32) -> Vec<usize> {
    let highest = lower
        .iter()
        .map(|&action| stage.actions[action].run_order)
        .filter(|&order| order < run_order)
        .max();
    lower
        .iter()
        .copied()
        .filter(|&action| Some(stage.actions[action].run_order) == highest)
        .collect()
}

/// Every id a pipeline refers to must exist.
fn check_ids(pipeline: &Pipeline) -> Result<(), PlanError> {
    for id in pipeline.action_ids() {
        let action = pipeline.action(id).expect("ids come from the pipeline");
        let named = action.depends_on.iter().flatten().copied();
        let produced = action.consumes.iter().map(|consumed| consumed.producer);
        if let Some(dependency) = named
            .chain(produced)
            .find(|&d| pipeline.action(d).is_none())
        {
            return Err(PlanError::MissingDependency {
                origin: pipeline.origin.clone(),
                location: action.location,
                action: pipeline.qualified_name(id),
                dependency,
            });
        }
    }
    Ok(())
}

/// One cycle, as ids from its lowest id back to it.
fn cycle_path(graph: &DiGraph<ActionId, Vec<EdgeKind>>) -> Option<Vec<ActionId>> {
    let component = tarjan_scc(graph)
        .into_iter()
        .filter(|component| {
            component.len() > 1 || graph.find_edge(component[0], component[0]).is_some()
        })
        .min_by_key(|component| component.iter().map(|&node| graph[node]).min())?;
    let members: HashSet<NodeIndex> = component.iter().copied().collect();
    let start = *component.iter().min_by_key(|&&node| graph[node])?;
    // Depth-first search inside the component, lowest ids first, until the start comes back.
    let mut path = vec![start];
    let mut seen = HashSet::from([start]);
    let mut stack = vec![successors(graph, start, &members)];
    while let Some(next) = stack.last_mut().and_then(Vec::pop) {
        if next == start {
            path.push(start);
            return Some(path.iter().map(|&node| graph[node]).collect());
        }
        if seen.insert(next) {
            path.push(next);
            stack.push(successors(graph, next, &members));
        }
        while stack.last().is_some_and(Vec::is_empty) {
            stack.pop();
            path.pop();
        }
    }
    None
}

/// Successors inside `members`, highest id first so that popping yields the lowest.
fn successors(
    graph: &DiGraph<ActionId, Vec<EdgeKind>>,
    node: NodeIndex,
    members: &HashSet<NodeIndex>,
) -> Vec<NodeIndex> {
    let mut next: Vec<NodeIndex> = graph
        .edges_directed(node, Direction::Outgoing)
        .map(|edge| edge.target())
        .filter(|target| members.contains(target))
        .collect();
    next.sort_by_key(|&target| Reverse(graph[target]));
    next
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::pipeline;

    fn id(stage: usize, action: usize) -> ActionId {
        ActionId { stage, action }
    }

    fn set(ids: &[ActionId]) -> HashSet<ActionId> {
        ids.iter().copied().collect()
    }

    #[track_caller]
    fn plan(text: &str) -> Plan {
        let pipeline =
            pipeline::parse("pipeline.yml", text).unwrap_or_else(|error| panic!("{error}"));
        Plan::new(&pipeline).unwrap_or_else(|error| panic!("{error}"))
    }

    pub(crate) fn futureim() -> pipeline::Pipeline {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/futureim.yml");
        pipeline::load(&path).unwrap_or_else(|error| panic!("{error}"))
    }

    /// Source, then the stages given.
    fn with_stages(stages: &str) -> String {
        format!(
            "name: demo\nsource: {{repo: acme/app, branch: main}}\nstages:\n  - name: source\n    actions:\n      - {{name: checkout, type: source, outputs: [Src]}}\n{stages}"
        )
    }

    const RUN_ORDERS: &str = "  - name: build\n    actions:\n      - {name: a, type: build, inputs: [Src], run_order: 1}\n      - {name: b, type: build, inputs: [Src], run_order: 1}\n      - {name: c, type: build, inputs: [Src], run_order: 3}\n  - name: deploy\n    actions:\n      - {name: ship, type: approval}\n";

    #[test]
    fn p9_same_run_order_runs_in_parallel() {
        let plan = plan(&with_stages(RUN_ORDERS));
        assert_eq!(plan.ready(&HashSet::new(), &HashSet::new()), [id(0, 0)]);
        assert_eq!(
            plan.ready(&set(&[id(0, 0)]), &HashSet::new()),
            [id(1, 0), id(1, 1)]
        );
    }

    #[test]
    fn p9_higher_run_order_waits() {
        let plan = plan(&with_stages(RUN_ORDERS));
        assert_eq!(plan.dependencies(id(1, 2)), [id(1, 0), id(1, 1)]);
        assert_eq!(plan.edge(id(1, 0), id(1, 2)), [EdgeKind::RunOrder]);
        let running = set(&[id(1, 1)]);
        assert!(plan.ready(&set(&[id(0, 0), id(1, 0)]), &running).is_empty());
        assert_eq!(
            plan.ready(&set(&[id(0, 0), id(1, 0), id(1, 1)]), &HashSet::new()),
            [id(1, 2)]
        );
        // The next stage waits for the highest group, and so for the whole stage.
        assert_eq!(plan.dependencies(id(2, 0)), [id(1, 2)]);
    }

    #[test]
    fn stage_order_comes_through_the_lowest_group_that_waits_for_it() {
        let text = with_stages(
            "  - name: infra\n    actions:\n      - {name: tf, type: build, inputs: [Src]}\n  - name: web\n    actions:\n      - {name: early, type: approval, depends_on: [source.checkout]}\n      - {name: late, type: approval, run_order: 2}\n      - {name: last, type: approval, run_order: 3}\n",
        );
        let plan = plan(&text);
        assert_eq!(plan.dependencies(id(2, 0)), [id(0, 0)]);
        // `early` skips `infra`, so `late` waits for it itself; `last` gets it through `late`.
        assert_eq!(plan.dependencies(id(2, 1)), [id(1, 0), id(2, 0)]);
        assert_eq!(plan.dependencies(id(2, 2)), [id(2, 1)]);
    }

    const FRONTEND: &str = "  - name: infra\n    actions:\n      - {name: tf, type: build, inputs: [Src]}\n  - name: lambdas\n    actions:\n      - {name: java, type: build, inputs: [Src], outputs: [JavaOut], namespace: JavaVars}\n      - {name: python, type: build, inputs: [Src]}\n  - name: web\n    actions:\n";

    #[test]
    fn depends_on_lets_frontend_skip_lambdas() {
        let text = with_stages(&format!(
            "{FRONTEND}      - {{name: frontend, type: build, inputs: [Src], depends_on: [infra.tf]}}\n"
        ));
        let plan = plan(&text);
        assert_eq!(plan.dependencies(id(3, 0)), [id(1, 0)]);
        assert_eq!(plan.edge(id(1, 0), id(3, 0)), [EdgeKind::DependsOn]);
        let done = set(&[id(0, 0), id(1, 0)]);
        assert_eq!(
            plan.ready(&done, &HashSet::new()),
            [id(2, 0), id(2, 1), id(3, 0)]
        );
    }

    #[test]
    fn ready_releases_each_action_when_its_own_dependencies_finish() {
        let text = with_stages(&format!(
            "{FRONTEND}      - {{name: frontend, type: build, inputs: [Src], depends_on: [lambdas.java]}}\n"
        ));
        let plan = plan(&text);
        let done = set(&[id(0, 0), id(1, 0), id(2, 0)]);
        assert_eq!(plan.ready(&done, &set(&[id(2, 1)])), [id(3, 0)]);
    }

    #[test]
    fn producers_skipped_by_depends_on_become_edges() {
        let text = with_stages(&format!(
            "{FRONTEND}      - {{name: frontend, type: build, inputs: [Src, JavaOut], primary_source: Src, depends_on: [infra.tf], env: {{V: '#{{JavaVars.VER}}'}}}}\n"
        ));
        let plan = plan(&text);
        assert_eq!(plan.dependencies(id(3, 0)), [id(1, 0), id(2, 0)]);
        assert_eq!(
            plan.edge(id(2, 0), id(3, 0)),
            [
                EdgeKind::Artifact("JavaOut".to_owned()),
                EdgeKind::Variables("JavaVars".to_owned())
            ]
        );
        // `Src` comes through `infra.tf`, so it adds no edge from the source.
        assert!(plan.edge(id(0, 0), id(3, 0)).is_empty());
    }

    #[test]
    fn direct_edges_carry_the_artifacts() {
        let plan = Plan::new(&futureim()).expect("plans");
        assert_eq!(
            plan.edge(id(0, 0), id(1, 0)),
            [
                EdgeKind::Stage,
                EdgeKind::Artifact("SourceOutput".to_owned()),
                EdgeKind::Variables("SourceVariables".to_owned()),
            ]
        );
    }

    #[test]
    fn topo_order_lists_dependencies_first() {
        let plan = Plan::new(&futureim()).expect("plans");
        assert_eq!(
            plan.topo_order(),
            [id(0, 0), id(1, 0), id(2, 0), id(2, 1), id(3, 0)]
        );
        assert_eq!(plan.action_ids(), plan.topo_order());
        assert_eq!(
            plan.stage_of(id(2, 1)).map(|stage| stage.name.as_str()),
            Some("build-lambdas")
        );
        assert_eq!(
            plan.action(id(3, 0)).map(|action| action.name.as_str()),
            Some("frontend")
        );
        assert_eq!(plan.dependents(id(1, 0)), [id(2, 0), id(2, 1)]);
    }

    #[test]
    fn cycle_is_reported_with_its_path() {
        let mut pipeline = futureim();
        pipeline.stages[1].actions[0].depends_on = Some(vec![id(3, 0)]);
        let error = Plan::new(&pipeline).expect_err("cycle");
        let PlanError::Cycle { path, location, .. } = &error else {
            panic!("expected a cycle, got {error}");
        };
        assert_eq!(
            path,
            &[
                "infrastructure.terraform",
                "build-lambdas.java-lambdas",
                "build-frontend.frontend",
                "infrastructure.terraform",
            ]
        );
        assert_eq!(*location, pipeline.stages[1].actions[0].location);
        assert!(error.to_string().contains("futureim.yml:"), "{error}");
        assert!(
            error.to_string().ends_with(": dependency cycle: infrastructure.terraform -> build-lambdas.java-lambdas -> build-frontend.frontend -> infrastructure.terraform"),
            "{error}"
        );
    }

    #[test]
    fn self_dependency_is_a_cycle() {
        let mut pipeline = futureim();
        pipeline.stages[2].actions[1].depends_on = Some(vec![id(2, 1)]);
        let error = Plan::new(&pipeline).expect_err("cycle");
        assert!(
            matches!(&error, PlanError::Cycle { path, .. } if path.len() == 2),
            "{error}"
        );
    }

    #[test]
    fn missing_dependency_is_reported() {
        let mut pipeline = futureim();
        pipeline.stages[3].actions[0].depends_on = Some(vec![id(9, 9)]);
        let error = Plan::new(&pipeline).expect_err("missing");
        assert!(
            matches!(&error, PlanError::MissingDependency { action, dependency, .. } if action == "build-frontend.frontend" && *dependency == id(9, 9)),
            "{error}"
        );
    }

    #[test]
    fn subplan_from_stage_keeps_that_stage_and_later() {
        let plan = Plan::new(&futureim()).expect("plans");
        let retry = plan.subplan_from_stage(2).expect("stage exists");
        assert_eq!(retry.len(), 3);
        assert!(!retry.contains(id(1, 0)));
        assert_eq!(
            retry.ready(&HashSet::new(), &HashSet::new()),
            [id(2, 0), id(2, 1)]
        );
        assert_eq!(retry.dependencies(id(3, 0)), [id(2, 0), id(2, 1)]);
        assert_eq!(
            plan.subplan_from_stage(4).expect_err("no stage 4"),
            PlanError::UnknownStage {
                stage: 4,
                stages: 4
            }
        );
    }
}
