//! Imports a generated roster of 1,000,000 members into a SQLite file (and, when
//! `DATABASE_URL` is set, into PostgreSQL) and prints rows per second.
//!
//! ```sh
//! cargo bench --bench roster_import --features sqlite,postgres
//! ROWS=100000 cargo bench --bench roster_import --features sqlite   # a quicker run
//! ```
#![allow(clippy::disallowed_methods)] // a bench measures wall time

use std::fmt::Write as _;
use std::time::Instant;

use afiliado::identity::check_digit;
use afiliado::roster::import;

/// A valid cédula from a counter: province 01–24, third digit 0–5, correct check digit.
fn cedula(n: u64) -> String {
    let province = 1 + (n % 24);
    let third = (n / 24) % 6;
    let rest = (n / 144) % 1_000_000;
    let text = format!("{province:02}{third}{rest:06}");
    let mut nine = [0u8; 9];
    for (d, c) in nine.iter_mut().zip(text.bytes()) {
        *d = c - b'0';
    }
    format!("{text}{}", check_digit(&nine))
}

fn roster(rows: u64) -> String {
    let mut csv = String::with_capacity(rows as usize * 110);
    csv.push_str("member_id,names,birth_date,affiliate_number,employers,contribution_years\n");
    for n in 0..rows {
        let _ = writeln!(
            csv,
            "{},MARÍA JOSÉ ÑÁÑEZ {n},19{:02}-{:02}-{:02},A-{n},Corporación Favorita C.A.|Banco del Pacífico S.A.,2001|2010|2025",
            cedula(n),
            50 + n % 50,
            1 + n % 12,
            1 + n % 28
        );
    }
    csv
}

fn main() {
    let rows: u64 = std::env::var("ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let csv = roster(rows);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        #[cfg(feature = "sqlite")]
        {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}", dir.path().join("roster.db").display());
            let store = afiliado::sqlite::SqliteStore::open(&url)
                .await
                .expect("open sqlite");
            store.migrate().await.expect("migrate");
            let t = Instant::now();
            let report = import(csv.as_bytes(), &store, 5_000).await.expect("import");
            let secs = t.elapsed().as_secs_f64();
            println!(
                "sqlite   : {} rows in {secs:.2} s = {:.0} rows/s (rejected {})",
                report.imported,
                report.imported as f64 / secs,
                report.rejected_total
            );
            let t = Instant::now();
            let again = import(csv.as_bytes(), &store, 5_000)
                .await
                .expect("re-import");
            let secs = t.elapsed().as_secs_f64();
            println!(
                "sqlite   : re-import (idempotent) {} rows in {secs:.2} s = {:.0} rows/s",
                again.imported,
                again.imported as f64 / secs
            );
        }
        #[cfg(feature = "postgres")]
        if let Ok(url) = std::env::var("DATABASE_URL") {
            let store = afiliado::postgres::PostgresStore::open(&url)
                .await
                .expect("open postgres");
            store.migrate().await.expect("migrate");
            let t = Instant::now();
            let report = import(csv.as_bytes(), &store, 5_000).await.expect("import");
            let secs = t.elapsed().as_secs_f64();
            println!(
                "postgres : {} rows in {secs:.2} s = {:.0} rows/s",
                report.imported,
                report.imported as f64 / secs
            );
        }
        let memory = afiliado::memory::MemoryDirectory::new();
        let t = Instant::now();
        let report = import(csv.as_bytes(), &memory, 5_000)
            .await
            .expect("import");
        let secs = t.elapsed().as_secs_f64();
        println!(
            "memory   : {} rows in {secs:.2} s = {:.0} rows/s (parsing + validation bound)",
            report.imported,
            report.imported as f64 / secs
        );
    });
}
