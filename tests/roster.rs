//! Roster CSV import on the in-memory directory (the SQL directories run the same import in
//! their own tests and in the bench).
#![cfg(feature = "memory")]

use afiliado::MemberId;
use afiliado::memory::MemoryDirectory;
use afiliado::ports::MemberDirectory;
use afiliado::roster::{RosterError, import};
use time::macros::date;

const CSV: &str = "\
member_id,names,birth_date,affiliate_number,employers,contribution_years,unused
1710034065,ANA LUCÍA QUISPE TOAPANTA,1988-03-14,A-48213,Banco del Pacífico S.A.|Municipio de Quito,2003|2010|2025,x
0926687857,CHECK DIGIT WRONG,1990-01-01,,,,
0926687856,JORGE ANDRÉS MACÍAS VERA,1979-11-02,,Corporación Favorita C.A.,2001,
EXT20240001,MARÍA JOSÉ ÑÁÑEZ,1995-07-30,,,,
1710034065,,1988-03-14,,,,
1710034065,ANA QUISPE,14/03/1988,,,,
1710034065,ANA QUISPE,1988-03-14,,,20x5,
";

fn id(s: &str) -> MemberId {
    s.parse().unwrap()
}

#[tokio::test]
async fn imports_good_rows_and_reports_bad_ones_by_line() {
    let dir = MemoryDirectory::new();
    let report = import(CSV.as_bytes(), &dir, 2).await.unwrap();
    assert_eq!(report.imported, 3);
    assert_eq!(report.rejected_total, 4);
    let lines: Vec<_> = report
        .rejected
        .iter()
        .map(|r| (r.line, r.reason.split(':').next().unwrap().to_owned()))
        .collect();
    assert_eq!(
        lines,
        [
            (3, "member_id".to_owned()),
            (6, "names".to_owned()),
            (7, "birth_date".to_owned()),
            (8, "contribution_years".to_owned()),
        ]
    );
    let ana = dir.find(&id("1710034065")).await.unwrap().unwrap();
    assert_eq!(ana.names, "ANA LUCÍA QUISPE TOAPANTA");
    assert_eq!(ana.birth_date, date!(1988 - 03 - 14));
    assert_eq!(ana.affiliate_number.as_deref(), Some("A-48213"));
    assert_eq!(
        ana.employers,
        ["Banco del Pacífico S.A.", "Municipio de Quito"]
    );
    assert_eq!(ana.contribution_years, [2003, 2010, 2025]);
    let maria = dir.find(&id("EXT20240001")).await.unwrap().unwrap();
    assert_eq!(maria.names, "MARÍA JOSÉ ÑÁÑEZ");
    assert!(maria.affiliate_number.is_none() && maria.employers.is_empty());
    assert!(dir.find(&id("0926687856")).await.unwrap().is_some());
}

#[tokio::test]
async fn reimporting_is_idempotent_and_later_rows_win() {
    let dir = MemoryDirectory::new();
    let first = import(CSV.as_bytes(), &dir, 1000).await.unwrap();
    let again = import(CSV.as_bytes(), &dir, 1000).await.unwrap();
    assert_eq!(first, again);
    let updated = "member_id,names,birth_date\n1710034065,ANA Q.,1988-03-14\n1710034065,ANA QUISPE T.,1988-03-14\n";
    let report = import(updated.as_bytes(), &dir, 1000).await.unwrap();
    assert_eq!(
        report.imported, 1,
        "duplicates in one batch collapse to the last row"
    );
    assert_eq!(
        dir.find(&id("1710034065")).await.unwrap().unwrap().names,
        "ANA QUISPE T."
    );
}

#[tokio::test]
async fn a_missing_required_column_stops_before_writing() {
    let dir = MemoryDirectory::new();
    let err = import("member_id,names\n1710034065,ANA\n".as_bytes(), &dir, 10)
        .await
        .unwrap_err();
    assert!(matches!(err, RosterError::MissingColumn("birth_date")));
    assert!(dir.find(&id("1710034065")).await.unwrap().is_none());
}

#[tokio::test]
async fn invalid_utf8_rows_are_rejected_not_fatal() {
    let mut bytes = b"member_id,names,birth_date\n".to_vec();
    bytes.extend_from_slice(b"1710034065,ANA \xff\xfe,1988-03-14\n0926687856,JORGE,1979-11-02\n");
    let dir = MemoryDirectory::new();
    let report = import(bytes.as_slice(), &dir, 10).await.unwrap();
    assert_eq!(report.imported, 1);
    assert_eq!(report.rejected[0].line, 2);
}

/// The same import into the SQL directory: accented names survive, bad rows are reported,
/// and re-running the file changes nothing.
#[cfg(feature = "sqlite")]
#[tokio::test]
async fn imports_into_the_sqlite_directory_idempotently() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("roster.db").display());
    let store = afiliado::sqlite::SqliteStore::open(&url).await.unwrap();
    store.migrate().await.unwrap();
    let first = import(CSV.as_bytes(), &store, 2).await.unwrap();
    assert_eq!((first.imported, first.rejected_total), (3, 4));
    let again = import(CSV.as_bytes(), &store, 2).await.unwrap();
    assert_eq!(first, again);
    let maria = store.find(&id("EXT20240001")).await.unwrap().unwrap();
    assert_eq!(maria.names, "MARÍA JOSÉ ÑÁÑEZ");
    // Reopening the file: the roster is durable.
    store.close().await;
    let reopened = afiliado::sqlite::SqliteStore::open(&url).await.unwrap();
    let ana = reopened.find(&id("1710034065")).await.unwrap().unwrap();
    assert_eq!(
        ana.employers,
        ["Banco del Pacífico S.A.", "Municipio de Quito"]
    );
}

/// A valid cédula from a counter (province 01–24, third digit 0–5, correct check digit).
fn cedula(n: u64) -> String {
    let text = format!(
        "{:02}{}{:06}",
        1 + n % 24,
        (n / 24) % 6,
        (n / 144) % 1_000_000
    );
    let mut nine = [0u8; 9];
    for (d, c) in nine.iter_mut().zip(text.bytes()) {
        *d = c - b'0';
    }
    format!("{text}{}", afiliado::identity::check_digit(&nine))
}

/// Header, one good row (line 2), a row with an unbalanced quote (line 3), then good rows on
/// lines 4..=23.
fn roster_with_a_stray_quote() -> (String, Vec<String>) {
    let mut csv = String::from("member_id,names,birth_date,affiliate_number\n");
    let mut good = vec![cedula(1_000)];
    csv.push_str(&format!("{},ANA QUISPE,1988-03-14,A-1\n", good[0]));
    csv.push_str("0926687856,\"JORGE ANDRÉS MACÍAS VERA,1979-11-02,A-2\n");
    for n in 0..20 {
        let id = cedula(n);
        csv.push_str(&format!("{id},MARÍA ÑÁÑEZ {n},1995-07-30,\n"));
        good.push(id);
    }
    (csv, good)
}

async fn assert_stray_quote_spoils_only_its_line(dir: &dyn MemberDirectory) {
    let (csv, good) = roster_with_a_stray_quote();
    let report = import(csv.as_bytes(), dir, 7).await.unwrap();
    assert_eq!(report.rejected_total, 1, "{:?}", report.rejected);
    assert_eq!(report.rejected[0].line, 3);
    assert!(
        report.rejected[0].reason.contains("quote"),
        "{}",
        report.rejected[0].reason
    );
    assert_eq!(
        report.imported, 21,
        "no good row after the bad quote is lost"
    );
    for g in &good {
        assert!(dir.find(&id(g)).await.unwrap().is_some(), "{g} missing");
    }
    assert!(dir.find(&id("0926687856")).await.unwrap().is_none());
}

#[tokio::test]
async fn a_stray_quote_spoils_only_its_own_line() {
    assert_stray_quote_spoils_only_its_line(&MemoryDirectory::new()).await;
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn a_stray_quote_spoils_only_its_own_line_in_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("roster.db").display());
    let store = afiliado::sqlite::SqliteStore::open(&url).await.unwrap();
    store.migrate().await.unwrap();
    assert_stray_quote_spoils_only_its_line(&store).await;
}

/// Every malformed shape of a quoted field is reported on its own line, and the rows around
/// it are imported.
#[tokio::test]
async fn malformed_quoting_and_multi_line_records_are_rejected_per_line() {
    let csv = format!(
        "member_id,names,birth_date\n\
         {a},\"ANA \"\"LA FLACA\"\" QUISPE\",1988-03-14\n\
         {b},\"JORGE\"X,1979-11-02\n\
         {c},MA\"RIA,1995-07-30\n\
         {d},\"SPLIT\n\
         NAME\",1990-01-01\n\
         {e},\"LUIS, PEDRO\",1970-05-05\r\n\
         \n\
         {f},TERESA,1960-06-06",
        a = cedula(1),
        b = cedula(2),
        c = cedula(3),
        d = cedula(4),
        e = cedula(5),
        f = cedula(6),
    );
    let dir = MemoryDirectory::new();
    let report = import(csv.as_bytes(), &dir, 10).await.unwrap();
    let lines: Vec<u64> = report.rejected.iter().map(|r| r.line).collect();
    assert_eq!(lines, [3, 4, 5, 6], "{:?}", report.rejected);
    assert_eq!(report.imported, 3);
    let ana = dir.find(&id(&cedula(1))).await.unwrap().unwrap();
    assert_eq!(ana.names, "ANA \"LA FLACA\" QUISPE");
    let luis = dir.find(&id(&cedula(5))).await.unwrap().unwrap();
    assert_eq!(luis.names, "LUIS, PEDRO");
    assert!(dir.find(&id(&cedula(6))).await.unwrap().is_some());
}

/// Rejection reasons name the field and the rule, never the offending value (no names, IDs,
/// dates or years from the file).
#[tokio::test]
async fn rejection_reasons_never_echo_the_row() {
    let rows = [
        "0926687857,CARLOS ZAMBRANO,1990-01-01,,", // check digit
        "2510034065,ROSA ALVARADO,1990-01-01,,",   // province
        "1790034065,PEDRO CEVALLOS,1990-01-01,,",  // third digit
        "17100340,LUISA PAREDES,1990-01-01,,",     // length
        "EXTRANJERO20240000001,ELENA GUAMÁN,1990-01-01,,", // foreigner code length
        "X!Z9,FERNANDO ORTIZ,1990-01-01,,",        // foreigner code
        "1710034065,,1990-01-01,,",                // names
        "1710034065,ANA QUISPE,31/12/1977,,",      // birth date
        "1710034065,ANA QUISPE,1988-03-14,,2003|19x7", // year
        "1710034065,\"ANA QUISPE,1988-03-14,,",    // quote
        "1710034065,ANA \u{feff}\"QUISPE\",1988-03-14,,", // quote in field
    ];
    let csv = format!(
        "member_id,names,birth_date,affiliate_number,contribution_years\n{}\n",
        rows.join("\n")
    );
    let dir = MemoryDirectory::new();
    let report = import(csv.as_bytes(), &dir, 10).await.unwrap();
    assert_eq!(report.rejected.len(), rows.len(), "{:?}", report.rejected);
    for (row, rejected) in rows.iter().zip(&report.rejected) {
        let reason = &rejected.reason;
        let pieces = row
            .split([',', '|', '"', ' ', '\u{feff}'])
            .filter(|p| p.len() >= 2);
        for piece in pieces {
            assert!(
                !reason.contains(piece),
                "line {}: reason {reason:?} echoes {piece:?}",
                rejected.line
            );
        }
        if reason.starts_with("member_id") {
            assert!(
                !reason.chars().any(|c| c.is_ascii_digit()),
                "line {}: reason {reason:?} echoes digits of the ID",
                rejected.line
            );
        }
    }
}

/// Every size the file sets is bounded: an over-long line (even one with no line break for
/// megabytes), an over-long field and too many fields are rejected on their own line, and the
/// rows after them are imported.
#[tokio::test]
async fn oversized_lines_fields_and_field_counts_are_rejected_with_a_reason() {
    use afiliado::roster::{MAX_FIELD_BYTES, MAX_FIELDS, MAX_LINE_BYTES};
    let long_line = format!("{},{},1990-01-01", cedula(1), "A".repeat(MAX_LINE_BYTES));
    let long_field = format!(
        "{},{},1990-01-01",
        cedula(2),
        "B".repeat(MAX_FIELD_BYTES + 1)
    );
    let max_field = format!("{},{},1990-01-01", cedula(3), "C".repeat(MAX_FIELD_BYTES));
    let many_fields = format!("{},MANY,1990-01-01{}", cedula(4), ",".repeat(MAX_FIELDS));
    let max_fields = format!(
        "{},ENOUGH,1990-01-01{}",
        cedula(5),
        ",".repeat(MAX_FIELDS - 3)
    );
    let csv = format!(
        "member_id,names,birth_date\n{long_line}\n{long_field}\n{max_field}\n{many_fields}\n{max_fields}\n{},OK,1990-01-01\n{}",
        cedula(6),
        "D".repeat(3 * MAX_LINE_BYTES + 17), // a final line with no line break at all
    );
    let dir = MemoryDirectory::new();
    let report = import(csv.as_bytes(), &dir, 10).await.unwrap();
    let got: Vec<(u64, &str)> = report
        .rejected
        .iter()
        .map(|r| (r.line, r.reason.as_str()))
        .collect();
    assert_eq!(got.len(), 4, "{got:?}");
    assert_eq!(got[0].0, 2);
    assert!(got[0].1.contains("longer than"), "{got:?}");
    assert_eq!(got[1].0, 3);
    assert!(got[1].1.starts_with("column 2: longer than"), "{got:?}");
    assert_eq!(got[2].0, 5);
    assert!(got[2].1.contains("fields"), "{got:?}");
    assert_eq!(got[3].0, 8);
    assert_eq!(report.imported, 3);
    for n in [3, 5, 6] {
        assert!(dir.find(&id(&cedula(n))).await.unwrap().is_some(), "{n}");
    }
    // The header obeys the same limits, and a bad header stops the import.
    let header = format!(
        "member_id,names,birth_date,{}\n",
        "x".repeat(MAX_LINE_BYTES)
    );
    let err = import(header.as_bytes(), &dir, 10).await.unwrap_err();
    assert!(
        matches!(err, RosterError::Unreadable { line: 1, .. }),
        "{err}"
    );
    let header = "member_id,\"names,birth_date\n1710034065,ANA,1988-03-14\n";
    let err = import(header.as_bytes(), &dir, 10).await.unwrap_err();
    assert!(
        matches!(err, RosterError::Unreadable { line: 1, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn a_byte_order_mark_and_crlf_line_ends_are_accepted() {
    let csv = format!(
        "\u{feff}member_id,names,birth_date\r\n{},ANA,1988-03-14\r\n\r\n{},LUIS,1970-01-01\r\n",
        cedula(1),
        cedula(2)
    );
    let dir = MemoryDirectory::new();
    let report = import(csv.as_bytes(), &dir, 10).await.unwrap();
    assert_eq!((report.imported, report.rejected_total), (2, 0));
    assert_eq!(
        dir.find(&id(&cedula(2))).await.unwrap().unwrap().names,
        "LUIS"
    );
}

/// A NUL in a name passed the parser, and PostgreSQL then refused the whole batch (every good
/// row of it and of the later batches lost, no line reported). Control and bidirectional
/// override characters are now a rejected row like any other.
async fn assert_control_characters_spoil_only_their_line(dir: &dyn MemberDirectory) {
    let (a, b, c, d) = (cedula(3_001), cedula(3_002), cedula(3_003), cedula(3_004));
    let csv = format!(
        "member_id,names,birth_date,employers\n\
         {a},OK,1990-01-01,\n\
         {b},NUL\0NAME,1990-01-01,\n\
         {c},RLO \u{202E}EMAN,1990-01-01,\n\
         {d},LAST,1990-01-01,Banco\u{7}\n\
         0926687856,JORGE,1979-11-02,\n"
    );
    let report = import(csv.as_bytes(), dir, 2).await.unwrap();
    let lines: Vec<_> = report.rejected.iter().map(|r| r.line).collect();
    assert_eq!(lines, [3, 4, 5]);
    for r in &report.rejected {
        assert!(
            !r.reason.contains("NAME") && !r.reason.contains("Banco"),
            "{}",
            r.reason
        );
    }
    assert_eq!(report.imported, 2);
    assert!(dir.find(&id(&a)).await.unwrap().is_some());
    assert!(dir.find(&id("0926687856")).await.unwrap().is_some());
}

#[tokio::test]
async fn control_characters_spoil_only_their_line() {
    assert_control_characters_spoil_only_their_line(&MemoryDirectory::new()).await;
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn control_characters_spoil_only_their_line_in_postgres() {
    let Ok(url) = std::env::var("DATABASE_URL") else {
        println!("skipped: DATABASE_URL not set");
        assert!(
            std::env::var_os("AFILIADO_REQUIRE_SERVICES").is_none(),
            "DATABASE_URL is not set but AFILIADO_REQUIRE_SERVICES is (CI must run these)"
        );
        return;
    };
    let schema = format!("afiliado_roster_{}", std::process::id());
    let store = afiliado::postgres::PostgresStore::open_with(
        &url,
        afiliado::postgres::PoolSettings::default()
            .max_connections(2)
            .schema(&schema),
    )
    .await
    .unwrap();
    store.migrate().await.unwrap();
    assert_control_characters_spoil_only_their_line(&store).await;
}
