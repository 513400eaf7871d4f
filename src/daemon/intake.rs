//! Intake of triggers before they reach the stages: [`Debouncer`] merges triggers per
//! `(pipeline, ref)`, [`RecentDeliveries`] drops redelivered webhooks, and [`HeadStarts`]
//! keeps a push webhook and a poll that both saw the same new head from starting it twice.
//!
//! Nothing here reads a clock or spawns a task: time comes in as milliseconds.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::time::Duration;

/// How many delivery ids [`RecentDeliveries`] remembers by default. GitHub redelivers within
/// minutes (or when someone presses "Redeliver"), far fewer deliveries than this apart.
pub const DEFAULT_REMEMBERED_DELIVERIES: usize = 1024;

/// What the [`Debouncer`] merges on: one pipeline's ref.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TriggerKey {
    /// The pipeline's name.
    pub pipeline: String,
    /// The full ref (`refs/heads/main`), or a PR's `pull/<n>`.
    pub git_ref: String,
}

/// A trigger whose quiet period is over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueTrigger<T> {
    /// Its key.
    pub key: TriggerKey,
    /// The newest trigger for the key.
    pub trigger: T,
    /// How many triggers it stands for (1 when none was merged).
    pub merged: usize,
}

/// Merges triggers for the same key that arrive within `window` of each other into the newest
/// one, released `window` after the last; a steady stream is released at the latest
/// `max_delay` after its first trigger, so it cannot starve.
#[derive(Debug, Clone)]
pub struct Debouncer<T> {
    window_ms: u64,
    max_delay_ms: u64,
    pending: BTreeMap<TriggerKey, Pending<T>>,
}

#[derive(Debug, Clone)]
struct Pending<T> {
    trigger: T,
    first_ms: u64,
    due_ms: u64,
    merged: usize,
}

impl<T> Debouncer<T> {
    /// A debouncer; `max_delay` below `window` is raised to it.
    pub fn new(window: Duration, max_delay: Duration) -> Self {
        let window_ms = millis(window);
        Debouncer {
            window_ms,
            max_delay_ms: millis(max_delay).max(window_ms),
            pending: BTreeMap::new(),
        }
    }

    /// Records a trigger that arrived at `now_ms`, replacing an older pending one for its key.
    pub fn push(&mut self, key: TriggerKey, trigger: T, now_ms: u64) {
        let due_ms = now_ms.saturating_add(self.window_ms);
        if let Some(pending) = self.pending.get_mut(&key) {
            pending.trigger = trigger;
            pending.merged += 1;
            pending.due_ms = due_ms.min(pending.first_ms.saturating_add(self.max_delay_ms));
        } else {
            let pending = Pending {
                trigger,
                first_ms: now_ms,
                due_ms,
                merged: 1,
            };
            self.pending.insert(key, pending);
        }
    }

    /// Removes and returns the triggers due at `now_ms`, earliest first.
    pub fn take_due(&mut self, now_ms: u64) -> Vec<DueTrigger<T>> {
        let due_keys: Vec<TriggerKey> = self
            .pending
            .iter()
            .filter(|(_, pending)| pending.due_ms <= now_ms)
            .map(|(key, _)| key.clone())
            .collect();
        let mut due: Vec<(u64, DueTrigger<T>)> = due_keys
            .into_iter()
            .filter_map(|key| {
                let pending = self.pending.remove(&key)?;
                let trigger = DueTrigger {
                    key,
                    trigger: pending.trigger,
                    merged: pending.merged,
                };
                Some((pending.due_ms, trigger))
            })
            .collect();
        due.sort_by_key(|(due_ms, _)| *due_ms);
        due.into_iter().map(|(_, trigger)| trigger).collect()
    }

    /// When the next trigger is due, for the service loop's timer; `None` when none is pending.
    pub fn next_due(&self) -> Option<u64> {
        self.pending.values().map(|pending| pending.due_ms).min()
    }

    /// How many keys have a trigger pending.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether no trigger is pending.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

/// The ids of recent webhook deliveries (`X-GitHub-Delivery`), to drop redeliveries; it
/// remembers a bounded number, forgetting the oldest first.
#[derive(Debug, Clone)]
pub struct RecentDeliveries {
    capacity: usize,
    ids: HashSet<String>,
    order: VecDeque<String>,
}

impl RecentDeliveries {
    /// Remembers up to `capacity` ids (at least one).
    pub fn new(capacity: usize) -> Self {
        RecentDeliveries {
            capacity: capacity.max(1),
            ids: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    /// Whether `delivery_id` was seen before; a new id is remembered.
    pub fn seen(&mut self, delivery_id: &str) -> bool {
        if self.ids.contains(delivery_id) {
            return true;
        }
        if self.order.len() == self.capacity {
            if let Some(oldest) = self.order.pop_front() {
                self.ids.remove(&oldest);
            }
        }
        self.ids.insert(delivery_id.to_owned());
        self.order.push_back(delivery_id.to_owned());
        false
    }
}

impl Default for RecentDeliveries {
    fn default() -> Self {
        RecentDeliveries::new(DEFAULT_REMEMBERED_DELIVERIES)
    }
}

/// A duration in whole milliseconds, saturating.
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// The last new head one pipeline started for: a push webhook and a poll that both report the
/// same commit as the new head of the same ref start one execution, whichever comes first.
///
/// Only consecutive reports merge: a branch that moves to B and back to A starts A again.
#[derive(Debug, Clone, Default)]
pub struct HeadStarts {
    last: Option<(String, String)>,
}

impl HeadStarts {
    /// Whether `revision` as the new head of `git_ref` is news; it is remembered either way.
    pub fn admit(&mut self, git_ref: &str, revision: &str) -> bool {
        let seen = self
            .last
            .as_ref()
            .is_some_and(|(last_ref, last)| last_ref == git_ref && last == revision);
        if !seen {
            self.last = Some((git_ref.to_owned(), revision.to_owned()));
        }
        !seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(pipeline: &str, git_ref: &str) -> TriggerKey {
        TriggerKey {
            pipeline: pipeline.to_owned(),
            git_ref: git_ref.to_owned(),
        }
    }

    #[test]
    fn debouncer_merges_a_burst_into_the_newest() {
        let mut debouncer = Debouncer::new(Duration::from_secs(2), Duration::from_secs(30));
        debouncer.push(key("app", "refs/heads/main"), "c1", 0);
        debouncer.push(key("app", "refs/heads/main"), "c2", 1000);
        debouncer.push(key("app", "refs/heads/dev"), "d1", 1500);
        debouncer.push(key("app", "refs/heads/main"), "c3", 2000);
        assert_eq!(debouncer.len(), 2);
        assert_eq!(debouncer.next_due(), Some(3500));
        assert_eq!(debouncer.take_due(3499), []);
        assert_eq!(
            debouncer.take_due(3500),
            [DueTrigger {
                key: key("app", "refs/heads/dev"),
                trigger: "d1",
                merged: 1
            }]
        );
        assert_eq!(
            debouncer.take_due(4000),
            [DueTrigger {
                key: key("app", "refs/heads/main"),
                trigger: "c3",
                merged: 3
            }]
        );
        assert!(debouncer.is_empty());
        assert_eq!(debouncer.next_due(), None);
    }

    #[test]
    fn debouncer_releases_a_steady_stream_after_max_delay() {
        let mut debouncer = Debouncer::new(Duration::from_secs(2), Duration::from_secs(5));
        for (index, now) in [0, 1500, 3000, 4500].into_iter().enumerate() {
            debouncer.push(key("app", "refs/heads/main"), index, now);
        }
        assert_eq!(debouncer.next_due(), Some(5000));
        let due = debouncer.take_due(5000);
        assert_eq!((due[0].trigger, due[0].merged), (3, 4));
    }

    #[test]
    fn debouncer_with_zero_window_releases_at_once() {
        let mut debouncer = Debouncer::new(Duration::ZERO, Duration::ZERO);
        debouncer.push(key("app", "refs/tags/v1"), (), 7);
        assert_eq!(debouncer.take_due(7).len(), 1);
    }

    #[test]
    fn deliveries_are_deduplicated_with_bounded_memory() {
        let mut deliveries = RecentDeliveries::new(2);
        assert!(!deliveries.seen("d1"));
        assert!(deliveries.seen("d1"));
        assert!(!deliveries.seen("d2"));
        assert!(!deliveries.seen("d3"));
        // d1 was forgotten to make room for d3.
        assert!(!deliveries.seen("d1"));
        assert!(deliveries.seen("d3"));
        assert_eq!(deliveries.order.len(), 2);
        assert_eq!(deliveries.ids.len(), 2);
    }

    #[test]
    fn a_head_reported_twice_in_a_row_starts_once() {
        let mut heads = HeadStarts::default();
        assert!(heads.admit("refs/heads/main", "a"));
        assert!(!heads.admit("refs/heads/main", "a"));
        assert!(heads.admit("refs/heads/main", "b"));
        // Back to an earlier head: news again.
        assert!(heads.admit("refs/heads/main", "a"));
        // The same commit as another ref's head is another trigger.
        assert!(heads.admit("refs/heads/release", "a"));
    }
}
