//! Both portals' main flows on the in-memory adapters, printing every outcome and every mail
//! the outbox dispatcher delivers.
//!
//! ```sh
//! cargo run --example walkthrough
//! ```
//!
//! Virtual time (a `ManualClock`) lets the example show the ISSPOL 20-minute lock and the
//! IESS 3-minute unlock link without waiting; hashing is real argon2id at the OWASP
//! parameters.
#![allow(clippy::disallowed_methods)] // a host: it draws its keys from the OS RNG

use std::error::Error;
use std::sync::Arc;

use afiliado::crypto::DigestKey;
use afiliado::memory::{MemoryDirectory, MemoryMailer, MemoryStore};
use afiliado::notices::LinkBase;
use afiliado::ports::{AlwaysPass, Clock, ManualClock, MemberFacts};
use afiliado::seal::SealKey;
use afiliado::service::{
    AccountService, OutboxDispatcher, RecordQuestion, RecoveryRequest, RegisterRequest,
    StaffRequest,
};
use afiliado::{Password, Policy};
use time::Duration;
use time::macros::{date, datetime};

struct Portal {
    service: AccountService,
    dispatcher: OutboxDispatcher,
    mailer: Arc<MemoryMailer>,
    clock: Arc<ManualClock>,
    seen: usize,
}

impl Portal {
    fn new(policy: Policy, facts: Vec<MemberFacts>) -> Result<Self, Box<dyn Error>> {
        let mut rng = rand::rng();
        let clock = Arc::new(ManualClock::new(datetime!(2026-11-22 19:00 -5)));
        let store = Arc::new(MemoryStore::new());
        let mut directory = MemoryDirectory::new();
        for f in facts {
            directory = directory.with(f);
        }
        let mailer = Arc::new(MemoryMailer::default());
        let seal_key = SealKey::generate(&mut rng);
        let service =
            AccountService::builder(policy, DigestKey::generate(&mut rng), seal_key.clone())
                .store(store.clone())
                .directory(Arc::new(directory))
                .human_check(Arc::new(AlwaysPass))
                .clock(clock.clone())
                .build()?;
        let dispatcher = OutboxDispatcher::new(
            store,
            mailer.clone(),
            seal_key,
            LinkBase::new("https://afiliados.example.ec")?,
            clock.clone(),
        );
        Ok(Self {
            service,
            dispatcher,
            mailer,
            clock,
            seen: 0,
        })
    }

    fn say(&self, what: &str, outcome: impl std::fmt::Debug) {
        let t = self.clock.now().time();
        println!(
            "[{:02}:{:02}:{:02}] {what}: {outcome:?}",
            t.hour(),
            t.minute(),
            t.second()
        );
    }

    /// Delivers due mail and prints it; returns the newest mail's text.
    async fn mail(&mut self) -> Result<String, Box<dyn Error>> {
        self.dispatcher.run_once(100).await?;
        let sent = self.mailer.sent();
        let mut last = String::new();
        for m in &sent[self.seen..] {
            println!("    ✉ to {} — {}", m.to.masked(), m.subject);
            for line in m.text.lines().filter(|l| !l.trim().is_empty()) {
                println!("      │ {line}");
            }
            last = m.text.clone();
        }
        self.seen = sent.len();
        Ok(last)
    }

    fn advance(&self, d: Duration) {
        self.clock.advance(d);
    }
}

fn token_in(text: &str) -> String {
    text.split("token=")
        .nth(1)
        .map(|s| {
            s.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect()
        })
        .unwrap_or_default()
}

fn code_in(text: &str, digits: usize) -> String {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == digits)
        .unwrap_or_default()
        .to_owned()
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    println!("══ ISSPOL · SIISSPOL-WEB (the ISSPOL guide and registration manual) ══");
    let mut ana = MemberFacts::new(
        "1710034065".parse()?,
        "ANA LUCÍA QUISPE TOAPANTA",
        date!(1988 - 03 - 14),
    );
    ana.affiliate_number = Some("A-48213".into());
    let mut p = Portal::new(Policy::isspol(), vec![ana])?;
    let mut req = RegisterRequest::new("171003406-5", "ana.quispe@example.ec");
    req.mobile = Some("099 123 4567".into());
    req.terms_accepted = true;
    req.answers.affiliate_number = Some("A-48213".into());
    p.say("register", p.service.register(req).await?);
    let text = p.mail().await?;
    let (token, code) = (token_in(&text), code_in(&text, 4));
    p.say(
        "open link (mail scanner)",
        p.service.inspect_activation(&token).await?,
    );
    p.advance(Duration::minutes(4));
    let out = p
        .service
        .activate(
            &token,
            Some(&code),
            Password::new("Policia2026x"),
            Password::new("Policia2026x"),
        )
        .await?;
    p.say("activate", out);
    p.advance(Duration::minutes(32));
    for _ in 0..5 {
        p.say(
            "login with a wrong password",
            p.service
                .login("1710034065", Password::new("Equivocada1"))
                .await?,
        );
        p.advance(Duration::minutes(1));
    }
    p.mail().await?;
    p.clock.set(datetime!(2026-11-22 19:59 -5));
    p.say(
        "login with the right password",
        p.service
            .login("1710034065", Password::new("Policia2026x"))
            .await?,
    );
    p.clock.set(datetime!(2026-11-22 20:00 -5));
    p.say(
        "login with the right password",
        p.service
            .login("1710034065", Password::new("Policia2026x"))
            .await?,
    );
    let mut rec = RecoveryRequest::new("1710034065");
    rec.email = Some("otra@example.ec".into());
    p.say(
        "forgot password, wrong email",
        p.service.start_recovery(rec).await?,
    );
    let mut rec = RecoveryRequest::new("1710034065");
    rec.email = Some("ana.quispe@example.ec".into());
    p.say(
        "forgot password, registered email",
        p.service.start_recovery(rec).await?,
    );
    let text = p.mail().await?;
    p.advance(Duration::minutes(3));
    let out = p
        .service
        .reset_password(
            &token_in(&text),
            Password::new("RioGuayas2027x"),
            Password::new("RioGuayas2027x"),
            false,
        )
        .await;
    p.say("reset password", out);
    p.mail().await?;
    p.say(
        "login with the new password",
        p.service
            .login("1710034065", Password::new("RioGuayas2027x"))
            .await?,
    );
    p.say(
        "login with an unknown cédula",
        p.service
            .login("0926687856", Password::new("RioGuayas2027x"))
            .await?,
    );

    println!();
    println!("══ IESS · Clave de afiliado (the IESS procedure and two third-party articles) ══");
    let mut jorge = MemberFacts::new(
        "0926687856".parse()?,
        "JORGE ANDRÉS MACÍAS VERA",
        date!(1979 - 11 - 02),
    );
    jorge.employers = vec!["Banco del Pacífico S.A.".into()];
    jorge.contribution_years = vec![2003, 2010, 2025];
    let mut p = Portal::new(Policy::iess(), vec![jorge])?;
    let mut req = RegisterRequest::new("0926687856", "jorge.macias@example.ec");
    req.mobile = Some("+593 98 765 4321".into());
    req.landline = Some("04 226 7890".into());
    req.terms_accepted = true;
    req.human_response = Some("captcha-ok".into());
    req.answers.birth_day_month = Some((2, 11));
    for q in p.service.record_questions(false) {
        let a = match q {
            RecordQuestion::Employer => "banco del pacifico s.a.",
            RecordQuestion::FirstContributionYear => "2003",
            _ => "2025",
        };
        req.answers.record.push((q, a.into()));
    }
    req.answers.security_image = Some("Llama".into());
    req.answers.security = vec![
        ("mascota".into(), "Firulais".into()),
        ("ciudad".into(), "Portoviejo".into()),
    ];
    p.say(
        "generate password (first time)",
        p.service.register(req).await?,
    );
    let text = p.mail().await?;
    p.advance(Duration::minutes(10));
    let out = p
        .service
        .activate(
            &token_in(&text),
            None,
            Password::new("Manglar2026"),
            Password::new("Manglar2026"),
        )
        .await?;
    p.say("follow link, set password", out);
    for _ in 0..3 {
        p.say(
            "login with a wrong password",
            p.service
                .login("0926687856", Password::new("Equivocada1"))
                .await?,
        );
    }
    p.mail().await?;
    p.say(
        "request unlock",
        p.service
            .request_unlock("0926687856", Some("captcha-ok"))
            .await,
    );
    let text = p.mail().await?;
    p.advance(Duration::seconds(180));
    p.say(
        "unlock link at 3:00",
        p.service
            .unlock(&token_in(&text))
            .await
            .map_err(|e| e.to_string()),
    );
    p.say(
        "request unlock",
        p.service
            .request_unlock("0926687856", Some("captcha-ok"))
            .await,
    );
    let text = p.mail().await?;
    p.advance(Duration::seconds(179));
    p.say(
        "unlock link at 2:59",
        p.service.unlock(&token_in(&text)).await,
    );
    p.mail().await?;

    let mut rec = RecoveryRequest::new("0926687856");
    rec.human_response = Some("captcha-ok".into());
    rec.answers.birth_day_month = Some((2, 11));
    for q in p.service.record_questions(true) {
        rec.answers.record.push((
            q,
            if q == RecordQuestion::Employer {
                "BANCO DEL PACÍFICO S.A."
            } else {
                "2003"
            }
            .into(),
        ));
    }
    rec.answers.security = vec![
        ("mascota".into(), "  firulais ".into()),
        ("ciudad".into(), "PORTOVIEJO".into()),
    ];
    rec.new_email = Some("jorge.nuevo@example.com".into());
    p.say(
        "recover password, new email",
        p.service.start_recovery(rec).await?,
    );
    let text = p.mail().await?;
    let token = token_in(&text);
    p.say(
        "reset without the declaration",
        p.service
            .reset_password(
                &token,
                Password::new("Estero2027"),
                Password::new("Estero2027"),
                false,
            )
            .await
            .map_err(|e| e.to_string()),
    );
    p.say(
        "reset with the declaration",
        p.service
            .reset_password(
                &token,
                Password::new("Estero2027"),
                Password::new("Estero2027"),
                true,
            )
            .await,
    );
    p.mail().await?;
    p.say(
        "login",
        p.service
            .login("0926687856", Password::new("Estero2027"))
            .await?,
    );
    let staff = p
        .service
        .staff(
            "agente.gye",
            "afiliado verificado por videollamada",
            "0926687856",
            StaffRequest::Suspend,
        )
        .await;
    p.say("staff suspends", staff);
    p.mail().await?;
    Ok(())
}
