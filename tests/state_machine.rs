//! Property test of the pure core against a reference model (proptest-state-machine).
//!
//! Random sequences of [`Step`]s — registrations, activations with right and wrong tokens
//! and codes, logins, unlock requests, recoveries, resets, staff operations, and the clock
//! moving (often exactly onto a deadline, or one second either side) — are applied both to
//! a small reference model written from the state-machine rules and to `afiliado::core::decide`, with real
//! tokens, HMAC digests and argon2 verification. After every step the two must agree, and
//! the invariants of the state machine are asserted directly:
//!
//! 1. no path reaches `Active` without the latest activation link (and code) and a
//!    policy-passing password;
//! 2. a locked account never authenticates, whatever the password;
//! 3. tokens are single-use, expire exactly at their deadline, and die when a newer one of
//!    the same purpose is issued or the email/password changes;
//! 4. (counters) failures, lockouts and check failures equal the model's;
//! 5. the record never holds a secret in clear.
#![allow(clippy::disallowed_methods)]
#![cfg(feature = "proptest")]

use std::collections::HashMap;
use std::marker::PhantomData;
use std::time::Duration;

use afiliado::core::{
    AccountRecord, AccountState, Command, Contact, Decision, Denied, EnrolledAnswer, Locale,
    NewPassword, Outcome, ProofResult, Register, SecurityEnrollment, StaffAction, StartRecovery,
    decide,
};
use afiliado::crypto::{
    DigestKey, HashParams, NumericCode, PasswordHash, Token, TokenPurpose, hash_password,
    verify_password,
};
use afiliado::policy::{Policy, Proof};
use afiliado::strategies::flow::{Step, TokenPick, step};
use afiliado::{Email, MemberId, MobilePhone, Password};
use proptest::prelude::*;
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};
use rand::SeedableRng;
use rand::rngs::StdRng;
use time::OffsetDateTime;
use time::macros::datetime;

// ---------------------------------------------------------------------------------------
// Policies under test: the presets, with hashing made cheap and mail caps out of the way
// (caps and cooldowns have their own unit tests).

trait Preset: Clone + std::fmt::Debug + 'static {
    fn base() -> Policy;
    fn policy() -> Policy {
        let mut p = Self::base();
        p.hashing = HashParams::danger_insecure_for_tests();
        p.registration.resend_cooldown = Duration::ZERO;
        p.registration.max_per_day = 1_000_000;
        p.notices.lock_warnings_per_day = 1_000_000;
        // The model mails every link at once (pacing has its own tests).
        p.notices.link_cooldown = None;
        // The model changes the email at once (confirmation has its own flow tests).
        p.staff.confirm_email_change = false;
        p
    }
}

#[derive(Clone, Debug)]
struct Isspol;
impl Preset for Isspol {
    fn base() -> Policy {
        Policy::isspol()
    }
}
#[derive(Clone, Debug)]
struct Iess;
impl Preset for Iess {
    fn base() -> Policy {
        Policy::iess()
    }
}
#[derive(Clone, Debug)]
struct Recommended;
impl Preset for Recommended {
    fn base() -> Policy {
        Policy::recommended()
    }
}

const START: OffsetDateTime = datetime!(2026-11-22 08:00 -5);

fn after(t: OffsetDateTime, d: Duration) -> OffsetDateTime {
    t + time::Duration::try_from(d).unwrap()
}

// ---------------------------------------------------------------------------------------
// Reference model

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Purpose {
    Activation,
    Unlock,
    Reset,
}

#[derive(Clone, Debug, PartialEq)]
struct MLock {
    staff: bool,
    until: Option<OffsetDateTime>,
    unlock: Option<(usize, OffsetDateTime)>,
}

#[derive(Clone, Debug, PartialEq)]
enum MStanding {
    Active(Vec<OffsetDateTime>),
    Locked(MLock),
}

#[derive(Clone, Debug, PartialEq)]
enum MState {
    Unregistered,
    Pending {
        token: usize,
        expires: OffsetDateTime,
        attempts: u8,
    },
    Standing(MStanding),
    Resetting {
        token: usize,
        expires: OffsetDateTime,
        ret: MStanding,
    },
}

/// What the model expects the core to answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Denied,
    Registered,
    AlreadyRegistered,
    ChecksFailed,
    LinkValid,
    WrongCode,
    Burned,
    Activated,
    LoggedIn,
    LoginFailed,
    Locked,
    Refused,
    UnlockSent,
    NotLocked,
    Unlocked,
    ResetSent,
    NotEligible,
    PasswordReset,
    Expired,
    StaffDone,
    /// Clock steps: no command.
    Nothing,
}

#[derive(Clone, Debug)]
struct Model<P> {
    policy: Policy,
    now: OffsetDateTime,
    state: MState,
    lockouts: u32,
    check_failures: u32,
    /// Failed logins of an ID with no activated account, and its lock (`Some(until)`): the
    /// same rules as an account's.
    shadow: Vec<OffsetDateTime>,
    shadow_lock: Option<Option<OffsetDateTime>>,
    /// Registration proof failures on `reg_day` (they throttle registration only).
    reg_failures: u32,
    reg_day: Option<time::Date>,
    /// Version of the current password (0: none yet).
    password: u32,
    /// Index of the current contact email (staff changes toggle it).
    email: usize,
    /// Every token ever generated: its purpose.
    issued: Vec<Purpose>,
    /// Tokens that were mailed (their issuing command was accepted), oldest first.
    delivered: Vec<usize>,
    /// Step-resolved token index (None: forged).
    presented: Option<usize>,
    expect: Expect,
    _p: PhantomData<P>,
}

impl<P> Model<P> {
    fn lock(&self) -> Option<&MLock> {
        match &self.state {
            MState::Standing(MStanding::Locked(l))
            | MState::Resetting {
                ret: MStanding::Locked(l),
                ..
            } => Some(l),
            _ => None,
        }
    }

    fn lock_mut(&mut self) -> Option<&mut MLock> {
        match &mut self.state {
            MState::Standing(MStanding::Locked(l))
            | MState::Resetting {
                ret: MStanding::Locked(l),
                ..
            } => Some(l),
            _ => None,
        }
    }

    fn has_profile(&self) -> bool {
        matches!(self.state, MState::Standing(_) | MState::Resetting { .. })
    }

    fn resolve(&self, pick: &TokenPick) -> Option<usize> {
        match pick {
            TokenPick::Latest => self.issued.len().checked_sub(1),
            TokenPick::Stale(i) if !self.issued.is_empty() => Some(i.index(self.issued.len())),
            _ => None,
        }
    }

    /// The token a `Latest` pick of `purpose` presents: the newest mailed one of that purpose.
    fn latest_of(&self, purpose: Purpose) -> Option<usize> {
        self.delivered
            .iter()
            .rev()
            .copied()
            .find(|i| self.issued[*i] == purpose)
    }

    fn deadlines(&self) -> Vec<OffsetDateTime> {
        let w = self.policy.lockout.window;
        let mut out = Vec::new();
        let standing = |s: &MStanding, out: &mut Vec<OffsetDateTime>| match s {
            MStanding::Active(f) => out.extend(f.iter().map(|t| after(*t, w))),
            MStanding::Locked(l) => {
                out.extend(l.until);
                out.extend(l.unlock.map(|u| u.1));
            }
        };
        out.extend(self.shadow.iter().map(|t| after(*t, w)));
        out.extend(self.shadow_lock.flatten());
        match &self.state {
            MState::Unregistered => {}
            MState::Pending { expires, .. } => out.push(*expires),
            MState::Standing(s) => standing(s, &mut out),
            MState::Resetting { expires, ret, .. } => {
                out.push(*expires);
                standing(ret, &mut out);
            }
        }
        out
    }

    /// Lazy time-driven transitions. Returns whether any applied.
    fn settle(&mut self) -> bool {
        let now = self.now;
        let mut changed = false;
        loop {
            let next = match &self.state {
                MState::Pending { expires, .. } if now >= *expires => MState::Unregistered,
                MState::Standing(MStanding::Locked(l)) if l.until.is_some_and(|t| now >= t) => {
                    MState::Standing(MStanding::Active(vec![]))
                }
                MState::Resetting { expires, ret, .. } if now >= *expires => {
                    MState::Standing(ret.clone())
                }
                MState::Resetting {
                    token,
                    expires,
                    ret: MStanding::Locked(l),
                } if l.until.is_some_and(|t| now >= t) => MState::Resetting {
                    token: *token,
                    expires: *expires,
                    ret: MStanding::Active(vec![]),
                },
                _ => break,
            };
            self.state = next;
            changed = true;
        }
        if self
            .shadow_lock
            .is_some_and(|until| until.is_some_and(|t| now >= t))
        {
            self.shadow_lock = None;
            self.shadow.clear();
            changed = true;
        }
        let w = self.policy.lockout.window;
        self.shadow.retain(|t| now < after(*t, w));
        if let MState::Standing(MStanding::Active(f))
        | MState::Resetting {
            ret: MStanding::Active(f),
            ..
        } = &mut self.state
        {
            f.retain(|t| now < after(*t, w));
        }
        changed
    }

    fn do_lock(&mut self, staff: bool) {
        if !staff {
            self.lockouts += 1;
        }
        let until = if staff {
            None
        } else {
            self.policy
                .lock_duration(self.lockouts)
                .map(|d| after(self.now, d))
        };
        let lock = MLock {
            staff,
            until,
            unlock: None,
        };
        match &mut self.state {
            MState::Standing(s) => *s = MStanding::Locked(lock),
            // A suspension kills the pending reset.
            MState::Resetting { .. } if staff => {
                self.state = MState::Standing(MStanding::Locked(lock))
            }
            MState::Resetting { ret, .. } => *ret = MStanding::Locked(lock),
            _ if !staff => {
                self.shadow.clear();
                self.shadow_lock = Some(until);
            }
            _ => {}
        }
    }

    fn lift(&mut self) {
        match &mut self.state {
            MState::Standing(s) => *s = MStanding::Active(vec![]),
            MState::Resetting { ret, .. } => *ret = MStanding::Active(vec![]),
            _ => {}
        }
        self.lockouts = 0;
        self.check_failures = 0;
    }

    fn check_failed(&mut self) {
        self.check_failures += 1;
        if let Some(b) = self.policy.recovery.attempt_budget {
            if self.check_failures >= b && !self.lock().is_some_and(|l| l.staff) {
                self.do_lock(false);
            }
        }
    }

    fn exhausted(&self) -> bool {
        self.policy
            .recovery
            .attempt_budget
            .is_some_and(|b| self.check_failures >= b)
    }

    fn issue_reset(&mut self, token: usize) {
        let expires = after(self.now, self.policy.recovery.reset_ttl);
        let ret = match std::mem::replace(&mut self.state, MState::Unregistered) {
            MState::Standing(MStanding::Active(f)) => MStanding::Active(f),
            // A reset link supersedes an outstanding unlock link.
            MState::Standing(MStanding::Locked(mut l))
            | MState::Resetting {
                ret: MStanding::Locked(mut l),
                ..
            } => {
                l.unlock = None;
                MStanding::Locked(l)
            }
            MState::Resetting { ret, .. } => ret,
            other => unreachable!("issue_reset from {other:?}"),
        };
        self.state = MState::Resetting {
            token,
            expires,
            ret,
        };
    }

    fn step(&mut self, step: &Step) -> Expect {
        use Expect as E;
        match step {
            Step::Advance(d) => {
                self.now = after(self.now, *d);
                return E::Nothing;
            }
            Step::ToDeadline { which, offset_secs } => {
                let ds = self.deadlines();
                if !ds.is_empty() {
                    let t = ds[which.index(ds.len())]
                        + time::Duration::seconds(i64::from(*offset_secs));
                    if t > self.now {
                        self.now = t;
                    }
                }
                return E::Nothing;
            }
            _ => {}
        }
        let settled = self.settle();
        let issuing = matches!(
            step,
            Step::Register { .. }
                | Step::RequestUnlock
                | Step::StartRecovery { .. }
                | Step::StaffSendReset
        );
        let new_token = self.issued.len();
        if let Some(purpose) = match step {
            Step::Register { .. } => Some(Purpose::Activation),
            Step::RequestUnlock => Some(Purpose::Unlock),
            Step::StartRecovery { .. } | Step::StaffSendReset => Some(Purpose::Reset),
            _ => None,
        } {
            self.issued.push(purpose);
        }
        let _ = issuing;
        let p = self.policy.clone();
        match step {
            Step::Advance(_) | Step::ToDeadline { .. } => E::Nothing,
            Step::Register { proofs_ok } => {
                let day = afiliado::core::local_day(self.now);
                let today = if self.reg_day == Some(day) {
                    self.reg_failures
                } else {
                    0
                };
                if today >= p.registration.max_failed_proofs_per_day {
                    E::ChecksFailed
                } else if !proofs_ok {
                    self.reg_day = Some(day);
                    self.reg_failures = today + 1;
                    E::ChecksFailed
                } else if self.has_profile() {
                    E::AlreadyRegistered
                } else {
                    self.state = MState::Pending {
                        token: new_token,
                        expires: after(self.now, p.activation.ttl),
                        attempts: p.activation.code_attempts,
                    };
                    E::Registered
                }
            }
            Step::InspectActivation { token } => {
                let presented = self.resolve_for(token, Purpose::Activation);
                match &self.state {
                    MState::Pending { token: t, .. } if presented == Some(*t) => E::LinkValid,
                    _ => E::Denied,
                }
            }
            Step::Activate {
                token,
                code_ok,
                password_ok,
                confirmation_ok,
            } => {
                let presented = self.resolve_for(token, Purpose::Activation);
                let MState::Pending {
                    token: t, attempts, ..
                } = self.state.clone()
                else {
                    return E::Denied;
                };
                if presented != Some(t) {
                    return E::Denied;
                }
                if p.activation.code_digits.is_some() && !code_ok {
                    let left = attempts - 1;
                    if left == 0 {
                        self.state = MState::Unregistered;
                        return E::Burned;
                    }
                    if let MState::Pending { attempts, .. } = &mut self.state {
                        *attempts = left;
                    }
                    return E::WrongCode;
                }
                if !(*password_ok && *confirmation_ok) {
                    return E::Denied;
                }
                self.password += 1;
                self.state = MState::Standing(MStanding::Active(vec![]));
                self.lockouts = 0;
                self.check_failures = 0;
                self.shadow.clear();
                self.shadow_lock = None;
                E::Activated
            }
            Step::Login { password_ok } => {
                if !self.has_profile() {
                    // No account: counted and locked like one, never logged in.
                    if self.shadow_lock.is_some() {
                        return E::Refused;
                    }
                    self.shadow.push(self.now);
                    if self.shadow.len() as u32 >= p.lockout.threshold {
                        self.do_lock(false);
                        return E::Locked;
                    }
                    return E::LoginFailed;
                }
                if self.lock().is_some() {
                    return E::Refused;
                }
                let (failures, resetting) = match &mut self.state {
                    MState::Standing(MStanding::Active(f)) => (f, false),
                    MState::Resetting {
                        ret: MStanding::Active(f),
                        ..
                    } => (f, true),
                    _ => return E::Denied,
                };
                if *password_ok {
                    let _ = resetting;
                    self.state = MState::Standing(MStanding::Active(vec![]));
                    self.lockouts = 0;
                    E::LoggedIn
                } else {
                    failures.push(self.now);
                    if failures.len() as u32 >= p.lockout.threshold {
                        self.do_lock(false);
                        E::Locked
                    } else {
                        E::LoginFailed
                    }
                }
            }
            Step::RequestUnlock => {
                let Some(ttl) = p.unlock.link_ttl else {
                    return E::Denied;
                };
                let now = self.now;
                match self.lock_mut() {
                    Some(l) if !l.staff => {
                        l.unlock = Some((new_token, after(now, ttl)));
                        E::UnlockSent
                    }
                    _ => E::NotLocked,
                }
            }
            Step::Unlock { token } => {
                let presented = self.resolve_for(token, Purpose::Unlock);
                let now = self.now;
                match self.lock() {
                    None => E::Denied,
                    Some(l) => match l.unlock {
                        Some((t, exp)) if presented == Some(t) && now < exp => {
                            self.lift();
                            E::Unlocked
                        }
                        _ => E::Denied,
                    },
                }
            }
            Step::StartRecovery { proofs_ok } => {
                if self.exhausted() {
                    return E::ChecksFailed;
                }
                // No account or suspended: counted like wrong proofs, never a link.
                if !self.has_profile() || self.lock().is_some_and(|l| l.staff) {
                    self.check_failed();
                    return E::ChecksFailed;
                }
                if !p.recovery.proofs.is_empty() && !proofs_ok {
                    self.check_failed();
                    return E::ChecksFailed;
                }
                self.issue_reset(new_token);
                E::ResetSent
            }
            Step::ResetPassword {
                token,
                password_ok,
                confirmation_ok,
            } => {
                let presented = self.resolve_for(token, Purpose::Reset);
                let MState::Resetting { token: t, ret, .. } = self.state.clone() else {
                    return E::Denied;
                };
                if presented != Some(t) || !(*password_ok && *confirmation_ok) {
                    return E::Denied;
                }
                self.password += 1;
                let was_locked = matches!(ret, MStanding::Locked(_));
                self.state = match ret {
                    MStanding::Locked(mut l) if !p.unlock.reset_unlocks || l.staff => {
                        l.unlock = None;
                        MState::Standing(MStanding::Locked(l))
                    }
                    _ => MState::Standing(MStanding::Active(vec![])),
                };
                if was_locked && self.lock().is_none() {
                    self.lockouts = 0;
                }
                self.check_failures = 0;
                E::PasswordReset
            }
            Step::Expire => {
                if settled {
                    E::Expired
                } else {
                    E::Denied
                }
            }
            Step::StaffUnlock => {
                if self.lock().is_some() {
                    self.lift();
                    E::StaffDone
                } else if self.check_failures > 0 {
                    self.check_failures = 0;
                    E::StaffDone
                } else {
                    E::Denied
                }
            }
            Step::StaffSuspend => {
                if !self.has_profile() {
                    return E::Denied;
                }
                self.do_lock(true);
                E::StaffDone
            }
            Step::StaffChangeEmail => {
                if !self.has_profile() {
                    return E::Denied;
                }
                self.email = 1 - self.email;
                self.state = match std::mem::replace(&mut self.state, MState::Unregistered) {
                    MState::Standing(MStanding::Locked(mut l)) => {
                        l.unlock = None;
                        MState::Standing(MStanding::Locked(l))
                    }
                    MState::Resetting { ret, .. } => MState::Standing(match ret {
                        MStanding::Locked(mut l) => {
                            l.unlock = None;
                            MStanding::Locked(l)
                        }
                        active => active,
                    }),
                    other => other,
                };
                E::StaffDone
            }
            Step::StaffSendReset => {
                if !self.has_profile() {
                    return E::Denied;
                }
                self.issue_reset(new_token);
                E::StaffDone
            }
            _ => unreachable!("unknown step"),
        }
    }

    /// The token index a pick presents for a step of `purpose` (recorded for the SUT).
    fn resolve_for(&mut self, pick: &TokenPick, purpose: Purpose) -> Option<usize> {
        let r = match pick {
            TokenPick::Latest => self.latest_of(purpose),
            other => self.resolve(other),
        };
        self.presented = r;
        r
    }
}

struct RefMachine<P>(PhantomData<P>);

impl<P: Preset> ReferenceStateMachine for RefMachine<P> {
    type State = Model<P>;
    type Transition = Step;

    fn init_state() -> BoxedStrategy<Self::State> {
        Just(Model {
            policy: P::policy(),
            now: START,
            state: MState::Unregistered,
            lockouts: 0,
            check_failures: 0,
            shadow: Vec::new(),
            shadow_lock: None,
            reg_failures: 0,
            reg_day: None,
            password: 0,
            email: 0,
            issued: Vec::new(),
            delivered: Vec::new(),
            presented: None,
            expect: Expect::Nothing,
            _p: PhantomData,
        })
        .boxed()
    }

    fn transitions(_state: &Self::State) -> BoxedStrategy<Self::Transition> {
        step().boxed()
    }

    fn apply(mut state: Self::State, transition: &Self::Transition) -> Self::State {
        state.presented = None;
        let before = state.clone();
        state.expect = state.step(transition);
        let mailed = matches!(
            (transition, state.expect),
            (Step::Register { .. }, Expect::Registered)
                | (Step::RequestUnlock, Expect::UnlockSent)
                | (Step::StartRecovery { .. }, Expect::ResetSent)
                | (Step::StaffSendReset, Expect::StaffDone)
        );
        if mailed {
            state.delivered.push(state.issued.len() - 1);
        }
        if state.expect == Expect::Denied {
            // A denied command changes nothing, not even the lazily applied expiries
            // (they are applied again, identically, by the next accepted command).
            state.state = before.state;
            state.lockouts = before.lockouts;
            state.check_failures = before.check_failures;
            state.shadow = before.shadow;
            state.shadow_lock = before.shadow_lock;
        }
        state
    }
}

// ---------------------------------------------------------------------------------------
// System under test: the real core with real tokens, digests and hashes.

struct Sut<P> {
    policy: Policy,
    record: AccountRecord,
    key: DigestKey,
    rng: StdRng,
    tokens: Vec<Token>,
    codes: HashMap<usize, NumericCode>,
    emails: [Email; 2],
    secrets: Vec<String>,
    hashes: usize,
    /// Version of the password the SUT believes is current (the model keeps its own).
    pw: u32,
    _p: PhantomData<P>,
}

fn member() -> MemberId {
    "1710034065".parse().unwrap()
}

fn good_password(policy: &Policy, version: u32) -> String {
    if policy.password.max_length >= 19 {
        format!("Clave Segura {version:04} ok")
    } else {
        format!("Clave{version:04}Seg")
    }
}

impl<P: Preset> Sut<P> {
    fn digest(&self, purpose: TokenPurpose, token: &Token) -> afiliado::crypto::Digest {
        self.key.digest_token(purpose, token)
    }

    fn presented(&mut self, model: &Model<P>, purpose: TokenPurpose) -> afiliado::crypto::Digest {
        let token = match model.presented {
            Some(i) => self.tokens[i].clone(),
            None => Token::generate(&mut self.rng),
        };
        self.digest(purpose, &token)
    }

    fn new_token(&mut self, purpose: TokenPurpose) -> afiliado::crypto::Digest {
        let t = Token::generate(&mut self.rng);
        self.secrets.push(t.expose_secret().to_owned());
        self.tokens.push(t.clone());
        self.digest(purpose, &t)
    }

    fn new_password(&self, ok: bool, confirmation_ok: bool) -> NewPassword {
        let pw = if ok {
            good_password(&self.policy, self.pw + 1)
        } else {
            "abc".to_owned()
        };
        let confirmation = if confirmation_ok {
            pw.clone()
        } else {
            format!("{pw}x")
        };
        NewPassword {
            password: Password::new(pw),
            confirmation: Password::new(confirmation),
            hash: None,
        }
    }

    /// Two-phase decision for commands that carry a new password: hash only when asked.
    fn decide_with_hash(
        &mut self,
        mut cmd: Command,
        now: OffsetDateTime,
    ) -> Result<Decision, Denied> {
        match decide(&self.record, &cmd, now, &self.policy) {
            Err(Denied::HashRequired) => {
                let pw = match &mut cmd {
                    Command::Activate { password, .. }
                    | Command::ResetPassword { password, .. } => password,
                    _ => unreachable!(),
                };
                let hash = hash_password(
                    pw.password.expose_secret().as_bytes(),
                    &self.policy.hashing,
                    &mut self.rng,
                )
                .unwrap();
                self.secrets.push(pw.password.expose_secret().to_owned());
                pw.hash = Some(hash);
                self.hashes += 1;
                let d = decide(&self.record, &cmd, now, &self.policy);
                assert!(!matches!(d, Err(Denied::HashRequired)), "hash was given");
                d
            }
            other => other,
        }
    }

    fn proofs(&self, required: &[Proof], ok: bool) -> Vec<ProofResult> {
        required
            .iter()
            .filter(|p| **p != Proof::RegisteredEmail)
            .map(|p| ProofResult {
                proof: *p,
                passed: ok,
            })
            .collect()
    }

    fn enrollment(&mut self) -> SecurityEnrollment {
        let h = |s: &str, rng: &mut StdRng| -> PasswordHash {
            hash_password(s.as_bytes(), &HashParams::danger_insecure_for_tests(), rng).unwrap()
        };
        let r = &self.policy.registration;
        SecurityEnrollment {
            image: r.security_image.then(|| h("llama", &mut self.rng)),
            answers: (0..r.security_questions)
                .map(|i| EnrolledAnswer {
                    question: format!("q{i}"),
                    answer: h("quito", &mut self.rng),
                })
                .collect(),
        }
    }

    fn run(&mut self, model: &Model<P>, step: &Step) -> Option<Result<Decision, Denied>> {
        let now = model.now;
        let p = self.policy.clone();
        let cmd = match step {
            Step::Advance(_) | Step::ToDeadline { .. } => return None,
            Step::Register { proofs_ok } => {
                let link = self.new_token(TokenPurpose::Activation);
                let index = self.tokens.len() - 1;
                let code = p.activation.code_digits.map(|d| {
                    let c = NumericCode::generate(d, &mut self.rng).unwrap();
                    // Quoted: a bare 4-digit code also occurs inside timestamps.
                    self.secrets.push(format!("\"{}\"", c.expose_secret()));
                    let digest =
                        self.key
                            .digest_code(TokenPurpose::ActivationCode, member().as_str(), &c);
                    self.codes.insert(index, c);
                    digest
                });
                let enrollment = self.enrollment();
                Command::Register(Register {
                    contact: Contact {
                        email: self.emails[model.email].clone(),
                        mobile: Some("0991234567".parse::<MobilePhone>().unwrap()),
                        landline: Some("022345678".parse().unwrap()),
                    },
                    terms_accepted: true,
                    proofs: self.proofs(&p.registration.proofs, *proofs_ok),
                    human_verified: true,
                    link,
                    code,
                    enrollment,
                    locale: Locale::EsEc,
                })
            }
            Step::InspectActivation { .. } => Command::InspectActivation {
                link: self.presented(model, TokenPurpose::Activation),
            },
            Step::Activate {
                code_ok,
                password_ok,
                confirmation_ok,
                ..
            } => {
                let link = self.presented(model, TokenPurpose::Activation);
                // The code mailed with the presented link, or a wrong one.
                let presented = model.presented;
                let code = p.activation.code_digits.map(|d| {
                    let right = presented.and_then(|i| self.codes.get(&i)).cloned();
                    let c = match (right, code_ok) {
                        (Some(c), true) => c,
                        (Some(c), false) => {
                            let n: u64 = c.expose_secret().parse().unwrap();
                            let wrong = (n + 1) % 10u64.pow(u32::from(d));
                            NumericCode::parse(
                                &format!("{wrong:0width$}", width = usize::from(d)),
                                d,
                            )
                            .unwrap()
                        }
                        (None, _) => NumericCode::generate(d, &mut self.rng).unwrap(),
                    };
                    self.key
                        .digest_code(TokenPurpose::ActivationCode, member().as_str(), &c)
                });
                let password = self.new_password(*password_ok, *confirmation_ok);
                Command::Activate {
                    link,
                    code,
                    password,
                }
            }
            Step::Login { password_ok } => {
                let candidate = if *password_ok {
                    good_password(&p, self.pw)
                } else {
                    "Equivocada99zz".into()
                };
                let matched = match self.record.password_hash() {
                    Some(h) => verify_password(candidate.as_bytes(), h).unwrap(),
                    None => false,
                };
                // Invariant 2 is checked on the decision below.
                Command::Login {
                    password_matched: matched,
                    rehash: None,
                }
            }
            Step::RequestUnlock => Command::RequestUnlock {
                link: self.new_token(TokenPurpose::Unlock),
                human_verified: true,
            },
            Step::Unlock { .. } => Command::Unlock {
                link: self.presented(model, TokenPurpose::Unlock),
            },
            Step::StartRecovery { proofs_ok } => {
                let link = self.new_token(TokenPurpose::Reset);
                let claimed = if *proofs_ok {
                    model.email
                } else {
                    1 - model.email
                };
                Command::StartRecovery(StartRecovery {
                    claimed_email: Some(self.emails[claimed].clone()),
                    proofs: self.proofs(&p.recovery.proofs, *proofs_ok),
                    human_verified: true,
                    new_email: None,
                    link,
                })
            }
            Step::ResetPassword {
                password_ok,
                confirmation_ok,
                ..
            } => Command::ResetPassword {
                link: self.presented(model, TokenPurpose::Reset),
                password: self.new_password(*password_ok, *confirmation_ok),
                declaration_accepted: true,
            },
            Step::Expire => Command::Expire,
            Step::StaffUnlock => staff(StaffAction::Unlock),
            Step::StaffSuspend => staff(StaffAction::Suspend),
            Step::StaffChangeEmail => staff(StaffAction::ChangeEmail {
                email: self.emails[model.email].clone(),
                confirm_link: None,
            }),
            Step::StaffSendReset => staff(StaffAction::SendReset {
                link: self.new_token(TokenPurpose::Reset),
            }),
            _ => unreachable!(),
        };
        Some(match &cmd {
            Command::Activate { .. } | Command::ResetPassword { .. } => {
                self.decide_with_hash(cmd, now)
            }
            _ => decide(&self.record, &cmd, now, &self.policy),
        })
    }
}

fn staff(action: StaffAction) -> Command {
    Command::Staff {
        actor: "agente.quito".into(),
        reason: "solicitud del afiliado".into(),
        action,
    }
}

fn classify(d: &Result<Decision, Denied>) -> Expect {
    use Expect as E;
    match d {
        Err(_) => E::Denied,
        Ok(d) => match d.outcome {
            Outcome::Registered { .. } => E::Registered,
            Outcome::AlreadyRegistered => E::AlreadyRegistered,
            Outcome::ChecksFailed { .. } => E::ChecksFailed,
            Outcome::ActivationLinkValid { .. } => E::LinkValid,
            Outcome::WrongCode { .. } => E::WrongCode,
            Outcome::RegistrationBurned => E::Burned,
            Outcome::Activated => E::Activated,
            Outcome::LoggedIn { .. } => E::LoggedIn,
            Outcome::LoginFailed { .. } => E::LoginFailed,
            Outcome::Locked { .. } => E::Locked,
            Outcome::LoginRefusedLocked { .. } => E::Refused,
            Outcome::UnlockLinkSent { .. } => E::UnlockSent,
            Outcome::NotLocked => E::NotLocked,
            Outcome::Unlocked => E::Unlocked,
            Outcome::ResetLinkSent { .. } => E::ResetSent,
            Outcome::NotEligible => E::NotEligible,
            Outcome::PasswordReset => E::PasswordReset,
            Outcome::Expired => E::Expired,
            Outcome::StaffDone => E::StaffDone,
            ref other => panic!("unexpected outcome {other:?}"),
        },
    }
}

impl<P: Preset> StateMachineTest for Sut<P> {
    type SystemUnderTest = Self;
    type Reference = RefMachine<P>;

    fn init_test(_ref_state: &Model<P>) -> Self {
        let mut rng = StdRng::seed_from_u64(0x1ee5);
        let key = DigestKey::generate(&mut rng);
        Sut {
            policy: P::policy(),
            record: AccountRecord::new(member()),
            key,
            rng,
            tokens: Vec::new(),
            codes: HashMap::new(),
            emails: [
                "ana.quispe@example.ec".parse().unwrap(),
                "ana.nueva@example.com".parse().unwrap(),
            ],
            secrets: Vec::new(),
            hashes: 0,
            pw: 0,
            _p: PhantomData,
        }
    }

    fn apply(mut sut: Self, model: &Model<P>, step: Step) -> Self {
        let before = sut.record.clone();
        let hashes_before = sut.hashes;
        // For a login, the right password is the model's current one (the step does not
        // change it).
        let result = sut.run(model, &step);
        let Some(result) = result else {
            assert_eq!(model.expect, Expect::Nothing);
            return sut;
        };
        let got = classify(&result);
        assert_eq!(
            got,
            model.expect,
            "step {step:?} on {:?}: got {result:?}",
            before.state.kind()
        );

        // Invariant 2: a locked account never authenticates, whatever the password.
        if let Step::Login { .. } = step {
            let (settled, _) = afiliado::core::settle(&before, model.now, &sut.policy);
            if settled.state.lock().is_some() {
                assert_eq!(got, Expect::Refused);
            }
        }
        // Hashing happens only when the decision can succeed, and at most once.
        assert!(sut.hashes - hashes_before <= 1);
        if matches!(got, Expect::Activated | Expect::PasswordReset) {
            assert_eq!(sut.hashes - hashes_before, 1);
            sut.pw += 1;
        }

        if let Ok(decision) = result {
            // Invariant 1: Active only from Pending through a full, valid activation.
            let was = before.state.kind();
            let is = decision.next.state.kind();
            if was == afiliado::core::StateKind::PendingActivation
                && is == afiliado::core::StateKind::Active
            {
                match &step {
                    Step::Activate {
                        code_ok,
                        password_ok,
                        confirmation_ok,
                        ..
                    } => {
                        assert!(*password_ok && *confirmation_ok);
                        assert!(*code_ok || sut.policy.activation.code_digits.is_none());
                        assert_eq!(model.presented, model.latest_of(Purpose::Activation));
                    }
                    other => panic!("reached Active from Pending through {other:?}"),
                }
            }
            if let Some(pw) = decision.next.password_hash() {
                // The stored hash verifies the model's current password.
                assert!(
                    verify_password(good_password(&sut.policy, model.password).as_bytes(), pw)
                        .unwrap()
                );
            }
            assert_eq!(
                decision.next.version, before.version,
                "the core never bumps versions"
            );
            sut.record = decision.next;
        } else {
            assert_eq!(sut.record, before);
        }
        sut
    }

    fn check_invariants(sut: &Self, model: &Model<P>) {
        // Compare with the model as of `now` (settled).
        let (rec, _) = afiliado::core::settle(&sut.record, model.now, &sut.policy);
        let mut m = model.clone();
        m.settle();
        let kind = rec.state.kind();
        let want = match &m.state {
            MState::Unregistered => afiliado::core::StateKind::Unregistered,
            MState::Pending { .. } => afiliado::core::StateKind::PendingActivation,
            MState::Standing(MStanding::Active(_)) => afiliado::core::StateKind::Active,
            MState::Standing(MStanding::Locked(_)) => afiliado::core::StateKind::Locked,
            MState::Resetting { .. } => afiliado::core::StateKind::Resetting,
        };
        assert_eq!(kind, want, "state");
        assert_eq!(rec.lockouts, m.lockouts, "lockouts");
        assert_eq!(rec.check_failures, m.check_failures, "check failures");
        assert_eq!(rec.shadow.failures, m.shadow, "shadow failures");
        assert_eq!(
            rec.shadow.lock.map(|l| l.auto_unlock_at),
            m.shadow_lock,
            "shadow lock"
        );
        match (&rec.state, &m.state) {
            (
                AccountState::PendingActivation(p),
                MState::Pending {
                    expires, attempts, ..
                },
            ) => {
                assert_eq!(p.link.expires_at, *expires);
                if sut.policy.activation.code_digits.is_some() {
                    assert_eq!(p.code_attempts_left, *attempts);
                }
            }
            (AccountState::Active { failures, .. }, MState::Standing(MStanding::Active(f))) => {
                assert_eq!(failures, f, "failures in window");
            }
            (AccountState::Locked { lock, .. }, MState::Standing(MStanding::Locked(l))) => {
                assert_eq!(lock.auto_unlock_at, l.until);
                assert_eq!(
                    lock.unlock_link.map(|t| t.expires_at),
                    l.unlock.map(|u| u.1)
                );
            }
            (AccountState::Resetting { reset, .. }, MState::Resetting { expires, .. }) => {
                assert_eq!(reset.expires_at, *expires);
            }
            _ => {}
        }
        if let Some(p) = rec.state.profile() {
            assert_eq!(p.contact.email, sut.emails[m.email]);
        }
        // Invariant 5: nothing secret in clear in the record.
        let json = serde_json::to_string(&sut.record).unwrap();
        for s in &sut.secrets {
            assert!(!json.contains(s.as_str()), "record holds a secret in clear");
        }
    }
}

prop_state_machine! {
    #![proptest_config(ProptestConfig { cases: 256, max_shrink_iters: 2048, .. ProptestConfig::default() })]

    #[test]
    fn isspol_core_matches_model(sequential 50..=50 => Sut<Isspol>);

    #[test]
    fn iess_core_matches_model(sequential 50..=50 => Sut<Iess>);

    #[test]
    fn recommended_core_matches_model(sequential 50..=50 => Sut<Recommended>);
}
