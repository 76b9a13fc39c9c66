//! A census of the students' state in memory for `/metrics` and `GET
//! /api/v1/admin/engine` (operations.md): how many students, subject states and SRS
//! cards (per season) are loaded, and an estimate of the bytes they take.
//!
//! Also the read-only probes of the journal and redb that `/readyz` and the engine
//! report need.
//!
//! The census walks every loaded student once, taking each one's state lock briefly
//! (never two at a time, never across an `.await`), so it costs about a microsecond per
//! student: fine for a scrape every few seconds, not for a request path.

use std::collections::{BTreeMap, HashMap};
use std::mem::size_of;
use std::sync::Arc;

use serde::Serialize;

use crate::progress::state::SubjectProgress;
use crate::srs::DueQueue;

use super::Engine;
use super::idempotency::IdemRecord;
use super::students::Student;

/// How [`Census::estimated_bytes`] is computed (shown by the engine report).
pub const ESTIMATE_METHOD: &str = "sum over the students in memory of: their entry in the \
sharded student map (key, Arc headers, hash-table slot at 7/8 load) and the Student \
struct; per subject the map slot, the subject key, the passed-lessons bitmap (roaring \
serialized size) and the packed best hearts, and the last lesson id; per season the map \
slot and the card queue's heap (DueQueue::heap_bytes, about 30 bytes per card); per \
stored idempotent answer its slot, scope and body. Excludes the catalog, accounts, \
sessions, allocator overhead and free capacity: compare with the process's resident size.";

/// What is in memory.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Census {
    /// Students whose state is loaded.
    pub students: u64,
    /// (student, subject) progress states.
    pub subject_states: u64,
    /// SRS cards, all seasons.
    pub cards: u64,
    /// SRS cards per season id.
    pub cards_by_season: BTreeMap<String, u64>,
    /// Stored idempotent answers.
    pub idempotency_records: u64,
    /// Estimated bytes of all of the above ([`ESTIMATE_METHOD`]).
    pub estimated_bytes: u64,
}

/// Bytes of one hash-table slot holding a `T`: the slot, its control byte, and the
/// table's 7/8 maximum load.
fn slot<T>() -> usize {
    (size_of::<T>() + 1) * 8 / 7
}

/// Heap bytes of an `Arc` allocation of `payload` bytes (two counters).
fn arc(payload: usize) -> usize {
    2 * size_of::<usize>() + payload
}

impl Engine {
    /// Counts the students' state in memory and estimates its size.
    pub fn census(&self) -> Census {
        let mut census = Census::default();
        let mut by_season: HashMap<Box<str>, u64> = HashMap::new();
        let mut bytes = 0usize;
        self.inner().students.for_each(|id, student| {
            census.students += 1;
            bytes += slot::<(Arc<str>, Arc<Student>)>() + arc(id.len()) + arc(size_of::<Student>());
            let state = student.state.read();
            for (subject, progress) in &state.subjects {
                census.subject_states += 1;
                bytes += slot::<(Box<str>, SubjectProgress)>()
                    + subject.len()
                    + progress.heap_bytes()
                    + progress
                        .last_lesson_completed
                        .as_ref()
                        .map_or(0, String::len);
            }
            for (season, queue) in &state.srs.queues {
                let n = queue.len() as u64;
                census.cards += n;
                match by_season.get_mut(season) {
                    Some(count) => *count += n,
                    None => {
                        by_season.insert(season.clone(), n);
                    }
                }
                bytes += slot::<(Box<str>, DueQueue)>() + season.len() + queue.heap_bytes();
            }
            for (scope, record) in &state.srs.idempotency {
                census.idempotency_records += 1;
                bytes += slot::<(Box<str>, IdemRecord)>()
                    + scope.len()
                    + record.scope.len()
                    + record.body.len();
            }
        });
        census.cards_by_season = by_season
            .into_iter()
            .map(|(season, n)| (season.into_string(), n))
            .collect();
        census.estimated_bytes = bytes as u64;
        census
    }
}

impl Engine {
    /// Percentiles of the journal's most recent fsyncs.
    pub fn journal_recent_fsyncs(&self) -> crate::persist::journal::FsyncLatency {
        self.inner().journal.recent_fsyncs()
    }

    /// Whether redb answers a read transaction (its checkpoint sequences).
    ///
    /// # Errors
    /// The store's error message.
    pub fn redb_probe(&self) -> Result<(), String> {
        self.inner()
            .store
            .meta()
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_costs_more_than_its_payload() {
        assert!(slot::<u64>() > size_of::<u64>());
        assert_eq!(arc(10), 2 * size_of::<usize>() + 10);
    }
}
