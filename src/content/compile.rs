//! Compiles a published plan into the static files students' apps download (content.md
//! "Compiled files"): manifest, per-subject hierarchy and bitmap, topic files, shared
//! lesson files and the search index, each as relative path → bytes with a content hash.
//!
//! Pure: the input is a catalog snapshot, a plan id and a [`Stamp`] (the build's version
//! and time, decided by the caller); nothing is read from or written to disk here. The
//! writer (`crate::cdn`) compares hashes with what is on disk and writes what changed.
//!
//! Paths use lowercased ids: ids are compared case-insensitively and the files land on
//! file systems and CDNs that may fold case, so an id whose case changes must keep its
//! path.

pub mod files;
pub mod hash;
mod subject;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde::Serialize;

use super::catalog::Catalog;
use super::model::Subject;
use files::{AccessOut, Manifest, ManifestSubject, SearchEntry, SearchIndex, SearchShard};
pub use hash::ContentHash;

/// From this many visible lessons up, the search index is sharded per subject.
pub const SEARCH_SHARD_THRESHOLD: u32 = 500;

/// The version stamp of one build: `version` (unix seconds) and `generated_at` (RFC 3339).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    /// Integer unix seconds; strictly increasing per plan (the caller's business).
    pub version: i64,
    /// The same instant as RFC 3339 UTC.
    pub generated_at: String,
}

impl Stamp {
    /// The stamp of version `version` (its `generated_at` is the same second).
    pub fn at(version: i64) -> Stamp {
        let generated_at = jiff::Timestamp::from_second(version)
            .map(|t| t.to_string())
            .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned());
        Stamp {
            version,
            generated_at,
        }
    }
}

/// The kind of a compiled file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    /// `plans/{plan}/manifest.json`.
    Manifest,
    /// `plans/{plan}/{subject}_h.json`.
    Hierarchy,
    /// `plans/{plan}/{subject}_b.json`.
    Bitmap,
    /// `plans/{plan}/topics/{topic}.json`.
    Topic,
    /// `lessons/{lesson}.json`.
    Lesson,
    /// `plans/{plan}/search_index.json`.
    SearchIndex,
    /// `plans/{plan}/search/{subject}.json`.
    SearchShard,
}

/// One compiled file.
#[derive(Debug, Clone)]
pub struct CompiledFile {
    /// Path relative to the output root, `/`-separated.
    pub path: String,
    /// What it is.
    pub kind: FileKind,
    /// The JSON (UTF-8) without its stamp; shared with the compile cache.
    pub body: Arc<[u8]>,
    /// Hash of `body`.
    pub hash: ContentHash,
}

impl CompiledFile {
    /// The file as written: `body` with `version` and `generated_at` spliced in.
    pub fn stamped(&self, stamp: &Stamp) -> Vec<u8> {
        hash::stamp(&self.body, stamp.version, &stamp.generated_at)
    }
}

/// Every file of one plan; the manifest is the last element.
#[derive(Debug, Clone)]
pub struct CompiledPlan {
    /// The plan's id as written.
    pub plan_id: String,
    /// The stamp the files carry.
    pub stamp: Stamp,
    /// Files in write order: lessons, topics, subject files, search, manifest last.
    pub files: Vec<CompiledFile>,
}

impl CompiledPlan {
    /// The manifest (always present, last).
    pub fn manifest(&self) -> Option<&CompiledFile> {
        self.files.last().filter(|f| f.kind == FileKind::Manifest)
    }
}

/// Why a plan cannot be compiled.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CompileError {
    /// No stored plan with that id.
    #[error("no plan `{0}`")]
    UnknownPlan(String),
    /// The plan is not published: it has no compiled files.
    #[error("plan `{0}` is not published")]
    Unpublished(String),
    /// A stored document does not parse back (a bug, not a user error).
    #[error("stored document of `{id}` does not parse: {message}")]
    Document {
        /// Subject or plan id.
        id: String,
        /// Parser message.
        message: String,
    },
    /// The view names a lesson its subject document lacks (a bug).
    #[error("lesson `{0}` is missing from its subject document")]
    MissingLesson(String),
    /// Serialization failed (a bug).
    #[error("cannot serialize {0}: {1}")]
    Serialize(String, String),
}

/// Parsed subject documents and their compiled lesson files, reused across builds while
/// the subject's JSON is unchanged (parsing and serializing the unchanged subjects would
/// otherwise dominate a one-lesson rebuild). Pure memoization: no I/O.
#[derive(Default)]
pub struct DocCache {
    docs: HashMap<Box<str>, DocEntry>,
}

struct DocEntry {
    json: Arc<str>,
    doc: Arc<Subject>,
    /// Lesson file path → (body, hash): lesson files depend on the document only.
    lessons: subject::LessonCache,
}

impl std::fmt::Debug for DocCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DocCache")
            .field("subjects", &self.docs.len())
            .finish()
    }
}

impl DocCache {
    /// The parsed document of a stored subject.
    ///
    /// # Errors
    /// [`CompileError::Document`] when the subject is unknown or does not parse.
    pub fn get(&mut self, catalog: &Catalog, id: &str) -> Result<Arc<Subject>, CompileError> {
        let record = catalog.subject(id).ok_or_else(|| CompileError::Document {
            id: id.to_owned(),
            message: "not stored".into(),
        })?;
        let key: Box<str> = id.to_ascii_lowercase().into();
        if let Some(entry) = self.docs.get(&key)
            && *entry.json == *record.doc_json
        {
            return Ok(entry.doc.clone());
        }
        let doc = Arc::new(record.document().map_err(|e| CompileError::Document {
            id: id.to_owned(),
            message: e.to_string(),
        })?);
        self.docs.insert(
            key,
            DocEntry {
                json: record.doc_json.as_str().into(),
                doc: doc.clone(),
                lessons: HashMap::new(),
            },
        );
        Ok(doc)
    }

    /// The compiled-lesson cache of a subject fetched with [`DocCache::get`].
    fn lessons(&mut self, id: &str) -> Option<&mut subject::LessonCache> {
        self.docs
            .get_mut(id.to_ascii_lowercase().as_str())
            .map(|e| &mut e.lessons)
    }
}

/// `plans/{plan}` (lowercased).
pub fn plan_dir(plan_id: &str) -> String {
    format!("plans/{}", plan_id.to_ascii_lowercase())
}

/// `plans/{plan}/manifest.json`.
pub fn manifest_path(plan_id: &str) -> String {
    format!("{}/manifest.json", plan_dir(plan_id))
}

/// `lessons/{lesson}.json` (lowercased).
pub fn lesson_path(lesson_id: &str) -> String {
    format!("lessons/{}.json", lesson_id.to_ascii_lowercase())
}

/// Whether a stored plan is published (and so has compiled files).
pub fn is_published(catalog: &Catalog, plan_id: &str) -> bool {
    catalog
        .plan(plan_id)
        .and_then(|r| r.document().ok())
        .is_some_and(|p| p.is_published)
}

/// Paths of every lesson file some published plan shows: lesson files are shared, so a
/// lesson file may be deleted only when it is in none of them.
pub fn live_lesson_paths(catalog: &Catalog) -> BTreeSet<String> {
    let mut live = BTreeSet::new();
    for record in catalog.plans() {
        if !is_published(catalog, &record.id) {
            continue;
        }
        let Some(view) = catalog.plan_view(&record.id) else {
            continue;
        };
        for s in &view.subjects {
            for &l in &s.lessons {
                live.insert(lesson_path(&s.node(l).id));
            }
        }
    }
    live
}

/// Accumulates files and turns serializable values into files and URLs.
pub(crate) struct Emitter {
    pub(crate) files: Vec<CompiledFile>,
    buf: Vec<u8>,
}

impl Emitter {
    /// Adds an already compiled body (from the cache) and returns its URL.
    pub(crate) fn push(
        &mut self,
        kind: FileKind,
        path: String,
        body: Arc<[u8]>,
        hash: ContentHash,
    ) -> String {
        let url = format!("{path}?v={hash}");
        self.files.push(CompiledFile {
            path,
            kind,
            body,
            hash,
        });
        url
    }

    /// Serializes `value` as the file `path` and returns its URL (`path?v=hash`).
    pub(crate) fn emit<T: Serialize>(
        &mut self,
        kind: FileKind,
        path: String,
        value: &T,
    ) -> Result<String, CompileError> {
        self.buf.clear();
        serde_json::to_writer(&mut self.buf, value)
            .map_err(|e| CompileError::Serialize(path.clone(), e.to_string()))?;
        let hash = ContentHash::of_body(&self.buf);
        Ok(self.push(kind, path, self.buf.as_slice().into(), hash))
    }
}

/// Compiles every file of a published plan.
///
/// # Errors
/// [`CompileError::UnknownPlan`], [`CompileError::Unpublished`], or a document that does
/// not parse back.
pub fn compile_plan(
    catalog: &Catalog,
    plan_id: &str,
    stamp: &Stamp,
    docs: &mut DocCache,
) -> Result<CompiledPlan, CompileError> {
    let record = catalog
        .plan(plan_id)
        .ok_or_else(|| CompileError::UnknownPlan(plan_id.to_owned()))?;
    let plan = record.document().map_err(|e| CompileError::Document {
        id: record.id.clone(),
        message: e.to_string(),
    })?;
    if !plan.is_published {
        return Err(CompileError::Unpublished(plan.id));
    }
    let view = catalog
        .plan_view(plan_id)
        .ok_or_else(|| CompileError::UnknownPlan(plan_id.to_owned()))?;
    let subject_docs = view
        .subjects
        .iter()
        .map(|s| docs.get(catalog, s.subject_id()))
        .collect::<Result<Vec<_>, _>>()?;
    let dir = plan_dir(&plan.id);
    let mut em = Emitter {
        files: Vec::new(),
        buf: Vec::with_capacity(64 * 1024),
    };
    let mut manifest_subjects = Vec::with_capacity(view.subjects.len());
    let mut search: Vec<(&str, &str, Vec<SearchEntry<'_>>)> = Vec::new();
    for (sv, doc) in view.subjects.iter().zip(&subject_docs) {
        let extras = subject::Extras::of(doc);
        let mut entries = Vec::with_capacity(sv.lessons.len());
        let mut no_cache = HashMap::new();
        let cache = docs.lessons(sv.subject_id()).unwrap_or(&mut no_cache);
        let urls = subject::compile_subject(sv, &extras, &dir, &mut em, cache, &mut entries)?;
        let root = sv.node(0);
        let node = extras.node(&root.id);
        manifest_subjects.push(ManifestSubject {
            id: &root.id,
            title: &root.title,
            description: root.description.as_deref(),
            image: node.and_then(|n| n.image),
            color_code: node.and_then(|n| n.color_code),
            is_linear: root.is_linear,
            hierarchy_url: urls.hierarchy,
            bitmap_url: urls.bitmap,
            access: AccessOut::of(&root.access),
        });
        search.push((&root.id, &root.title, entries));
    }
    let total: u32 = search.iter().map(|(_, _, e)| e.len() as u32).sum();
    let index = if total >= SEARCH_SHARD_THRESHOLD {
        let mut shards = Vec::with_capacity(search.len());
        for (subject_id, subject_title, entries) in search {
            let lesson_count = entries.len() as u32;
            let url = em.emit(
                FileKind::SearchShard,
                format!("{dir}/search/{}.json", subject_id.to_ascii_lowercase()),
                &SearchShard {
                    plan_id: &plan.id,
                    subject_id,
                    subject_title,
                    total_lessons: lesson_count,
                    entries,
                },
            )?;
            shards.push(files::SearchShardRef {
                subject_id,
                subject_title,
                url,
                lesson_count,
            });
        }
        SearchIndex {
            plan_id: &plan.id,
            total_lessons: total,
            is_sharded: true,
            entries: None,
            shards: Some(shards),
        }
    } else {
        SearchIndex {
            plan_id: &plan.id,
            total_lessons: total,
            is_sharded: false,
            entries: Some(search.into_iter().flat_map(|(_, _, e)| e).collect()),
            shards: None,
        }
    };
    let search_index_url = em.emit(
        FileKind::SearchIndex,
        format!("{dir}/search_index.json"),
        &index,
    )?;
    em.emit(
        FileKind::Manifest,
        manifest_path(&plan.id),
        &Manifest {
            plan_id: &plan.id,
            title: &plan.title,
            season: plan.season.as_deref(),
            grade: plan.grade.as_deref(),
            stream: plan.stream.as_deref(),
            subjects: manifest_subjects,
            search_index_url,
        },
    )?;
    Ok(CompiledPlan {
        plan_id: plan.id.clone(),
        stamp: stamp.clone(),
        files: em.files,
    })
}

#[cfg(test)]
mod tests;
