//! Compiles one visible subject of a plan: its lesson files, topic files, hierarchy and
//! bitmap, and its search entries. Fields the view does not carry (images, colour,
//! badge, stages) are joined from the subject document by id ([`Extras`]).

use std::collections::HashMap;
use std::sync::Arc;

use crate::content::model::{Lesson, Subject};
use crate::content::view::SubjectView;

use super::files::{
    AccessOut, BitMapping, Bitmap, HTopic, HTrack, HUnit, Hierarchy, LessonFile, Mappings,
    SearchEntry, StageOut, Stats, TopicFile, TopicLesson, TopicParent,
};
use super::{CompileError, ContentHash, Emitter, FileKind, lesson_path};

/// Lesson file path → compiled body and hash, valid while the subject document is.
pub(crate) type LessonCache = HashMap<String, (Arc<[u8]>, ContentHash)>;

/// Document fields of one node that the view leaves out.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct NodeExtras<'d> {
    pub image: Option<&'d str>,
    pub badge_image: Option<&'d str>,
    pub color_code: Option<&'d str>,
    pub lesson: Option<&'d Lesson>,
}

/// Lowercased node id → document extras, for one subject document.
pub(crate) struct Extras<'d> {
    by_id: HashMap<String, NodeExtras<'d>>,
}

impl<'d> Extras<'d> {
    pub(crate) fn of(doc: &'d Subject) -> Extras<'d> {
        let mut by_id = HashMap::new();
        let mut put = |id: &str, e: NodeExtras<'d>| {
            by_id.insert(id.to_ascii_lowercase(), e);
        };
        put(
            &doc.id,
            NodeExtras {
                image: doc.image.as_deref(),
                color_code: doc.color_code.as_deref(),
                ..NodeExtras::default()
            },
        );
        for t in &doc.tracks {
            put(
                &t.id,
                NodeExtras {
                    image: t.image.as_deref(),
                    ..NodeExtras::default()
                },
            );
            for u in &t.units {
                put(
                    &u.id,
                    NodeExtras {
                        image: u.image.as_deref(),
                        badge_image: u.badge_image.as_deref(),
                        ..NodeExtras::default()
                    },
                );
                for p in &u.topics {
                    put(
                        &p.id,
                        NodeExtras {
                            image: p.image.as_deref(),
                            ..NodeExtras::default()
                        },
                    );
                    for l in &p.lessons {
                        put(
                            &l.id,
                            NodeExtras {
                                image: l.image.as_deref(),
                                lesson: Some(l),
                                ..NodeExtras::default()
                            },
                        );
                    }
                }
            }
        }
        Extras { by_id }
    }

    pub(crate) fn node(&self, id: &str) -> Option<&NodeExtras<'d>> {
        self.by_id.get(&id.to_ascii_lowercase())
    }
}

/// URLs of a subject's two plan-level files.
pub(crate) struct SubjectUrls {
    pub hierarchy: String,
    pub bitmap: String,
}

/// Emits every file of subject `sv` under the plan directory `dir` and appends its
/// search entries.
pub(crate) fn compile_subject<'v>(
    sv: &'v SubjectView,
    extras: &Extras<'_>,
    dir: &str,
    em: &mut Emitter,
    cache: &mut LessonCache,
    entries: &mut Vec<SearchEntry<'v>>,
) -> Result<SubjectUrls, CompileError> {
    let root = sv.node(0);
    let mut stats = Stats::default();
    let mut mappings = Mappings(Vec::with_capacity(sv.lessons.len()));
    let mut tracks = Vec::new();
    for t in sv.children(0) {
        let track = sv.node(t);
        stats.total_tracks += 1;
        let mut units = Vec::new();
        for u in sv.children(t) {
            let unit = sv.node(u);
            stats.total_units += 1;
            let unit_extras = extras.node(&unit.id).copied().unwrap_or_default();
            let mut topics = Vec::new();
            for p in sv.children(u) {
                let topic = sv.node(p);
                stats.total_topics += 1;
                let mut lessons = Vec::new();
                for l in sv.children(p) {
                    let lesson = sv.node(l);
                    stats.total_lessons += 1;
                    let doc = extras
                        .node(&lesson.id)
                        .and_then(|n| n.lesson)
                        .ok_or_else(|| CompileError::MissingLesson(lesson.id.to_string()))?;
                    let lesson_url = emit_lesson(em, cache, doc)?;
                    lessons.push(TopicLesson {
                        id: &lesson.id,
                        title: &lesson.title,
                        description: lesson.description.as_deref(),
                        bit_index: lesson.bit_index,
                        lesson_url,
                        access: AccessOut::of(&lesson.access),
                        stage_count: lesson.stage_count,
                    });
                    mappings.0.push((
                        &lesson.id,
                        BitMapping {
                            bit_index: lesson.bit_index,
                            topic_id: &topic.id,
                        },
                    ));
                    entries.push(SearchEntry {
                        lesson_id: &lesson.id,
                        lesson_title: &lesson.title,
                        subject_id: &root.id,
                        subject_title: &root.title,
                        unit_id: &unit.id,
                        unit_title: &unit.title,
                        topic_id: &topic.id,
                        topic_title: &topic.title,
                    });
                }
                let lesson_count = lessons.len() as u32;
                let topic_url = em.emit(
                    FileKind::Topic,
                    format!("{dir}/topics/{}.json", topic.id.to_ascii_lowercase()),
                    &TopicFile {
                        id: &topic.id,
                        title: &topic.title,
                        description: topic.description.as_deref(),
                        image: extras.node(&topic.id).and_then(|n| n.image),
                        is_linear: topic.is_linear,
                        access: AccessOut::of(&topic.access),
                        parent: TopicParent {
                            unit_id: &unit.id,
                            unit_title: &unit.title,
                            track_id: &track.id,
                            track_title: &track.title,
                            subject_id: &root.id,
                            subject_title: &root.title,
                        },
                        lessons,
                    },
                )?;
                topics.push(HTopic {
                    id: &topic.id,
                    title: &topic.title,
                    description: topic.description.as_deref(),
                    is_linear: topic.is_linear,
                    topic_url,
                    access: AccessOut::of(&topic.access),
                    lesson_count,
                });
            }
            units.push(HUnit {
                id: &unit.id,
                title: &unit.title,
                description: unit.description.as_deref(),
                image: unit_extras.image,
                badge_image: unit_extras.badge_image,
                is_linear: unit.is_linear,
                access: AccessOut::of(&unit.access),
                topics,
            });
        }
        tracks.push(HTrack {
            id: &track.id,
            title: &track.title,
            description: track.description.as_deref(),
            is_linear: track.is_linear,
            access: AccessOut::of(&track.access),
            units,
        });
    }
    let subject_key = root.id.to_ascii_lowercase();
    let root_extras = extras.node(&root.id).copied().unwrap_or_default();
    let total_lessons = stats.total_lessons;
    let hierarchy = em.emit(
        FileKind::Hierarchy,
        format!("{dir}/{subject_key}_h.json"),
        &Hierarchy {
            id: &root.id,
            title: &root.title,
            description: root.description.as_deref(),
            image: root_extras.image,
            color_code: root_extras.color_code,
            is_linear: root.is_linear,
            access: AccessOut::of(&root.access),
            tracks,
            stats,
        },
    )?;
    let bitmap = em.emit(
        FileKind::Bitmap,
        format!("{dir}/{subject_key}_b.json"),
        &Bitmap {
            subject_id: &root.id,
            total_lessons,
            mappings,
        },
    )?;
    Ok(SubjectUrls { hierarchy, bitmap })
}

/// Emits the shared lesson file (document title, no access block) and returns its URL.
fn emit_lesson(
    em: &mut Emitter,
    cache: &mut LessonCache,
    doc: &Lesson,
) -> Result<String, CompileError> {
    let path = lesson_path(&doc.id);
    if let Some((body, hash)) = cache.get(&path) {
        return Ok(em.push(FileKind::Lesson, path, body.clone(), *hash));
    }
    let stages = doc
        .stages
        .iter()
        .enumerate()
        .map(|(i, s)| StageOut {
            idx: i as u32 + 1,
            id: s.id.as_deref(),
            title: &s.title,
            kind: s.kind,
            weight: s.weight,
            target_time: s.target_time,
            is_skippable: s.is_skippable,
            config: &s.config,
        })
        .collect();
    let url = em.emit(
        FileKind::Lesson,
        path.clone(),
        &LessonFile {
            id: &doc.id,
            title: &doc.title,
            description: doc.description.as_deref(),
            image: doc.image.as_deref(),
            stages,
        },
    )?;
    if let Some(f) = em.files.last() {
        cache.insert(path, (f.body.clone(), f.hash));
    }
    Ok(url)
}
