//! The installation's content as an immutable snapshot: subjects, plans, the id index
//! and every plan's visible tree.
//!
//! Changes follow a prepare/apply split so that the engine can journal decisions:
//! `prepare_*` validates a document against the current snapshot and returns a durable
//! record (or every problem); `with_*`/`without_*` apply a record and return a new
//! snapshot, infallibly, so journal replay reproduces exactly the same catalog. Inner
//! maps sit behind `Arc`s and are copied on write, so a clone is a few refcount bumps
//! and readers of an old snapshot are never disturbed.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::model::{Plan, SUBJECT_FORMAT, Subject};
use super::plan_view::build_plan_view;
use super::problem::{Problem, push_index, push_token};
use super::tree::ContentTree;
use super::validate::{TargetInfo, validate_plan, validate_subject};
use super::view::{NodeKind, PlanView};

/// The decided, durable outcome of a subject import (journaled and stored, encoded with
/// bincode 2 serde).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubjectRecord {
    /// Subject id as written in the document.
    pub id: String,
    /// The validated document re-serialized compactly.
    pub doc_json: String,
    /// Lowercased lesson id → bit index, for **every** id ever assigned in this subject
    /// (also lessons since removed), sorted by id. A lesson id that comes back after a
    /// removal gets its old index back: the index was never given to anyone else.
    pub bit_indexes: Vec<(String, u32)>,
    /// The next index to assign; only grows.
    pub next_bit_index: u32,
}

impl SubjectRecord {
    /// The stored document, parsed (e.g. for compiling lesson files).
    ///
    /// # Errors
    /// Only if the record was not made by [`Catalog::prepare_subject`].
    pub fn document(&self) -> Result<Subject, serde_json::Error> {
        serde_json::from_str(&self.doc_json)
    }

    /// The bit index ever assigned to a lesson id (lowercased), if any.
    pub fn bit_index(&self, lower_id: &str) -> Option<u32> {
        self.bit_indexes
            .binary_search_by(|(id, _)| id.as_str().cmp(lower_id))
            .ok()
            .map(|i| self.bit_indexes[i].1)
    }
}

/// The decided, durable outcome of a plan import.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanRecord {
    /// Plan id as written in the document.
    pub id: String,
    /// The validated document re-serialized compactly.
    pub doc_json: String,
}

impl PlanRecord {
    /// The stored document, parsed.
    ///
    /// # Errors
    /// Only if the record was not made by [`Catalog::prepare_plan`].
    pub fn document(&self) -> Result<Plan, serde_json::Error> {
        serde_json::from_str(&self.doc_json)
    }
}

/// Why a delete is refused.
#[derive(Debug, thiserror::Error)]
pub enum DeleteError {
    /// No such subject or plan.
    #[error("not found")]
    NotFound,
    /// The subject is still listed by these plans.
    #[error("referenced by plans {0:?}")]
    Referenced(Vec<String>),
}

/// Counts for health and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct CatalogStats {
    /// Stored subjects.
    pub subjects: usize,
    /// Stored plans.
    pub plans: usize,
    /// Lessons of all stored subjects (published or not).
    pub lessons: usize,
}

/// Who uses an id of the installation-wide namespace.
#[derive(Debug, Clone)]
struct IdOwner {
    /// Subject id, original case.
    subject: Arc<str>,
    /// Whether the id is a lesson's (not a container's or a question's).
    is_lesson: bool,
}

struct SubjectEntry {
    record: SubjectRecord,
    tree: ContentTree,
}

struct PlanEntry {
    record: PlanRecord,
    plan: Plan,
    view: Arc<PlanView>,
}

/// The installation's content: an immutable, cheaply clonable snapshot.
#[derive(Clone, Default)]
pub struct Catalog {
    /// Lowercased subject id → entry.
    subjects: Arc<BTreeMap<Box<str>, Arc<SubjectEntry>>>,
    /// Lowercased plan id → entry.
    plans: Arc<BTreeMap<Box<str>, Arc<PlanEntry>>>,
    /// Lowercased node or question id → owner.
    ids: Arc<HashMap<Box<str>, IdOwner>>,
}

fn lower(s: &str) -> String {
    s.to_ascii_lowercase()
}

impl Catalog {
    /// Validates a subject document and assigns its lessons' bit indexes.
    ///
    /// The caller checks that the URL id equals the document id.
    ///
    /// # Errors
    /// Every problem of the document (content.md "Import formats").
    pub fn prepare_subject(&self, body: &[u8]) -> Result<SubjectRecord, Vec<Problem>> {
        let ids = &self.ids;
        let subject = validate_subject(body, |doc_id, id| {
            ids.get(id)
                .filter(|o| !o.subject.eq_ignore_ascii_case(doc_id))
                .map(|o| &*o.subject)
        })?;
        let previous = self.subject(&subject.id);
        let mut assigned: BTreeMap<String, u32> = previous
            .map(|r| r.bit_indexes.iter().cloned().collect())
            .unwrap_or_default();
        let mut next = previous.map_or(0, |r| r.next_bit_index);
        let mut problems = Vec::new();
        for (t, track) in subject.tracks.iter().enumerate() {
            for (u, unit) in track.units.iter().enumerate() {
                for (p, topic) in unit.topics.iter().enumerate() {
                    for (l, lesson) in topic.lessons.iter().enumerate() {
                        let id = lower(&lesson.id);
                        if assigned.contains_key(&id) {
                            continue;
                        }
                        match next.checked_add(1) {
                            Some(after) => {
                                assigned.insert(id, next);
                                next = after;
                            }
                            None => problems.push(Problem::new(
                                lesson_pointer(t, u, p, l),
                                "no bit index left in this subject",
                            )),
                        }
                    }
                }
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let doc_json = serde_json::to_string(&subject)
            .map_err(|e| vec![Problem::new("", format!("cannot encode the document: {e}"))])?;
        Ok(SubjectRecord {
            id: subject.id,
            doc_json,
            bit_indexes: assigned.into_iter().collect(),
            next_bit_index: next,
        })
    }

    /// Validates a plan document against the stored subjects.
    ///
    /// # Errors
    /// Every problem of the document.
    pub fn prepare_plan(&self, body: &[u8]) -> Result<PlanRecord, Vec<Problem>> {
        let node = |subject: &str, id: &str| {
            let entry = self.subjects.get(lower(subject).as_str())?;
            let i = *entry.tree.by_id.get(id)?;
            Some((entry, i))
        };
        let plan = validate_plan(
            body,
            |s| self.subject(s).is_some(),
            |s, id| {
                node(s, id).map(|(e, i)| TargetInfo {
                    kind: e.tree.nodes[i as usize].kind,
                    has_item: e.tree.has_item_at_or_above(i),
                })
            },
            |s, id| {
                node(s, id)
                    .map(|(e, i)| e.tree.ancestor_ids(i))
                    .unwrap_or_default()
            },
        )?;
        let doc_json = serde_json::to_string(&plan)
            .map_err(|e| vec![Problem::new("", format!("cannot encode the document: {e}"))])?;
        Ok(PlanRecord {
            id: plan.id,
            doc_json,
        })
    }

    /// Stores (or replaces) a subject and rebuilds the views of the plans listing it.
    ///
    /// Infallible, for journal replay: a record whose document does not parse (it was
    /// not made by [`Catalog::prepare_subject`]) is stored with an empty tree, so it
    /// exists but shows nothing.
    pub fn with_subject(&self, record: SubjectRecord) -> Catalog {
        let doc: Subject = serde_json::from_str(&record.doc_json).unwrap_or_else(|_| Subject {
            format: SUBJECT_FORMAT.to_owned(),
            id: record.id.clone(),
            title: record.id.clone(),
            description: None,
            image: None,
            is_published: false,
            is_free_preview: false,
            is_linear: true,
            color_code: None,
            required_item: None,
            tracks: Vec::new(),
        });
        let tree = ContentTree::build(&doc, |id| record.bit_index(id));
        let key: Box<str> = lower(&record.id).into();
        let subject_id: Arc<str> = record.id.as_str().into();

        let mut next = self.clone();
        let ids = Arc::make_mut(&mut next.ids);
        if let Some(old) = self.subjects.get(&key) {
            remove_ids(ids, &old.tree);
        }
        for n in &tree.nodes {
            ids.insert(
                lower(&n.id).into(),
                IdOwner {
                    subject: subject_id.clone(),
                    is_lesson: n.kind == NodeKind::Lesson,
                },
            );
            for q in &n.questions {
                ids.insert(
                    q.clone(),
                    IdOwner {
                        subject: subject_id.clone(),
                        is_lesson: false,
                    },
                );
            }
        }
        Arc::make_mut(&mut next.subjects)
            .insert(key.clone(), Arc::new(SubjectEntry { record, tree }));
        next.rebuild_views_listing(&key);
        next
    }

    /// Stores (or replaces) a plan and builds its view. Infallible, for journal replay: a
    /// record whose document does not parse leaves the catalog unchanged.
    pub fn with_plan(&self, record: PlanRecord) -> Catalog {
        let Ok(plan) = serde_json::from_str::<Plan>(&record.doc_json) else {
            return self.clone();
        };
        let view = Arc::new(self.build_view(&plan));
        let mut next = self.clone();
        Arc::make_mut(&mut next.plans).insert(
            lower(&record.id).into(),
            Arc::new(PlanEntry { record, plan, view }),
        );
        next
    }

    /// Whether a subject may be deleted.
    ///
    /// # Errors
    /// [`DeleteError::NotFound`], or [`DeleteError::Referenced`] with the ids of the
    /// plans that still list it.
    pub fn check_delete_subject(&self, id: &str) -> Result<(), DeleteError> {
        if self.subject(id).is_none() {
            return Err(DeleteError::NotFound);
        }
        let referencing: Vec<String> = self
            .plans
            .values()
            .filter(|p| p.plan.subjects.iter().any(|s| s.eq_ignore_ascii_case(id)))
            .map(|p| p.record.id.clone())
            .collect();
        if referencing.is_empty() {
            Ok(())
        } else {
            Err(DeleteError::Referenced(referencing))
        }
    }

    /// Removes a subject (no-op if absent); plans still listing it lose it from their views.
    pub fn without_subject(&self, id: &str) -> Catalog {
        let key: Box<str> = lower(id).into();
        let Some(old) = self.subjects.get(&key) else {
            return self.clone();
        };
        let mut next = self.clone();
        remove_ids(Arc::make_mut(&mut next.ids), &old.tree);
        Arc::make_mut(&mut next.subjects).remove(&key);
        next.rebuild_views_listing(&key);
        next
    }

    /// Whether a plan may be deleted (students assigned are the engine's check).
    ///
    /// # Errors
    /// [`DeleteError::NotFound`].
    pub fn check_delete_plan(&self, id: &str) -> Result<(), DeleteError> {
        self.plan(id).map(|_| ()).ok_or(DeleteError::NotFound)
    }

    /// Removes a plan (no-op if absent).
    pub fn without_plan(&self, id: &str) -> Catalog {
        let mut next = self.clone();
        if self.plans.contains_key(lower(id).as_str()) {
            Arc::make_mut(&mut next.plans).remove(lower(id).as_str());
        }
        next
    }

    /// A stored subject by id (case-insensitive).
    pub fn subject(&self, id: &str) -> Option<&SubjectRecord> {
        self.subjects.get(lower(id).as_str()).map(|e| &e.record)
    }

    /// A stored plan by id (case-insensitive).
    pub fn plan(&self, id: &str) -> Option<&PlanRecord> {
        self.plans.get(lower(id).as_str()).map(|e| &e.record)
    }

    /// Every stored subject, by lowercased id.
    pub fn subjects(&self) -> impl Iterator<Item = &SubjectRecord> {
        self.subjects.values().map(|e| &e.record)
    }

    /// Every stored plan, by lowercased id.
    pub fn plans(&self) -> impl Iterator<Item = &PlanRecord> {
        self.plans.values().map(|e| &e.record)
    }

    /// The visible tree of a stored plan (published or not), case-insensitive.
    pub fn plan_view(&self, plan_id: &str) -> Option<&Arc<PlanView>> {
        self.plans.get(lower(plan_id).as_str()).map(|e| &e.view)
    }

    /// The id (original case) of the subject holding a lesson id, installation-wide;
    /// `None` if no stored subject has such a lesson (published or not).
    pub fn lesson_subject(&self, lesson_id: &str) -> Option<&str> {
        self.ids
            .get(lower(lesson_id).as_str())
            .filter(|o| o.is_lesson)
            .map(|o| &*o.subject)
    }

    /// The subject ids a stored plan lists (visible or not), in plan order.
    pub fn plan_subject_ids(&self, plan_id: &str) -> Option<&[String]> {
        self.plans
            .get(lower(plan_id).as_str())
            .map(|e| e.plan.subjects.as_slice())
    }

    /// Number of lessons of a stored subject (published or not).
    pub fn subject_lesson_count(&self, subject_id: &str) -> Option<usize> {
        self.subjects
            .get(lower(subject_id).as_str())
            .map(|e| e.tree.lesson_count as usize)
    }

    /// Counts of subjects, plans and lessons.
    pub fn stats(&self) -> CatalogStats {
        CatalogStats {
            subjects: self.subjects.len(),
            plans: self.plans.len(),
            lessons: self
                .subjects
                .values()
                .map(|e| e.tree.lesson_count as usize)
                .sum(),
        }
    }

    fn build_view(&self, plan: &Plan) -> PlanView {
        build_plan_view(plan, |id| {
            self.subjects.get(lower(id).as_str()).map(|e| &e.tree)
        })
    }

    /// Rebuilds the view of every plan listing the subject `key` (lowercased).
    fn rebuild_views_listing(&mut self, key: &str) {
        let affected: Vec<Box<str>> = self
            .plans
            .iter()
            .filter(|(_, p)| p.plan.subjects.iter().any(|s| s.eq_ignore_ascii_case(key)))
            .map(|(k, _)| k.clone())
            .collect();
        if affected.is_empty() {
            return;
        }
        let rebuilt: Vec<(Box<str>, Arc<PlanEntry>)> = affected
            .into_iter()
            .filter_map(|k| {
                let old = self.plans.get(&k)?;
                let entry = PlanEntry {
                    record: old.record.clone(),
                    plan: old.plan.clone(),
                    view: Arc::new(self.build_view(&old.plan)),
                };
                Some((k, Arc::new(entry)))
            })
            .collect();
        let plans = Arc::make_mut(&mut self.plans);
        for (k, e) in rebuilt {
            plans.insert(k, e);
        }
    }
}

fn remove_ids(ids: &mut HashMap<Box<str>, IdOwner>, tree: &ContentTree) {
    for n in &tree.nodes {
        ids.remove(lower(&n.id).as_str());
        for q in &n.questions {
            ids.remove(q);
        }
    }
}

fn lesson_pointer(t: usize, u: usize, p: usize, l: usize) -> String {
    let mut s = push_index("/tracks", t);
    s = push_index(&push_token(&s, "units"), u);
    s = push_index(&push_token(&s, "topics"), p);
    push_index(&push_token(&s, "lessons"), l)
}
