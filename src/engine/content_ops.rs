//! Content operations: import, read and delete subjects and plans (content.md, the admin
//! API of api.md). Validation and bit index assignment are the content module's; this
//! file orders the writes, journals them and reports.

use serde::Serialize;

use crate::content::{DeleteError, Problem};
use crate::error::{ApiError, Code, FieldProblem};

use super::{Engine, Event};

/// Answer of a subject or plan import.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PutOutcome {
    /// The id.
    pub id: String,
    /// Whether it did not exist before (201) or was replaced (200).
    pub created: bool,
    /// Lessons in the subject (subjects only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lessons: Option<usize>,
    /// The subject's bit index counter after the import (subjects only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_bit_index: Option<u32>,
}

fn problems(list: Vec<Problem>) -> ApiError {
    ApiError::validation(
        list.into_iter()
            .map(|p| FieldProblem {
                pointer: p.pointer,
                message: p.message,
            })
            .collect(),
    )
}

fn check_path_id(path_id: &str, doc_id: &str) -> Result<(), ApiError> {
    if path_id.eq_ignore_ascii_case(doc_id) {
        Ok(())
    } else {
        Err(ApiError::field(
            "/id",
            format!("the document's id `{doc_id}` differs from the URL's `{path_id}`"),
        ))
    }
}

/// The two kinds of content document (content.md "Import formats").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocKind {
    /// `memora.subject/v1`.
    Subject,
    /// `memora.plan/v1`.
    Plan,
}

impl DocKind {
    /// "subject" or "plan", for messages.
    pub fn noun(self) -> &'static str {
        match self {
            DocKind::Subject => "subject",
            DocKind::Plan => "plan",
        }
    }
}

impl Engine {
    /// Imports or replaces a subject or plan document (`PUT /api/v1/admin/{subjects,plans}/{id}`,
    /// `memora import`). Validation reports every problem; nothing is stored on failure.
    /// Re-importing an identical document changes nothing (no event).
    ///
    /// # Errors
    /// 422 with every problem (also when the URL id differs from the document's), 503
    /// when the journal fails.
    pub async fn put_document(
        &self,
        kind: DocKind,
        path_id: Option<&str>,
        body: &[u8],
    ) -> Result<PutOutcome, ApiError> {
        let _order = self.inner().admin_write.lock().await;
        let catalog = self.catalog();
        let (id, unchanged, created, next_bit_index, event) = match kind {
            DocKind::Subject => {
                let record = catalog.prepare_subject(body).map_err(problems)?;
                let existing = catalog.subject(&record.id);
                (
                    record.id.clone(),
                    existing == Some(&record),
                    existing.is_none(),
                    Some(record.next_bit_index),
                    Event::SubjectPut(record),
                )
            }
            DocKind::Plan => {
                let record = catalog.prepare_plan(body).map_err(problems)?;
                let existing = catalog.plan(&record.id);
                (
                    record.id.clone(),
                    existing == Some(&record),
                    existing.is_none(),
                    None,
                    Event::PlanPut(record),
                )
            }
        };
        if let Some(path_id) = path_id {
            check_path_id(path_id, &id)?;
        }
        if !unchanged {
            self.commit_and_apply(event).await?;
        }
        let lessons = match kind {
            DocKind::Subject => self.catalog().subject_lesson_count(&id),
            DocKind::Plan => None,
        };
        Ok(PutOutcome {
            id,
            created,
            lessons,
            next_bit_index,
        })
    }

    /// Imports a subject document (see [`Engine::put_document`]).
    ///
    /// # Errors
    /// As [`Engine::put_document`].
    pub async fn put_subject(
        &self,
        path_id: Option<&str>,
        body: &[u8],
    ) -> Result<PutOutcome, ApiError> {
        self.put_document(DocKind::Subject, path_id, body).await
    }

    /// Imports a plan document (see [`Engine::put_document`]).
    ///
    /// # Errors
    /// As [`Engine::put_document`].
    pub async fn put_plan(
        &self,
        path_id: Option<&str>,
        body: &[u8],
    ) -> Result<PutOutcome, ApiError> {
        self.put_document(DocKind::Plan, path_id, body).await
    }

    /// The stored document, as imported (compact JSON).
    ///
    /// # Errors
    /// 404 `NOT_FOUND`.
    pub fn document(&self, kind: DocKind, id: &str) -> Result<String, ApiError> {
        let catalog = self.catalog();
        let doc = match kind {
            DocKind::Subject => catalog.subject(id).map(|r| r.doc_json.clone()),
            DocKind::Plan => catalog.plan(id).map(|r| r.doc_json.clone()),
        };
        doc.ok_or_else(|| ApiError::new(Code::NotFound, format!("no {} `{id}`", kind.noun())))
    }

    /// Deletes a subject no plan lists, or a plan no student is assigned to.
    ///
    /// # Errors
    /// 404, 409 `CONFLICT` naming what still uses it, 503.
    pub async fn delete_document(&self, kind: DocKind, id: &str) -> Result<(), ApiError> {
        let _order = self.inner().admin_write.lock().await;
        let catalog = self.catalog();
        let not_found = || ApiError::new(Code::NotFound, format!("no {} `{id}`", kind.noun()));
        let event = match kind {
            DocKind::Subject => {
                match catalog.check_delete_subject(id) {
                    Ok(()) => {}
                    Err(DeleteError::NotFound) => return Err(not_found()),
                    Err(DeleteError::Referenced(plans)) => {
                        return Err(ApiError::new(
                            Code::Conflict,
                            format!(
                                "subject `{id}` is still part of plan(s) {}; remove it from them first",
                                plans.join(", ")
                            ),
                        ));
                    }
                }
                let id = catalog
                    .subject(id)
                    .map_or_else(|| id.to_owned(), |r| r.id.clone());
                Event::SubjectDeleted { id }
            }
            DocKind::Plan => {
                catalog.check_delete_plan(id).map_err(|_| not_found())?;
                let assigned = self.inner().accounts.read().students_on_plan(id);
                if assigned > 0 {
                    return Err(ApiError::new(
                        Code::Conflict,
                        format!(
                            "{assigned} player(s) are assigned to plan `{id}`; move them first"
                        ),
                    ));
                }
                let id = catalog
                    .plan(id)
                    .map_or_else(|| id.to_owned(), |r| r.id.clone());
                Event::PlanDeleted { id }
            }
        };
        self.commit_and_apply(event).await
    }
}
