//! The serialized shapes of the six compiled file kinds (content.md "Compiled files"),
//! borrowed from the plan view and the subject documents. `version` and `generated_at`
//! are not fields here: they are stamped onto the serialized body (hash.rs).
//!
//! The JSON Schemas in `schemas/` describe the same shapes; tests validate real build
//! output against them.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::content::model::StageType;
use crate::content::view::{Access, AccessLevel};

/// The `access` block of plan files.
#[derive(Debug, Serialize)]
pub struct AccessOut<'a> {
    /// Always `true`: hidden nodes are absent from compiled files.
    pub is_published: bool,
    /// The decided level.
    pub access_level: AccessLevel,
    /// The (first) effective item, when paid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub required_item: Option<&'a str>,
}

impl<'a> AccessOut<'a> {
    /// The block of a visible node's decided access.
    pub fn of(access: &'a Access) -> Self {
        AccessOut {
            is_published: true,
            access_level: access.level,
            required_item: access.required_item(),
        }
    }
}

/// `plans/{plan}/manifest.json`.
#[derive(Debug, Serialize)]
pub struct Manifest<'a> {
    /// Plan id.
    pub plan_id: &'a str,
    /// Plan title.
    pub title: &'a str,
    /// Season label (null when the plan has none).
    pub season: Option<&'a str>,
    /// Grade label.
    pub grade: Option<&'a str>,
    /// Stream label.
    pub stream: Option<&'a str>,
    /// Visible subjects in plan order.
    pub subjects: Vec<ManifestSubject<'a>>,
    /// URL of the search index.
    pub search_index_url: String,
}

/// One subject of the manifest.
#[derive(Debug, Serialize)]
pub struct ManifestSubject<'a> {
    /// Subject id.
    pub id: &'a str,
    /// Title (after `rename`).
    pub title: &'a str,
    /// Description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
    /// Image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<&'a str>,
    /// `#RRGGBB`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub color_code: Option<&'a str>,
    /// After `set_linear`.
    pub is_linear: bool,
    /// URL of `{subject}_h.json`.
    pub hierarchy_url: String,
    /// URL of `{subject}_b.json`.
    pub bitmap_url: String,
    /// Access block.
    pub access: AccessOut<'a>,
}

/// `plans/{plan}/{subject}_h.json`: the navigation tree without lessons.
#[derive(Debug, Serialize)]
pub struct Hierarchy<'a> {
    /// Subject id.
    pub id: &'a str,
    /// Title (after `rename`).
    pub title: &'a str,
    /// Description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
    /// Image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<&'a str>,
    /// `#RRGGBB`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub color_code: Option<&'a str>,
    /// After `set_linear`.
    pub is_linear: bool,
    /// Access block.
    pub access: AccessOut<'a>,
    /// Visible tracks.
    pub tracks: Vec<HTrack<'a>>,
    /// Counts of visible items.
    pub stats: Stats,
}

/// A track of the hierarchy.
#[derive(Debug, Serialize)]
pub struct HTrack<'a> {
    /// Id.
    pub id: &'a str,
    /// Title.
    pub title: &'a str,
    /// Description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
    /// After `set_linear`.
    pub is_linear: bool,
    /// Access block.
    pub access: AccessOut<'a>,
    /// Visible units.
    pub units: Vec<HUnit<'a>>,
}

/// A unit of the hierarchy.
#[derive(Debug, Serialize)]
pub struct HUnit<'a> {
    /// Id.
    pub id: &'a str,
    /// Title.
    pub title: &'a str,
    /// Description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
    /// Image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<&'a str>,
    /// Badge image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub badge_image: Option<&'a str>,
    /// After `set_linear`.
    pub is_linear: bool,
    /// Access block.
    pub access: AccessOut<'a>,
    /// Visible topics.
    pub topics: Vec<HTopic<'a>>,
}

/// A topic of the hierarchy.
#[derive(Debug, Serialize)]
pub struct HTopic<'a> {
    /// Id.
    pub id: &'a str,
    /// Title.
    pub title: &'a str,
    /// Description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
    /// After `set_linear`.
    pub is_linear: bool,
    /// URL of the topic file.
    pub topic_url: String,
    /// Access block.
    pub access: AccessOut<'a>,
    /// Visible lessons.
    pub lesson_count: u32,
}

/// Counts of visible items of a subject.
#[derive(Debug, Default, Serialize)]
pub struct Stats {
    /// Tracks.
    pub total_tracks: u32,
    /// Units.
    pub total_units: u32,
    /// Topics.
    pub total_topics: u32,
    /// Lessons.
    pub total_lessons: u32,
}

/// `plans/{plan}/{subject}_b.json`: lesson id → bit index and topic.
#[derive(Debug, Serialize)]
pub struct Bitmap<'a> {
    /// Subject id.
    pub subject_id: &'a str,
    /// Visible lessons.
    pub total_lessons: u32,
    /// Lesson id → mapping, in document order.
    pub mappings: Mappings<'a>,
}

/// Lesson id → `{bit_index, topic_id}`, serialized as a JSON object in document order.
#[derive(Debug, Default)]
pub struct Mappings<'a>(pub Vec<(&'a str, BitMapping<'a>)>);

impl Serialize for Mappings<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

/// Where a lesson's progress bit lives, and its topic.
#[derive(Debug, Serialize)]
pub struct BitMapping<'a> {
    /// Position in the (student, subject) bitmap.
    pub bit_index: u32,
    /// The lesson's topic.
    pub topic_id: &'a str,
}

/// `plans/{plan}/topics/{topic}.json`.
#[derive(Debug, Serialize)]
pub struct TopicFile<'a> {
    /// Id.
    pub id: &'a str,
    /// Title (after `rename`).
    pub title: &'a str,
    /// Description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
    /// Image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<&'a str>,
    /// After `set_linear`.
    pub is_linear: bool,
    /// Access block.
    pub access: AccessOut<'a>,
    /// Where the topic sits.
    pub parent: TopicParent<'a>,
    /// Visible lessons in order.
    pub lessons: Vec<TopicLesson<'a>>,
}

/// The ancestors of a topic.
#[derive(Debug, Serialize)]
pub struct TopicParent<'a> {
    /// Unit id.
    pub unit_id: &'a str,
    /// Unit title.
    pub unit_title: &'a str,
    /// Track id.
    pub track_id: &'a str,
    /// Track title.
    pub track_title: &'a str,
    /// Subject id.
    pub subject_id: &'a str,
    /// Subject title.
    pub subject_title: &'a str,
}

/// A lesson entry of a topic file.
#[derive(Debug, Serialize)]
pub struct TopicLesson<'a> {
    /// Id.
    pub id: &'a str,
    /// Title (after `rename`).
    pub title: &'a str,
    /// Description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
    /// Bit index in the progress bitmap.
    pub bit_index: u32,
    /// URL of the shared lesson file.
    pub lesson_url: String,
    /// Access block.
    pub access: AccessOut<'a>,
    /// Number of stages.
    pub stage_count: u32,
}

/// `lessons/{lesson}.json`, shared by all plans: no access block, no plan renames.
#[derive(Debug, Serialize)]
pub struct LessonFile<'a> {
    /// Id.
    pub id: &'a str,
    /// Title as in the subject document.
    pub title: &'a str,
    /// Description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
    /// Image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<&'a str>,
    /// Stages in play order.
    pub stages: Vec<StageOut<'a>>,
}

/// A stage of a lesson file.
#[derive(Debug, Serialize)]
pub struct StageOut<'a> {
    /// 1-based position.
    pub idx: u32,
    /// Stage id (the question id of question stages).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<&'a str>,
    /// Title.
    pub title: &'a str,
    /// Kind.
    #[serde(rename = "type")]
    pub kind: StageType,
    /// Relative weight.
    pub weight: f64,
    /// Seconds.
    pub target_time: u32,
    /// Whether it may be skipped.
    pub is_skippable: bool,
    /// Free configuration for the player.
    pub config: &'a Map<String, Value>,
}

/// `plans/{plan}/search_index.json`: entries inline, or shards from 500 visible lessons.
#[derive(Debug, Serialize)]
pub struct SearchIndex<'a> {
    /// Plan id.
    pub plan_id: &'a str,
    /// Visible lessons of the plan.
    pub total_lessons: u32,
    /// Whether `shards` replaces `entries`.
    pub is_sharded: bool,
    /// Inline entries (unsharded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entries: Option<Vec<SearchEntry<'a>>>,
    /// One shard per subject (sharded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shards: Option<Vec<SearchShardRef<'a>>>,
}

/// A pointer to a search shard.
#[derive(Debug, Serialize)]
pub struct SearchShardRef<'a> {
    /// Subject id.
    pub subject_id: &'a str,
    /// Subject title.
    pub subject_title: &'a str,
    /// URL of `plans/{plan}/search/{subject}.json`.
    pub url: String,
    /// Entries in the shard.
    pub lesson_count: u32,
}

/// `plans/{plan}/search/{subject}.json`.
#[derive(Debug, Serialize)]
pub struct SearchShard<'a> {
    /// Plan id.
    pub plan_id: &'a str,
    /// Subject id.
    pub subject_id: &'a str,
    /// Subject title.
    pub subject_title: &'a str,
    /// Entries.
    pub total_lessons: u32,
    /// One entry per visible lesson of the subject.
    pub entries: Vec<SearchEntry<'a>>,
}

/// One searchable lesson.
#[derive(Debug, Clone, Serialize)]
pub struct SearchEntry<'a> {
    /// Lesson id.
    pub lesson_id: &'a str,
    /// Lesson title (after `rename`).
    pub lesson_title: &'a str,
    /// Subject id.
    pub subject_id: &'a str,
    /// Subject title.
    pub subject_title: &'a str,
    /// Unit id.
    pub unit_id: &'a str,
    /// Unit title.
    pub unit_title: &'a str,
    /// Topic id.
    pub topic_id: &'a str,
    /// Topic title.
    pub topic_title: &'a str,
}
