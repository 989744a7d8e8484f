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
