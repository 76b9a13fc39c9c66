//! Raw → validated: subject and plan documents from bytes to [`super::model`] structs, with
//! **every** problem reported (content.md "Import formats").
//!
//! The structural walk (syntax, format, fields, types, ranges, id syntax) needs nothing
//! but the document. The checks that need the installation (ids already used by other
//! subjects, subjects a plan names, override targets) take the catalog's lookups as
//! closures/arguments so this module stays independent of how the catalog is stored.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::model::{
    Action, Lesson, Override, PLAN_FORMAT, Plan, SUBJECT_FORMAT, Stage, StageType, Subject, Topic,
    Track, Unit,
};
use super::problem::{Problem, Reader, is_valid_color, is_valid_id, push_index, push_token};
use super::view::NodeKind;

/// Upper bound of `base_xp`.
pub const MAX_BASE_XP: u32 = 10_000;

/// Fields every node has.
const NODE_FIELDS: [&str; 6] = [
    "id",
    "title",
    "description",
    "image",
    "is_published",
    "is_free_preview",
];

/// Parses bytes as JSON; a syntax error is one problem at pointer `""`.
fn parse(body: &[u8]) -> Result<Value, Vec<Problem>> {
    serde_json::from_slice(body).map_err(|e| vec![Problem::new("", format!("invalid JSON: {e}"))])
}

fn allowed(extra: &[&'static str]) -> Vec<&'static str> {
    let mut v = NODE_FIELDS.to_vec();
    v.extend_from_slice(extra);
    v
}

/// Walks a subject document, remembering every id (lowercased) with its pointer.
struct SubjectWalk {
    r: Reader,
    /// Lowercased id → pointer of its first occurrence.
    seen: HashMap<String, String>,
    /// Ids in document order: (lowercased id, pointer to the id field).
    ids: Vec<(String, String)>,
}

struct Common {
    id: String,
    title: String,
    description: Option<String>,
    image: Option<String>,
    is_published: bool,
    is_free_preview: bool,
}

impl SubjectWalk {
    fn id(&mut self, map: &Map<String, Value>, ptr: &str, key: &str) -> String {
        let id = self.r.req_str(map, ptr, key);
        if map.get(key).is_some_and(Value::is_string) {
            self.check_id(&id, push_token(ptr, key));
        }
        id
    }

    fn check_id(&mut self, id: &str, ptr: String) {
        if !is_valid_id(id) {
            self.r.report(
                ptr,
                format!(
                    "malformed id '{id}': expected 1 to 128 of A-Z a-z 0-9 _ . - \
                     starting with a letter or digit"
                ),
            );
            return;
        }
        let lower = id.to_ascii_lowercase();
        if let Some(first) = self.seen.get(&lower) {
            self.r.report(
                ptr,
                format!(
                    "duplicate id '{id}' (ids are compared case-insensitively; first at {first})"
                ),
            );
            return;
        }
        self.seen.insert(lower.clone(), ptr.clone());
        self.ids.push((lower, ptr));
    }

    fn common(&mut self, map: &Map<String, Value>, ptr: &str) -> Common {
        Common {
            id: self.id(map, ptr, "id"),
            title: self.r.req_str(map, ptr, "title"),
            description: self.r.opt_str(map, ptr, "description"),
            image: self.r.opt_str(map, ptr, "image"),
            is_published: self.r.bool_or(map, ptr, "is_published", true),
            is_free_preview: self.r.bool_or(map, ptr, "is_free_preview", false),
        }
    }

    fn item(&mut self, map: &Map<String, Value>, ptr: &str) -> Option<String> {
        self.r
            .opt_str(map, ptr, "required_item")
            .filter(|s| !s.trim().is_empty())
    }

    fn children<T>(
        &mut self,
        map: &Map<String, Value>,
        ptr: &str,
        key: &str,
        required: bool,
        mut each: impl FnMut(&mut Self, &Value, &str) -> Option<T>,
    ) -> Vec<T> {
        let items = if required {
            self.r.req_array(map, ptr, key)
        } else {
            self.r.opt_array(map, ptr, key)
        };
        let base = push_token(ptr, key);
        let mut out = Vec::with_capacity(items.len());
        for (i, v) in items.iter().enumerate() {
            if let Some(t) = each(self, v, &push_index(&base, i)) {
                out.push(t);
            }
        }
        out
    }

    fn subject(&mut self, v: &Value) -> Option<Subject> {
        let map = self.r.object(
            v,
            "",
            &allowed(&[
                "format",
                "is_linear",
                "color_code",
                "required_item",
                "tracks",
            ]),
        )?;
        match map.get("format") {
            Some(Value::String(f)) if f == SUBJECT_FORMAT => {}
            Some(other) => self.r.report(
                "/format",
                format!("unknown format {other}: expected \"{SUBJECT_FORMAT}\""),
            ),
            None => self.r.report("/format", "missing field 'format'"),
        }
        let c = self.common(map, "");
        let color_code = self.r.opt_str(map, "", "color_code");
        if let Some(color) = &color_code
            && !is_valid_color(color)
        {
            self.r.report(
                "/color_code",
                format!("expected a #RRGGBB color, found '{color}'"),
            );
        }
        Some(Subject {
            format: SUBJECT_FORMAT.to_owned(),
            is_linear: self.r.bool_or(map, "", "is_linear", true),
            color_code,
            required_item: self.item(map, ""),
            tracks: self.children(map, "", "tracks", true, Self::track),
            id: c.id,
            title: c.title,
            description: c.description,
            image: c.image,
            is_published: c.is_published,
            is_free_preview: c.is_free_preview,
        })
    }

    fn track(&mut self, v: &Value, ptr: &str) -> Option<Track> {
        let map = self.r.object(
            v,
            ptr,
            &allowed(&[
                "is_linear",
                "is_sold_separately",
                "required_item",
                "parent_item_required",
                "units",
            ]),
        )?;
        let c = self.common(map, ptr);
        Some(Track {
            is_linear: self.r.bool_or(map, ptr, "is_linear", true),
            is_sold_separately: self.r.bool_or(map, ptr, "is_sold_separately", false),
            required_item: self.item(map, ptr),
            parent_item_required: self.r.bool_or(map, ptr, "parent_item_required", false),
            units: self.children(map, ptr, "units", true, Self::unit),
            id: c.id,
            title: c.title,
            description: c.description,
            image: c.image,
            is_published: c.is_published,
            is_free_preview: c.is_free_preview,
        })
    }

    fn unit(&mut self, v: &Value, ptr: &str) -> Option<Unit> {
        let map = self
            .r
            .object(v, ptr, &allowed(&["is_linear", "badge_image", "topics"]))?;
        let c = self.common(map, ptr);
        Some(Unit {
            is_linear: self.r.bool_or(map, ptr, "is_linear", true),
            badge_image: self.r.opt_str(map, ptr, "badge_image"),
            topics: self.children(map, ptr, "topics", true, Self::topic),
            id: c.id,
            title: c.title,
            description: c.description,
            image: c.image,
            is_published: c.is_published,
            is_free_preview: c.is_free_preview,
        })
    }

    fn topic(&mut self, v: &Value, ptr: &str) -> Option<Topic> {
        let map = self.r.object(v, ptr, &allowed(&["is_linear", "lessons"]))?;
        let c = self.common(map, ptr);
        Some(Topic {
            is_linear: self.r.bool_or(map, ptr, "is_linear", true),
            lessons: self.children(map, ptr, "lessons", true, Self::lesson),
            id: c.id,
            title: c.title,
            description: c.description,
            image: c.image,
            is_published: c.is_published,
            is_free_preview: c.is_free_preview,
        })
    }

    fn lesson(&mut self, v: &Value, ptr: &str) -> Option<Lesson> {
        let map = self.r.object(v, ptr, &allowed(&["base_xp", "stages"]))?;
        let c = self.common(map, ptr);
        Some(Lesson {
            base_xp: self.r.u32_or(map, ptr, "base_xp", 10, MAX_BASE_XP),
            stages: self.children(map, ptr, "stages", false, Self::stage),
            id: c.id,
            title: c.title,
            description: c.description,
            image: c.image,
            is_published: c.is_published,
            is_free_preview: c.is_free_preview,
        })
    }

    fn stage(&mut self, v: &Value, ptr: &str) -> Option<Stage> {
        let map = self.r.object(
            v,
            ptr,
            &[
                "id",
                "type",
                "title",
                "config",
                "weight",
                "target_time",
                "is_skippable",
            ],
        )?;
        let kind_name = self.r.req_str(map, ptr, "type");
        let kind = StageType::parse(&kind_name);
        if kind.is_none() && map.get("type").is_some_and(Value::is_string) {
            self.r.report(
                push_token(ptr, "type"),
                format!("unknown stage type '{kind_name}': expected video, question, text or interactive"),
            );
        }
        let id = match map.get("id") {
            None | Some(Value::Null) => {
                if kind == Some(StageType::Question) {
                    self.r.report(
                        push_token(ptr, "id"),
                        "a question stage needs an id (its question id)",
                    );
                }
                None
            }
            // Only question ids share the installation-wide namespace; other stage ids
            // need the id syntax but may repeat (e.g. "intro" in every lesson).
            Some(_) if kind == Some(StageType::Question) => Some(self.id(map, ptr, "id")),
            Some(_) => {
                let id = self.r.req_str(map, ptr, "id");
                if map.get("id").is_some_and(Value::is_string) && !is_valid_id(&id) {
                    self.r
                        .report(push_token(ptr, "id"), format!("malformed id '{id}'"));
                }
                Some(id)
            }
        };
        let config = match map.get("config") {
            None => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(other) => {
                self.r.report(
                    push_token(ptr, "config"),
                    format!(
                        "expected an object, found {}",
                        super::problem::type_name(other)
                    ),
                );
                Map::new()
            }
        };
        Some(Stage {
            id,
            kind: kind.unwrap_or(StageType::Text),
            title: self.r.req_str(map, ptr, "title"),
            config,
            weight: self.r.non_negative_or(map, ptr, "weight", 1.0),
            target_time: self.r.u32_or(map, ptr, "target_time", 0, u32::MAX),
            is_skippable: self.r.bool_or(map, ptr, "is_skippable", false),
        })
    }
}

/// Validates a subject document.
///
/// `owner_elsewhere(document_subject_id, lowercased_id)` returns the id of *another* subject of the
/// installation that already uses the id (node or question id), if any; the subject
/// being re-imported must not count as "another".
///
/// # Errors
/// Every problem found, in document order (cross-subject id conflicts last).
pub fn validate_subject<'c>(
    body: &[u8],
    owner_elsewhere: impl Fn(&str, &str) -> Option<&'c str>,
) -> Result<Subject, Vec<Problem>> {
    let value = parse(body)?;
    let mut walk = SubjectWalk {
        r: Reader::default(),
        seen: HashMap::new(),
        ids: Vec::new(),
    };
    let subject = walk.subject(&value);
    let doc_id = subject.as_ref().map_or("", |s| s.id.as_str());
    for (lower, ptr) in &walk.ids {
        if let Some(owner) = owner_elsewhere(doc_id, lower) {
            walk.r.report(
                ptr.clone(),
                format!("id '{lower}' is already used in subject '{owner}' (ids are unique per installation)"),
            );
        }
    }
    match subject {
        Some(s) if walk.r.problems.is_empty() => Ok(s),
        _ => Err(walk.r.problems),
    }
}

/// What plan validation needs to know about one node of a catalog subject.
#[derive(Debug, Clone, Copy)]
pub struct TargetInfo {
    /// Level of the node.
    pub kind: NodeKind,
    /// Whether the node or an ancestor carries an item in its document
    /// (`required_item` on a subject or track).
    pub has_item: bool,
}

/// Validates a plan document.
///
/// `subject_exists(id)` says whether the catalog holds a subject (case-insensitive);
/// `target(subject_id, lowercased_node_id)` resolves an override target inside one
/// subject, with `ancestors(subject_id, lowercased_node_id)` listing the lowercased ids
/// of its ancestors (nearest first) so that `set_sold_separately` overrides of the plan
/// count as items for `set_access_level paid`.
///
/// # Errors
/// Every problem found, in document order.
pub fn validate_plan(
    body: &[u8],
    subject_exists: impl Fn(&str) -> bool,
    target: impl Fn(&str, &str) -> Option<TargetInfo>,
    ancestors: impl Fn(&str, &str) -> Vec<String>,
) -> Result<Plan, Vec<Problem>> {
    let value = parse(body)?;
    let mut r = Reader::default();
    let Some(map) = r.object(
        &value,
        "",
        &[
            "format",
            "id",
            "title",
            "season",
            "grade",
            "stream",
            "is_published",
            "subjects",
            "overrides",
        ],
    ) else {
        return Err(r.problems);
    };
    match map.get("format") {
        Some(Value::String(f)) if f == PLAN_FORMAT => {}
        Some(other) => r.report(
            "/format",
            format!("unknown format {other}: expected \"{PLAN_FORMAT}\""),
        ),
        None => r.report("/format", "missing field 'format'"),
    }
    let id = r.req_str(map, "", "id");
    if map.get("id").is_some_and(Value::is_string) && !is_valid_id(&id) {
        r.report("/id", format!("malformed id '{id}'"));
    }
    let title = r.req_str(map, "", "title");
    let season = r.opt_str(map, "", "season");
    let grade = r.opt_str(map, "", "grade");
    let stream = r.opt_str(map, "", "stream");
    let is_published = r.bool_or(map, "", "is_published", true);

    // Subjects: strings, known, not repeated. `known` keeps the ones targets resolve in.
    let mut subjects = Vec::new();
    let mut known: Vec<String> = Vec::new();
    for (i, v) in r.req_array(map, "", "subjects").iter().enumerate() {
        let ptr = push_index("/subjects", i);
        let Value::String(s) = v else {
            r.report(
                ptr,
                format!(
                    "expected a subject id string, found {}",
                    super::problem::type_name(v)
                ),
            );
            continue;
        };
        if subjects.iter().any(|o: &String| o.eq_ignore_ascii_case(s)) {
            r.report(ptr, format!("subject '{s}' is listed twice"));
        } else if !subject_exists(s) {
            r.report(ptr, format!("unknown subject '{s}'"));
        } else {
            known.push(s.clone());
        }
        subjects.push(s.clone());
    }

    // Overrides: shape first, then targets and combinations.
    let mut overrides = Vec::new();
    // (index in `overrides`, override, (subject holding the target, target info)).
    type Checked = (usize, Override, Option<(String, TargetInfo)>);
    let mut parsed: Vec<Checked> = Vec::new();
    for (i, v) in r.opt_array(map, "", "overrides").iter().enumerate() {
        let ptr = push_index("/overrides", i);
        let Some(o) = r.object(v, &ptr, &["target", "action", "value"]) else {
            continue;
        };
        let target_id = r.req_str(o, &ptr, "target");
        let action_name = r.req_str(o, &ptr, "action");
        if !o.get("action").is_some_and(Value::is_string) {
            continue;
        }
        let action = match Action::from_parts(&action_name, o.get("value")) {
            Ok(a) => a,
            Err(msg) => {
                let at = if msg.starts_with("unknown action") {
                    push_token(&ptr, "action")
                } else {
                    push_token(&ptr, "value")
                };
                r.report(at, msg);
                continue;
            }
        };
        if !o.get("target").is_some_and(Value::is_string) {
            continue;
        }
        let lower = target_id.to_ascii_lowercase();
        let resolved = known
            .iter()
            .find_map(|s| target(s, &lower).map(|t| (s.clone(), t)));
        let target_ptr = push_token(&ptr, "target");
        match &resolved {
            None => r.report(
                target_ptr,
                format!("target '{target_id}' is not a node of the plan's subjects"),
            ),
            Some((_, info)) => {
                let fits = match action {
                    Action::SetLinear(_) => info.kind != NodeKind::Lesson,
                    Action::SetSoldSeparately(_) => info.kind == NodeKind::Track,
                    _ => true,
                };
                if !fits {
                    r.report(
                        push_token(&ptr, "action"),
                        format!(
                            "action '{}' does not apply to a {:?} ('{target_id}')",
                            action.name(),
                            info.kind
                        )
                        .to_lowercase(),
                    );
                }
            }
        }
        let o = Override {
            target: target_id,
            action,
        };
        overrides.push(o.clone());
        parsed.push((i, o, resolved));
    }

    // Combinations per target, and `paid` needing an item at or above the target.
    let islands: Vec<String> = parsed
        .iter()
        .filter(|(_, o, _)| matches!(o.action, Action::SetSoldSeparately(_)))
        .map(|(_, o, _)| o.target.to_ascii_lowercase())
        .collect();
    let mut by_target: HashMap<String, Vec<&Action>> = HashMap::new();
    for (i, o, resolved) in &parsed {
        let ptr = push_index("/overrides", *i);
        let lower = o.target.to_ascii_lowercase();
        let earlier = by_target.entry(lower.clone()).or_default();
        let clash = earlier.iter().find_map(|a| {
            if matches!(a, Action::Hide) || matches!(o.action, Action::Hide) {
                Some("'hide' cannot be combined with another action on the same target")
            } else if a.is_level_deciding() && o.action.is_level_deciding() {
                Some("at most one of set_free, set_access_level, set_sold_separately per target")
            } else if a.name() == o.action.name() {
                Some("this action is already given for this target")
            } else {
                None
            }
        });
        if let Some(msg) = clash {
            r.report(ptr.clone(), format!("{msg} ('{}')", o.target));
        }
        earlier.push(&o.action);
        if let (Action::SetAccessLevel(super::view::AccessLevel::Paid), Some((subject, info))) =
            (&o.action, resolved)
        {
            let island_at_or_above = islands.contains(&lower)
                || ancestors(subject, &lower)
                    .iter()
                    .any(|a| islands.contains(a));
            if !info.has_item && !island_at_or_above {
                r.report(
                    push_token(&ptr, "value"),
                    format!(
                        "'paid' needs an item on '{}' or an ancestor (required_item or a sold-separately track)",
                        o.target
                    ),
                );
            }
        }
    }

    if r.problems.is_empty() {
        Ok(Plan {
            format: PLAN_FORMAT.to_owned(),
            id,
            title,
            season,
            grade,
            stream,
            is_published,
            subjects,
            overrides,
        })
    } else {
        Err(r.problems)
    }
}
