//! The service-flow test harness shared by the flow test files: members, a service on the memory
//! adapters with a manual clock, an outbox dispatcher, and helpers that read links and codes
//! back out of the mails like a member would.
#![allow(dead_code, unused_imports, clippy::disallowed_methods)]

pub use std::cell::RefCell;
pub use std::sync::Arc;

pub use afiliado::core::{Denied, LockReason};
pub use afiliado::crypto::{DigestKey, HashParams};
pub use afiliado::memory::{MemoryDirectory, MemoryMailer, MemoryStore};
pub use afiliado::notices::LinkBase;
pub use afiliado::policy::{Ask, Policy, Proof};
pub use afiliado::ports::{AccountStore, AlwaysPass, Mail, ManualClock, MemberFacts};
pub use afiliado::seal::SealKey;
pub use afiliado::service::{
    AccountService, ActivateOutcome, Answers, LinkStatus, LoginOutcome, OutboxDispatcher,
    RecordQuestion, RecoveryOutcome, RecoveryRequest, RegisterOutcome, RegisterRequest,
    ServiceError, StaffRequest, normalize_answer,
};
pub use afiliado::{Email, MemberId, MemberIdKind, Password};
pub use rand::SeedableRng;
pub use rand::rngs::StdRng;
pub use time::macros::{date, datetime};
pub use time::{Duration, OffsetDateTime};

pub const BASE: &str = "https://afiliados.example.ec";
pub const T0: OffsetDateTime = datetime!(2026-11-22 19:00 -5);

pub const SUBJECT_ACTIVATION: &str = "Active su cuenta de afiliado";
pub const SUBJECT_UNLOCK_LINK: &str = "Desbloqueo de su cuenta";
pub const SUBJECT_RESET_LINK: &str = "Restablecimiento de su contraseña";
pub const SUBJECT_LOCKED: &str = "Su cuenta ha sido bloqueada";
pub const SUBJECT_UNLOCKED: &str = "Su cuenta ha sido desbloqueada";
pub const SUBJECT_PASSWORD_CHANGED: &str = "Su contraseña ha sido cambiada";
pub const SUBJECT_EMAIL_CHANGED_FROM: &str = "Cambio del correo electrónico de su cuenta";
pub const SUBJECT_EMAIL_CHANGED_TO: &str = "Nuevo correo electrónico de contacto";
pub const SUBJECT_EMAIL_CHANGE_CONFIRM: &str = "Confirme su nuevo correo electrónico";
pub const SUBJECT_EMAIL_CHANGE_REQUESTED: &str =
    "Solicitud de cambio del correo electrónico de su cuenta";

pub const HUMAN: &str = "captcha-ok";
pub const LANDLINE: &str = "02 234-5678";
/// Enrolled security image and questions (IESS, the IESS steps article).
pub const IMAGE: &str = "Colibrí";
pub const SECURITY: [(&str, &str); 2] = [("mascota", "Firulais"), ("ciudad_natal", "Portoviejo")];
/// The same answers as a member types them later: other case, accents, stray spaces.
pub const SECURITY_TYPED: [(&str, &str); 2] =
    [("mascota", "  FIRULÁIS "), ("ciudad_natal", "portoVIEJO")];

/// Passes ISSPOL (lower + upper + digit, ≥ 8), IESS (8–15 letters/digits) and
/// recommended (≥ 15) alike.
pub const UNIVERSAL_PW: &str = "Quinde7LagoAzul";

/// A valid cédula that is not in any registry of these tests.
pub const UNKNOWN_ID: &str = "1712345675";
pub const FOREIGNER_ID: &str = "EXT20240001";
pub const ALL_IDS: [&str; 4] = ["1710034065", "0926687856", UNKNOWN_ID, FOREIGNER_ID];

// ---------------------------------------------------------------------------------------------
// Members
// ---------------------------------------------------------------------------------------------

pub struct Member {
    pub id: &'static str,
    pub email: &'static str,
    pub mobile: &'static str,
    pub facts: MemberFacts,
}

pub fn facts(
    id: &str,
    names: &str,
    birth: time::Date,
    affiliate: &str,
    employers: &[&str],
    years: &[u16],
) -> MemberFacts {
    let member: MemberId = id.parse().expect("valid member id");
    let mut f = MemberFacts::new(member, names, birth);
    f.affiliate_number = Some(affiliate.to_owned());
    f.employers = employers.iter().map(|e| (*e).to_owned()).collect();
    f.contribution_years = years.to_vec();
    f
}

pub fn ana() -> Member {
    Member {
        id: "1710034065",
        email: "ana.perez@example.ec",
        mobile: "0991234567",
        facts: facts(
            "1710034065",
            "ANA LUCÍA PÉREZ CEVALLOS",
            date!(1980 - 05 - 17),
            "ISS-204518",
            &["Policía Nacional del Ecuador"],
            &[2001, 2010, 2025],
        ),
    }
}

pub fn luis() -> Member {
    Member {
        id: "0926687856",
        email: "luis.mora@example.ec",
        mobile: "0987654321",
        facts: facts(
            "0926687856",
            "LUIS ALBERTO MORA VÉLEZ",
            date!(1985 - 03 - 14),
            "AF-771203",
            &["Banco del Pacífico S.A.", "Corporación Favorita C.A."],
            &[2008, 2012, 2019, 2025],
        ),
    }
}

/// Looks like a member, but the registry does not know the cédula.
pub fn stranger() -> Member {
    Member {
        id: UNKNOWN_ID,
        email: "nadie@example.ec",
        mobile: "0998887766",
        facts: facts(
            UNKNOWN_ID,
            "NADIE",
            date!(1990 - 01 - 01),
            "ISS-999999",
            &["Ninguna"],
            &[2015, 2020],
        ),
    }
}

pub fn maria_foreigner() -> Member {
    Member {
        id: FOREIGNER_ID,
        email: "maria.gonzalez@example.com",
        mobile: "0976543210",
        facts: facts(
            FOREIGNER_ID,
            "MARÍA GONZÁLEZ RODRÍGUEZ",
            date!(1990 - 09 - 02),
            "EXT-1",
            &["Constructora Andina Cía. Ltda."],
            &[2024, 2025],
        ),
    }
}

pub fn record_answer(q: RecordQuestion, f: &MemberFacts) -> String {
    match q {
        // Typed in capitals and without accents: answers are normalised.
        RecordQuestion::Employer => f.employers[0].to_uppercase(),
        RecordQuestion::FirstContributionYear => {
            f.contribution_years.iter().min().unwrap().to_string()
        }
        RecordQuestion::LastContributionYear => {
            f.contribution_years.iter().max().unwrap().to_string()
        }
        other => panic!("unexpected record question {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

/// A service on one store (the memory store unless [`Harness::on`] is given another).
pub struct Harness<S = MemoryStore> {
    pub clock: Arc<ManualClock>,
    pub store: Arc<S>,
    pub mailer: Arc<MemoryMailer>,
    pub service: AccountService,
    pub dispatcher: OutboxDispatcher,
    /// Every password, token, code and answer the flow used, for the final store check.
    pub secrets: RefCell<Vec<String>>,
}

impl Harness {
    pub fn new(policy: Policy, members: &[&Member]) -> Self {
        Harness::on(Arc::new(MemoryStore::new()), policy, members)
    }

    pub fn success(id: &str) -> LoginOutcome {
        LoginOutcome::Success {
            member: id.parse().unwrap(),
        }
    }
}

impl<S: AccountStore + 'static> Harness<S> {
    /// The harness on `store` (memory, SQLite, PostgreSQL).
    pub fn on(store: Arc<S>, policy: Policy, members: &[&Member]) -> Self {
        Self::throttled(store, None, policy, members)
    }

    /// The harness on `store`, counting per-source failures in `throttle` when given.
    pub fn throttled(
        store: Arc<S>,
        throttle: Option<Arc<dyn afiliado::ports::SourceThrottle>>,
        policy: Policy,
        members: &[&Member],
    ) -> Self {
        let mut policy = policy;
        policy.hashing = HashParams::danger_insecure_for_tests();
        let mut rng = StdRng::seed_from_u64(20_261_122);
        let digest_key = DigestKey::generate(&mut rng);
        let seal_key = SealKey::generate(&mut rng);
        let clock = Arc::new(ManualClock::new(T0));
        let directory = members
            .iter()
            .fold(MemoryDirectory::new(), |d, m| d.with(m.facts.clone()));
        let mailer = Arc::new(MemoryMailer::new());
        let mut builder = AccountService::builder(policy, digest_key, seal_key.clone());
        if let Some(throttle) = throttle {
            builder = builder.throttle(throttle);
        }
        let service = builder
            .store(store.clone())
            .directory(Arc::new(directory))
            .human_check(Arc::new(AlwaysPass))
            .clock(clock.clone())
            // Flow tests do not measure time: no response floor.
            .response_floor(std::time::Duration::ZERO)
            .build()
            .expect("service builds");
        let dispatcher = OutboxDispatcher::new(
            store.clone(),
            mailer.clone(),
            seal_key,
            LinkBase::new(BASE).expect("valid link base"),
            clock.clone(),
        );
        Self {
            clock,
            store,
            mailer,
            service,
            dispatcher,
            secrets: RefCell::new(Vec::new()),
        }
    }

    pub fn policy(&self) -> &Policy {
        self.service.policy()
    }

    pub fn set(&self, t: OffsetDateTime) {
        self.clock.set(t);
    }

    pub fn advance(&self, d: Duration) {
        self.clock.advance(d);
    }

    pub fn now(&self) -> OffsetDateTime {
        afiliado::ports::Clock::now(&*self.clock)
    }

    pub fn note(&self, secret: &str) {
        self.secrets.borrow_mut().push(secret.to_owned());
    }

    /// A password typed by the member (remembered for the store check).
    pub fn pw(&self, s: &str) -> Password {
        self.note(s);
        Password::new(s)
    }

    // ---- mail ----

    /// Runs the dispatcher once; returns the mails it sent, in order.
    pub async fn deliver(&self) -> Vec<Mail> {
        let before = self.mailer.sent().len();
        let report = self.dispatcher.run_once(1000).await.expect("dispatch");
        assert_eq!(report.retried, 0, "no mail retried");
        assert_eq!(report.dead_lettered, 0, "no mail dead-lettered");
        let sent = self.mailer.sent();
        assert_eq!(
            report.sent,
            sent.len() - before,
            "report matches the mailer"
        );
        sent[before..].to_vec()
    }

    /// The latest mail sent to `to`.
    pub fn latest(&self, to: &str) -> Mail {
        let addr: Email = to.parse().expect("valid email");
        self.mailer
            .sent()
            .into_iter()
            .rev()
            .find(|m| m.to.matches(&addr))
            .unwrap_or_else(|| panic!("no mail to {to}"))
    }

    /// The token of the `{BASE}{path}?token=` link in `mail`.
    pub fn token(&self, mail: &Mail, path: &str) -> String {
        let prefix = format!("{BASE}{path}?token=");
        let at = mail
            .text
            .find(&prefix)
            .unwrap_or_else(|| panic!("no {path} link in mail {:?}", mail.subject));
        let token: String = mail.text[at + prefix.len()..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        assert_eq!(token.len(), 43, "a 256-bit base64url token");
        self.note(&token);
        token
    }

    /// The activation code: the run of exactly N digits (N = policy code digits) that follows
    /// the word "código"; `None` when the policy uses no code (and the mail then shows none).
    pub fn code(&self, mail: &Mail) -> Option<String> {
        let Some(digits) = self.policy().activation.code_digits else {
            assert!(
                !mail.text.contains("código de activación"),
                "no code in a link-only activation mail"
            );
            return None;
        };
        let digits = usize::from(digits);
        let mut found: Vec<String> = mail
            .text
            .match_indices("código")
            .filter_map(|(i, w)| {
                let rest = &mail.text[i + w.len()..];
                let start = rest.find(|c: char| c.is_ascii_digit())?;
                let run: String = rest[start..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                (run.len() == digits).then_some(run)
            })
            .collect();
        found.dedup();
        assert_eq!(
            found.len(),
            1,
            "exactly one {digits}-digit code in the mail"
        );
        let code = found.pop().unwrap();
        self.note(&code);
        Some(code)
    }

    // ---- forms ----

    /// The registry answers a member gives (affiliate number, birth day/month, record
    /// questions), for registration or recovery as the policy asks.
    pub fn registry_answers(&self, m: &Member, for_recovery: bool) -> Answers {
        let policy = self.policy();
        let proofs = if for_recovery {
            &policy.recovery.proofs
        } else {
            &policy.registration.proofs
        };
        let mut a = Answers::default();
        if proofs.contains(&Proof::AffiliateNumber) {
            a.affiliate_number = m.facts.affiliate_number.clone();
        }
        if proofs.contains(&Proof::BirthDayMonth) {
            let b = m.facts.birth_date;
            a.birth_day_month = Some((b.day(), u8::from(b.month())));
        }
        a.record = self
            .service
            .record_questions(for_recovery)
            .into_iter()
            .map(|q| (q, record_answer(q, &m.facts)))
            .collect();
        a
    }

    /// A complete registration form for `m` under the harness policy.
    pub fn form(&self, m: &Member) -> RegisterRequest {
        let reg = &self.policy().registration;
        let mut req = RegisterRequest::new(m.id, m.email);
        if reg.mobile != Ask::No {
            req.mobile = Some(m.mobile.to_owned());
        }
        if reg.landline != Ask::No {
            req.landline = Some(LANDLINE.to_owned());
        }
        req.terms_accepted = reg.terms.is_some();
        if reg.human_check {
            req.human_response = Some(HUMAN.to_owned());
        }
        req.answers = self.registry_answers(m, false);
        if reg.security_image {
            self.note(IMAGE);
            self.note(&normalize_answer(IMAGE));
            req.answers.security_image = Some(IMAGE.to_owned());
        }
        for (q, a) in SECURITY.iter().take(usize::from(reg.security_questions)) {
            self.note(a);
            self.note(&normalize_answer(a));
            req.answers
                .security
                .push(((*q).to_owned(), (*a).to_owned()));
        }
        req
    }

    /// A complete, correct recovery form for `m` under the harness policy.
    pub fn recovery(&self, m: &Member) -> RecoveryRequest {
        let rp = &self.policy().recovery;
        let mut req = RecoveryRequest::new(m.id);
        if rp.human_check {
            req.human_response = Some(HUMAN.to_owned());
        }
        if rp.proofs.contains(&Proof::RegisteredEmail) {
            req.email = Some(m.email.to_owned());
        }
        req.answers = self.registry_answers(m, true);
        for proof in &rp.proofs {
            if let Proof::SecurityQuestions { count } = proof {
                for (q, a) in SECURITY_TYPED.iter().take(usize::from(*count)) {
                    self.note(a);
                    req.answers
                        .security
                        .push(((*q).to_owned(), (*a).to_owned()));
                }
            }
        }
        req
    }

    // ---- steps ----

    /// The stored record of `id` (panics when there is none).
    pub async fn record(&self, id: &str) -> afiliado::core::AccountRecord {
        self.store
            .load(&id.parse().unwrap())
            .await
            .unwrap()
            .expect("record exists")
    }

    /// The kinds of `id`'s audit events, in order.
    pub async fn audit(&self, id: &str) -> Vec<afiliado::core::AuditKind> {
        self.store
            .audit_log(&id.parse().unwrap())
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect()
    }

    pub async fn login(&self, id: &str, password: &str) -> LoginOutcome {
        self.service
            .login(id, self.pw(password))
            .await
            .expect("login answers")
    }

    /// Register → mail → activate, at the current time.
    pub async fn activate_member(&self, m: &Member, password: &str) {
        assert_eq!(
            self.service.register(self.form(m)).await.unwrap(),
            RegisterOutcome::Submitted
        );
        let mails = self.deliver().await;
        assert_eq!(mails.len(), 1, "one activation mail");
        let mail = self.latest(m.email);
        assert_eq!(mail.subject, SUBJECT_ACTIVATION);
        let token = self.token(&mail, "/activar");
        let code = self.code(&mail);
        let out = self
            .service
            .activate(
                &token,
                code.as_deref(),
                self.pw(password),
                self.pw(password),
            )
            .await
            .expect("activation");
        assert_eq!(out, ActivateOutcome::Activated);
    }

    pub async fn staff(&self, id: &str, request: StaffRequest) -> Result<(), ServiceError> {
        self.service
            .staff(
                "mquintanilla",
                "verificación presencial de identidad",
                id,
                request,
            )
            .await
    }
}

impl Harness<MemoryStore> {
    /// Invariant 5 and the security rules: records, audit log and outbox hold no secret in clear.
    pub async fn assert_no_secret_stored(&self) {
        let mut dumps = Vec::new();
        for id in ALL_IDS {
            let member: MemberId = id.parse().unwrap();
            if let Some(record) = self.store.load(&member).await.unwrap() {
                dumps.push(serde_json::to_string(&record).expect("record serialises"));
            }
            let audit = self.store.audit_log(&member).await.unwrap();
            dumps.push(serde_json::to_string(&audit).expect("audit serialises"));
        }
        dumps.push(format!("{:?}", self.store.outbox()));
        dumps.push(format!("{:?}", self.store));
        let secrets = self.secrets.borrow();
        assert!(!secrets.is_empty(), "the flow used secrets");
        for (i, dump) in dumps.iter().enumerate() {
            for s in secrets.iter() {
                // Short numeric codes could appear inside dates or hex digests by chance;
                // a code stored in clear would appear as a quoted string.
                let needle = if s.bytes().all(|b| b.is_ascii_digit()) {
                    format!("\"{s}\"")
                } else {
                    s.clone()
                };
                assert!(
                    !dump.contains(&needle),
                    "dump #{i} holds a secret in clear ({} chars)",
                    s.len()
                );
            }
        }
    }
}

pub fn minutes(n: i64) -> Duration {
    Duration::minutes(n)
}

pub fn denied(r: Result<impl std::fmt::Debug, ServiceError>) -> Denied {
    match r {
        Err(ServiceError::Denied(d)) => d,
        other => panic!("expected a denial, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// ISSPOL (the ISSPOL guide and registration manual)
// ---------------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------------
// Durable backends
// ---------------------------------------------------------------------------------------------

/// A migrated SQLite store in a fresh temporary directory (kept alive by the returned guard).
#[cfg(feature = "sqlite")]
pub async fn sqlite_store() -> (tempfile::TempDir, Arc<dyn AccountStore>) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("afiliado.db").display());
    let store = afiliado::sqlite::SqliteStore::open(&url).await.unwrap();
    store.migrate().await.unwrap();
    (dir, Arc::new(store))
}

/// A migrated PostgreSQL store in a fresh schema named after `label`, or `None` (printing the
/// line CI fails on) without `DATABASE_URL`.
#[cfg(feature = "postgres")]
pub async fn postgres_store(label: &str) -> Option<Arc<dyn AccountStore>> {
    use afiliado::postgres::{PoolSettings, PostgresStore};
    let Ok(url) = std::env::var("DATABASE_URL") else {
        println!("skipped: DATABASE_URL not set");
        assert!(
            std::env::var_os("AFILIADO_REQUIRE_SERVICES").is_none(),
            "DATABASE_URL is not set but AFILIADO_REQUIRE_SERVICES is (CI must run these)"
        );
        return None;
    };
    let schema = format!(
        "afiliado_{label}_{}_{:08x}",
        std::process::id(),
        rand::random::<u32>()
    );
    let store = PostgresStore::open_with(
        &url,
        PoolSettings::default().max_connections(8).schema(&schema),
    )
    .await
    .unwrap();
    store.migrate().await.unwrap();
    Some(Arc::new(store))
}
