//! The SMTP mailer against a real SMTP server (Python's `aiosmtpd`, started by each test on a
//! free port of 127.0.0.1), through the service and the outbox dispatcher: delivery and the
//! message format, a server that is down, permanent (550) and transient (451) rejections,
//! authentication, the STARTTLS requirement and timeouts; and the development mailers.
//!
//! Needs `python3` with `aiosmtpd` (Debian: `apt-get install python3-aiosmtpd`; CI installs
//! it). Without it the server tests print `skipped: aiosmtpd not installed` and return, so
//! `cargo test` works on a fresh machine; `.ci/run` installs it and fails on that line, so CI
//! always runs them. `AFILIADO_TEST_PYTHON` picks the
//! interpreter; otherwise the first of `python3`, `/usr/bin/python3` that imports `aiosmtpd`.
#![cfg(feature = "smtp")]
#![allow(clippy::disallowed_methods)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use afiliado::core::AuditKind;
use afiliado::crypto::{DigestKey, HashParams};
use afiliado::dev_mailers::{EmlDirMailer, StdoutMailer};
use afiliado::memory::{MemoryDirectory, MemoryStore};
use afiliado::notices::LinkBase;
use afiliado::ports::{
    AccountStore, AlwaysPass, Mail, MailError, Mailer, ManualClock, MemberFacts, OutboxMessage,
    OutboxStatus,
};
use afiliado::seal::SealKey;
use afiliado::service::{
    AccountService, DispatchReport, OutboxDispatcher, RegisterOutcome, RegisterRequest,
};
use afiliado::smtp::SmtpMailer;
use afiliado::{MemberId, Policy};
use async_trait::async_trait;
use mail_parser::{MessageParser, MimeHeaders, PartType};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tempfile::TempDir;
use time::macros::{date, datetime};

const MEMBER: &str = "1710034065";
const AFFILIATE: &str = "A-48213";
const TO: &str = "ana.quishpe@example.ec";
const FROM: &str = "ISSPOL – Afiliación <no-responder@isspol.example.ec>";
const FROM_ADDR: &str = "no-responder@isspol.example.ec";
const FROM_NAME: &str = "ISSPOL – Afiliación";
const BASE: &str = "https://afiliados.isspol.example.ec";

// ---------------------------------------------------------------------------------------------
// The SMTP server
// ---------------------------------------------------------------------------------------------

/// The server: every accepted message is written to `outdir` as `<n>.eml` (raw bytes as
/// received) plus `<n>.envelope` (MAIL FROM, then the RCPT TOs), through a temporary name;
/// every DATA command appends a line to `attempts.log`. Modes: `accept`, `reject550`,
/// `reject550rcpt` (550 to RCPT TO, the reply repeating the recipient address), `defer451`,
/// `auth` (AUTH required, user/password from argv 4 and 5, allowed without TLS).
const SERVER_PY: &str = r#"
import asyncio, os, sys
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

port, outdir = int(sys.argv[1]), sys.argv[2]
mode = sys.argv[3] if len(sys.argv) > 3 else "accept"
user = sys.argv[4].encode() if len(sys.argv) > 4 else b""
password = sys.argv[5].encode() if len(sys.argv) > 5 else b""
count = 0

def authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == user and auth_data.password == password
    return AuthResult(success=ok, handled=False)

class Handler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if mode == "reject550rcpt":
            # Like Postfix: the reply repeats the recipient (and here a cédula-shaped reference).
            return "550 5.1.1 <%s>: Recipient address rejected: User unknown (ref 1710034065)" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        global count
        with open(os.path.join(outdir, "attempts.log"), "a") as f:
            f.write("DATA\n")
        if mode == "reject550":
            return "550 5.7.1 Message refused by local policy"
        if mode == "defer451":
            return "451 4.3.0 Temporary local problem, try again later"
        count += 1
        name = os.path.join(outdir, "%04d" % count)
        with open(name + ".tmp", "wb") as f:
            f.write(envelope.original_content)
        with open(name + ".envelope", "w") as f:
            f.write("\n".join([envelope.mail_from] + list(envelope.rcpt_tos)))
        os.rename(name + ".tmp", name + ".eml")
        return "250 2.0.0 OK queued as %04d" % count

def factory():
    kwargs = dict(hostname="mx.test.local", decode_data=False)
    if mode == "auth":
        kwargs.update(auth_required=True, auth_require_tls=False, authenticator=authenticator)
    return SMTP(Handler(), **kwargs)

async def main():
    server = await asyncio.get_running_loop().create_server(factory, "127.0.0.1", port)
    print("READY", flush=True)
    await server.serve_forever()

asyncio.run(main())
"#;

/// The interpreter to run the server with: one that imports `aiosmtpd`; `None` (with the
/// line CI looks for) when there is none.
fn python() -> Option<String> {
    let mut candidates = Vec::new();
    if let Ok(p) = std::env::var("AFILIADO_TEST_PYTHON") {
        candidates.push(p);
    }
    candidates.push("python3".into());
    candidates.push("/usr/bin/python3".into());
    for candidate in &candidates {
        let ok = Command::new(candidate)
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(candidate.clone());
        }
    }
    println!(
        "skipped: aiosmtpd not installed (Debian: apt-get install python3-aiosmtpd); \
         none of {candidates:?} can `import aiosmtpd` (set AFILIADO_TEST_PYTHON to choose one)"
    );
    assert!(
        std::env::var_os("AFILIADO_REQUIRE_SERVICES").is_none(),
        "aiosmtpd is missing but AFILIADO_REQUIRE_SERVICES is set (CI must run these)"
    );
    None
}

/// A port nothing listens on (bound, then released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// A running server; killed when dropped.
struct SmtpServer {
    child: Child,
    port: u16,
    outdir: PathBuf,
    _dir: TempDir,
}

impl SmtpServer {
    async fn start(mode: &str) -> Option<Self> {
        Self::start_on(free_port(), mode, &[]).await
    }

    async fn start_on(port: u16, mode: &str, extra: &[&str]) -> Option<Self> {
        let python = python()?;
        let dir = TempDir::new().expect("temp dir");
        let script = dir.path().join("server.py");
        std::fs::write(&script, SERVER_PY).expect("write server.py");
        let outdir = dir.path().join("received");
        std::fs::create_dir(&outdir).expect("create outdir");
        let log = std::fs::File::create(dir.path().join("server.log")).expect("server.log");
        let mut child = Command::new(&python)
            .arg(&script)
            .arg(port.to_string())
            .arg(&outdir)
            .arg(mode)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {python}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let ready = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).map(|_| line)
        });
        let server = Self {
            child,
            port,
            outdir,
            _dir: dir,
        };
        match tokio::time::timeout(StdDuration::from_secs(20), ready).await {
            Ok(Ok(Ok(line))) if line.trim() == "READY" => Some(server),
            other => panic!(
                "the SMTP server did not start ({other:?}); its log:\n{}",
                server.log()
            ),
        }
    }

    fn log(&self) -> String {
        let path = self.outdir.with_file_name("server.log");
        std::fs::read_to_string(path).unwrap_or_default()
    }

    /// `smtp://127.0.0.1:<port>?tls=none&timeout=5`.
    fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}?tls=none&timeout=5", self.port)
    }

    /// The messages received so far, in order: raw bytes and envelope lines.
    fn received(&self) -> Vec<(Vec<u8>, Vec<String>)> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&self.outdir)
            .expect("read outdir")
            .map(|e| e.expect("dir entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        names.sort();
        names
            .into_iter()
            .map(|p| {
                let raw = std::fs::read(&p).expect("read .eml");
                let envelope = std::fs::read_to_string(p.with_extension("envelope"))
                    .expect("read .envelope")
                    .lines()
                    .map(str::to_owned)
                    .collect();
                (raw, envelope)
            })
            .collect()
    }

    /// How many DATA commands the server answered.
    fn data_attempts(&self) -> usize {
        std::fs::read_to_string(self.outdir.join("attempts.log"))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// Service, dispatcher and a mailer that remembers what it was given
// ---------------------------------------------------------------------------------------------

/// Delegates to `inner` and keeps every mail it was handed (to compare with what arrived).
struct Recording<M> {
    inner: M,
    seen: Mutex<Vec<Mail>>,
}

impl<M> Recording<M> {
    fn new(inner: M) -> Arc<Self> {
        Arc::new(Self {
            inner,
            seen: Mutex::new(Vec::new()),
        })
    }

    fn seen(&self) -> Vec<Mail> {
        self.seen.lock().unwrap().clone()
    }
}

#[async_trait]
impl<M: Mailer> Mailer for Recording<M> {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        self.seen.lock().unwrap().push(mail.clone());
        self.inner.send(mail).await
    }
}

struct Setup {
    clock: Arc<ManualClock>,
    store: Arc<MemoryStore>,
    service: AccountService,
    seal: SealKey,
}

impl Setup {
    fn new() -> Self {
        let mut rng = StdRng::seed_from_u64(0x5EED_5317);
        let digest = DigestKey::generate(&mut rng);
        let seal = SealKey::generate(&mut rng);
        let mut policy = Policy::isspol();
        policy.hashing = HashParams::danger_insecure_for_tests();
        let mut ana = MemberFacts::new(
            MEMBER.parse().unwrap(),
            "Ana María Quishpe",
            date!(1988 - 03 - 14),
        );
        ana.affiliate_number = Some(AFFILIATE.into());
        let clock = Arc::new(ManualClock::new(datetime!(2026-11-22 19:36 -5)));
        let store = Arc::new(MemoryStore::new());
        let service = AccountService::builder(policy, digest, seal.clone())
            .store(store.clone())
            .directory(Arc::new(MemoryDirectory::new().with(ana)))
            .human_check(Arc::new(AlwaysPass))
            .clock(clock.clone())
            .build()
            .expect("service builds");
        Self {
            clock,
            store,
            service,
            seal,
        }
    }

    async fn register(&self) {
        let mut form = RegisterRequest::new(MEMBER, TO);
        form.mobile = Some("0991234567".into());
        form.terms_accepted = true;
        form.answers.affiliate_number = Some(AFFILIATE.into());
        form.human_response = Some("widget-ok".into());
        assert_eq!(
            self.service.register(form).await.unwrap(),
            RegisterOutcome::Submitted
        );
    }

    fn dispatcher(&self, mailer: Arc<dyn Mailer>) -> OutboxDispatcher {
        OutboxDispatcher::new(
            self.store.clone(),
            mailer,
            self.seal.clone(),
            LinkBase::new(BASE).unwrap(),
            self.clock.clone(),
        )
    }

    /// The only outbox message.
    fn message(&self) -> OutboxMessage {
        let [msg] = self.store.outbox().try_into().expect("exactly one message");
        msg
    }

    /// The activation token and code sealed in the only outbox message.
    fn secrets(&self) -> (String, String) {
        let msg = self.message();
        let s = self
            .seal
            .open(&msg.sealed, msg.idempotency_key.as_bytes())
            .expect("sealed secrets open");
        let code = s.code.expect("ISSPOL activation has a code");
        (
            s.token.expose_secret().to_owned(),
            code.expose_secret().to_owned(),
        )
    }

    async fn dead_letter_reasons(&self) -> Vec<(String, String)> {
        let member: MemberId = MEMBER.parse().unwrap();
        self.store
            .audit_log(&member)
            .await
            .unwrap()
            .into_iter()
            .filter_map(|e| match e.kind {
                AuditKind::NoticeDeadLettered { message, reason } => Some((message, reason)),
                _ => None,
            })
            .collect()
    }
}

fn smtp_mailer(url: &str) -> SmtpMailer {
    SmtpMailer::from_url(url)
        .expect("valid URL")
        .from(FROM)
        .expect("valid sender")
        .build()
        .expect("mailer builds")
}

fn counts(r: DispatchReport) -> (usize, usize, usize) {
    (r.sent, r.retried, r.dead_lettered)
}

// ---------------------------------------------------------------------------------------------
// Checking a received message
// ---------------------------------------------------------------------------------------------

/// The id-left the mailer derives from an outbox key.
fn sanitised(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn normalise(s: &str) -> String {
    s.replace("\r\n", "\n").trim_end().to_owned()
}

/// Parses `raw` and checks it is `mail` as sent by [`FROM`]: headers, parts, charsets and
/// decoded bodies.
fn check_message(raw: &[u8], mail: &Mail) {
    assert!(raw.is_ascii(), "the message is 7-bit clean");
    let parsed = MessageParser::default()
        .parse(raw)
        .expect("a parseable RFC 5322 message");

    let from = parsed.from().and_then(|a| a.first()).expect("From");
    assert_eq!(from.address(), Some(FROM_ADDR));
    assert_eq!(from.name(), Some(FROM_NAME), "UTF-8 display name decoded");
    let to = parsed.to().and_then(|a| a.first()).expect("To");
    assert_eq!(to.address(), Some(mail.to.as_str()));
    assert_eq!(parsed.subject(), Some(mail.subject.as_str()));
    assert_eq!(
        parsed.message_id(),
        Some(format!("{}@isspol.example.ec", sanitised(&mail.message_id)).as_str())
    );
    assert!(
        !raw_text(raw).contains("1710034065"),
        "the cédula appears nowhere in the message, Message-ID included"
    );
    assert!(parsed.date().is_some(), "Date header");

    let mut plain = Vec::new();
    let mut html = Vec::new();
    for part in &parsed.parts {
        let Some(ct) = part.content_type() else {
            continue;
        };
        match (ct.ctype(), ct.subtype(), &part.body) {
            ("text", Some("plain"), PartType::Text(body)) => {
                assert_eq!(ct.attribute("charset"), Some("utf-8"));
                plain.push(body.to_string());
            }
            ("text", Some("html"), PartType::Html(body)) => {
                assert_eq!(ct.attribute("charset"), Some("utf-8"));
                html.push(body.to_string());
            }
            ("multipart", Some("alternative"), _) => {
                assert!(mail.html.is_some(), "multipart only with an HTML part");
            }
            other => panic!("unexpected part {other:?}"),
        }
    }
    assert_eq!(plain.len(), 1, "one text/plain part");
    assert_eq!(normalise(&plain[0]), normalise(&mail.text));
    match &mail.html {
        Some(expected) => {
            assert_eq!(html.len(), 1, "one text/html part");
            assert_eq!(normalise(&html[0]), normalise(expected));
        }
        None => assert!(html.is_empty(), "no text/html part"),
    }
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn registration_mail_is_delivered_over_smtp() {
    let Some(server) = SmtpServer::start("accept").await else {
        return;
    };
    let s = Setup::new();
    s.register().await;
    let mailer = Recording::new(smtp_mailer(&server.url()));
    let report = s.dispatcher(mailer.clone()).run_once(10).await.unwrap();
    assert_eq!(counts(report), (1, 0, 0));
    let msg = s.message();
    assert!(matches!(msg.status, OutboxStatus::Sent { .. }), "{msg:?}");

    let received = server.received();
    assert_eq!(received.len(), 1, "exactly one message");
    let (raw, envelope) = &received[0];
    assert_eq!(envelope, &[FROM_ADDR.to_owned(), TO.to_owned()]);

    let [mail] = mailer.seen().try_into().expect("one mail rendered");
    assert_eq!(mail.message_id, msg.idempotency_key);
    check_message(raw, &mail);

    // The decoded text: Spanish intact, the link with the token, the 4-digit code.
    let parsed = MessageParser::default().parse(raw).unwrap();
    let text = parsed.body_text(0).expect("text body");
    let (token, code) = s.secrets();
    assert_eq!(code.len(), 4);
    assert!(
        text.contains(&format!("{BASE}/activar?token={token}")),
        "{text}"
    );
    assert!(text.contains(&code), "{text}");
    assert!(text.contains("código"), "{text}");
    if let Some(html) = &mail.html {
        assert!(html.contains(&token), "the HTML part has the link too");
    }
}

#[tokio::test]
async fn spanish_subject_and_html_part_survive_the_trip() {
    let Some(server) = SmtpServer::start("accept").await else {
        return;
    };
    let mailer = smtp_mailer(&server.url());
    let mail = Mail::new(
        "4f1c2e9a/7/0",
        TO.parse().unwrap(),
        "Su contraseña ha sido cambiada — atención",
        "Estimado afiliado:\n\nLa contraseña de su cuenta fue cambiada.\nÑandú, pingüino, acción.\n",
    )
    .with_html("<p>La <b>contraseña</b> de su cuenta fue cambiada.</p><p>Ñandú, pingüino.</p>");
    mailer.send(&mail).await.expect("delivered");
    let received = server.received();
    assert_eq!(received.len(), 1);
    check_message(&received[0].0, &mail);
    let raw = String::from_utf8_lossy(&received[0].0).into_owned();
    assert!(
        raw.contains("Message-ID: <4f1c2e9a_7_0@isspol.example.ec>"),
        "{raw}"
    );
    assert!(raw.contains("multipart/alternative"), "{raw}");
}

#[tokio::test]
async fn a_server_that_is_down_means_retry_then_exactly_one_delivery() {
    let port = free_port();
    let s = Setup::new();
    s.register().await;
    let url = format!("smtp://127.0.0.1:{port}?tls=none&timeout=5");
    let dispatcher = s.dispatcher(Arc::new(smtp_mailer(&url)));

    let report = dispatcher.run_once(10).await.unwrap();
    assert_eq!(counts(report), (0, 1, 0));
    let msg = s.message();
    assert_eq!(msg.status, OutboxStatus::Pending);
    assert_eq!(msg.attempts, 1);
    assert!(s.dead_letter_reasons().await.is_empty());

    let Some(server) = SmtpServer::start_on(port, "accept", &[]).await else {
        return;
    };
    // Not due yet: nothing happens.
    assert_eq!(counts(dispatcher.run_once(10).await.unwrap()), (0, 0, 0));
    assert!(server.received().is_empty());

    s.clock.set(msg.next_attempt_at);
    assert_eq!(counts(dispatcher.run_once(10).await.unwrap()), (1, 0, 0));
    assert_eq!(server.received().len(), 1, "delivered exactly once");
    assert_eq!(s.message().attempts, 2);
    s.clock.advance(time::Duration::hours(2));
    assert_eq!(counts(dispatcher.run_once(10).await.unwrap()), (0, 0, 0));
    assert_eq!(server.received().len(), 1, "and never again");
}

#[tokio::test]
async fn a_550_reply_dead_letters_at_once_with_an_audit_event() {
    let Some(server) = SmtpServer::start("reject550").await else {
        return;
    };
    let s = Setup::new();
    s.register().await;
    let dispatcher = s.dispatcher(Arc::new(smtp_mailer(&server.url())));

    assert_eq!(counts(dispatcher.run_once(10).await.unwrap()), (0, 0, 1));
    let msg = s.message();
    assert!(
        matches!(msg.status, OutboxStatus::DeadLetter { .. }),
        "{msg:?}"
    );
    assert_eq!(msg.attempts, 1);
    assert_eq!(server.data_attempts(), 1);
    assert!(server.received().is_empty());

    let [(message, reason)] = s.dead_letter_reasons().await.try_into().unwrap();
    assert_eq!(message, msg.idempotency_key);
    assert!(reason.contains("550"), "{reason}");
    assert!(reason.contains("refused by local policy"), "{reason}");
    let (token, code) = s.secrets();
    assert!(
        !reason.contains(&token) && !reason.contains(&code),
        "{reason}"
    );

    s.clock.advance(time::Duration::days(1));
    assert_eq!(counts(dispatcher.run_once(10).await.unwrap()), (0, 0, 0));
    assert_eq!(server.data_attempts(), 1, "never retried");
}

#[tokio::test]
async fn a_rejected_recipient_leaves_no_address_or_cedula_in_the_dead_letter() {
    let Some(server) = SmtpServer::start("reject550rcpt").await else {
        return;
    };
    let s = Setup::new();
    s.register().await;
    let dispatcher = s.dispatcher(Arc::new(smtp_mailer(&server.url())));

    assert_eq!(counts(dispatcher.run_once(10).await.unwrap()), (0, 0, 1));
    assert_eq!(server.data_attempts(), 0, "refused at RCPT TO");
    let msg = s.message();
    let OutboxStatus::DeadLetter { reason: status, .. } = &msg.status else {
        panic!("{msg:?}");
    };
    let [(_, audited)] = s.dead_letter_reasons().await.try_into().unwrap();
    // What the audit log stores besides the member key (which is stored whole).
    let audit_json = serde_json::to_string(
        &s.store
            .audit_log(&MEMBER.parse().unwrap())
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    for text in [status.as_str(), audited.as_str(), audit_json.as_str()] {
        assert!(text.contains("550"), "{text}");
        assert!(text.contains("Recipient address rejected"), "{text}");
        assert!(!text.contains(TO), "the address leaked: {text}");
        assert!(
            !text.contains("ana.quishpe"),
            "the local part leaked: {text}"
        );
        assert!(!text.contains(MEMBER), "the cédula leaked: {text}");
        // Whatever address-shaped text remains is masked (`a***@domain`).
        assert!(
            text.match_indices('@')
                .all(|(at, _)| text[..at].ends_with("***")),
            "an unmasked address: {text}"
        );
    }
    assert_eq!(status, &audited);
}

#[tokio::test]
async fn a_451_reply_is_retried_until_max_attempts_then_dead_lettered() {
    let Some(server) = SmtpServer::start("defer451").await else {
        return;
    };
    let s = Setup::new();
    s.register().await;
    let dispatcher = s
        .dispatcher(Arc::new(smtp_mailer(&server.url())))
        .max_attempts(3);

    for attempt in 1..=2 {
        assert_eq!(counts(dispatcher.run_once(10).await.unwrap()), (0, 1, 0));
        let msg = s.message();
        assert_eq!(msg.status, OutboxStatus::Pending);
        assert_eq!(msg.attempts, attempt);
        assert!(s.dead_letter_reasons().await.is_empty());
        s.clock.set(msg.next_attempt_at);
    }
    assert_eq!(counts(dispatcher.run_once(10).await.unwrap()), (0, 0, 1));
    let msg = s.message();
    assert!(
        matches!(msg.status, OutboxStatus::DeadLetter { .. }),
        "{msg:?}"
    );
    assert_eq!(msg.attempts, 3);
    assert_eq!(server.data_attempts(), 3);
    let [(message, reason)] = s.dead_letter_reasons().await.try_into().unwrap();
    assert_eq!(message, msg.idempotency_key);
    assert!(reason.contains("451"), "{reason}");
}

#[tokio::test]
async fn authenticates_with_the_percent_decoded_user_info() {
    let port = free_port();
    let (user, password) = ("avisos@isspol.example.ec", "cl@ve:de paso%2026");
    let Some(server) = SmtpServer::start_on(port, "auth", &[user, password]).await else {
        return;
    };
    let mail = Mail::new("k-1", TO.parse().unwrap(), "Prueba", "Hola");

    let good = format!(
        "smtp://avisos%40isspol.example.ec:cl%40ve%3Ade%20paso%252026@127.0.0.1:{port}?tls=none&timeout=5"
    );
    smtp_mailer(&good).send(&mail).await.expect("authenticated");
    assert_eq!(server.received().len(), 1);

    let bad =
        format!("smtp://avisos%40isspol.example.ec:Wrong-Pa55@127.0.0.1:{port}?tls=none&timeout=5");
    let err = smtp_mailer(&bad).send(&mail).await.unwrap_err();
    // 535: the relay's configuration, not this message's fault: transient.
    let MailError::Transient(reason) = err else {
        panic!("expected a transient failure, got {err:?}")
    };
    assert!(reason.contains("535"), "{reason}");
    assert!(!reason.contains("Wrong-Pa55"), "{reason}");
    assert_eq!(server.received().len(), 1);

    let anonymous = smtp_mailer(&server.url()).send(&mail).await.unwrap_err();
    assert!(
        matches!(&anonymous, MailError::Transient(r) if r.contains("530")),
        "{anonymous:?}"
    );
}

#[tokio::test]
async fn starttls_is_required_never_skipped() {
    // A plaintext server that does not offer STARTTLS: nothing may be sent in clear.
    let Some(server) = SmtpServer::start("accept").await else {
        return;
    };
    let url = format!("smtp://127.0.0.1:{}?tls=starttls&timeout=5", server.port);
    let mail = Mail::new("k-2", TO.parse().unwrap(), "Prueba", "secreto 4821");
    let err = smtp_mailer(&url).send(&mail).await.unwrap_err();
    assert!(matches!(err, MailError::Transient(_)), "{err:?}");
    assert!(server.received().is_empty());
    assert_eq!(server.data_attempts(), 0);
}

#[tokio::test]
async fn a_silent_server_times_out_as_transient() {
    // Accepts the connection and never greets.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let url = format!("smtp://127.0.0.1:{port}?tls=none&timeout=1");
    let mail = Mail::new("k-3", TO.parse().unwrap(), "Prueba", "Hola");
    let started = std::time::Instant::now();
    let err = smtp_mailer(&url).send(&mail).await.unwrap_err();
    let elapsed = started.elapsed();
    drop(listener);
    let MailError::Transient(reason) = err else {
        panic!("expected a transient failure, got {err:?}")
    };
    assert!(reason.contains("timed out"), "{reason}");
    assert!(elapsed < StdDuration::from_secs(5), "{elapsed:?}");
}

#[tokio::test]
async fn eml_dir_mailer_writes_the_same_message() {
    let dir = TempDir::new().unwrap();
    let out = dir.path().join("mails");
    let s = Setup::new();
    s.register().await;
    let eml = EmlDirMailer::new(&out).from(FROM).unwrap();
    let path_for_key = eml.path_for(&s.message().idempotency_key);
    let mailer = Recording::new(eml);
    assert_eq!(
        counts(s.dispatcher(mailer.clone()).run_once(10).await.unwrap()),
        (1, 0, 0)
    );
    let [mail] = mailer.seen().try_into().unwrap();

    let files: Vec<PathBuf> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(
        files,
        vec![path_for_key.clone()],
        "one file, no temporary left"
    );
    assert_eq!(
        path_for_key.file_name().unwrap().to_str().unwrap(),
        format!("{}.eml", sanitised(&mail.message_id))
    );
    let raw = std::fs::read(&path_for_key).unwrap();
    check_message(&raw, &mail);
    let (token, code) = s.secrets();
    let text = MessageParser::default()
        .parse(&raw)
        .unwrap()
        .body_text(0)
        .unwrap()
        .into_owned();
    assert!(text.contains(&token) && text.contains(&code), "{text}");

    // A resend (same id) replaces the file.
    mailer.send(&mail).await.unwrap();
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 1);
}

#[tokio::test]
async fn eml_file_names_stay_inside_the_directory() {
    let dir = TempDir::new().unwrap();
    let mailer = EmlDirMailer::new(dir.path());
    let mail = Mail::new("../../escape/ñ", TO.parse().unwrap(), "Asunto", "Hola");
    mailer.send(&mail).await.unwrap();
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, vec!["_._.__escape__.eml".to_owned()]);
    assert!(is_inside(dir.path(), &mailer.path_for(&mail.message_id)));
}

fn is_inside(dir: &Path, path: &Path) -> bool {
    path.parent() == Some(dir)
}

#[tokio::test]
async fn stdout_mailer_smoke() {
    let mail = Mail::new(
        "k/9",
        TO.parse().unwrap(),
        "Active su cuenta",
        "Su código es 4821.",
    )
    .with_html("<p>Su código es 4821.</p>");
    StdoutMailer::new().send(&mail).await.unwrap();
}

fn raw_text(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).into_owned()
}
