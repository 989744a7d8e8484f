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
//! ## Security guarantees
//!
//! What the library keeps today, each with the test (under `tests/`) that shows it. Every
//! rule holds on the memory, SQLite and PostgreSQL stores unless the line says otherwise.
//!
//! | guarantee | shown by |
//! |---|---|
//! | Passwords are argon2id PHC strings with the policy's parameters; older parameters and imported legacy hashes (bcrypt, Django PBKDF2, salted SHA-256) verify and are rehashed on the next successful login | `legacy_hashes.rs` |
//! | Stored hash costs are bounded: a hash above `Policy::hash_cost_bounds()` is refused before any allocation (one dummy verification, audited); no policy file can make the service abort | `hash_bounds.rs` |
//! | Every login path performs exactly one password verification (a dummy one for unknown or malformed IDs); unknown IDs, wrong passwords and (unless the policy reveals it) locked accounts answer alike | `service_faults.rs`, `service_flows.rs::login_with_an_unknown_id_answers_like_a_wrong_password` |
//! | Knowledge proofs take exactly one answer per question asked; extra, missing or repeated answers are a field error that counts as a failed attempt; proof counts are validated | `review_fixes.rs` (section 1) |
//! | Knowledge answers never log anyone in: they only gate a link to the registered email; no argon2 work is done for a registration unless the core would register it | `review_fixes.rs`, `service_security.rs` |
//! | Email changes take effect only when confirmed: a recovery replacement when the reset completes, a staff change when the new address follows its link; the old address is always told | `review_fixes.rs` (sections 2–3) |
//! | Registration forms never lock an account and never spend the member's links | `review_fixes.rs` (sections 4, 6) |
//! | A stranger's wrong passwords never lock the member's own browser out (trusted devices, OWASP device cookies) | `trusted_devices.rs` |
//! | The mailbox holder can always get back in: the member's own unlock or reset request yields a working link within `notices.link_cooldown`, whatever a stranger does; a stranger causes at most the per-preset number of mails a day stated in [`policy::NoticePolicy`] | `mailbox_dos.rs` (property test, all presets), `link_pacing.rs` |
//! | One source spraying guesses across many IDs is throttled (`AccountService::for_source`), shared by every instance on a store | `source_throttle.rs`, conformance `check_source_throttle` |
//! | Concurrent calls about one account in one instance never fail with `Contended`; counters never lose an increment (instances sharing a database meet at the version check and retry) | `contention.rs`, `multi_instance.rs` |
//! | Tokens: ≥ 256 bits from the OS RNG, stored as keyed digests, single use, bound to one account and purpose, dead at their deadline and when a newer one of the same purpose is issued or the password or email changes | `state_machine.rs` (model-based property test), `core_flows.rs` |
//! | Secrets never reach `Debug`, `Display`, serde output, errors or the store in clear; full cédulas and addresses never reach `Debug`, errors, dead-letter reasons or audit text | `secrets.rs`, `redaction.rs`, the conformance planted-secret scan |
//! | Every state change commits with its outbox mails and audit events in one transaction; the SQLite store recovers from a transient write fault | conformance `check_atomic_commit`, `sqlite_fault.rs` |
//! | Everything a caller or a file can size is bounded (policy values, answers, staff text, roster lines, dispatcher durations, the response floor) | `hash_bounds.rs`, `review_fixes.rs`, `roster.rs`, `dispatcher.rs`, the `ServiceBuilder::response_floor` example |
//! | Equal work: a login, registration, recovery or unlock request about an unknown ID, a registry member without an account, a pending, active, locked or suspended account does the same store work (one record read, one commit with its audit events) and gets the same answer as wrong proofs for an active account; IDs without an account lock exactly like accounts (`AccountRecord::shadow`). Spent budgets and paced links are recorded too, so repeated requests stay equal. Only the member's own mail differs (an unlock link for a locked account; a reset link where the policy asks no proof; the lock warning when a failure locks an account), and the requester never sees it | `equal_work.rs` (every preset, every backend, repeated past every budget) |
//! | Equal time: those four requests answer no earlier than `ServiceBuilder::response_floor` (50 ms by default, plus up to 1 ms of random jitter) after the call, so their latency does not depend on the ID; measured per flow, ID class and backend by `cargo bench --bench enumeration --all-features` (median ratios and Kolmogorov–Smirnov p-values against an active account) | `response_floor.rs`, the `enumeration` bench |
//!
//! Limits of these rules, stated plainly:
//!
//! * the floor hides only work that fits under it (pick one above your store's slowest normal
//!   answer; the bench prints the latencies);
//! * under a preset that tells the member the account is locked (`lockout.reveal_lock_state`,
//!   ISSPOL), a suspended account's "locked" answer shows that the ID has an account, and so
//!   can the member's own actions: a lock lifted early by a password reset, or failures
//!   cleared by the member's successful login, change the answers a guesser sees, which a
//!   shadow lockout (nobody behind it) never does;
//! * a request about an ID without an account keeps a record of that ID (the ID, counters and
//!   timestamps; nothing the requester typed); [`retention::purge`] deletes it once it holds
//!   nothing that could change a later answer, but keeps one that counted a lockout or a
//!   recovery failure (those never lapse for an account either); per-source throttling bounds
//!   how fast one client can create them.
//!
//! ## Keys: generate, store, rotate
//!
//! A deployment has two server keys: a [`crypto::DigestKey`] (HMAC-SHA-256 of link tokens,
//! codes, device tokens and pseudonyms) and a [`seal::SealKey`] (ChaCha20-Poly1305 sealing of
//! link secrets in the outbox). Every instance sharing a store needs the same two.
//!
//! * **Generate** 32 random bytes per key, e.g. `openssl rand -base64 32`, or
//!   `DigestKey::random()` / `SealKey::random()` in a one-off tool.
//! * **Store** them in the host's secret store (or files readable only by the service) and
//!   load them with `DigestKey::from_base64` / `SealKey::from_base64`; never in the repository
//!   or the policy file. Each key has a public [`crypto::KeyId`] (8 hex digits) to name it in
//!   configuration and logs; `Debug` never shows a key.
//! * **Rotate** without losing mail or links: start every instance with the new keys as the
//!   current ones and the old ones listed as older —
//!   `ServiceBuilder::older_digest_key(old)` on the service, and a
//!   [`seal::SealKeys`]`::new(new).with_older(old)` for the [`OutboxDispatcher`](crate#features).
//!   Links, codes and device tokens digested under the old key keep working, and mail queued
//!   under the old seal key is still delivered. A dispatcher that meets a message sealed under
//!   a key it was not given keeps it pending and tries again later instead of dead-lettering
//!   it. Drop the old seal key once the outbox holds nothing sealed with it (a day is ample),
//!   and the old digest key once the longest-lived token it digested has expired (trusted
//!   devices: `policy.devices.lifetime`, 90 days by default). Per-source failure counts start
//!   afresh under a new digest key.
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
