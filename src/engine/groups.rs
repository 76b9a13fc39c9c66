//! Classes (`groups`, players.md "Accounts"): a group has a name, students and teachers.
//! Groups scope what a teacher may read: a teacher's read-only admin routes about
//! students are limited to the students of the groups they teach ([`StaffScope`]).
//!
//! A group is validated here, journaled as one [`Event::GroupPut`] carrying the whole
//! record (or [`Event::GroupDeleted`]), applied to the in-memory registry and
//! checkpointed with the progress stream into the `groups` redb table (replaced as a
//! whole: groups are few and small).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, Code, FieldProblem};
use crate::persist::codec;
use crate::players::account::{self, Role};

use super::accounts::{Accounts, Caller, rfc3339};
use super::{Engine, Event, OpenError};

/// Most students in one group.
pub const MAX_STUDENTS: usize = 5_000;
/// Most teachers in one group.
pub const MAX_TEACHERS: usize = 100;

/// A group as stored and journaled (absolute: the whole record after the change).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRecord {
    /// Server-assigned, stable, opaque (`g_` + 20 base32 characters).
    pub id: String,
    /// Display name (1–100 characters, unique case-insensitively).
    pub name: String,
    /// Player ids of the students, in the order given.
    pub student_ids: Vec<String>,
    /// Player ids of the teachers, in the order given.
    pub teacher_ids: Vec<String>,
    /// Creation time, unix ms.
    pub created_at_ms: i64,
    /// Last change, unix ms.
    pub updated_at_ms: i64,
}

/// The JSON shape of a group in admin answers.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct GroupView {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Student ids.
    pub student_ids: Vec<String>,
    /// Teacher ids.
    pub teacher_ids: Vec<String>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

impl GroupView {
    /// The view of a record.
    pub fn of(r: &GroupRecord) -> GroupView {
        GroupView {
            id: r.id.clone(),
            name: r.name.clone(),
            student_ids: r.student_ids.clone(),
            teacher_ids: r.teacher_ids.clone(),
            created_at: rfc3339(r.created_at_ms),
            updated_at: rfc3339(r.updated_at_ms),
        }
    }
}

/// `POST /api/v1/admin/groups` body.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGroup {
    /// Name (1–100 characters, unique case-insensitively).
    pub name: String,
    /// Player ids of students (default none).
    #[serde(default)]
    pub student_ids: Vec<String>,
    /// Player ids of teachers (default none).
    #[serde(default)]
    pub teacher_ids: Vec<String>,
}

/// `PATCH /api/v1/admin/groups/{id}` body: every field optional; a list sent replaces
/// the stored one as a whole.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupPatch {
    /// New name.
    pub name: Option<String>,
    /// The complete new list of students.
    pub student_ids: Option<Vec<String>>,
    /// The complete new list of teachers.
    pub teacher_ids: Option<Vec<String>>,
}

/// The groups known to the engine, by id.
#[derive(Debug, Default)]
pub struct Groups {
    by_id: BTreeMap<String, GroupRecord>,
}

impl Groups {
    /// The group with `id`.
    pub fn get(&self, id: &str) -> Option<&GroupRecord> {
        self.by_id.get(id)
    }

    /// Every group, by id.
    pub fn all(&self) -> impl Iterator<Item = &GroupRecord> {
        self.by_id.values()
    }

    /// The groups `teacher_id` teaches, by id.
    pub fn taught_by<'a>(&'a self, teacher_id: &'a str) -> impl Iterator<Item = &'a GroupRecord> {
        self.by_id
            .values()
            .filter(move |g| g.teacher_ids.iter().any(|t| t == teacher_id))
    }

    /// Stores a record (create or replace).
    pub fn put(&mut self, record: GroupRecord) {
        self.by_id.insert(record.id.clone(), record);
    }

    /// Removes a group.
    pub fn remove(&mut self, id: &str) {
        self.by_id.remove(id);
    }

    fn name_taken(&self, name: &str, except_id: &str) -> bool {
        self.by_id
            .values()
            .any(|g| g.id != except_id && g.name.to_lowercase() == name.to_lowercase())
    }
}

/// The engine's groups and their checkpoint mark.
#[derive(Debug, Default)]
pub struct GroupsState {
    /// The registry.
    pub groups: RwLock<Groups>,
    /// Whether the next progress checkpoint must rewrite the `groups` table.
    pub dirty: AtomicBool,
}

/// Which students a staff member may read about (players.md "Classes"): everyone for
/// admins, the students of the groups they teach for teachers.
///
/// Teachers asking about anyone outside their scope get the same 404 `NOT_FOUND` as for
/// an unknown id ([`StaffScope::check`]), so the scope is no existence oracle.
#[derive(Debug, Clone)]
pub enum StaffScope {
    /// An admin: every player.
    All,
    /// A teacher: these player ids (students of the groups they teach, as the accounts
    /// read when the request was authenticated).
    Students(Arc<HashSet<String>>),
}

impl StaffScope {
    /// Whether the caller may read about `player_id`.
    pub fn allows(&self, player_id: &str) -> bool {
        match self {
            StaffScope::All => true,
            StaffScope::Students(ids) => ids.contains(player_id),
        }
    }

    /// `Ok` when [`StaffScope::allows`] `player_id`.
    ///
    /// # Errors
    /// 404 `NOT_FOUND` with the message of an unknown player.
    pub fn check(&self, player_id: &str) -> Result<(), ApiError> {
        if self.allows(player_id) {
            Ok(())
        } else {
            Err(ApiError::new(
                Code::NotFound,
                format!("no player `{player_id}`"),
            ))
        }
    }

    /// Whether this is an admin's unlimited scope.
    pub fn is_all(&self) -> bool {
        matches!(self, StaffScope::All)
    }
}

/// A new group id: `g_` + 20 lowercase base32 characters (100 random bits).
fn new_group_id() -> String {
    let player_like = account::new_player_id();
    format!("g_{}", &player_like[2..])
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(Code::NotFound, format!("no group `{id}`"))
}

fn check_name(name: &str, problems: &mut Vec<FieldProblem>) {
    let n = name.trim().chars().count();
    if !(1..=100).contains(&n) || name.trim().chars().any(char::is_control) {
        problems.push(FieldProblem {
            pointer: "/name".into(),
            message: "must be 1 to 100 characters, without control characters".into(),
        });
    }
}

/// Checks a member list: every id names an existing player of `role`, none twice, at
/// most `max`. Reports every problem with its JSON pointer (`/{field}/{index}`).
fn check_members(
    accounts: &Accounts,
    field: &str,
    ids: &[String],
    role: Role,
    max: usize,
    problems: &mut Vec<FieldProblem>,
) {
    if ids.len() > max {
        problems.push(FieldProblem {
            pointer: format!("/{field}"),
            message: format!("at most {max} entries"),
        });
        return;
    }
    let wanted = match role {
        Role::Student => "student",
        Role::Teacher => "teacher",
        Role::Admin => "admin",
    };
    let mut seen = HashSet::with_capacity(ids.len());
    for (i, id) in ids.iter().enumerate() {
        let pointer = format!("/{field}/{i}");
        let message = match accounts.player(id) {
            _ if !seen.insert(id.as_str()) => format!("`{id}` is listed twice"),
            None => format!("no player `{id}`"),
            Some(p) if p.role != role => format!(
                "`{id}` is a {}, not a {wanted}",
                match p.role {
                    Role::Student => "student",
                    Role::Teacher => "teacher",
                    Role::Admin => "admin",
                }
            ),
            Some(_) => continue,
        };
        problems.push(FieldProblem { pointer, message });
    }
}

impl Engine {
    /// The scope of a staff caller: [`StaffScope::All`] for admins; for teachers the
    /// students (players whose role is student now) of the groups they teach.
    pub fn staff_scope(&self, caller: &Caller) -> StaffScope {
        if caller.role() == Role::Admin {
            return StaffScope::All;
        }
        let groups = self.inner().groups.groups.read();
        let accounts = self.inner().accounts.read();
        let ids: HashSet<String> = groups
            .taught_by(&caller.player.id)
            .flat_map(|g| g.student_ids.iter())
            .filter(|id| accounts.player(id).is_some_and(|p| p.role == Role::Student))
            .cloned()
            .collect();
        StaffScope::Students(Arc::new(ids))
    }

    /// The groups `caller` may read, by id: every group for admins, the groups a
    /// teacher teaches.
    pub fn groups_for(&self, caller: &Caller) -> Vec<GroupRecord> {
        let groups = self.inner().groups.groups.read();
        if caller.role() == Role::Admin {
            groups.all().cloned().collect()
        } else {
            groups.taught_by(&caller.player.id).cloned().collect()
        }
    }

    /// One group as `caller` may read it.
    ///
    /// # Errors
    /// 404 `NOT_FOUND` for an unknown group, and for a group a teacher does not teach.
    pub fn group_for(&self, caller: &Caller, id: &str) -> Result<GroupRecord, ApiError> {
        let groups = self.inner().groups.groups.read();
        let group = groups.get(id).ok_or_else(|| not_found(id))?;
        if caller.role() == Role::Admin || group.teacher_ids.contains(&caller.player.id) {
            Ok(group.clone())
        } else {
            Err(not_found(id))
        }
    }

    /// Creates a group.
    ///
    /// # Errors
    /// 422 `VALIDATION_FAILED` (every problem: name, unknown ids, wrong roles,
    /// duplicates), 409 `CONFLICT` (name taken), 503 `STORAGE_UNAVAILABLE`.
    pub async fn create_group(&self, new: NewGroup) -> Result<GroupRecord, ApiError> {
        let _order = self.inner().admin_write.lock().await;
        let now = self.now().as_millisecond();
        let record = GroupRecord {
            id: new_group_id(),
            name: new.name.trim().to_owned(),
            student_ids: new.student_ids,
            teacher_ids: new.teacher_ids,
            created_at_ms: now,
            updated_at_ms: now,
        };
        self.validate_group(&record, true, true, true)?;
        self.commit_and_apply(Event::GroupPut(record.clone()))
            .await?;
        Ok(record)
    }

    /// Changes a group: the fields sent replace the stored ones; only those are
    /// validated (a member whose role changed since does not block a rename).
    ///
    /// # Errors
    /// 404 `NOT_FOUND`, 422 `VALIDATION_FAILED`, 409 `CONFLICT` (name taken), 503
    /// `STORAGE_UNAVAILABLE`.
    pub async fn patch_group(&self, id: &str, patch: GroupPatch) -> Result<GroupRecord, ApiError> {
        let _order = self.inner().admin_write.lock().await;
        let mut record = self
            .inner()
            .groups
            .groups
            .read()
            .get(id)
            .cloned()
            .ok_or_else(|| not_found(id))?;
        let (name, students, teachers) = (
            patch.name.is_some(),
            patch.student_ids.is_some(),
            patch.teacher_ids.is_some(),
        );
        if let Some(v) = patch.name {
            record.name = v.trim().to_owned();
        }
        if let Some(v) = patch.student_ids {
            record.student_ids = v;
        }
        if let Some(v) = patch.teacher_ids {
            record.teacher_ids = v;
        }
        self.validate_group(&record, name, students, teachers)?;
        record.updated_at_ms = self.now().as_millisecond();
        self.commit_and_apply(Event::GroupPut(record.clone()))
            .await?;
        Ok(record)
    }

    /// Deletes a group (its players are untouched).
    ///
    /// # Errors
    /// 404 `NOT_FOUND`, 503 `STORAGE_UNAVAILABLE`.
    pub async fn delete_group(&self, id: &str) -> Result<(), ApiError> {
        let _order = self.inner().admin_write.lock().await;
        if self.inner().groups.groups.read().get(id).is_none() {
            return Err(not_found(id));
        }
        self.commit_and_apply(Event::GroupDeleted { id: id.to_owned() })
            .await
    }

    /// Checks the chosen parts of a record; the caller holds the admin lock.
    fn validate_group(
        &self,
        record: &GroupRecord,
        name: bool,
        students: bool,
        teachers: bool,
    ) -> Result<(), ApiError> {
        let mut problems = Vec::new();
        if name {
            check_name(&record.name, &mut problems);
        }
        {
            let accounts = self.inner().accounts.read();
            if students {
                check_members(
                    &accounts,
                    "student_ids",
                    &record.student_ids,
                    Role::Student,
                    MAX_STUDENTS,
                    &mut problems,
                );
            }
            if teachers {
                check_members(
                    &accounts,
                    "teacher_ids",
                    &record.teacher_ids,
                    Role::Teacher,
                    MAX_TEACHERS,
                    &mut problems,
                );
            }
        }
        if !problems.is_empty() {
            return Err(ApiError::validation(problems));
        }
        if name
            && self
                .inner()
                .groups
                .groups
                .read()
                .name_taken(&record.name, &record.id)
        {
            return Err(ApiError::new(
                Code::Conflict,
                format!("a group named `{}` already exists", record.name),
            ));
        }
        Ok(())
    }

    /// Loads the checkpointed groups at start (before the journal replay).
    pub(super) fn load_groups(&self) -> Result<(), OpenError> {
        let rows = self.inner().store.groups()?;
        let mut groups = self.inner().groups.groups.write();
        for (id, bytes) in rows {
            groups.put(super::decode(&format!("group {id}"), &bytes)?);
        }
        Ok(())
    }

    /// Applies a durable [`Event::GroupPut`].
    pub(super) fn apply_group_put(&self, record: &GroupRecord) {
        let state = &self.inner().groups;
        state.groups.write().put(record.clone());
        state.dirty.store(true, Ordering::SeqCst);
    }

    /// Applies a durable [`Event::GroupDeleted`].
    pub(super) fn apply_group_deleted(&self, id: &str) {
        let state = &self.inner().groups;
        state.groups.write().remove(id);
        state.dirty.store(true, Ordering::SeqCst);
    }

    /// For a progress checkpoint: every group encoded when the table must be rewritten
    /// (the mark is taken; [`Engine::restore_groups_dirty`] puts it back on failure).
    pub(super) fn take_groups_dirty(&self) -> Option<Vec<(String, Vec<u8>)>> {
        let state = &self.inner().groups;
        if !state.dirty.swap(false, Ordering::SeqCst) {
            return None;
        }
        Some(
            state
                .groups
                .read()
                .all()
                .map(|g| (g.id.clone(), codec::encode(g)))
                .collect(),
        )
    }

    /// Marks the groups dirty again after a failed checkpoint.
    pub(super) fn restore_groups_dirty(&self) {
        self.inner().groups.dirty.store(true, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_ids_are_opaque_and_scopes_allow_only_their_students() {
        let id = new_group_id();
        assert!(id.starts_with("g_") && id.len() == 22, "{id}");
        assert_ne!(id, new_group_id());
        let scope = StaffScope::Students(Arc::new(HashSet::from(["p_a".to_owned()])));
        assert!(scope.allows("p_a") && !scope.allows("p_b") && !scope.is_all());
        let err = scope.check("p_b").expect_err("outside the scope");
        assert_eq!(err.code, Code::NotFound);
        assert!(StaffScope::All.allows("p_b") && StaffScope::All.check("p_b").is_ok());
    }

    #[test]
    fn names_and_member_lists_report_every_problem() {
        let mut problems = Vec::new();
        check_name("  ", &mut problems);
        check_name(&"x".repeat(101), &mut problems);
        check_name("10 A", &mut problems);
        assert_eq!(problems.len(), 2);

        let mut accounts = Accounts::default();
        for (id, role) in [("p_s", Role::Student), ("p_t", Role::Teacher)] {
            accounts.put_player(account::PlayerRecord {
                id: id.into(),
                email: format!("{id}@x.test"),
                display_name: id.into(),
                role,
                password_hash: String::new(),
                plan_id: None,
                grade: None,
                stream: None,
                timezone: "UTC".into(),
                grants: vec![],
                devices: vec![],
                created_at_ms: 0,
                disabled: false,
                must_change_password: false,
            });
        }
        let mut problems = Vec::new();
        let ids: Vec<String> = ["p_s", "p_t", "p_x", "p_s"].map(String::from).to_vec();
        check_members(
            &accounts,
            "student_ids",
            &ids,
            Role::Student,
            10,
            &mut problems,
        );
        let pointers: Vec<_> = problems.iter().map(|p| p.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            ["/student_ids/1", "/student_ids/2", "/student_ids/3"]
        );
        assert!(problems[0].message.contains("is a teacher"));
        let mut problems = Vec::new();
        check_members(
            &accounts,
            "teacher_ids",
            &ids,
            Role::Teacher,
            3,
            &mut problems,
        );
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].pointer, "/teacher_ids");
    }
}
