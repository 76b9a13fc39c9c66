//! Content operations: import, read and delete subjects and plans (content.md, the admin
//! API of api.md). Validation and bit index assignment are the content module's; this
//! file orders the writes, journals them and reports.

use serde::Serialize;

use crate::content::{DeleteError, Problem};
use crate::error::{ApiError, Code, FieldProblem};

use super::{Engine, Event};

/// Answer of a subject or plan import.
#[derive(Debug, Clone, Serialize)]
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

impl Engine {
    /// Imports or replaces a subject document (`PUT /api/v1/admin/subjects/{id}`, `memora
    /// import`). Validation reports every problem; nothing is stored on failure.
    ///
    /// # Errors
    /// 422 with every problem, 503 when the journal fails.
    pub async fn put_subject(
        &self,
        path_id: Option<&str>,
        body: &[u8],
    ) -> Result<PutOutcome, ApiError> {
        let _order = self.inner().admin_write.lock().await;
        let catalog = self.catalog();
        let record = catalog.prepare_subject(body).map_err(problems)?;
        if let Some(path_id) = path_id {
            check_path_id(path_id, &record.id)?;
        }
        let existing = catalog.subject(&record.id);
        let created = existing.is_none();
        let outcome = PutOutcome {
            id: record.id.clone(),
            created,
            lessons: None,
            next_bit_index: Some(record.next_bit_index),
        };
        // Re-importing an identical document changes nothing: no event, no rebuild.
        if existing != Some(&record) {
            self.commit_and_apply(Event::SubjectPut(record)).await?;
        }
        let lessons = self.catalog().subject_lesson_count(&outcome.id);
        Ok(PutOutcome { lessons, ..outcome })
    }

    /// Imports or replaces a plan document.
    ///
    /// # Errors
    /// 422 with every problem, 503 when the journal fails.
    pub async fn put_plan(
        &self,
        path_id: Option<&str>,
        body: &[u8],
    ) -> Result<PutOutcome, ApiError> {
        let _order = self.inner().admin_write.lock().await;
        let catalog = self.catalog();
        let record = catalog.prepare_plan(body).map_err(problems)?;
        if let Some(path_id) = path_id {
            check_path_id(path_id, &record.id)?;
        }
        let existing = catalog.plan(&record.id);
        let created = existing.is_none();
        let outcome = PutOutcome {
            id: record.id.clone(),
            created,
            lessons: None,
            next_bit_index: None,
        };
        if existing != Some(&record) {
            self.commit_and_apply(Event::PlanPut(record)).await?;
        }
        Ok(outcome)
    }

    /// The stored subject document, as imported.
    ///
    /// # Errors
    /// 404 `NOT_FOUND`.
    pub fn subject_document(&self, id: &str) -> Result<String, ApiError> {
        self.catalog()
            .subject(id)
            .map(|r| r.doc_json.clone())
            .ok_or_else(|| ApiError::new(Code::NotFound, format!("no subject `{id}`")))
    }

    /// The stored plan document.
    ///
    /// # Errors
    /// 404 `NOT_FOUND`.
    pub fn plan_document(&self, id: &str) -> Result<String, ApiError> {
        self.catalog()
            .plan(id)
            .map(|r| r.doc_json.clone())
            .ok_or_else(|| ApiError::new(Code::NotFound, format!("no plan `{id}`")))
    }

    /// Deletes a subject no plan references.
    ///
    /// # Errors
    /// 404, 409 `CONFLICT` naming the plans that still list it, 503.
    pub async fn delete_subject(&self, id: &str) -> Result<(), ApiError> {
        let _order = self.inner().admin_write.lock().await;
        let catalog = self.catalog();
        match catalog.check_delete_subject(id) {
            Ok(()) => {}
            Err(DeleteError::NotFound) => {
                return Err(ApiError::new(Code::NotFound, format!("no subject `{id}`")));
            }
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
        self.commit_and_apply(Event::SubjectDeleted { id }).await
    }

    /// Deletes a plan no student is assigned to.
    ///
    /// # Errors
    /// 404, 409 `CONFLICT` while students are assigned, 503.
    pub async fn delete_plan(&self, id: &str) -> Result<(), ApiError> {
        let _order = self.inner().admin_write.lock().await;
        let catalog = self.catalog();
        if catalog.check_delete_plan(id).is_err() {
            return Err(ApiError::new(Code::NotFound, format!("no plan `{id}`")));
        }
        let assigned = self.inner().accounts.read().students_on_plan(id);
        if assigned > 0 {
            return Err(ApiError::new(
                Code::Conflict,
                format!("{assigned} player(s) are assigned to plan `{id}`; move them first"),
            ));
        }
        let id = catalog
            .plan(id)
            .map_or_else(|| id.to_owned(), |r| r.id.clone());
        self.commit_and_apply(Event::PlanDeleted { id }).await
    }
}
