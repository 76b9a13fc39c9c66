//! The import formats `memora.subject/v1` and `memora.plan/v1` (content.md "Import
//! formats") as typed serde structs.
//!
//! These are the *validated* shapes: [`super::validate`] builds them from a
//! `serde_json::Value` while collecting every problem, and the catalog stores them
//! re-serialized (compact JSON) in its records. The serde attributes (`deny_unknown_fields`,
//! defaults) make a direct `serde_json::from_str` agree with the validator on what is
//! accepted, so a stored document always parses back.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::view::AccessLevel;

/// The `format` value of a subject document.
pub const SUBJECT_FORMAT: &str = "memora.subject/v1";
/// The `format` value of a plan document.
pub const PLAN_FORMAT: &str = "memora.plan/v1";

fn yes() -> bool {
    true
}
fn default_base_xp() -> u32 {
    10
}
fn default_weight() -> f64 {
    1.0
}
fn subject_format() -> String {
    SUBJECT_FORMAT.to_owned()
}
fn plan_format() -> String {
    PLAN_FORMAT.to_owned()
}

/// A subject document: the root of a curriculum tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subject {
    /// Always [`SUBJECT_FORMAT`].
    #[serde(default = "subject_format")]
    pub format: String,
    /// Node id (see [`super::problem::is_valid_id`]).
    pub id: String,
    /// Display title.
    pub title: String,
    /// Optional description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Optional image URL or asset path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Hidden everywhere when false.
    #[serde(default = "yes")]
    pub is_published: bool,
    /// Whether the subject is a free preview.
    #[serde(default)]
    pub is_free_preview: bool,
    /// Whether tracks must be passed in order.
    #[serde(default = "yes")]
    pub is_linear: bool,
    /// `#RRGGBB`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color_code: Option<String>,
    /// Purchasable item code; `None` (never empty) when the subject is not paid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_item: Option<String>,
    /// Children in visual order.
    pub tracks: Vec<Track>,
}

/// A track: child of a subject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Track {
    /// Node id.
    pub id: String,
    /// Display title.
    pub title: String,
    /// Optional description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Optional image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Hidden everywhere when false.
    #[serde(default = "yes")]
    pub is_published: bool,
    /// Whether the track is a free preview.
    #[serde(default)]
    pub is_free_preview: bool,
    /// Whether units must be passed in order.
    #[serde(default = "yes")]
    pub is_linear: bool,
    /// With `required_item`: an independent paid island (access rule 4).
    #[serde(default)]
    pub is_sold_separately: bool,
    /// Purchasable item code; `None` (never empty) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_item: Option<String>,
    /// For an island: a grant must also hold the parent's effective item.
    #[serde(default)]
    pub parent_item_required: bool,
    /// Children in visual order.
    pub units: Vec<Unit>,
}

/// A unit: child of a track.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unit {
    /// Node id.
    pub id: String,
    /// Display title.
    pub title: String,
    /// Optional description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Optional image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Hidden everywhere when false.
    #[serde(default = "yes")]
    pub is_published: bool,
    /// Whether the unit is a free preview.
    #[serde(default)]
    pub is_free_preview: bool,
    /// Whether topics must be passed in order.
    #[serde(default = "yes")]
    pub is_linear: bool,
    /// Optional badge image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub badge_image: Option<String>,
    /// Children in visual order.
    pub topics: Vec<Topic>,
}

/// A topic: child of a unit, parent of lessons.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topic {
    /// Node id.
    pub id: String,
    /// Display title.
    pub title: String,
    /// Optional description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Optional image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Hidden everywhere when false.
    #[serde(default = "yes")]
    pub is_published: bool,
    /// Whether the topic is a free preview.
    #[serde(default)]
    pub is_free_preview: bool,
    /// Whether lessons must be passed in order.
    #[serde(default = "yes")]
    pub is_linear: bool,
    /// Children in visual order.
    pub lessons: Vec<Lesson>,
}

/// A lesson: what a student completes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lesson {
    /// Node id.
    pub id: String,
    /// Display title.
    pub title: String,
    /// Optional description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Optional image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Hidden everywhere when false.
    #[serde(default = "yes")]
    pub is_published: bool,
    /// Whether the lesson is a free preview.
    #[serde(default)]
    pub is_free_preview: bool,
    /// XP of a first completion before hearts, `0..=10000`.
    #[serde(default = "default_base_xp")]
    pub base_xp: u32,
    /// Stages in play order (may be empty).
    #[serde(default)]
    pub stages: Vec<Stage>,
}

/// The kind of a stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageType {
    /// A video.
    Video,
    /// A question: carries a question id (the unit of spaced repetition).
    Question,
    /// Text to read.
    Text,
    /// An interactive exercise.
    Interactive,
}

impl StageType {
    /// Parses the document spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "video" => Self::Video,
            "question" => Self::Question,
            "text" => Self::Text,
            "interactive" => Self::Interactive,
            _ => return None,
        })
    }
}

/// One stage of a lesson.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    /// Stage id; required (the question id) for `question` stages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Kind of stage.
    #[serde(rename = "type")]
    pub kind: StageType,
    /// Display title.
    pub title: String,
    /// Free JSON object interpreted by the player (defaults to `{}`).
    #[serde(default)]
    pub config: Map<String, Value>,
    /// Relative weight, `>= 0`.
    #[serde(default = "default_weight")]
    pub weight: f64,
    /// Target time in seconds.
    #[serde(default)]
    pub target_time: u32,
    /// Whether the student may skip the stage.
    #[serde(default)]
    pub is_skippable: bool,
}

/// A plan document: which subjects a group of students follows, and its overrides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Always [`PLAN_FORMAT`].
    #[serde(default = "plan_format")]
    pub format: String,
    /// Plan id.
    pub id: String,
    /// Display title.
    pub title: String,
    /// Optional season label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub season: Option<String>,
    /// Optional grade label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grade: Option<String>,
    /// Optional stream label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    /// Whether the plan is built into compiled files.
    #[serde(default = "yes")]
    pub is_published: bool,
    /// Subject ids in plan order.
    pub subjects: Vec<String>,
    /// Per-plan overrides, applied in tree order.
    #[serde(default)]
    pub overrides: Vec<Override>,
}

/// One plan override: an action on a node (or lesson) of one of the plan's subjects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawOverride", into = "RawOverride")]
pub struct Override {
    /// Target node id as written (compared case-insensitively).
    pub target: String,
    /// What to do.
    pub action: Action,
}

/// The override actions of content.md.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Hide the node and its subtree.
    Hide,
    /// Level-deciding: `free_preview`.
    SetFree,
    /// Level-deciding: the given level.
    SetAccessLevel(AccessLevel),
    /// Level-deciding: a paid island with this item (tracks only).
    SetSoldSeparately(String),
    /// Override `is_linear` (containers only).
    SetLinear(bool),
    /// Title in the plan's own files.
    Rename(String),
}

impl Action {
    /// The document spelling of the action.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Hide => "hide",
            Self::SetFree => "set_free",
            Self::SetAccessLevel(_) => "set_access_level",
            Self::SetSoldSeparately(_) => "set_sold_separately",
            Self::SetLinear(_) => "set_linear",
            Self::Rename(_) => "rename",
        }
    }

    /// Whether the action decides the access level (at most one per target).
    pub fn is_level_deciding(&self) -> bool {
        matches!(
            self,
            Self::SetFree | Self::SetAccessLevel(_) | Self::SetSoldSeparately(_)
        )
    }

    /// Builds an action from its document spelling and value.
    ///
    /// # Errors
    /// A message naming what is wrong: unknown action, missing, unexpected or bad value.
    pub fn from_parts(action: &str, value: Option<&Value>) -> Result<Self, String> {
        let value = value.filter(|v| !v.is_null());
        let no_value = |a: Action| match value {
            None => Ok(a),
            Some(_) => Err(format!("action '{action}' takes no value")),
        };
        let string_value = || match value {
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
            Some(_) => Err(format!("action '{action}' needs a non-empty string value")),
            None => Err(format!("action '{action}' needs a value")),
        };
        match action {
            "hide" => no_value(Self::Hide),
            "set_free" => no_value(Self::SetFree),
            "set_linear" => match value {
                Some(Value::Bool(b)) => Ok(Self::SetLinear(*b)),
                Some(_) => Err("action 'set_linear' needs a boolean value".into()),
                None => Err("action 'set_linear' needs a value".into()),
            },
            "set_access_level" => match value.and_then(Value::as_str) {
                Some("public") => Ok(Self::SetAccessLevel(AccessLevel::Public)),
                Some("authenticated") => Ok(Self::SetAccessLevel(AccessLevel::Authenticated)),
                Some("paid") => Ok(Self::SetAccessLevel(AccessLevel::Paid)),
                Some("free_preview") => Ok(Self::SetAccessLevel(AccessLevel::FreePreview)),
                _ => Err("action 'set_access_level' needs a value among public, \
                          authenticated, paid, free_preview"
                    .into()),
            },
            "rename" => string_value().map(Self::Rename),
            "set_sold_separately" => string_value().map(Self::SetSoldSeparately),
            other => Err(format!(
                "unknown action '{other}' (expected hide, set_free, set_access_level, \
                 set_sold_separately, set_linear or rename)"
            )),
        }
    }

    /// The document value of the action, if it has one.
    pub fn value(&self) -> Option<Value> {
        match self {
            Self::Hide | Self::SetFree => None,
            Self::SetAccessLevel(level) => serde_json::to_value(level).ok(),
            Self::SetSoldSeparately(s) | Self::Rename(s) => Some(Value::String(s.clone())),
            Self::SetLinear(b) => Some(Value::Bool(*b)),
        }
    }
}

/// The document shape of an override, before the action and value are checked together.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOverride {
    /// Target node id.
    pub target: String,
    /// Action name.
    pub action: String,
    /// Action value (absent for `hide` and `set_free`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

impl TryFrom<RawOverride> for Override {
    type Error = String;
    fn try_from(raw: RawOverride) -> Result<Self, String> {
        Ok(Override {
            action: Action::from_parts(&raw.action, raw.value.as_ref())?,
            target: raw.target,
        })
    }
}

impl From<Override> for RawOverride {
    fn from(o: Override) -> Self {
        RawOverride {
            value: o.action.value(),
            action: o.action.name().to_owned(),
            target: o.target,
        }
    }
}
