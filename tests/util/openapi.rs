//! Reading the served OpenAPI document (`GET /openapi.json`) as a list of operations,
//! so that route tests enumerate what the server documents instead of a hand-kept copy.

use std::collections::HashMap;

use memora::http::openapi::{self, Access};
use serde_json::Value;

use super::api::Api;

/// One documented (method, path) with what the tests need of it.
#[derive(Debug, Clone)]
pub struct Operation {
    /// Upper-case HTTP method.
    pub method: reqwest::Method,
    /// The OpenAPI path template (`/api/v1/admin/players/{id}`).
    pub path: String,
    /// Who may call it (from its `security`).
    pub access: Access,
    /// Role names of a staff route's requirement (`["admin"]`).
    pub roles: Vec<String>,
    /// Names of its path parameters, in template order.
    pub path_params: Vec<String>,
    /// The request body's first media type, if it takes one.
    pub body_type: Option<String>,
    /// The operation object itself.
    pub doc: Value,
}

impl Operation {
    /// `GET /api/v1/me`-style label for messages.
    pub fn label(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// The stable codes the document lists for `status`.
    pub fn codes(&self, status: u16) -> Vec<String> {
        let description = self.doc["responses"][status.to_string()]["description"]
            .as_str()
            .unwrap_or_default();
        openapi::codes_in(description)
    }

    /// The path with every `{param}` replaced from `values` (a missing name panics:
    /// the caller must say what a plausible value is).
    pub fn fill(&self, values: &HashMap<String, String>) -> String {
        let mut out = self.path.clone();
        for name in &self.path_params {
            let value = values
                .get(name)
                .unwrap_or_else(|| panic!("{}: no value for `{{{name}}}`", self.label()));
            out = out.replace(&format!("{{{name}}}"), value);
        }
        out
    }

    /// A request body that parses as the right media type (its content does not
    /// matter to tests that are refused before the handler runs).
    pub fn placeholder_body(&self) -> Option<(String, Vec<u8>)> {
        self.body_type.as_ref().map(|ct| {
            let bytes = if ct.contains("json") {
                b"{}".to_vec()
            } else {
                b"bytes".to_vec()
            };
            (ct.clone(), bytes)
        })
    }
}

/// The names of a template's `{params}`, in order.
pub fn template_params(path: &str) -> Vec<String> {
    path.split('{')
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name.to_owned()))
        .collect()
}

/// Fetches the served document.
///
/// # Panics
/// If it cannot be fetched or is not JSON: every test using it needs it.
pub async fn document(api: &Api) -> Value {
    let (status, doc) = api
        .call(reqwest::Method::GET, openapi::DOCUMENT_PATH, None, None)
        .await
        .unwrap_or_else(|e| panic!("GET {}: {e}", openapi::DOCUMENT_PATH));
    assert_eq!(status, 200);
    doc
}

/// Every operation of `doc`, by path then method.
pub fn operations(doc: &Value) -> Vec<Operation> {
    let mut out = Vec::new();
    let paths = doc["paths"].as_object().expect("paths");
    for (path, item) in paths {
        for (method, op) in item.as_object().expect("path item") {
            if !openapi::is_method(method) {
                continue;
            }
            let body_type = op["requestBody"]["content"]
                .as_object()
                .and_then(|c| c.keys().next().cloned());
            out.push(Operation {
                method: method.to_uppercase().parse().expect("method"),
                path: path.clone(),
                access: openapi::access(op),
                roles: openapi::roles(op),
                path_params: template_params(path),
                body_type,
                doc: op.clone(),
            });
        }
    }
    out
}
