//! The transition function.

use time::{Date, OffsetDateTime, UtcOffset};

use crate::crypto::{Digest, needs_rehash};
use crate::password::PasswordContext;
use crate::policy::{Ask, Policy, Proof};

use super::command::{
    Command, Denied, NewPassword, Outcome, ProofResult, Register, StaffAction, StartRecovery,
};
use super::effect::{AuditEvent, AuditKind, Effect, Notice, NoticeKind};
use super::lockout;
use super::state::{
    AccountRecord, AccountState, Contact, IssuedToken, Lock, LockReason, Pending,
    PendingEmailChange, Profile, ShadowLockout, Standing, TrustedDevice,
};

/// The result of an accepted command: the next record, what the caller is told, and the
/// effects to commit with it (outbox notices and audit events).
#[derive(Clone, Debug)]
#[must_use = "a decision does nothing until its record and effects are committed"]
#[non_exhaustive]
pub struct Decision {
    /// The record to commit (same `version` as the input; the store bumps it).
    pub next: AccountRecord,
    /// What happened.
    pub outcome: Outcome,
    /// Notices and audit events, in order.
    pub effects: Vec<Effect>,
}

impl Decision {
    /// The notices among the effects.
    pub fn notices(&self) -> impl Iterator<Item = &Notice> {
        self.effects.iter().filter_map(|e| match e {
            Effect::Notify(n) => Some(n),
            Effect::Audit(_) => None,
        })
    }

    /// The audit events among the effects.
    pub fn audit(&self) -> impl Iterator<Item = &AuditEvent> {
        self.effects.iter().filter_map(|e| match e {
            Effect::Audit(a) => Some(a),
            Effect::Notify(_) => None,
        })
    }
}

/// America/Guayaquil is UTC−5 all year (no daylight saving since 1993).
const GUAYAQUIL: UtcOffset = match UtcOffset::from_hms(-5, 0, 0) {
    Ok(o) => o,
    Err(_) => UtcOffset::UTC,
};

/// The calendar day in Ecuador of an instant (daily caps restart at local midnight).
pub fn local_day(t: OffsetDateTime) -> Date {
    // At the very edge of the representable range the Ecuador date may not exist: fall back
    // to the instant's own date rather than panic.
    t.checked_to_offset(GUAYAQUIL).unwrap_or(t).date()
}

/// Decides one command on one record at `now` under `policy`.
///
/// Time-driven transitions that are due at `now` (pending registration or reset link
/// expired, lock lifted) are applied first, lazily, and their audit events carry the
/// scheduled instant. On `Err` nothing changes: the caller commits nothing.
///
/// ```
/// use afiliado::core::{decide, AccountRecord, Command, Denied, Outcome};
/// use afiliado::{MemberId, Policy};
/// use time::macros::datetime;
///
/// let record = AccountRecord::new("1710034065".parse::<MemberId>()?);
/// let now = datetime!(2026-11-22 10:00 -5);
/// let login = Command::Login { password_matched: true, rehash: None };
/// // No account yet: the login fails and is counted like a wrong password for an account.
/// let decision = decide(&record, &login, now, &Policy::isspol())?;
/// assert_eq!(decision.outcome, Outcome::LoginFailed { failures: 1 });
/// // Activating a registration that does not exist is refused, and nothing changes.
/// let activate = Command::InspectActivation { link: afiliado::crypto::Digest::from_bytes([0; 32]) };
/// assert!(matches!(decide(&record, &activate, now, &Policy::isspol()), Err(Denied::InvalidToken | Denied::NotApplicable { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn decide(
    record: &AccountRecord,
    command: &Command,
    now: OffsetDateTime,
    policy: &Policy,
) -> Result<Decision, Denied> {
    let mut m = Machine {
        rec: record.clone(),
        now,
        policy,
        effects: Vec::new(),
    };
    let settled = m.settle();
    let outcome = match command {
        Command::Register(r) => m.register(r)?,
        Command::InspectActivation { link } => m.inspect(link)?,
        Command::Activate {
            link,
            code,
            password,
        } => m.activate(link, code.as_ref(), password)?,
        Command::Login {
            password_matched,
            rehash,
        } => m.login(*password_matched, rehash.as_ref())?,
        Command::LoginFrom {
            password_matched,
            rehash,
            device,
            enroll,
        } => m.login_from(
            *password_matched,
            rehash.as_ref(),
            device.as_ref(),
            enroll.as_ref(),
        )?,
        Command::RequestUnlock {
            link,
            human_verified,
        } => m.request_unlock(link, *human_verified)?,
        Command::Unlock { link } => m.unlock(link)?,
        Command::StartRecovery(r) => m.start_recovery(r)?,
        Command::ResetPassword {
            link,
            password,
            declaration_accepted,
        } => m.reset_password(link, password, *declaration_accepted)?,
        Command::ConfirmEmailChange { link } => m.confirm_email_change(link)?,
        Command::Expire => {
            if !settled {
                return Err(Denied::NothingDue);
            }
            Outcome::Expired
        }
        Command::Staff {
            actor,
            reason,
            action,
        } => m.staff(actor, reason, action)?,
    };
    Ok(Decision {
        next: m.rec,
        outcome,
        effects: m.effects,
    })
}

/// Applies only the due time-driven transitions (what [`Command::Expire`] does), returning
/// the settled record even when nothing was due. Useful to *display* a record as of `now`.
pub fn settle(
    record: &AccountRecord,
    now: OffsetDateTime,
    policy: &Policy,
) -> (AccountRecord, Vec<Effect>) {
    let mut m = Machine {
        rec: record.clone(),
        now,
        policy,
        effects: Vec::new(),
    };
    m.settle();
    (m.rec, m.effects)
}

struct Machine<'p> {
    rec: AccountRecord,
    now: OffsetDateTime,
    policy: &'p Policy,
    effects: Vec<Effect>,
}

fn not_applicable(state: &AccountState) -> Denied {
    Denied::NotApplicable {
        state: state.kind(),
    }
}

impl Machine<'_> {
    fn audit_at(&mut self, at: OffsetDateTime, kind: AuditKind) {
        self.effects.push(Effect::Audit(AuditEvent {
            at,
            member: self.rec.member.clone(),
            kind,
        }));
    }

    fn audit(&mut self, kind: AuditKind) {
        self.audit_at(self.now, kind);
    }

    fn notify(&mut self, to: &crate::identity::Email, kind: NoticeKind) {
        self.notify_at(to, kind, self.now);
    }

    /// A notice due at `at` (later than now for a link queued for the end of its cooldown).
    fn notify_at(&mut self, to: &crate::identity::Email, kind: NoticeKind, at: OffsetDateTime) {
        self.effects.push(Effect::Notify(Notice {
            to: to.clone(),
            locale: self.rec.locale,
            kind,
            not_before: (at > self.now).then_some(at),
        }));
    }

    /// When the next link of one kind may be mailed to the registered address, given when the
    /// previous one was (`last`) and whether one is still live: `None` when a live one is
    /// already there (send nothing); otherwise now, or the end of the cooldown
    /// (`notices.link_cooldown`).
    fn link_due(&self, last: Option<OffsetDateTime>, live: bool) -> Option<OffsetDateTime> {
        let Some(cooldown) = self.policy.notices.link_cooldown else {
            return Some(self.now);
        };
        if live {
            return None;
        }
        Some(match last {
            Some(l) if self.now < lockout::after(l, cooldown) => lockout::after(l, cooldown),
            _ => self.now,
        })
    }

    fn token(&self, digest: &Digest, ttl: std::time::Duration) -> IssuedToken {
        IssuedToken {
            digest: *digest,
            issued_at: self.now,
            expires_at: lockout::after(self.now, ttl),
        }
    }

    /// Whether another lock warning may go out today (`notices.lock_warnings_per_day`);
    /// counts it when it may, audits `NoticeSuppressed` when it may not.
    fn take_lock_warning_quota(&mut self) -> bool {
        let day = local_day(self.now);
        if self.rec.notices_sent.on(day) >= self.policy.notices.lock_warnings_per_day {
            self.audit(AuditKind::NoticeSuppressed);
            return false;
        }
        self.rec.notices_sent = self.rec.notices_sent.bumped(day);
        true
    }

    /// Applies due expiries and automatic unlocks. Returns whether anything changed.
    fn settle(&mut self) -> bool {
        let mut changed = false;
        // Two rounds at most: a reset expiring back into a lock that has lifted meanwhile.
        for _ in 0..3 {
            let now = self.now;
            let state = std::mem::replace(&mut self.rec.state, AccountState::Unregistered);
            let (next, event) = match state {
                AccountState::PendingActivation(p) if !p.link.is_live(now) => (
                    AccountState::Unregistered,
                    Some((p.link.expires_at, AuditKind::RegistrationExpired)),
                ),
                AccountState::Locked { profile, lock } if lockout::auto_unlock_due(&lock, now) => {
                    let at = lock.auto_unlock_at.unwrap_or(now);
                    self.rec.spare_unlock_link = lock.unlock_link.or(self.rec.spare_unlock_link);
                    (
                        AccountState::Active {
                            profile,
                            failures: Vec::new(),
                        },
                        Some((at, AuditKind::AutoUnlocked)),
                    )
                }
                AccountState::Resetting {
                    profile,
                    reset,
                    return_to,
                    ..
                } if !reset.is_live(now) => (
                    from_standing(profile, return_to),
                    Some((reset.expires_at, AuditKind::ResetExpired)),
                ),
                AccountState::Resetting {
                    profile,
                    reset,
                    return_to: Standing::Locked { lock },
                    new_email,
                } if lockout::auto_unlock_due(&lock, now) => {
                    let at = lock.auto_unlock_at.unwrap_or(now);
                    self.rec.spare_unlock_link = lock.unlock_link.or(self.rec.spare_unlock_link);
                    (
                        AccountState::Resetting {
                            profile,
                            reset,
                            return_to: Standing::Active {
                                failures: Vec::new(),
                            },
                            new_email,
                        },
                        Some((at, AuditKind::AutoUnlocked)),
                    )
                }
                other => (other, None),
            };
            self.rec.state = next;
            match event {
                Some((at, kind)) => {
                    self.audit_at(at, kind);
                    changed = true;
                }
                None => break,
            }
        }
        // An unconfirmed staff email change dies with its link.
        if let Some(change) = self
            .rec
            .pending_email
            .take_if(|c| !c.link.is_live(self.now))
        {
            self.audit_at(change.link.expires_at, AuditKind::EmailChangeExpired);
            changed = true;
        }
        // A shadow lock (no activated account) lifts exactly when an account's would.
        if let Some(lock) = self
            .rec
            .shadow
            .lock
            .take_if(|l| lockout::auto_unlock_due(l, self.now))
        {
            self.rec.shadow.failures.clear();
            self.audit_at(
                lock.auto_unlock_at.unwrap_or(self.now),
                AuditKind::AutoUnlocked,
            );
            changed = true;
        }
        // Failures that left the window stop counting (no event: nothing happened).
        let window = self.policy.lockout.window;
        lockout::prune(&mut self.rec.shadow.failures, self.now, window);
        match &mut self.rec.state {
            AccountState::Active { failures, .. }
            | AccountState::Resetting {
                return_to: Standing::Active { failures },
                ..
            } => lockout::prune(failures, self.now, window),
            _ => {}
        }
        changed
    }

    fn check_human(&self, required: bool, verified: bool) -> Result<(), Denied> {
        if required && !verified {
            Err(Denied::HumanCheckRequired)
        } else {
            Ok(())
        }
    }

    fn check_identifier(&self) -> Result<(), Denied> {
        let kind = self.rec.member.kind();
        if self.policy.identifiers.contains(&kind) {
            Ok(())
        } else {
            Err(Denied::IdentifierNotAccepted(kind))
        }
    }

    /// Evaluates proofs; `Err` when the service did not check one the policy requires.
    fn proofs_pass(
        &self,
        required: &[Proof],
        given: &[ProofResult],
        claimed_email: Option<&crate::identity::Email>,
    ) -> Result<bool, Denied> {
        let mut all = true;
        for proof in required {
            let passed = match proof {
                Proof::RegisteredEmail => {
                    let claimed = claimed_email.ok_or(Denied::MissingProof(*proof))?;
                    self.rec
                        .state
                        .profile()
                        .is_some_and(|p| p.contact.email.matches(claimed))
                }
                _ => {
                    let results: Vec<_> = given.iter().filter(|r| r.proof == *proof).collect();
                    if results.is_empty() {
                        return Err(Denied::MissingProof(*proof));
                    }
                    results.iter().all(|r| r.passed)
                }
            };
            all &= passed;
        }
        Ok(all)
    }

    /// Counts a failed recovery identity check; locks an activated account when the budget
    /// runs out. (Registration failures are counted by `registration_failed`.)
    fn check_failed(&mut self) -> Outcome {
        self.rec.check_failures = self.rec.check_failures.saturating_add(1);
        let failures = self.rec.check_failures;
        self.audit(AuditKind::ChecksFailed { failures });
        let budget = self.policy.recovery.attempt_budget;
        let remaining = budget.map(|b| b.saturating_sub(failures));
        // A suspension stays a suspension; without an account the lock is the shadow's.
        let suspended = self
            .rec
            .state
            .lock()
            .is_some_and(|l| l.reason == LockReason::Staff);
        if remaining == Some(0) && !suspended {
            self.lock(LockReason::FailedRecovery);
        }
        Outcome::ChecksFailed { remaining }
    }

    fn checks_exhausted(&self) -> bool {
        self.policy
            .recovery
            .attempt_budget
            .is_some_and(|b| self.rec.check_failures >= b)
    }

    /// Locks an activated account now; returns when it unlocks by itself.
    fn lock(&mut self, reason: LockReason) -> Option<OffsetDateTime> {
        if reason != LockReason::Staff {
            self.rec.lockouts = self.rec.lockouts.saturating_add(1);
        } else {
            // A suspension also kills a pending email change: no link issued before it may
            // change the account while it is suspended; and no device stays trusted.
            self.rec.pending_email = None;
            self.revoke_devices();
        }
        let mut lock = lockout::new_lock(reason, self.rec.lockouts, self.now, self.policy);
        // With paced links, an unlock link already in the member's inbox (or queued for it)
        // stays good across a new lock: the lock it was mailed for, or one that lifted by
        // itself in between. Otherwise a stranger re-locking the account would turn the
        // member's link into a dead one and push the next to the end of another cooldown.
        let spare = self.rec.spare_unlock_link.take();
        if reason != LockReason::Staff && self.policy.notices.link_cooldown.is_some() {
            lock.unlock_link = self
                .rec
                .state
                .lock()
                .and_then(|l| l.unlock_link)
                .or(spare)
                .filter(|t| t.is_live(self.now));
        }
        let until = lock.auto_unlock_at;
        let state = std::mem::replace(&mut self.rec.state, AccountState::Unregistered);
        self.rec.state = match state {
            AccountState::Active { profile, .. } | AccountState::Locked { profile, .. } => {
                AccountState::Locked { profile, lock }
            }
            // A staff suspension also kills a pending reset: no link issued before it may
            // lift it.
            AccountState::Resetting { profile, .. } if reason == LockReason::Staff => {
                AccountState::Locked { profile, lock }
            }
            AccountState::Resetting {
                profile,
                reset,
                new_email,
                ..
            } => AccountState::Resetting {
                profile,
                reset,
                return_to: Standing::Locked { lock },
                new_email,
            },
            other => {
                // No activated account: the lock is the shadow's (never a suspension).
                if reason != LockReason::Staff {
                    self.rec.shadow.failures.clear();
                    self.rec.shadow.lock = Some(lock);
                }
                other
            }
        };
        let lockouts = self.rec.lockouts;
        self.audit(AuditKind::Locked {
            reason,
            lockouts,
            until,
        });
        if let Some(p) = self.rec.state.profile().cloned() {
            // Strangers can trigger lock warnings (wrong passwords), so they count against
            // the daily cap; a staff suspension is always announced.
            if reason == LockReason::Staff || self.take_lock_warning_quota() {
                self.notify(&p.contact.email, NoticeKind::Locked { reason, until });
            }
        }
        until
    }

    // ---- registration -------------------------------------------------------------------

    fn register(&mut self, r: &Register) -> Result<Outcome, Denied> {
        let reg = &self.policy.registration;
        self.check_identifier()?;
        self.check_human(reg.human_check, r.human_verified)?;
        if reg.terms.is_some() && !r.terms_accepted {
            return Err(Denied::TermsNotAccepted);
        }
        let mut contact = r.contact.clone();
        for (ask, present, field) in [
            (reg.mobile, contact.mobile.is_some(), "mobile"),
            (reg.landline, contact.landline.is_some(), "landline"),
        ] {
            if ask == Ask::Required && !present {
                return Err(Denied::MissingContact(field));
            }
        }
        if reg.mobile == Ask::No {
            contact.mobile = None;
        }
        if reg.landline == Ask::No {
            contact.landline = None;
        }
        match (self.policy.activation.code_digits, &r.code) {
            (Some(_), None) => return Err(Denied::CodeRequired),
            (None, Some(_)) => return Err(Denied::UnexpectedCode),
            _ => {}
        }
        // Proofs first, whatever the state: a registration with wrong proofs must answer the
        // same for an existing account as for anyone else (no account enumeration). Failures
        // only throttle registration for the day: they never touch the recovery budget and
        // never lock an account, so a stranger with the cédula cannot lock the member out.
        let day = local_day(self.now);
        if self.rec.registration_failures.on(day) >= reg.max_failed_proofs_per_day {
            // Still recorded: every form costs one commit, and the guessing shows in the log.
            self.audit(AuditKind::ChecksRefused);
            return Ok(Outcome::ChecksFailed { remaining: Some(0) });
        }
        if !self.proofs_pass(&reg.proofs, &r.proofs, None)? {
            self.rec.registration_failures = self.rec.registration_failures.bumped(day);
            let failures = self.rec.registration_failures.count;
            self.audit(AuditKind::RegistrationChecksFailed { failures });
            return Ok(Outcome::ChecksFailed {
                remaining: Some(reg.max_failed_proofs_per_day.saturating_sub(failures)),
            });
        }
        if let Some(p) = self.rec.state.profile().cloned() {
            // Forms against an existing account count against the day's registration cap
            // (so they cannot be repeated without bound), and at most one warning a day goes
            // out. The warning never uses the notice budget of unlock and reset links: a
            // stranger who knows the registry facts cannot starve the member's own links.
            if self.rec.registrations.on(day) >= reg.max_per_day {
                self.audit(AuditKind::RegistrationThrottled);
                return Ok(Outcome::Throttled);
            }
            self.rec.registrations = self.rec.registrations.bumped(day);
            self.audit(AuditKind::RegistrationOnActive);
            if self.rec.registration_warnings.on(day) == 0 {
                self.rec.registration_warnings = self.rec.registration_warnings.bumped(day);
                self.notify(&p.contact.email, NoticeKind::RegistrationAttemptOnActive);
            }
            return Ok(Outcome::AlreadyRegistered);
        }
        // Enrollment items are hashed by the service only once the proofs passed, so they are
        // checked here, after the proofs.
        if reg.security_image && r.enrollment.image.is_none() {
            return Err(Denied::MissingEnrollment("security_image"));
        }
        if r.enrollment.answers.len() < usize::from(reg.security_questions) {
            return Err(Denied::MissingEnrollment("security_questions"));
        }
        let cooling = self
            .rec
            .last_registration_at
            .is_some_and(|t| self.now < lockout::after(t, reg.resend_cooldown));
        if cooling || self.rec.registrations.on(day) >= reg.max_per_day {
            self.audit(AuditKind::RegistrationThrottled);
            return Ok(Outcome::Throttled);
        }
        let link = self.token(&r.link, self.policy.activation.ttl);
        let with_code = r.code.is_some();
        self.rec.state = AccountState::PendingActivation(Pending {
            link,
            code: r.code,
            code_attempts_left: if with_code {
                self.policy.activation.code_attempts
            } else {
                0
            },
            contact: contact.clone(),
            terms_accepted_at: reg.terms.as_ref().map(|_| self.now),
            enrollment: r.enrollment.clone(),
        });
        self.rec.locale = r.locale;
        self.rec.registrations = self.rec.registrations.bumped(day);
        self.rec.last_registration_at = Some(self.now);
        self.audit(AuditKind::Registered);
        self.notify(
            &contact.email,
            NoticeKind::Activation {
                expires_at: link.expires_at,
                with_code,
            },
        );
        Ok(Outcome::Registered {
            expires_at: link.expires_at,
        })
    }

    fn pending_for(&self, link: &Digest) -> Result<&Pending, Denied> {
        match &self.rec.state {
            AccountState::PendingActivation(p) if p.link.digest == *link => Ok(p),
            AccountState::PendingActivation(_) => Err(Denied::InvalidToken),
            other => Err(not_applicable(other)),
        }
    }

    fn inspect(&mut self, link: &Digest) -> Result<Outcome, Denied> {
        let p = self.pending_for(link)?;
        Ok(Outcome::ActivationLinkValid {
            expires_at: p.link.expires_at,
            code_required: p.code.is_some(),
        })
    }

    /// Confirmation, policy and hash checks shared by activation and reset.
    fn accept_password(
        &self,
        pw: &NewPassword,
        contact: &Contact,
    ) -> Result<crate::crypto::PasswordHash, Denied> {
        if pw.password.expose_secret().len() != pw.confirmation.expose_secret().len()
            || !bool::from(subtle::ConstantTimeEq::ct_eq(
                pw.password.expose_secret().as_bytes(),
                pw.confirmation.expose_secret().as_bytes(),
            ))
        {
            return Err(Denied::ConfirmationMismatch);
        }
        let member = self.rec.member.as_str();
        let email = contact.email.as_str();
        let ctx = PasswordContext::new()
            .with_identifier(member)
            .with_identifier(email);
        self.policy
            .password
            .check(&pw.password, &ctx)
            .map_err(Denied::PasswordRejected)?;
        let hash = pw.hash.clone().ok_or(Denied::HashRequired)?;
        if needs_rehash(&hash, &self.policy.hashing) {
            return Err(Denied::HashParamsMismatch);
        }
        Ok(hash)
    }

    fn activate(
        &mut self,
        link: &Digest,
        code: Option<&Digest>,
        pw: &NewPassword,
    ) -> Result<Outcome, Denied> {
        let p = self.pending_for(link)?.clone();
        if let Some(expected) = &p.code {
            let given = code.ok_or(Denied::CodeRequired)?;
            if given != expected {
                let left = p.code_attempts_left.saturating_sub(1);
                if left == 0 {
                    self.rec.state = AccountState::Unregistered;
                    self.audit(AuditKind::RegistrationBurned);
                    return Ok(Outcome::RegistrationBurned);
                }
                if let AccountState::PendingActivation(pending) = &mut self.rec.state {
                    pending.code_attempts_left = left;
                }
                self.audit(AuditKind::WrongCode {
                    attempts_left: left,
                });
                return Ok(Outcome::WrongCode {
                    attempts_left: left,
                });
            }
        }
        let hash = self.accept_password(pw, &p.contact)?;
        self.rec.state = AccountState::Active {
            profile: Profile {
                password: hash,
                contact: p.contact,
                enrollment: p.enrollment,
                activated_at: self.now,
                password_changed_at: self.now,
                last_login_at: None,
            },
            failures: Vec::new(),
        };
        self.rec.lockouts = 0;
        self.rec.check_failures = 0;
        self.rec.shadow = ShadowLockout::default();
        self.audit(AuditKind::Activated);
        Ok(Outcome::Activated)
    }

    // ---- login --------------------------------------------------------------------------

    fn login(
        &mut self,
        matched: bool,
        rehash: Option<&crate::crypto::PasswordHash>,
    ) -> Result<Outcome, Denied> {
        if self.rec.state.profile().is_none() {
            return Ok(self.shadow_login());
        }
        if let Some(lock) = self.rec.state.lock().copied() {
            self.audit(AuditKind::LoginRefusedLocked);
            return Ok(Outcome::LoginRefusedLocked {
                until: lock.auto_unlock_at,
            });
        }
        let state = std::mem::replace(&mut self.rec.state, AccountState::Unregistered);
        let (mut profile, mut failures, resetting) = match state {
            AccountState::Active { profile, failures } => (profile, failures, None),
            AccountState::Resetting {
                profile,
                reset,
                return_to: Standing::Active { failures },
                new_email,
            } => (profile, failures, Some((reset, new_email))),
            other => {
                let denied = not_applicable(&other);
                self.rec.state = other;
                return Err(denied);
            }
        };
        if matched {
            let rehashed = rehash.is_some();
            if let Some(h) = rehash {
                profile.password = h.clone();
            }
            profile.last_login_at = Some(self.now);
            self.rec.state = AccountState::Active {
                profile,
                failures: Vec::new(),
            };
            self.rec.lockouts = 0;
            if resetting.is_some() {
                self.audit(AuditKind::ResetCancelled);
            }
            self.audit(AuditKind::LoginSucceeded);
            if rehashed {
                self.audit(AuditKind::PasswordRehashed);
            }
            return Ok(Outcome::LoggedIn { rehashed });
        }
        let reached = lockout::record_failure(&mut failures, self.now, self.policy);
        let count = u32::try_from(failures.len()).unwrap_or(u32::MAX);
        self.rec.state = match resetting {
            None => AccountState::Active { profile, failures },
            Some((reset, new_email)) => AccountState::Resetting {
                profile,
                reset,
                return_to: Standing::Active { failures },
                new_email,
            },
        };
        self.audit(AuditKind::LoginFailed { failures: count });
        if reached {
            let until = self.lock(LockReason::FailedLogins);
            return Ok(Outcome::Locked { until });
        }
        Ok(Outcome::LoginFailed { failures: count })
    }

    /// A login for an ID with no activated account (unknown, registry member only, pending):
    /// never succeeds, and is counted, locked and answered exactly as a wrong password for an
    /// active account would be, so guessing cannot tell the two apart.
    fn shadow_login(&mut self) -> Outcome {
        if let Some(lock) = self.rec.shadow.lock {
            self.audit(AuditKind::LoginRefusedLocked);
            return Outcome::LoginRefusedLocked {
                until: lock.auto_unlock_at,
            };
        }
        let reached = lockout::record_failure(&mut self.rec.shadow.failures, self.now, self.policy);
        let count = u32::try_from(self.rec.shadow.failures.len()).unwrap_or(u32::MAX);
        self.audit(AuditKind::LoginFailed { failures: count });
        if reached {
            let until = self.lock(LockReason::FailedLogins);
            return Outcome::Locked { until };
        }
        Outcome::LoginFailed { failures: count }
    }

    /// A login from a client that may hold a trusted-device token.
    fn login_from(
        &mut self,
        matched: bool,
        rehash: Option<&crate::crypto::PasswordHash>,
        device: Option<&Digest>,
        enroll: Option<&Digest>,
    ) -> Result<Outcome, Denied> {
        let now = self.now;
        let enabled = self.policy.devices.enabled;
        // Devices whose trust ended are forgotten (no event: nothing happened).
        self.rec.devices.retain(|d| now < d.expires_at);
        let trusted = device
            .filter(|_| enabled)
            .and_then(|d| self.rec.devices.iter().position(|t| t.digest == *d));
        let suspended = self
            .rec
            .state
            .lock()
            .is_some_and(|l| l.reason == LockReason::Staff);
        let Some(at) = trusted.filter(|_| !suspended && self.rec.state.profile().is_some()) else {
            let outcome = self.login(matched, rehash)?;
            if let (Outcome::LoggedIn { .. }, Some(new), true) = (&outcome, enroll, enabled) {
                self.trust_device(new);
            }
            return Ok(outcome);
        };
        if !matched {
            let threshold = self.policy.devices.threshold;
            let Some(d) = self.rec.devices.get_mut(at) else {
                return Err(not_applicable(&self.rec.state));
            };
            // Counted since the device's last success, with no window: a stolen device token
            // buys a few guesses in all, not a few per window forever.
            d.failures.push(now);
            let failures = u32::try_from(d.failures.len()).unwrap_or(u32::MAX);
            self.audit(AuditKind::DeviceLoginFailed { failures });
            if failures >= threshold {
                // Too many wrong passwords from this device: from now on it is a client
                // like any other.
                self.rec.devices.remove(at);
                self.audit(AuditKind::DeviceDistrusted);
            }
            return Ok(Outcome::LoginFailed { failures });
        }
        if let Some(d) = self.rec.devices.get_mut(at) {
            d.failures.clear();
        }
        if self.rec.state.lock().is_none() {
            // Not locked: an ordinary successful login (cancels a pending reset).
            self.audit(AuditKind::TrustedDeviceLogin);
            return self.login(true, rehash);
        }
        // Locked by other clients' failures: the member's own device gets in, and the lock
        // stays for everyone else (lifting it would hand the stranger a fresh set of
        // guesses). A pending reset is cancelled, as by any successful login.
        let state = std::mem::replace(&mut self.rec.state, AccountState::Unregistered);
        let cancelled = matches!(state, AccountState::Resetting { .. });
        let (mut profile, lock) = match state {
            AccountState::Locked { profile, lock }
            | AccountState::Resetting {
                profile,
                return_to: Standing::Locked { lock },
                ..
            } => (profile, lock),
            other => {
                let denied = not_applicable(&other);
                self.rec.state = other;
                return Err(denied);
            }
        };
        let rehashed = rehash.is_some();
        if let Some(h) = rehash {
            profile.password = h.clone();
        }
        profile.last_login_at = Some(now);
        self.rec.state = AccountState::Locked { profile, lock };
        if cancelled {
            self.audit(AuditKind::ResetCancelled);
        }
        self.audit(AuditKind::TrustedDeviceLogin);
        self.audit(AuditKind::LoginSucceeded);
        if rehashed {
            self.audit(AuditKind::PasswordRehashed);
        }
        Ok(Outcome::LoggedIn { rehashed })
    }

    /// Trusts a new device after a successful login (the oldest beyond the cap is forgotten).
    fn trust_device(&mut self, digest: &Digest) {
        let dp = &self.policy.devices;
        self.rec.devices.push(TrustedDevice {
            digest: *digest,
            issued_at: self.now,
            expires_at: lockout::after(self.now, dp.lifetime),
            failures: Vec::new(),
        });
        let max = usize::try_from(dp.max_per_account).unwrap_or(usize::MAX);
        let excess = self.rec.devices.len().saturating_sub(max);
        self.rec.devices.drain(..excess);
        self.audit(AuditKind::DeviceTrusted);
    }

    /// Forgets every trusted device (password reset, email change, staff suspension).
    fn revoke_devices(&mut self) {
        if !self.rec.devices.is_empty() {
            self.rec.devices.clear();
            self.audit(AuditKind::DevicesRevoked);
        }
    }

    // ---- unlock -------------------------------------------------------------------------

    fn request_unlock(&mut self, link: &Digest, human: bool) -> Result<Outcome, Denied> {
        let ttl = self
            .policy
            .unlock
            .link_ttl
            .ok_or(Denied::NotOffered("unlock link"))?;
        self.check_human(self.policy.unlock.human_check, human)?;
        // Whatever the ID and its state, the request is recorded: the same store work for
        // an unknown ID as for a locked account.
        let lock = self.rec.state.lock().copied();
        let email = self.rec.state.profile().map(|p| p.contact.email.clone());
        let (Some(lock), Some(email)) = (lock.filter(|l| l.reason != LockReason::Staff), email)
        else {
            self.audit(AuditKind::UnlockRequestIgnored);
            return Ok(Outcome::NotLocked);
        };
        // A live link is already in the member's inbox: send nothing (a stranger cannot
        // replace it with one the member never sees). Otherwise mail now, or queue it for the
        // end of the cooldown.
        let live = lock.unlock_link.is_some_and(|t| t.is_live(self.now));
        let Some(due) = self.link_due(self.rec.unlock_link_at, live) else {
            self.audit(AuditKind::UnlockRequestIgnored);
            return Ok(Outcome::Throttled);
        };
        let token = IssuedToken {
            digest: *link,
            issued_at: self.now,
            expires_at: lockout::after(due, ttl),
        };
        self.rec.unlock_link_at = Some(due);
        if let AccountState::Locked { lock, .. }
        | AccountState::Resetting {
            return_to: Standing::Locked { lock },
            ..
        } = &mut self.rec.state
        {
            lock.unlock_link = Some(token);
        }
        self.audit(AuditKind::UnlockRequested);
        self.notify_at(
            &email,
            NoticeKind::UnlockLink {
                expires_at: token.expires_at,
            },
            due,
        );
        Ok(Outcome::UnlockLinkSent {
            expires_at: token.expires_at,
        })
    }

    fn unlock(&mut self, link: &Digest) -> Result<Outcome, Denied> {
        let lock = self
            .rec
            .state
            .lock()
            .copied()
            .ok_or_else(|| not_applicable(&self.rec.state))?;
        let token = lock
            .unlock_link
            .filter(|t| t.digest == *link)
            .ok_or(Denied::InvalidToken)?;
        if !token.is_live(self.now) {
            return Err(Denied::TokenExpired);
        }
        self.lift_lock();
        self.audit(AuditKind::Unlocked);
        Ok(Outcome::Unlocked)
    }

    /// Lifts the lock (link, reset or staff): clears failures, lockouts and the check budget,
    /// and notifies the member.
    fn lift_lock(&mut self) {
        let state = std::mem::replace(&mut self.rec.state, AccountState::Unregistered);
        self.rec.state = match state {
            AccountState::Locked { profile, .. } => AccountState::Active {
                profile,
                failures: Vec::new(),
            },
            AccountState::Resetting {
                profile,
                reset,
                return_to: Standing::Locked { .. },
                new_email,
            } => AccountState::Resetting {
                profile,
                reset,
                return_to: Standing::Active {
                    failures: Vec::new(),
                },
                new_email,
            },
            other => other,
        };
        self.rec.lockouts = 0;
        self.rec.check_failures = 0;
        self.rec.spare_unlock_link = None;
        if let Some(p) = self.rec.state.profile().cloned() {
            self.notify(&p.contact.email, NoticeKind::Unlocked);
        }
    }

    // ---- recovery -----------------------------------------------------------------------

    fn start_recovery(&mut self, r: &StartRecovery) -> Result<Outcome, Denied> {
        let rp = &self.policy.recovery;
        self.check_identifier()?;
        self.check_human(rp.human_check, r.human_verified)?;
        if r.new_email.is_some() && !rp.allow_email_change {
            return Err(Denied::EmailChangeNotAllowed);
        }
        // Every proof the policy asks for must have been checked, whatever the ID.
        // A failed result the policy did not ask for is a veto by the service (a member no
        // longer in the registry).
        let passed = self.proofs_pass(&rp.proofs, &r.proofs, r.claimed_email.as_ref())?
            && r.proofs.iter().all(|p| p.passed);
        let suspended = self
            .rec
            .state
            .lock()
            .is_some_and(|l| l.reason == LockReason::Staff);
        if self.checks_exhausted() {
            self.audit(AuditKind::ChecksRefused);
            return Ok(Outcome::ChecksFailed { remaining: Some(0) });
        }
        // No activated account, or a suspended one: never a link, but counted like a failed
        // check (the same answer and the same store work as an account's wrong proofs).
        if !passed || suspended || self.rec.state.profile().is_none() {
            return Ok(self.check_failed());
        }
        self.issue_reset(&r.link, r.new_email.as_ref(), true)
    }

    /// Takes an activated account apart into its profile and standing, killing every
    /// outstanding unlock or reset link. The caller puts a new state back. Accounts without a
    /// profile are left as they are and refused.
    fn take_standing(&mut self, kill_unlock: bool) -> Result<(Profile, Standing), Denied> {
        let state = std::mem::replace(&mut self.rec.state, AccountState::Unregistered);
        let keep = |link: Option<IssuedToken>| if kill_unlock { None } else { link };
        if kill_unlock {
            self.rec.spare_unlock_link = None;
        }
        match state {
            AccountState::Active { profile, failures } => {
                Ok((profile, Standing::Active { failures }))
            }
            AccountState::Locked { profile, lock } => Ok((
                profile,
                Standing::Locked {
                    lock: Lock {
                        unlock_link: keep(lock.unlock_link),
                        ..lock
                    },
                },
            )),
            AccountState::Resetting {
                profile, return_to, ..
            } => Ok((
                profile,
                match return_to {
                    Standing::Locked { lock } => Standing::Locked {
                        lock: Lock {
                            unlock_link: keep(lock.unlock_link),
                            ..lock
                        },
                    },
                    active => active,
                },
            )),
            other => {
                let denied = not_applicable(&other);
                self.rec.state = other;
                Err(denied)
            }
        }
    }

    /// Moves an activated account to `Resetting` with a fresh link (the old one dies).
    fn issue_reset(
        &mut self,
        link: &Digest,
        new_email: Option<&crate::identity::Email>,
        paced: bool,
    ) -> Result<Outcome, Denied> {
        // A replacement address only receives the reset link: the account's email changes
        // when the reset completes (so knowing the answers alone never redirects the mail).
        let new_email = new_email
            .filter(|new| {
                self.rec
                    .state
                    .profile()
                    .is_some_and(|p| !p.contact.email.matches(new))
            })
            .cloned();
        // Links to the registered address requested by anyone (not staff) are paced: while a
        // live one is in the member's inbox a new request sends nothing, otherwise the link
        // goes now or at the end of the cooldown.
        let due = if paced && new_email.is_none() {
            let live = matches!(
                &self.rec.state,
                AccountState::Resetting { reset, new_email: None, .. } if reset.is_live(self.now)
            );
            match self.link_due(self.rec.reset_link_at, live) {
                Some(due) => due,
                None => {
                    self.audit(AuditKind::RecoveryRequestIgnored);
                    return Ok(Outcome::Throttled);
                }
            }
        } else {
            self.now
        };
        let token = IssuedToken {
            digest: *link,
            issued_at: self.now,
            expires_at: lockout::after(due, self.policy.recovery.reset_ttl),
        };
        // With paced links an unlock link in the member's inbox survives a new reset link (a
        // stranger's recovery request must not kill it); without pacing every new link kills
        // the outstanding ones, as before.
        let paced_links = self.policy.notices.link_cooldown.is_some();
        let (profile, return_to) = self.take_standing(!paced_links)?;
        if new_email.is_none() {
            self.rec.reset_link_at = Some(due);
        }
        let to = new_email
            .clone()
            .unwrap_or_else(|| profile.contact.email.clone());
        self.rec.state = AccountState::Resetting {
            profile,
            reset: token,
            return_to,
            new_email,
        };
        self.audit(AuditKind::RecoveryStarted);
        self.notify_at(
            &to,
            NoticeKind::ResetLink {
                expires_at: token.expires_at,
            },
            due,
        );
        Ok(Outcome::ResetLinkSent {
            expires_at: token.expires_at,
        })
    }

    fn reset_password(
        &mut self,
        link: &Digest,
        pw: &NewPassword,
        declaration: bool,
    ) -> Result<Outcome, Denied> {
        let (mut profile, reset, return_to, new_email) = match &self.rec.state {
            AccountState::Resetting {
                profile,
                reset,
                return_to,
                new_email,
            } => (
                profile.clone(),
                *reset,
                return_to.clone(),
                new_email.clone(),
            ),
            other => return Err(not_applicable(other)),
        };
        if reset.digest != *link {
            return Err(Denied::InvalidToken);
        }
        if self.policy.recovery.declaration.is_some() && !declaration {
            return Err(Denied::DeclarationRequired);
        }
        let old_email = match &new_email {
            Some(new) => Some(std::mem::replace(&mut profile.contact.email, new.clone())),
            None => None,
        };
        let hash = self.accept_password(pw, &profile.contact)?;
        let email = profile.contact.email.clone();
        let profile = Profile {
            password: hash,
            password_changed_at: self.now,
            ..profile
        };
        let was_locked = matches!(return_to, Standing::Locked { .. });
        self.rec.state = match return_to {
            // A staff lock is never lifted by a reset (defence in depth: suspension already
            // kills pending resets).
            Standing::Locked { lock }
                if !self.policy.unlock.reset_unlocks || lock.reason == LockReason::Staff =>
            {
                AccountState::Locked {
                    profile,
                    lock: Lock {
                        unlock_link: None,
                        ..lock
                    },
                }
            }
            _ => AccountState::Active {
                profile,
                failures: Vec::new(),
            },
        };
        if was_locked && self.rec.state.lock().is_none() {
            self.rec.lockouts = 0;
        }
        self.rec.check_failures = 0;
        // The password changed: an outstanding staff email change dies with the other links,
        // and no device stays trusted.
        self.rec.pending_email = None;
        self.rec.spare_unlock_link = None;
        self.audit(AuditKind::PasswordReset);
        self.revoke_devices();
        if let Some(old) = old_email {
            self.email_changed(&old, &email);
        }
        self.notify(&email, NoticeKind::PasswordChanged);
        Ok(Outcome::PasswordReset)
    }

    /// Audits an email change and tells both addresses (the old one sees the new one masked).
    fn email_changed(&mut self, old: &crate::identity::Email, new: &crate::identity::Email) {
        self.audit(AuditKind::EmailChanged);
        self.notify(
            old,
            NoticeKind::EmailChangedFrom {
                new_masked: new.masked(),
            },
        );
        self.notify(new, NoticeKind::EmailChangedTo);
    }

    /// Replaces the contact email now: every outstanding unlock, reset and email-change link
    /// dies, both addresses are told.
    fn replace_email(&mut self, email: &crate::identity::Email) -> Result<(), Denied> {
        let (mut profile, standing) = self.take_standing(true)?;
        let old = std::mem::replace(&mut profile.contact.email, email.clone());
        self.rec.state = from_standing(profile, standing);
        self.rec.pending_email = None;
        self.email_changed(&old, email);
        self.revoke_devices();
        Ok(())
    }

    fn confirm_email_change(&mut self, link: &Digest) -> Result<Outcome, Denied> {
        let change = self
            .rec
            .pending_email
            .clone()
            .filter(|c| c.link.digest == *link)
            .ok_or(Denied::InvalidToken)?;
        if !change.link.is_live(self.now) {
            return Err(Denied::TokenExpired);
        }
        self.replace_email(&change.email)?;
        Ok(Outcome::EmailChangeConfirmed)
    }

    // ---- staff --------------------------------------------------------------------------

    fn staff(
        &mut self,
        actor: &str,
        reason: &str,
        action: &StaffAction,
    ) -> Result<Outcome, Denied> {
        if actor.trim().is_empty() || reason.trim().is_empty() {
            return Err(Denied::MissingStaffReason);
        }
        if actor.chars().count() > crate::policy::MAX_STAFF_ACTOR_CHARS {
            return Err(Denied::StaffInputTooLong("actor"));
        }
        if reason.chars().count() > crate::policy::MAX_STAFF_REASON_CHARS {
            return Err(Denied::StaffInputTooLong("reason"));
        }
        match action {
            StaffAction::Unlock => {
                if self.rec.state.lock().is_some() {
                    self.lift_lock();
                } else if self.rec.check_failures > 0 {
                    self.rec.check_failures = 0;
                } else {
                    return Err(not_applicable(&self.rec.state));
                }
            }
            StaffAction::Suspend => {
                if self.rec.state.profile().is_none() {
                    return Err(not_applicable(&self.rec.state));
                }
                self.lock(LockReason::Staff);
            }
            StaffAction::ChangeEmail {
                email,
                confirm_link,
            } => {
                let current = self
                    .rec
                    .state
                    .profile()
                    .map(|p| p.contact.email.clone())
                    .ok_or_else(|| not_applicable(&self.rec.state))?;
                if current.matches(email) {
                    return Err(Denied::SameEmail);
                }
                let staff = &self.policy.staff;
                if staff.confirm_email_change {
                    // Nothing changes until the new address follows the link; a newer
                    // request replaces an older one.
                    let link = confirm_link.ok_or(Denied::ConfirmationLinkRequired)?;
                    let token = self.token(&link, staff.email_change_ttl);
                    self.rec.pending_email = Some(PendingEmailChange {
                        email: email.clone(),
                        link: token,
                    });
                    self.audit(AuditKind::EmailChangeRequested);
                    self.notify(
                        &current,
                        NoticeKind::EmailChangeRequested {
                            new_masked: email.masked(),
                        },
                    );
                    self.notify(
                        email,
                        NoticeKind::EmailChangeConfirm {
                            expires_at: token.expires_at,
                        },
                    );
                } else {
                    // Outstanding unlock and reset links die with the old address.
                    self.replace_email(email)?;
                }
            }
            StaffAction::SendReset { link } => {
                if self.rec.state.profile().is_none() {
                    return Err(not_applicable(&self.rec.state));
                }
                self.issue_reset(link, None, false)?;
            }
            StaffAction::EnrollForeigner => {
                if self.rec.member.kind() != crate::identity::MemberIdKind::Foreigner {
                    return Err(Denied::IdentifierNotAccepted(self.rec.member.kind()));
                }
                if !matches!(self.rec.state, AccountState::Unregistered) {
                    return Err(not_applicable(&self.rec.state));
                }
            }
        }
        self.audit(AuditKind::Staff {
            actor: actor.to_owned(),
            // Free text typed by staff: addresses and ID numbers in it are masked.
            reason: crate::identity::redact_personal_data(reason),
            action: action.label().to_owned(),
        });
        Ok(Outcome::StaffDone)
    }
}

fn from_standing(profile: Profile, standing: Standing) -> AccountState {
    match standing {
        Standing::Active { failures } => AccountState::Active { profile, failures },
        Standing::Locked { lock } => AccountState::Locked { profile, lock },
    }
}
