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
//! # Parsing rules
//!
//! The file is read one physical line at a time and **each line is one record**, so a
//! malformed line can only spoil itself:
//!
//! * Lines end with LF or CRLF. Empty lines are skipped. A UTF-8 byte-order mark before the
//!   header is ignored. A carriage return anywhere else in a line rejects the line (other
//!   tools would read it as a line break).
//! * Fields are separated by `,`. A field may be enclosed in `"` (to hold a `,`); inside it,
//!   `""` stands for one `"`. The closing quote must end the field (be followed by `,` or the
//!   end of the line). A `"` inside an unquoted field rejects the line.
//! * **Quoted fields cannot span lines.** A line whose quote is not closed on the same line
//!   is rejected ("unclosed quote"), and the following lines are judged on their own. A
//!   roster has no use for multi-line values, and this keeps one stray quote from swallowing
//!   the rest of the file.
//! * Each line must be valid UTF-8.
//!
//! # Limits
//!
//! Every size a file controls is bounded; a line over a limit is rejected with a reason (the
//! header line stops the import with [`RosterError::Unreadable`] instead):
//!
//! | limit | value |
//! |---|---|
//! | bytes per line, without the line break ([`MAX_LINE_BYTES`]) | 64 KiB |
//! | bytes per field, after unquoting ([`MAX_FIELD_BYTES`]) | 16 KiB |
//! | fields per line ([`MAX_FIELDS`]) | 64 |
//!
//! An over-long line is skipped without being buffered whole. The number of rows is not
//! capped: the institution's registry has millions of members, and memory use stays bounded
//! by `batch_size` and [`MAX_REPORTED`] whatever the length of the file.
//!
//! Rejection reasons name the line, the field or column and the broken rule, never the
//! value found, so a report can be logged or shown to staff without copying member data.
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

use std::collections::HashMap;
use std::io::{BufRead, BufReader, ErrorKind, Read};

use time::Date;
use time::macros::format_description;

use crate::identity::{CedulaErrorKind, ForeignerCodeError, MemberId, MemberIdError};
use crate::ports::{MemberDirectory, MemberFacts, StoreError};

/// A row that was not imported.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RejectedRow {
    /// 1-based line number in the file (the header is line 1).
    pub line: u64,
    /// Why: the field or column and the rule it broke (never the value found).
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

/// Longest line accepted, in bytes, without its line break (`\n` or `\r\n`).
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// Longest field accepted, in bytes, after removing its quotes.
pub const MAX_FIELD_BYTES: usize = 16 * 1024;

/// Most fields accepted on one line (the header included).
pub const MAX_FIELDS: usize = 64;

/// Why an import stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RosterError {
    /// The header row is missing a required column.
    #[error("header: missing column `{0}`")]
    MissingColumn(&'static str),
    /// The file cannot be read (I/O error), or its header line breaks a parsing rule or a
    /// limit.
    #[error("line {line}: {reason}")]
    Unreadable {
        /// Where.
        line: u64,
        /// What (never the text of the line).
        reason: String,
    },
    /// The directory failed; batches before it were written.
    #[error("directory: {0}")]
    Store(#[from] StoreError),
}

/// Why a line is not a well-formed record. Never holds text from the line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LineError {
    TooLong,
    NotUtf8,
    CarriageReturn,
    TooManyFields,
    FieldTooLong { column: usize },
    UnclosedQuote { column: usize },
    QuoteInUnquotedField { column: usize },
    TextAfterClosingQuote { column: usize },
}

impl std::fmt::Display for LineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooLong => write!(f, "line: longer than {MAX_LINE_BYTES} bytes"),
            Self::NotUtf8 => f.write_str("line: not valid UTF-8"),
            Self::CarriageReturn => f.write_str("line: carriage return inside the line"),
            Self::TooManyFields => write!(f, "line: more than {MAX_FIELDS} fields"),
            Self::FieldTooLong { column } => {
                write!(f, "column {column}: longer than {MAX_FIELD_BYTES} bytes")
            }
            Self::UnclosedQuote { column } => write!(
                f,
                "column {column}: unclosed quote (a quoted field must end on the same line)"
            ),
            Self::QuoteInUnquotedField { column } => write!(
                f,
                "column {column}: quote inside an unquoted field (enclose the field in quotes and double the quote)"
            ),
            Self::TextAfterClosingQuote { column } => {
                write!(f, "column {column}: text after the closing quote")
            }
        }
    }
}

/// The fields of one line, in one buffer.
#[derive(Debug, Default)]
struct Record {
    text: String,
    ends: Vec<usize>,
}

impl Record {
    fn get(&self, i: usize) -> Option<&str> {
        let end = *self.ends.get(i)?;
        let start = match i.checked_sub(1) {
            Some(prev) => *self.ends.get(prev)?,
            None => 0,
        };
        self.text.get(start..end)
    }

    fn iter(&self) -> impl Iterator<Item = &str> {
        (0..self.ends.len()).filter_map(|i| self.get(i))
    }
}

#[derive(Clone, Copy)]
enum State {
    FieldStart,
    Unquoted,
    Quoted,
    /// A `"` inside a quoted field: either the first of `""` or the closing quote.
    QuoteInQuoted,
}

/// Parses one line (without its line break) as one record.
fn parse_line(line: &str, rec: &mut Record) -> Result<(), LineError> {
    rec.text.clear();
    rec.ends.clear();
    if line.contains('\r') {
        return Err(LineError::CarriageReturn);
    }
    let mut column: usize = 1;
    let mut field_start = 0;
    let mut state = State::FieldStart;
    let end_field = |rec: &mut Record, column: &mut usize, field_start: &mut usize| {
        if rec.ends.len() >= MAX_FIELDS {
            return Err(LineError::TooManyFields);
        }
        rec.ends.push(rec.text.len());
        *field_start = rec.text.len();
        *column = column.saturating_add(1);
        Ok(())
    };
    for c in line.chars() {
        state = match (state, c) {
            (State::FieldStart, '"') => State::Quoted,
            (State::FieldStart | State::Unquoted | State::QuoteInQuoted, ',') => {
                end_field(rec, &mut column, &mut field_start)?;
                State::FieldStart
            }
            (State::Unquoted, '"') => {
                return Err(LineError::QuoteInUnquotedField { column });
            }
            (State::FieldStart | State::Unquoted, c) => {
                rec.text.push(c);
                State::Unquoted
            }
            (State::Quoted, '"') => State::QuoteInQuoted,
            (State::Quoted, c) => {
                rec.text.push(c);
                State::Quoted
            }
            (State::QuoteInQuoted, '"') => {
                rec.text.push('"');
                State::Quoted
            }
            (State::QuoteInQuoted, _) => return Err(LineError::TextAfterClosingQuote { column }),
        };
        if rec.text.len().saturating_sub(field_start) > MAX_FIELD_BYTES {
            return Err(LineError::FieldTooLong { column });
        }
    }
    if let State::Quoted = state {
        return Err(LineError::UnclosedQuote { column });
    }
    end_field(rec, &mut column, &mut field_start)
}

/// The outcome of reading one physical line.
enum Read1 {
    Eof,
    /// A line is in the buffer, its line break removed.
    Line,
    /// The line exceeded [`MAX_LINE_BYTES`]; the rest of it was skipped.
    TooLong,
}

/// Reads one physical line into `buf`, buffering at most [`MAX_LINE_BYTES`] + 1 bytes.
fn read_line<B: BufRead>(reader: &mut B, buf: &mut Vec<u8>) -> std::io::Result<Read1> {
    buf.clear();
    // One byte over the limit, so a line of exactly MAX_LINE_BYTES keeps its `\n`.
    let cap = u64::try_from(MAX_LINE_BYTES)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    let n = reader.by_ref().take(cap).read_until(b'\n', buf)?;
    if n == 0 {
        return Ok(Read1::Eof);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
    } else if buf.len() > MAX_LINE_BYTES {
        skip_rest_of_line(reader)?;
        return Ok(Read1::TooLong);
    }
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok(Read1::Line)
}

/// Discards input up to and including the next `\n` (or to the end of the input).
fn skip_rest_of_line<B: BufRead>(reader: &mut B) -> std::io::Result<()> {
    loop {
        let (used, done) = {
            let available = match reader.fill_buf() {
                Ok(a) => a,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if available.is_empty() {
                return Ok(());
            }
            match available.iter().position(|&b| b == b'\n') {
                Some(i) => (i.saturating_add(1), true),
                None => (available.len(), false),
            }
        };
        reader.consume(used);
        if done {
            return Ok(());
        }
    }
}

/// Reads the next non-empty line and parses it. `line` is advanced to its number.
fn next_record<B: BufRead>(
    reader: &mut B,
    buf: &mut Vec<u8>,
    rec: &mut Record,
    line: &mut u64,
) -> Result<Option<Result<(), LineError>>, RosterError> {
    loop {
        *line = line.saturating_add(1);
        let read = read_line(reader, buf).map_err(|e| RosterError::Unreadable {
            line: *line,
            reason: e.to_string(),
        })?;
        let text = match read {
            Read1::Eof => return Ok(None),
            Read1::TooLong => return Ok(Some(Err(LineError::TooLong))),
            Read1::Line => buf.as_slice(),
        };
        // A byte-order mark may start the file.
        let text = match (*line, text.strip_prefix("\u{feff}".as_bytes())) {
            (1, Some(rest)) => rest,
            _ => text,
        };
        if text.is_empty() {
            continue;
        }
        let Ok(text) = std::str::from_utf8(text) else {
            return Ok(Some(Err(LineError::NotUtf8)));
        };
        return Ok(Some(parse_line(text, rec)));
    }
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

/// The rule a member ID broke, without any part of the ID.
fn member_id_rule(e: &MemberIdError) -> &'static str {
    match e {
        MemberIdError::Cedula(c) => match c.kind() {
            CedulaErrorKind::Empty => "empty",
            CedulaErrorKind::InvalidCharacter => {
                "cédula holds a character other than a digit, space or hyphen"
            }
            CedulaErrorKind::WrongLength => "a cédula must have ten digits",
            CedulaErrorKind::InvalidProvince => "cédula province code is not a valid province",
            CedulaErrorKind::InvalidThirdDigit => "cédula third digit is out of range",
            CedulaErrorKind::CheckDigitMismatch => "cédula check digit does not match",
        },
        MemberIdError::Foreigner(f) => match f {
            ForeignerCodeError::Empty => "empty",
            ForeignerCodeError::TooShort { .. } => "foreigner code is too short",
            ForeignerCodeError::TooLong { .. } => "foreigner code is too long",
            ForeignerCodeError::InvalidCharacter { .. } => {
                "foreigner code holds a character other than a letter or digit"
            }
            ForeignerCodeError::NoLetter => "foreigner code must contain a letter",
        },
    }
}

fn parse_row(c: &Columns, rec: &Record) -> Result<MemberFacts, String> {
    if let Some(at) = rec
        .iter()
        .position(|f| f.chars().any(crate::identity::is_forbidden_char))
    {
        return Err(format!(
            "column {}: control or bidirectional-override character",
            at.saturating_add(1)
        ));
    }
    let field = |i: usize| rec.get(i).map(str::trim).unwrap_or("");
    let member: MemberId = field(c.id)
        .parse()
        .map_err(|e| format!("member_id: {}", member_id_rule(&e)))?;
    let names = field(c.names);
    if names.is_empty() {
        return Err("names: empty".into());
    }
    let birth = Date::parse(field(c.birth), format_description!("[year]-[month]-[day]"))
        .map_err(|_| "birth_date: expected a valid date as YYYY-MM-DD".to_owned())?;
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
                    .ok_or_else(|| {
                        "contribution_years: an entry is not a year from 1900 to 2200".to_owned()
                    })
            })
            .collect::<Result<_, _>>()?,
        None => Vec::new(),
    };
    Ok(facts)
}

/// Imports a roster CSV into `directory`, `batch_size` rows per write.
///
/// See the [module documentation](self) for the format, the parsing rules and the limits.
/// Rows that break a rule are skipped and listed in the report with their line number; the
/// import stops only on an I/O error, a bad header line or a directory error.
pub async fn import<R: Read>(
    reader: R,
    directory: &dyn MemberDirectory,
    batch_size: usize,
) -> Result<ImportReport, RosterError> {
    let batch_size = batch_size.max(1);
    let mut reader = BufReader::with_capacity(MAX_LINE_BYTES, reader);
    let mut buf = Vec::new();
    let mut record = Record::default();
    let mut line = 0u64;
    match next_record(&mut reader, &mut buf, &mut record, &mut line)? {
        None | Some(Ok(())) => {}
        Some(Err(e)) => {
            return Err(RosterError::Unreadable {
                line,
                reason: e.to_string(),
            });
        }
    }
    let headers = std::mem::take(&mut record);
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
    let mut batch: Vec<MemberFacts> = Vec::with_capacity(batch_size.min(MAX_BATCH_PREALLOC));
    // A member listed twice in one batch: the later row wins (as it would across batches).
    let mut in_batch: HashMap<MemberId, usize> = HashMap::new();
    while let Some(parsed) = next_record(&mut reader, &mut buf, &mut record, &mut line)? {
        if let Err(e) = parsed {
            reject(&mut report, line, e.to_string());
            continue;
        }
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
            let written = directory.enroll_many(std::mem::take(&mut batch)).await?;
            report.imported = report.imported.saturating_add(written);
        }
    }
    if !batch.is_empty() {
        let written = directory.enroll_many(batch).await?;
        report.imported = report.imported.saturating_add(written);
    }
    Ok(report)
}

/// The most batch slots reserved up front (the batch still grows to `batch_size`).
const MAX_BATCH_PREALLOC: usize = 16 * 1024;

fn reject(report: &mut ImportReport, line: u64, reason: String) {
    report.rejected_total = report.rejected_total.saturating_add(1);
    if report.rejected.len() < MAX_REPORTED {
        report.rejected.push(RejectedRow { line, reason });
    }
}
