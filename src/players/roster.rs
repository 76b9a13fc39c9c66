//! CSV rosters (players.md "Admins create students … in bulk from a CSV roster"): raw
//! bytes → checked rows → a per-row plan against the current players (create, update
//! with the changed fields, unchanged), reporting every problem with its row and column.
//!
//! Pure: the engine passes the current players, the plans and the time-zone check in
//! as functions, and hashes and journals what the plan decides.
//!
//! Shape of the file: a header row naming the columns (any order, case-insensitive;
//! `Display Name` and `display-name` both mean `display_name`), then one student per
//! row. `email` and `display_name` are required columns; `plan_id`, `grade`, `stream`,
//! `timezone`, `password` and `reset_password` are optional. A column that is absent
//! leaves an existing student's value as it is; a blank `plan_id`, `grade` or `stream`
//! cell clears it; a blank `timezone` keeps an existing student's zone (new students get
//! the default); `password` is a new student's password (blank: one is generated);
//! an existing student keeps their password unless `reset_password` (true/false,
//! yes/no, 1/0) is true, which sets the row's password or, when blank, a generated one —
//! so importing the same file again never undoes passwords students changed. Commas, semicolons or tabs separate the fields (sniffed from
//! the header); a UTF-8 byte-order mark is ignored.

use std::borrow::Borrow;
use std::collections::HashMap;

use serde::Serialize;

use super::account::{PlayerRecord, Role, normalize_email};

/// At most this many student rows per file: the whole import is one journal event,
/// which must stay well under the journal's 16 MiB record limit.
pub const MAX_ROWS: usize = 20_000;

/// The columns a roster may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Column {
    /// Login email (required).
    Email,
    /// Display name (required).
    DisplayName,
    /// Plan id.
    PlanId,
    /// Grade label.
    Grade,
    /// Stream label.
    Stream,
    /// IANA time zone.
    Timezone,
    /// A new student's password (blank = generate one).
    Password,
    /// Replace an existing student's password (by the row's, or a generated one).
    ResetPassword,
}

impl Column {
    const ALL: [Column; 8] = [
        Column::Email,
        Column::DisplayName,
        Column::PlanId,
        Column::Grade,
        Column::Stream,
        Column::Timezone,
        Column::Password,
        Column::ResetPassword,
    ];

    /// The column's name in the header and in problem reports.
    pub fn name(self) -> &'static str {
        match self {
            Column::Email => "email",
            Column::DisplayName => "display_name",
            Column::PlanId => "plan_id",
            Column::Grade => "grade",
            Column::Stream => "stream",
            Column::Timezone => "timezone",
            Column::Password => "password",
            Column::ResetPassword => "reset_password",
        }
    }

    fn from_header(raw: &str) -> Option<Column> {
        let name: String = raw
            .trim()
            .chars()
            .map(|c| match c {
                ' ' | '-' => '_',
                c => c.to_ascii_lowercase(),
            })
            .collect();
        Column::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// A problem of one row (or of the header: row 1), reported with its column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RowError {
    /// Spreadsheet row: the header is row 1, the first student row 2.
    pub row: u32,
    /// The column's name, or `""` for the row as a whole.
    pub column: String,
    /// What is wrong.
    pub message: String,
}

/// A password from the file: `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// A cell of an optional column: `None` when the column is absent from the file,
/// `Some(None)` when blank.
type Cell = Option<Option<String>>;

/// A row whose cells have the right shapes (not yet checked against the stored state).
#[derive(Debug, Clone)]
pub struct RowInput {
    /// Spreadsheet row.
    pub row: u32,
    /// Normalized (lowercased) email.
    pub email: String,
    /// Trimmed display name.
    pub display_name: String,
    /// Plan id cell.
    pub plan_id: Cell,
    /// Grade cell.
    pub grade: Cell,
    /// Stream cell.
    pub stream: Cell,
    /// Time zone, if given.
    pub timezone: Option<String>,
    /// Password, if given.
    pub password: Option<Secret>,
    /// `reset_password` was true.
    pub reset_password: bool,
    /// No cell of the row has a problem.
    pub valid: bool,
}

/// A parsed roster: the readable rows, every problem, and the emails of unreadable rows
/// (for the per-row report).
#[derive(Debug, Clone, Default)]
pub struct ParsedRoster {
    /// Rows that could be read (with or without problems: see [`RowInput::valid`]).
    pub rows: Vec<RowInput>,
    /// Rows that could not be read: (row, email cell as written).
    pub bad_rows: Vec<(u32, String)>,
    /// Every problem found.
    pub errors: Vec<RowError>,
}

fn error(row: u32, column: &str, message: impl Into<String>) -> RowError {
    RowError {
        row,
        column: column.to_owned(),
        message: message.into(),
    }
}

/// Picks the field separator from the header line: commas unless the header has none
/// but has semicolons (spreadsheets in many European locales) or tabs.
fn sniff_delimiter(bytes: &[u8]) -> u8 {
    let header = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    let count = |d: u8| header.iter().filter(|&&b| b == d).count();
    if count(b',') > 0 {
        b','
    } else if count(b';') > 0 {
        b';'
    } else if count(b'\t') > 0 {
        b'\t'
    } else {
        b','
    }
}

fn len_error(row: u32, column: Column, value: &str, min: usize, max: usize) -> Option<RowError> {
    let n = value.chars().count();
    (n < min || n > max).then(|| {
        error(
            row,
            column.name(),
            format!("must be {min} to {max} characters"),
        )
    })
}

fn parse_bool(raw: &str) -> Option<bool> {
    match raw.to_ascii_lowercase().as_str() {
        "" | "false" | "no" | "n" | "0" => Some(false),
        "true" | "yes" | "y" | "1" => Some(true),
        _ => None,
    }
}

/// Parses and shape-checks a roster: every problem is reported, the good rows kept.
pub fn parse(bytes: &[u8]) -> ParsedRoster {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut out = ParsedRoster::default();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(sniff_delimiter(bytes))
        .from_reader(bytes);
    let mut records = reader.byte_records();
    let columns = match records.next() {
        None => {
            out.errors
                .push(error(1, "", "the file is empty: expected a header row"));
            return out;
        }
        Some(Err(e)) => {
            out.errors
                .push(error(1, "", format!("unreadable header: {e}")));
            return out;
        }
        Some(Ok(header)) => match header_columns(&header, &mut out.errors) {
            Some(columns) => columns,
            None => return out,
        },
    };
    let mut seen: HashMap<String, u32> = HashMap::new();
    let mut data_rows = 0usize;
    for (k, record) in records.enumerate() {
        let row = u32::try_from(k + 2).unwrap_or(u32::MAX);
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                out.errors
                    .push(error(row, "", format!("unreadable row: {e}")));
                out.bad_rows.push((row, String::new()));
                continue;
            }
        };
        // Spreadsheets export trailing rows of empty cells; they are not students.
        if record.iter().all(|f| f.iter().all(u8::is_ascii_whitespace)) {
            continue;
        }
        data_rows += 1;
        if data_rows > MAX_ROWS {
            out.errors.push(error(
                row,
                "",
                format!("more than {MAX_ROWS} rows: split the file"),
            ));
            break;
        }
        let before = out.errors.len();
        let input = parse_row(row, &record, &columns, &mut seen, &mut out.errors);
        match input {
            Some(mut input) => {
                input.valid = out.errors.len() == before;
                out.rows.push(input);
            }
            None => {
                let email = columns
                    .iter()
                    .position(|c| *c == Some(Column::Email))
                    .and_then(|i| record.get(i))
                    .map(|b| String::from_utf8_lossy(b).trim().to_owned())
                    .unwrap_or_default();
                out.bad_rows.push((row, email));
            }
        }
    }
    if data_rows == 0 && out.errors.is_empty() {
        out.errors
            .push(error(1, "", "the file has a header but no student rows"));
    }
    out
}

/// The column of each header field; `None` (with problems) when unusable.
fn header_columns(
    header: &csv::ByteRecord,
    errors: &mut Vec<RowError>,
) -> Option<Vec<Option<Column>>> {
    let before = errors.len();
    let mut columns = Vec::with_capacity(header.len());
    for field in header {
        let name = String::from_utf8_lossy(field).trim().to_owned();
        match Column::from_header(&name) {
            Some(c) if columns.contains(&Some(c)) => {
                errors.push(error(1, c.name(), "this column appears twice"));
                columns.push(None);
            }
            Some(c) => columns.push(Some(c)),
            None if name.is_empty() => columns.push(None),
            None => {
                let known: Vec<&str> = Column::ALL.iter().map(|c| c.name()).collect();
                errors.push(error(
                    1,
                    &name,
                    format!("unknown column; the columns are {}", known.join(", ")),
                ));
                columns.push(None);
            }
        }
    }
    for required in [Column::Email, Column::DisplayName] {
        if !columns.contains(&Some(required)) {
            errors.push(error(1, required.name(), "this column is required"));
        }
    }
    (errors.len() == before).then_some(columns)
}

/// One row's cells, shape-checked; `None` when the row could not be read at all.
fn parse_row(
    row: u32,
    record: &csv::ByteRecord,
    columns: &[Option<Column>],
    seen: &mut HashMap<String, u32>,
    errors: &mut Vec<RowError>,
) -> Option<RowInput> {
    if record.len() != columns.len() {
        errors.push(error(
            row,
            "",
            format!(
                "has {} fields but the header has {}",
                record.len(),
                columns.len()
            ),
        ));
        return None;
    }
    let mut cells: HashMap<Column, String> = HashMap::new();
    for (field, column) in record.iter().zip(columns) {
        let Some(column) = column else { continue };
        match std::str::from_utf8(field) {
            Ok(text) => {
                // Passwords are taken as written; everything else is trimmed.
                let text = if *column == Column::Password && !text.trim().is_empty() {
                    text
                } else {
                    text.trim()
                };
                cells.insert(*column, text.to_owned());
            }
            Err(_) => errors.push(error(
                row,
                column.name(),
                "not valid UTF-8 text (save the file as UTF-8)",
            )),
        }
    }
    let optional = |c: Column| -> Cell {
        columns
            .contains(&Some(c))
            .then(|| cells.get(&c).filter(|v| !v.is_empty()).cloned())
    };
    let raw_email = cells.get(&Column::Email).cloned().unwrap_or_default();
    let email = match normalize_email(&raw_email) {
        Some(email) => {
            if let Some(first) = seen.get(&email) {
                errors.push(error(
                    row,
                    "email",
                    format!("{email} is also on row {first}"),
                ));
            } else {
                seen.insert(email.clone(), row);
            }
            email
        }
        None => {
            let message = if raw_email.is_empty() {
                "required"
            } else {
                "not a valid email address"
            };
            errors.push(error(row, "email", message));
            raw_email
        }
    };
    let display_name = cells.get(&Column::DisplayName).cloned().unwrap_or_default();
    errors.extend(len_error(row, Column::DisplayName, &display_name, 1, 100));
    let (grade, stream) = (optional(Column::Grade), optional(Column::Stream));
    for (column, cell) in [(Column::Grade, &grade), (Column::Stream, &stream)] {
        if let Some(Some(v)) = cell {
            errors.extend(len_error(row, column, v, 1, 64));
        }
    }
    let password = optional(Column::Password).flatten();
    if let Some(p) = &password {
        errors.extend(len_error(row, Column::Password, p, 8, 256));
    }
    let reset_raw = optional(Column::ResetPassword)
        .flatten()
        .unwrap_or_default();
    let reset_password = parse_bool(&reset_raw).unwrap_or_else(|| {
        errors.push(error(
            row,
            "reset_password",
            "must be true or false (yes/no, 1/0, or blank)",
        ));
        false
    });
    Some(RowInput {
        row,
        email,
        display_name,
        plan_id: optional(Column::PlanId),
        grade,
        stream,
        timezone: optional(Column::Timezone).flatten(),
        password: password.map(Secret),
        reset_password,
        valid: true,
    })
}

/// The roster-managed fields of a student after the import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    /// Display name.
    pub display_name: String,
    /// Plan (canonical id as stored in the catalog).
    pub plan_id: Option<String>,
    /// Grade label.
    pub grade: Option<String>,
    /// Stream label.
    pub stream: Option<String>,
    /// IANA time zone.
    pub timezone: String,
}

/// Where a row's password comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordPlan {
    /// An existing student keeps their password.
    Keep,
    /// The file gives it.
    Given(Secret),
    /// One is generated (shown once; must be changed at first login).
    Generate,
}

impl PasswordPlan {
    /// `kept`, `given` or `generated`, for reports.
    pub fn label(&self) -> &'static str {
        match self {
            PasswordPlan::Keep => "kept",
            PasswordPlan::Given(_) => "given",
            PasswordPlan::Generate => "generated",
        }
    }
}

/// A changed field of an existing student (`from`/`to` are absent for the password).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Change {
    /// Field name.
    #[schema(value_type = String)]
    pub field: &'static str,
    /// Old value.
    pub from: Option<String>,
    /// New value.
    pub to: Option<String>,
}

/// What happens to one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A new student.
    Create {
        /// Its fields.
        target: Target,
        /// Its password.
        password: PasswordPlan,
    },
    /// An existing student changes.
    Update {
        /// The student.
        player_id: String,
        /// All roster-managed fields after the change.
        target: Target,
        /// What changes.
        changes: Vec<Change>,
        /// Their password.
        password: PasswordPlan,
    },
    /// An existing student stays as they are.
    Unchanged {
        /// The student.
        player_id: String,
    },
    /// The row has problems (listed in the plan's errors).
    Error,
}

impl Outcome {
    /// `create`, `update`, `unchanged` or `error`.
    pub fn action(&self) -> &'static str {
        match self {
            Outcome::Create { .. } => "create",
            Outcome::Update { .. } => "update",
            Outcome::Unchanged { .. } => "unchanged",
            Outcome::Error => "error",
        }
    }
}

/// One row of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedRow {
    /// Spreadsheet row.
    pub row: u32,
    /// Normalized email (as written when it is not valid).
    pub email: String,
    /// What happens.
    pub outcome: Outcome,
}

/// Every row's outcome in file order, and every problem.
#[derive(Debug, Clone, Default)]
pub struct RosterPlan {
    /// Rows in file order.
    pub rows: Vec<PlannedRow>,
    /// Problems, by row.
    pub errors: Vec<RowError>,
}

/// What the plan needs to know about the stored state.
pub struct World<'a, P> {
    /// The player with this normalized email, if any.
    pub player: &'a dyn Fn(&str) -> Option<P>,
    /// The catalog's id of this plan (case-insensitive lookup), if it exists.
    pub plan: &'a dyn Fn(&str) -> Option<String>,
    /// Whether this is a known IANA time zone.
    pub timezone_ok: &'a dyn Fn(&str) -> bool,
    /// Time zone of new students without one.
    pub default_timezone: &'a str,
}

/// Decides every row against the stored state: creates, updates with their changed
/// fields, unchanged rows, and the problems only the state reveals (unknown plan or time
/// zone, an email that belongs to a teacher or admin).
pub fn plan<P: Borrow<PlayerRecord>>(parsed: &ParsedRoster, world: &World<'_, P>) -> RosterPlan {
    let mut out = RosterPlan {
        rows: Vec::with_capacity(parsed.rows.len() + parsed.bad_rows.len()),
        errors: parsed.errors.clone(),
    };
    for input in &parsed.rows {
        let before = out.errors.len();
        let outcome = plan_row(input, world, &mut out.errors);
        out.rows.push(PlannedRow {
            row: input.row,
            email: input.email.clone(),
            outcome: if input.valid && out.errors.len() == before {
                outcome
            } else {
                Outcome::Error
            },
        });
    }
    for (row, email) in &parsed.bad_rows {
        out.rows.push(PlannedRow {
            row: *row,
            email: email.clone(),
            outcome: Outcome::Error,
        });
    }
    out.rows.sort_by_key(|r| r.row);
    out.errors.sort_by_key(|e| e.row);
    out
}

fn plan_row<P: Borrow<PlayerRecord>>(
    input: &RowInput,
    world: &World<'_, P>,
    errors: &mut Vec<RowError>,
) -> Outcome {
    let row = input.row;
    let plan_id = match &input.plan_id {
        Some(Some(id)) => match (world.plan)(id) {
            Some(canonical) => Some(Some(canonical)),
            None => {
                errors.push(error(row, "plan_id", format!("no plan `{id}`")));
                None
            }
        },
        other => other.clone(),
    };
    if let Some(tz) = &input.timezone
        && !(world.timezone_ok)(tz)
    {
        errors.push(error(
            row,
            "timezone",
            format!("`{tz}` is not a known IANA time zone"),
        ));
    }
    let existing = (world.player)(&input.email);
    let Some(existing) = existing else {
        return Outcome::Create {
            target: Target {
                display_name: input.display_name.clone(),
                plan_id: plan_id.flatten(),
                grade: input.grade.clone().flatten(),
                stream: input.stream.clone().flatten(),
                timezone: input
                    .timezone
                    .clone()
                    .unwrap_or_else(|| world.default_timezone.to_owned()),
            },
            password: match &input.password {
                Some(p) => PasswordPlan::Given(p.clone()),
                None => PasswordPlan::Generate,
            },
        };
    };
    let p: &PlayerRecord = existing.borrow();
    if p.role != Role::Student {
        let role = match p.role {
            Role::Admin => "an admin",
            _ => "a teacher",
        };
        errors.push(error(
            row,
            "email",
            format!(
                "{} belongs to {role}: rosters manage students only",
                p.email
            ),
        ));
    }
    let target = Target {
        display_name: input.display_name.clone(),
        plan_id: plan_id.unwrap_or_else(|| p.plan_id.clone()),
        grade: input.grade.clone().unwrap_or_else(|| p.grade.clone()),
        stream: input.stream.clone().unwrap_or_else(|| p.stream.clone()),
        timezone: input.timezone.clone().unwrap_or_else(|| p.timezone.clone()),
    };
    let mut changes = Vec::new();
    let mut compare = |field: &'static str, from: &Option<String>, to: &Option<String>| {
        if from != to {
            changes.push(Change {
                field,
                from: from.clone(),
                to: to.clone(),
            });
        }
    };
    compare(
        "display_name",
        &Some(p.display_name.clone()),
        &Some(target.display_name.clone()),
    );
    compare("plan_id", &p.plan_id, &target.plan_id);
    compare("grade", &p.grade, &target.grade);
    compare("stream", &p.stream, &target.stream);
    compare(
        "timezone",
        &Some(p.timezone.clone()),
        &Some(target.timezone.clone()),
    );
    // Re-importing last term's file must not undo the passwords students chose since:
    // an existing student's password changes only when the row asks for it.
    let password = match (&input.password, input.reset_password) {
        (_, false) => PasswordPlan::Keep,
        (Some(given), true) => PasswordPlan::Given(given.clone()),
        (None, true) => PasswordPlan::Generate,
    };
    if password != PasswordPlan::Keep {
        changes.push(Change {
            field: "password",
            from: None,
            to: None,
        });
    }
    if changes.is_empty() {
        Outcome::Unchanged {
            player_id: p.id.clone(),
        }
    } else {
        Outcome::Update {
            player_id: p.id.clone(),
            target,
            changes,
            password,
        }
    }
}

#[cfg(test)]
mod tests;
