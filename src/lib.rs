//! # afiliado
//!
//! The online-account lifecycle of members ("afiliados") of Ecuador's social-security
//! institutions — IESS and ISSPOL — as an embeddable library: registration against the member
//! registry by cédula, activation by emailed link and code, login with lockout, unlock,
//! password recovery with identity checks, and staff operations.
//!
//! The rules of both real portals ship as presets ([`Policy::isspol()`], [`Policy::iess()`]),
//! next to a standards-aligned one ([`Policy::recommended()`]); every number is a knob.
//!
//! ## Data flow
//!
//! ```text
//!  host (web portal, staff console, batch job)
//!    │ raw input: "1710034065", "Clave2026", link token from the URL …
//!    ▼
//!  boundary parsers ── Cedula / MemberId / Email / MobilePhone / Password / Token
//!    │ typed values (errors say which rule failed)
//!    ▼
//!  service::AccountService (async): reads the clock once, loads the record, verifies the
//!    │ password (argon2, bounded pool off the executor), digests tokens (HMAC-SHA-256)
//!    │ Command { verified facts, digests }, now, &Policy
//!    ▼
//!  core::decide ── pure, total, deterministic ──▶ Decision { next record, outcome, effects }
//!    │                                            (or Denied: nothing changes)
//!    ▼
//!  store: commit(record, expected version, outbox notices, audit events) atomically
//!    │                            (memory · SQLite · PostgreSQL; link secrets sealed)
//!    ▼
//!  OutboxDispatcher ── render (es-EC / en, text + HTML) ──▶ Mailer (SMTP, .eml, stdout)
//! ```
//!
//! ## Example: the ISSPOL lockout rule, on virtual time
//!
//! ```
//! use afiliado::core::{decide, AccountRecord, AccountState, Command, Outcome};
//! use afiliado::crypto::{HashParams, hash_password};
//! use afiliado::{MemberId, Policy};
//! use rand::SeedableRng;
//! use time::macros::datetime;
//! use time::Duration;
//!
//! let policy = Policy::isspol();
//! # let mut rng = rand::rngs::StdRng::seed_from_u64(7);
//! # let hash = hash_password(b"Clave2026x", &HashParams::danger_insecure_for_tests(), &mut rng)?;
//! // An active account (normally reached through register → activate).
//! let mut record = AccountRecord::new("1710034065".parse::<MemberId>()?);
//! # record.state = afiliado::core::AccountState::Active {
//! #     profile: afiliado::core::Profile {
//! #         password: hash,
//! #         contact: afiliado::core::Contact::email_only("ana@example.ec".parse()?),
//! #         enrollment: Default::default(),
//! #         activated_at: datetime!(2026-11-01 8:00 -5),
//! #         password_changed_at: datetime!(2026-11-01 8:00 -5),
//! #         last_login_at: None,
//! #     },
//! #     failures: vec![],
//! # };
//! let wrong = Command::Login { password_matched: false, rehash: None };
//! let mut now = datetime!(2026-11-22 19:36 -5);
//! for _ in 0..4 {
//!     record = decide(&record, &wrong, now, &policy)?.next;
//!     now += Duration::minutes(1);
//! }
//! // The fifth failure locks for 20 minutes …
//! let locked = decide(&record, &wrong, now, &policy)?;
//! assert!(matches!(locked.outcome, Outcome::Locked { .. }));
//! record = locked.next;
//! // … so at 19:59 even the right password is refused,
//! let right = Command::Login { password_matched: true, rehash: None };
//! let at_1959 = decide(&record, &right, datetime!(2026-11-22 19:59 -5), &policy)?;
//! assert!(matches!(at_1959.outcome, Outcome::LoginRefusedLocked { .. }));
//! // and at 20:00 it works.
//! let at_2000 = decide(&record, &right, datetime!(2026-11-22 20:00 -5), &policy)?;
//! assert_eq!(at_2000.outcome, Outcome::LoggedIn { rehashed: false });
//! assert!(matches!(at_2000.next.state, AccountState::Active { .. }));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Modules
//!
//! * [`identity`] — cédula, foreigner code, member ID, email, phones, masked renderings.
//! * [`password`] — [`Password`] (secret) and [`PasswordPolicy`].
//! * [`policy`] — [`Policy`] and its presets.
//! * [`core`] — the pure state machine.
//! * [`crypto`] — argon2id and legacy PHC hashing, tokens, numeric codes, keyed digests.
//! * [`ports`] — the service layer's traits: clock, account store (with outbox and audit log),
//!   member directory, mailer, human check.
//! * `service` — [`AccountService`](crate#features) and the outbox dispatcher.
//! * [`notices`] — mail templates (es-EC, English; text and HTML) and links.
//! * [`seal`] — sealing of the link secrets that travel through the outbox.
//! * [`roster`] — member roster CSV import.
//! * [`retention`] — purging expired registrations and old audit events.
//! * [`dev_mailers`] — stdout mailer (and `.eml` files with `smtp`) for development.
//! * `memory`, `sqlite`, `postgres` — adapters of the ports.
//! * `conformance` — the storage conformance suite every backend passes.
//! * `mock` — mockall mocks of every port.
//! * `strategies` — proptest strategies for hosts' own property tests.
//!
//! ## Features
//!
//! * `memory` (default) — in-memory store, directory and mailer (`afiliado::memory`).
//! * `service` (default) — `afiliado::service::AccountService` and `OutboxDispatcher` (tokio).
//! * `sqlite` — `afiliado::sqlite::SqliteStore`, the embedded default for hosts.
//! * `postgres` — `afiliado::postgres::PostgresStore`, for several instances.
//! * `smtp` — SMTP delivery over rustls (`afiliado::smtp`) and the `.eml` development mailer.
//! * `test-util` — `afiliado::conformance`.
//! * `mock` — `afiliado::mock`.
//! * `proptest` — `afiliado::strategies`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod conformance;
pub mod core;
pub mod crypto;
pub mod dev_mailers;
pub mod identity;
#[cfg(feature = "memory")]
#[cfg_attr(docsrs, doc(cfg(feature = "memory")))]
pub mod memory;
#[cfg(feature = "mock")]
pub mod mock;
pub mod notices;
pub mod password;
pub mod policy;
pub mod ports;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod postgres;
pub mod retention;
pub mod roster;
pub mod seal;
#[cfg(feature = "service")]
#[cfg_attr(docsrs, doc(cfg(feature = "service")))]
pub mod service;
#[cfg(feature = "smtp")]
#[cfg_attr(docsrs, doc(cfg(feature = "smtp")))]
pub mod smtp;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub mod sqlite;
#[cfg(any(test, feature = "proptest"))]
pub mod strategies;

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

pub use identity::{Cedula, Email, ForeignerCode, Landline, MemberId, MemberIdKind, MobilePhone};
pub use password::{Password, PasswordPolicy};
pub use policy::Policy;
