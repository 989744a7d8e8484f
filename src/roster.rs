//! Member roster import: loads the institution's registry from CSV into a
//! [`MemberDirectory`] in batches.
//!
//! # Format
//!
//! UTF-8 CSV with a header row and these columns, in any order (extra columns are ignored):
//!
//! | column | required | content |
//! |---|---|---|
//! | `member_id` | yes | cédula (10 digits, separators allowed) or IESS foreigner code |
//! | `names` | yes | full names as registered, accents kept (`MARÍA JOSÉ ÑÁÑEZ`) |
//! | `birth_date` | yes | `YYYY-MM-DD` |
//! | `affiliate_number` | no | affiliate number on the member's credential (ISSPOL) |
//! | `employers` | no | employers on record, separated by `\|` |
//! | `contribution_years` | no | years with contributions, separated by `\|` |
//!
//! ```text
//! member_id,names,birth_date,affiliate_number,employers,contribution_years
//! 1710034065,ANA LUCÍA QUISPE TOAPANTA,1988-03-14,A-48213,Banco del Pacífico S.A.|Municipio de Quito,2003|2010|2025
//! ```
//!
//! Each batch is written in one transaction by SQL directories
//! ([`MemberDirectory::enroll_many`]). A bad row is reported with its line number and reason
//! and skipped; good rows are kept. Importing the same file again is idempotent (members are
//! replaced by their ID).
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
//! use afiliado::memory::MemoryDirectory;
//! use afiliado::roster::import;
//!
//! let csv = "member_id,names,birth_date\n1710034065,ANA QUISPE,1988-03-14\n0926687857,X,1990-01-01\n";
//! let directory = MemoryDirectory::new();
//! let report = import(csv.as_bytes(), &directory, 1000).await?;
//! assert_eq!(report.imported, 1);
//! assert_eq!(report.rejected[0].line, 3); // wrong check digit
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io::Read;

use time::Date;
use time::macros::format_description;

use crate::identity::MemberId;
use crate::ports::{MemberDirectory, MemberFacts, StoreError};

/// A row that was not imported.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RejectedRow {
    /// 1-based line number in the file (the header is line 1).
    pub line: u64,
    /// Why.
    pub reason: String,
}

/// What an [`import`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImportReport {
    /// Rows written (new or replaced).
    pub imported: u64,
    /// Rows skipped, with their line and reason (at most [`MAX_REPORTED`] kept).
    pub rejected: Vec<RejectedRow>,
    /// Rows skipped in total (may exceed `rejected.len()`).
    pub rejected_total: u64,
}

/// How many rejected rows an [`ImportReport`] lists individually.
pub const MAX_REPORTED: usize = 10_000;

/// Why an import stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RosterError {
    /// The header row is missing a required column.
    #[error("header: missing column `{0}`")]
    MissingColumn(&'static str),
    /// The file is not readable CSV (I/O or encoding error).
    #[error("line {line}: {reason}")]
    Unreadable {
        /// Where.
        line: u64,
        /// What.
        reason: String,
    },
    /// The directory failed; batches before it were written.
    #[error("directory: {0}")]
    Store(#[from] StoreError),
}

struct Columns {
    id: usize,
    names: usize,
    birth: usize,
    affiliate: Option<usize>,
    employers: Option<usize>,
    years: Option<usize>,
}

fn split_list(s: &str) -> impl Iterator<Item = &str> {
    s.split('|').map(str::trim).filter(|p| !p.is_empty())
}

fn parse_row(c: &Columns, rec: &csv::StringRecord) -> Result<MemberFacts, String> {
    let field = |i: usize| rec.get(i).map(str::trim).unwrap_or("");
    let member: MemberId = field(c.id).parse().map_err(|e| format!("member_id: {e}"))?;
    let names = field(c.names);
    if names.is_empty() {
        return Err("names: empty".into());
    }
    let birth = Date::parse(field(c.birth), format_description!("[year]-[month]-[day]"))
        .map_err(|_| "birth_date: expected YYYY-MM-DD".to_owned())?;
    let mut facts = MemberFacts::new(member, names, birth);
    facts.affiliate_number = c
        .affiliate
        .map(field)
        .filter(|a| !a.is_empty())
        .map(str::to_owned);
    facts.employers = c
        .employers
        .map(|i| split_list(field(i)).map(str::to_owned).collect())
        .unwrap_or_default();
    facts.contribution_years = match c.years {
        Some(i) => split_list(field(i))
            .map(|y| {
                y.parse::<u16>()
                    .ok()
                    .filter(|y| (1900..=2200).contains(y))
                    .ok_or_else(|| format!("contribution_years: `{y}` is not a year"))
            })
            .collect::<Result<_, _>>()?,
        None => Vec::new(),
    };
    Ok(facts)
}

/// Imports a roster CSV into `directory`, `batch_size` rows per write.
pub async fn import<R: Read>(
    reader: R,
    directory: &dyn MemberDirectory,
    batch_size: usize,
) -> Result<ImportReport, RosterError> {
    let batch_size = batch_size.max(1);
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(reader);
    let headers = csv
        .headers()
        .map_err(|e| RosterError::Unreadable {
            line: 1,
            reason: e.to_string(),
        })?
        .clone();
    let find = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(name))
    };
    let columns = Columns {
        id: find("member_id").ok_or(RosterError::MissingColumn("member_id"))?,
        names: find("names").ok_or(RosterError::MissingColumn("names"))?,
        birth: find("birth_date").ok_or(RosterError::MissingColumn("birth_date"))?,
        affiliate: find("affiliate_number"),
        employers: find("employers"),
        years: find("contribution_years"),
    };
    let mut report = ImportReport::default();
    let mut batch: Vec<MemberFacts> = Vec::with_capacity(batch_size);
    // A member listed twice in one batch: the later row wins (as it would across batches).
    let mut in_batch: std::collections::HashMap<MemberId, usize> = std::collections::HashMap::new();
    let mut record = csv::StringRecord::new();
    loop {
        let line = csv.position().line();
        match csv.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) if e.is_io_error() => {
                return Err(RosterError::Unreadable {
                    line,
                    reason: e.to_string(),
                });
            }
            Err(e) => {
                reject(&mut report, line, e.to_string());
                continue;
            }
        }
        let line = record.position().map_or(line, |p| p.line());
        match parse_row(&columns, &record) {
            Ok(facts) => match in_batch.get(&facts.member) {
                Some(&i) => {
                    if let Some(slot) = batch.get_mut(i) {
                        *slot = facts;
                    }
                }
                None => {
                    in_batch.insert(facts.member.clone(), batch.len());
                    batch.push(facts);
                }
            },
            Err(reason) => reject(&mut report, line, reason),
        }
        if batch.len() >= batch_size {
            in_batch.clear();
            report.imported += directory.enroll_many(std::mem::take(&mut batch)).await?;
        }
    }
    if !batch.is_empty() {
        report.imported += directory.enroll_many(batch).await?;
    }
    Ok(report)
}

fn reject(report: &mut ImportReport, line: u64, reason: String) {
    report.rejected_total += 1;
    if report.rejected.len() < MAX_REPORTED {
        report.rejected.push(RejectedRow { line, reason });
    }
}
