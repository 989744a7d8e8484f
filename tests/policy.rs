//! Policy presets against the preset table, file round trips, and errors that name the field.

use std::time::Duration;

use afiliado::MemberIdKind;
use afiliado::crypto::HashParams;
use afiliado::password::{Alphabet, PasswordPolicy};
use afiliado::policy::{Ask, Policy, PolicyError, Proof};

const fn min(n: u64) -> Duration {
    Duration::from_secs(n * 60)
}

fn asked(a: Ask) -> bool {
    a != Ask::No
}

/// Hashing is the same for every preset: argon2id m=19456 KiB, t=2, p=1.
fn assert_owasp_hashing(p: &Policy) {
    assert_eq!(p.hashing, HashParams::OWASP);
    assert_eq!(p.hashing.m_cost_kib, 19_456);
    assert_eq!(p.hashing.t_cost, 2);
    assert_eq!(p.hashing.p_cost, 1);
}

// ---------------------------------------------------------------------------------------
// Presets, field by field (the preset table)

#[test]
fn isspol_preset_matches_design_table() {
    let p = Policy::isspol();
    p.validate().unwrap();
    assert_eq!(p.name, "isspol");

    // identifiers: cédula
    assert_eq!(p.identifiers, vec![MemberIdKind::Cedula]);

    // registration proof: affiliate number from the credential
    let r = &p.registration;
    assert_eq!(r.proofs, vec![Proof::AffiliateNumber]);
    // contact asked: email, mobile
    assert_eq!(r.email, Ask::Required);
    assert!(asked(r.mobile));
    assert_eq!(r.landline, Ask::No);
    // terms
    assert_eq!(
        r.terms.as_deref(),
        Some("He leído y acepto las condiciones")
    );
    // enrollment extras: none
    assert!(!r.security_image);
    assert_eq!(r.security_questions, 0);
    // human check: none
    assert!(!r.human_check);

    // activation: link + 4-digit code, 25 min; 5 code attempts
    assert_eq!(p.activation.ttl, min(25));
    assert_eq!(p.activation.code_digits, Some(4));
    assert_eq!(p.activation.code_attempts, 5);

    // password: ≥8, lower + upper + digit
    let pw = &p.password;
    assert_eq!(pw.min_length, 8);
    assert!(pw.max_length >= pw.min_length);
    assert!(pw.require_lowercase);
    assert!(pw.require_uppercase);
    assert!(pw.require_digit);
    assert!(!pw.require_symbol);
    assert!(!pw.require_letter);
    assert_eq!(pw.alphabet, Alphabet::Any);
    assert_eq!(*pw, PasswordPolicy::isspol());

    // lockout: 5 failures, automatic unlock after 20 min (every time)
    let l = &p.lockout;
    assert_eq!(l.threshold, 5);
    assert_eq!(l.first_duration, Some(min(20)));
    assert!(l.progressive.is_empty());
    assert_eq!(l.manual_after, None);
    for n in [1, 2, 3, 10, 100] {
        assert_eq!(p.lock_duration(n), Some(min(20)), "lockout #{n}");
    }
    // ISSPOL reveals the lock state at login (security rules)
    assert!(l.reveal_lock_state);

    // unlock: automatic after 20 min, or a password reset (no link)
    assert_eq!(p.unlock.link_ttl, None);
    assert!(p.unlock.reset_unlocks);
    assert!(!p.unlock.human_check);

    // recovery: cédula + the registered email; no email change; reset link 25 min
    let rc = &p.recovery;
    assert_eq!(rc.proofs, vec![Proof::RegisteredEmail]);
    assert_eq!(rc.attempt_budget, None);
    assert!(!rc.allow_email_change);
    assert_eq!(rc.reset_ttl, min(25));
    assert!(!rc.human_check);

    assert_owasp_hashing(&p);
}

#[test]
fn iess_preset_matches_design_table() {
    let p = Policy::iess();
    p.validate().unwrap();
    assert_eq!(p.name, "iess");

    // identifiers: cédula or IESS foreigner code
    assert_eq!(
        p.identifiers,
        vec![MemberIdKind::Cedula, MemberIdKind::Foreigner]
    );

    // registration proof: birth day+month, 3 questions from the member's records
    let r = &p.registration;
    assert_eq!(
        r.proofs,
        vec![Proof::BirthDayMonth, Proof::RecordQuestions { count: 3 }]
    );
    // contact asked: email, mobile, landline
    assert_eq!(r.email, Ask::Required);
    assert!(asked(r.mobile));
    assert!(asked(r.landline));
    // terms of use
    let terms = r.terms.as_deref().unwrap();
    assert!(terms.contains("términos de uso"), "{terms}");
    // enrollment extras: security image + security questions
    assert!(r.security_image);
    assert!(r.security_questions >= 2);
    // human check at registration
    assert!(r.human_check);

    // activation: link only, 15 min
    assert_eq!(p.activation.ttl, min(15));
    assert_eq!(p.activation.code_digits, None);

    // password: ≥8 (≤15 from the IESS steps article), letters and digits only
    let pw = &p.password;
    assert_eq!(pw.min_length, 8);
    assert_eq!(pw.max_length, 15);
    assert_eq!(pw.alphabet, Alphabet::AsciiAlphanumeric);
    assert!(!pw.require_lowercase);
    assert!(!pw.require_uppercase);
    assert!(!pw.require_symbol);
    assert_eq!(*pw, PasswordPolicy::iess());

    // lockout: 3 failures, no automatic unlock
    let l = &p.lockout;
    assert_eq!(l.threshold, 3);
    assert_eq!(l.first_duration, None);
    assert!(l.progressive.is_empty());
    for n in [1, 2, 3, 10] {
        assert_eq!(p.lock_duration(n), None, "lockout #{n}");
    }
    assert!(!l.reveal_lock_state);

    // unlock: email link valid 3 min (or staff), behind a human check
    assert_eq!(p.unlock.link_ttl, Some(min(3)));
    assert!(p.unlock.human_check);

    // recovery: birth day+month, 2 record questions, 2 security questions; 5 attempts
    let rc = &p.recovery;
    assert_eq!(
        rc.proofs,
        vec![
            Proof::BirthDayMonth,
            Proof::RecordQuestions { count: 2 },
            Proof::SecurityQuestions { count: 2 },
        ]
    );
    assert_eq!(rc.attempt_budget, Some(5));
    // email change in recovery: yes
    assert!(rc.allow_email_change);
    // reset link: 15 min
    assert_eq!(rc.reset_ttl, min(15));
    // human check at recovery
    assert!(rc.human_check);

    assert_owasp_hashing(&p);
}

#[test]
fn recommended_preset_matches_design_table() {
    let p = Policy::recommended();
    p.validate().unwrap();
    assert_eq!(p.name, "recommended");

    // identifiers: cédula, foreigner code
    assert_eq!(
        p.identifiers,
        vec![MemberIdKind::Cedula, MemberIdKind::Foreigner]
    );

    // registration proof: registry match + affiliate number (no knowledge questions)
    let r = &p.registration;
    assert_eq!(r.proofs, vec![Proof::AffiliateNumber]);
    // contact asked: email, mobile
    assert_eq!(r.email, Ask::Required);
    assert!(asked(r.mobile));
    assert_eq!(r.landline, Ask::No);
    // terms acceptance: yes
    assert!(r.terms.as_deref().is_some_and(|t| !t.is_empty()));
    // enrollment extras: none
    assert!(!r.security_image);
    assert_eq!(r.security_questions, 0);
    // human check: not at registration
    assert!(!r.human_check);

    // activation: link + 6-digit code, 15 min; 5 code attempts
    assert_eq!(p.activation.ttl, min(15));
    assert_eq!(p.activation.code_digits, Some(6));
    assert_eq!(p.activation.code_attempts, 5);

    // password: ≥15, ≤128, no composition rules, not the ID/email, not common
    let pw = &p.password;
    assert_eq!(pw.min_length, 15);
    assert_eq!(pw.max_length, 128);
    assert!(!pw.require_lowercase);
    assert!(!pw.require_uppercase);
    assert!(!pw.require_letter);
    assert!(!pw.require_digit);
    assert!(!pw.require_symbol);
    assert_eq!(pw.alphabet, Alphabet::Any);
    assert!(pw.reject_identifiers);
    assert!(pw.reject_common);
    assert_eq!(*pw, PasswordPolicy::recommended());

    // lockout: 10 failures, progressive 1 → 5 → 15 → 60 min (the last repeats)
    let l = &p.lockout;
    assert_eq!(l.threshold, 10);
    assert_eq!(l.manual_after, None);
    assert!(!l.reveal_lock_state);
    assert_eq!(p.lock_duration(1), Some(min(1)));
    assert_eq!(p.lock_duration(2), Some(min(5)));
    assert_eq!(p.lock_duration(3), Some(min(15)));
    assert_eq!(p.lock_duration(4), Some(min(60)));
    assert_eq!(p.lock_duration(5), Some(min(60)));
    assert_eq!(p.lock_duration(1000), Some(min(60)));

    // unlock: automatic (progressive) + email link + reset, link behind a human check
    assert!(p.unlock.link_ttl.is_some_and(|d| !d.is_zero()));
    assert!(p.unlock.reset_unlocks);
    assert!(p.unlock.human_check);

    // recovery: possession of the registered email only; no email change; 15 min link
    let rc = &p.recovery;
    assert!(rc.proofs.is_empty(), "{:?}", rc.proofs);
    assert!(!rc.allow_email_change);
    assert_eq!(rc.reset_ttl, min(15));
    assert!(rc.human_check);

    assert_owasp_hashing(&p);
}

#[test]
fn presets_never_use_knowledge_proofs_outside_iess() {
    for p in [Policy::isspol(), Policy::recommended()] {
        for proof in p.registration.proofs.iter().chain(&p.recovery.proofs) {
            assert!(
                !matches!(
                    proof,
                    Proof::BirthDayMonth
                        | Proof::RecordQuestions { .. }
                        | Proof::SecurityQuestions { .. }
                        | Proof::SecurityImage
                ),
                "{}: {proof:?}",
                p.name
            );
        }
    }
}

#[test]
fn default_is_recommended() {
    assert_eq!(Policy::default(), Policy::recommended());
}

// ---------------------------------------------------------------------------------------
// Round trips

fn presets() -> [Policy; 3] {
    [Policy::isspol(), Policy::iess(), Policy::recommended()]
}

#[test]
fn toml_round_trip_every_preset() {
    for p in presets() {
        let text = p.to_toml().unwrap();
        assert_eq!(Policy::from_toml(&text).unwrap(), p, "{}:\n{text}", p.name);
    }
}

#[test]
fn json_round_trip_every_preset() {
    for p in presets() {
        let text = p.to_json().unwrap();
        assert_eq!(Policy::from_json(&text).unwrap(), p, "{}:\n{text}", p.name);
    }
}

#[test]
fn edited_policy_round_trips() {
    let mut p = Policy::iess();
    p.lockout.threshold = 4;
    p.lockout.first_duration = Some(min(30));
    p.lockout.progressive = vec![min(90), Duration::from_secs(2 * 3600 + 30)];
    p.lockout.manual_after = Some(3);
    p.recovery.attempt_budget = None;
    p.validate().unwrap();
    assert_eq!(Policy::from_toml(&p.to_toml().unwrap()).unwrap(), p);
    assert_eq!(Policy::from_json(&p.to_json().unwrap()).unwrap(), p);
}

#[test]
fn toml_durations_are_human_readable() {
    let isspol = Policy::isspol().to_toml().unwrap();
    assert!(isspol.contains("ttl = \"25m\""), "{isspol}");
    assert!(isspol.contains("reset_ttl = \"25m\""), "{isspol}");
    assert!(isspol.contains("first_duration = \"20m\""), "{isspol}");
    assert!(isspol.contains("resend_cooldown = \"1m\""), "{isspol}");

    let iess = Policy::iess().to_toml().unwrap();
    assert!(iess.contains("link_ttl = \"3m\""), "{iess}");
    assert!(iess.contains("ttl = \"15m\""), "{iess}");
    assert!(iess.contains("window = \"1d\""), "{iess}");

    let rec = Policy::recommended().to_toml().unwrap();
    assert!(rec.contains("first_duration = \"1m\""), "{rec}");
    assert!(rec.contains("window = \"1h\""), "{rec}");
    for d in ["\"5m\"", "\"15m\"", "\"1h\""] {
        assert!(rec.contains(d), "{d} in\n{rec}");
    }
    // No raw seconds/nanos tables anywhere.
    for text in [&isspol, &iess, &rec] {
        assert!(!text.contains("secs"), "{text}");
        assert!(!text.contains("nanos"), "{text}");
    }
}

#[test]
fn json_durations_are_human_readable() {
    let json = Policy::isspol().to_json().unwrap();
    assert!(json.contains("\"ttl\": \"25m\""), "{json}");
    assert!(!json.contains("secs"), "{json}");
}

#[test]
fn hand_written_toml_with_human_durations_loads() {
    let mut t = toml_table(&Policy::recommended());
    t["activation"]["ttl"] = "1h 30m".into();
    t["lockout"]["progressive"] = toml::Value::Array(vec!["2m".into(), "2h".into()]);
    let p = Policy::from_toml(&toml::to_string(&t).unwrap()).unwrap();
    assert_eq!(p.activation.ttl, min(90));
    assert_eq!(p.lockout.progressive, vec![min(2), min(120)]);
    assert_eq!(p.lock_duration(3), Some(min(120)));
}

// ---------------------------------------------------------------------------------------
// Bad files

fn toml_table(p: &Policy) -> toml::Table {
    p.to_toml().unwrap().parse::<toml::Table>().unwrap()
}

fn json_value(p: &Policy) -> serde_json::Value {
    serde_json::from_str(&p.to_json().unwrap()).unwrap()
}

fn load_toml(t: &toml::Table) -> Result<Policy, PolicyError> {
    Policy::from_toml(&toml::to_string(t).unwrap())
}

fn load_json(v: &serde_json::Value) -> Result<Policy, PolicyError> {
    Policy::from_json(&serde_json::to_string(v).unwrap())
}

fn parse_path(r: Result<Policy, PolicyError>) -> String {
    match r {
        Err(PolicyError::Parse { path, message }) => {
            assert!(!message.is_empty());
            path
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
}

fn invalid_field(r: Result<Policy, PolicyError>) -> (&'static str, String) {
    match r {
        Err(e @ PolicyError::Invalid { .. }) => {
            let shown = e.to_string();
            let PolicyError::Invalid { field, reason } = e else {
                unreachable!()
            };
            assert!(shown.contains(field), "{shown}");
            (field, reason)
        }
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[test]
fn edit_helpers_do_not_break_presets() {
    for p in presets() {
        assert_eq!(load_toml(&toml_table(&p)).unwrap(), p);
        assert_eq!(load_json(&json_value(&p)).unwrap(), p);
    }
}

#[test]
fn unknown_field_is_named_toml() {
    let mut t = toml_table(&Policy::isspol());
    let lockout = t["lockout"].as_table_mut().unwrap();
    let v = lockout.remove("threshold").unwrap();
    lockout.insert("treshold".into(), v);
    let path = parse_path(load_toml(&t));
    assert_eq!(path, "lockout.treshold");
}

#[test]
fn unknown_field_is_named_json() {
    let mut v = json_value(&Policy::isspol());
    let lockout = v["lockout"].as_object_mut().unwrap();
    let x = lockout.remove("threshold").unwrap();
    lockout.insert("treshold".into(), x);
    let path = parse_path(load_json(&v));
    assert_eq!(path, "lockout.treshold");
}

#[test]
fn unknown_field_via_text_replace_is_named() {
    let text = Policy::iess()
        .to_toml()
        .unwrap()
        .replace("threshold = 3", "treshold = 3");
    let err = Policy::from_toml(&text).unwrap_err();
    assert!(err.to_string().contains("lockout.treshold"), "{err}");
    assert_eq!(parse_path(Err(err)), "lockout.treshold");
}

#[test]
fn unknown_top_level_field_is_named() {
    let mut t = toml_table(&Policy::recommended());
    t.insert("colour".into(), "blue".into());
    assert_eq!(parse_path(load_toml(&t)), "colour");
}

#[test]
fn wrong_type_is_named() {
    let mut t = toml_table(&Policy::isspol());
    t["lockout"]["threshold"] = "five".into();
    assert_eq!(parse_path(load_toml(&t)), "lockout.threshold");

    let mut v = json_value(&Policy::isspol());
    v["lockout"]["threshold"] = "five".into();
    assert_eq!(parse_path(load_json(&v)), "lockout.threshold");
}

#[test]
fn wrong_type_in_nested_password_policy_is_named() {
    let mut t = toml_table(&Policy::iess());
    t["password"]["min_length"] = "ocho".into();
    assert_eq!(parse_path(load_toml(&t)), "password.min_length");

    let mut v = json_value(&Policy::iess());
    v["password"]["alphabet"] = "klingon".into();
    assert_eq!(parse_path(load_json(&v)), "password.alphabet");
}

#[test]
fn bad_duration_is_named() {
    let mut t = toml_table(&Policy::isspol());
    t["activation"]["ttl"] = "soon".into();
    assert_eq!(parse_path(load_toml(&t)), "activation.ttl");

    let mut v = json_value(&Policy::isspol());
    v["activation"]["ttl"] = "soon".into();
    assert_eq!(parse_path(load_json(&v)), "activation.ttl");

    let text = Policy::isspol()
        .to_toml()
        .unwrap()
        .replace("reset_ttl = \"25m\"", "reset_ttl = \"pronto\"");
    assert_eq!(parse_path(Policy::from_toml(&text)), "recovery.reset_ttl");
}

#[test]
fn bad_optional_duration_is_named() {
    let mut t = toml_table(&Policy::iess());
    t["unlock"]["link_ttl"] = "ya mismo".into();
    assert_eq!(parse_path(load_toml(&t)), "unlock.link_ttl");

    let mut v = json_value(&Policy::iess());
    v["unlock"]["link_ttl"] = "ya mismo".into();
    assert_eq!(parse_path(load_json(&v)), "unlock.link_ttl");
}

#[test]
fn missing_field_names_its_table() {
    let mut t = toml_table(&Policy::isspol());
    t["lockout"].as_table_mut().unwrap().remove("threshold");
    let err = load_toml(&t).unwrap_err();
    assert!(err.to_string().contains("threshold"), "{err}");
    assert_eq!(parse_path(Err(err)), "lockout");
}

#[test]
fn syntax_error_is_a_parse_error() {
    assert!(matches!(
        Policy::from_toml("name = \"x\"\n[lockout\n"),
        Err(PolicyError::Parse { .. })
    ));
    assert!(matches!(
        Policy::from_json("{\"name\": "),
        Err(PolicyError::Parse { .. })
    ));
}

/// Applies `edit` to a preset through both formats and expects `Invalid { field }` twice.
fn assert_invalid(
    preset: fn() -> Policy,
    field: &str,
    edit_toml: impl Fn(&mut toml::Table),
    edit_json: impl Fn(&mut serde_json::Value),
) -> String {
    let mut t = toml_table(&preset());
    edit_toml(&mut t);
    let (f, reason) = invalid_field(load_toml(&t));
    assert_eq!(f, field, "TOML: {reason}");

    let mut v = json_value(&preset());
    edit_json(&mut v);
    let (f, reason) = invalid_field(load_json(&v));
    assert_eq!(f, field, "JSON: {reason}");
    reason
}

#[test]
fn threshold_zero_is_invalid() {
    assert_invalid(
        Policy::isspol,
        "lockout.threshold",
        |t| t["lockout"]["threshold"] = 0.into(),
        |v| v["lockout"]["threshold"] = 0.into(),
    );
}

#[test]
fn three_digit_code_is_invalid() {
    assert_invalid(
        Policy::isspol,
        "activation.code_digits",
        |t| t["activation"]["code_digits"] = 3.into(),
        |v| v["activation"]["code_digits"] = 3.into(),
    );
}

#[test]
fn zero_code_attempts_with_a_code_is_invalid() {
    assert_invalid(
        Policy::recommended,
        "activation.code_attempts",
        |t| t["activation"]["code_attempts"] = 0.into(),
        |v| v["activation"]["code_attempts"] = 0.into(),
    );
    // Without a code, zero attempts is fine (IESS).
    assert_eq!(Policy::iess().activation.code_attempts, 0);
    Policy::iess().validate().unwrap();
}

#[test]
fn zero_reset_ttl_is_invalid() {
    assert_invalid(
        Policy::iess,
        "recovery.reset_ttl",
        |t| t["recovery"]["reset_ttl"] = "0s".into(),
        |v| v["recovery"]["reset_ttl"] = "0s".into(),
    );
}

#[test]
fn recovery_asking_more_questions_than_enrolled_is_invalid() {
    assert_invalid(
        Policy::iess,
        "recovery.proofs",
        |t| t["registration"]["security_questions"] = 1.into(),
        |v| v["registration"]["security_questions"] = 1.into(),
    );
}

#[test]
fn password_min_above_max_is_invalid() {
    let reason = assert_invalid(
        Policy::recommended,
        "password",
        |t| t["password"]["min_length"] = 200.into(),
        |v| v["password"]["min_length"] = 200.into(),
    );
    assert!(reason.contains("min_length"), "{reason}");
    assert!(reason.contains("max_length"), "{reason}");
}

#[test]
fn validate_directly_names_the_field() {
    let mut p = Policy::isspol();
    p.lockout.threshold = 0;
    assert!(matches!(
        p.validate(),
        Err(PolicyError::Invalid {
            field: "lockout.threshold",
            ..
        })
    ));

    let mut p = Policy::iess();
    p.recovery.reset_ttl = Duration::ZERO;
    assert!(matches!(
        p.validate(),
        Err(PolicyError::Invalid {
            field: "recovery.reset_ttl",
            ..
        })
    ));
}

#[test]
fn zero_progressive_lockout_step_names_its_own_field() {
    let mut p = Policy::recommended();
    p.lockout.progressive = vec![
        std::time::Duration::from_secs(300),
        std::time::Duration::ZERO,
    ];
    match p.validate() {
        Err(afiliado::policy::PolicyError::Invalid { field, .. }) => {
            assert_eq!(field, "lockout.progressive")
        }
        other => panic!("expected Invalid(lockout.progressive), got {other:?}"),
    }
}

#[cfg(feature = "proptest")]
proptest::proptest! {
    /// Every policy the exported strategy generates is valid and survives TOML and JSON.
    #[test]
    fn generated_policies_validate_and_round_trip(p in afiliado::strategies::policy::policy()) {
        proptest::prop_assert!(p.validate().is_ok());
        proptest::prop_assert_eq!(&Policy::from_toml(&p.to_toml().unwrap()).unwrap(), &p);
        proptest::prop_assert_eq!(&Policy::from_json(&p.to_json().unwrap()).unwrap(), &p);
    }
}

// ---- presets with overrides (partial files) -------------------------------------------------

#[test]
fn an_empty_overlay_gives_the_preset_back() {
    for p in presets() {
        assert_eq!(p.merge_toml("").unwrap(), p, "{} (TOML)", p.name);
        assert_eq!(p.merge_json("{}").unwrap(), p, "{} (JSON)", p.name);
        let named = format!("preset = \"{}\"\n", p.name);
        assert_eq!(Policy::from_toml(&named).unwrap(), p, "{}", p.name);
    }
}

#[test]
fn a_partial_file_sets_only_what_it_names() {
    // The example from the issue: a file with only `[lockout] threshold = 3` on a preset.
    let text = "preset = \"recommended\"\n\n[lockout]\nthreshold = 3\n\n[notices]\nlink_cooldown = \"5m\"\n";
    let p = Policy::from_toml(text).unwrap();
    let base = Policy::recommended();
    assert_eq!(p.lockout.threshold, 3);
    assert_eq!(p.notices.link_cooldown, Some(Duration::from_secs(300)));
    assert_eq!(p.lockout.window, base.lockout.window);
    assert_eq!(p.registration, base.registration);
    let json = r#"{"preset": "iess", "lockout": {"threshold": 4, "first_duration": "15m"}}"#;
    let p = Policy::from_json(json).unwrap();
    assert_eq!(p.lockout.threshold, 4);
    assert_eq!(p.lockout.first_duration, Some(Duration::from_secs(900)));
    assert_eq!(p.recovery, Policy::iess().recovery);
    // JSON can also clear an optional value.
    let p = Policy::recommended()
        .merge_json(r#"{"notices": {"link_cooldown": null}}"#)
        .unwrap();
    assert_eq!(p.notices.link_cooldown, None);
}

#[test]
fn a_partial_file_is_still_checked_key_by_key() {
    let err = Policy::from_toml("preset = \"iess\"\n[lockout]\nthreshhold = 3\n").unwrap_err();
    assert!(
        matches!(&err, PolicyError::Parse { path, .. } if path.starts_with("lockout")),
        "{err:?}"
    );
    let err =
        Policy::from_toml("preset = \"iess\"\n[lockout]\nthreshold = \"three\"\n").unwrap_err();
    assert!(
        matches!(&err, PolicyError::Parse { path, .. } if path == "lockout.threshold"),
        "{err:?}"
    );
    let err = Policy::from_toml("preset = \"iess\"\n[lockout]\nthreshold = 0\n").unwrap_err();
    assert!(matches!(err, PolicyError::Invalid { .. }), "{err:?}");
    let err = Policy::from_toml("preset = \"bps\"\n").unwrap_err();
    assert!(
        matches!(&err, PolicyError::Parse { path, .. } if path == "preset"),
        "{err:?}"
    );
    // Without a preset the file must be complete, as before.
    assert!(Policy::from_toml("[lockout]\nthreshold = 3\n").is_err());
}

#[test]
fn durations_are_written_in_their_largest_whole_unit() {
    let text = Policy::iess().to_toml().unwrap();
    assert!(text.contains("audit = \"1825d\""), "{text}");
    assert!(
        text.contains("window = \"20m\"")
            || text.contains("window = \"15m\"")
            || text.contains("window = \"1h\""),
        "{text}"
    );
    assert!(!text.contains("years"), "{text}");
    // And they read back exactly.
    for p in presets() {
        assert_eq!(Policy::from_toml(&p.to_toml().unwrap()).unwrap(), p);
        assert_eq!(Policy::from_json(&p.to_json().unwrap()).unwrap(), p);
    }
}

#[test]
fn environment_style_variables_override_a_preset() {
    let vars = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    let p = Policy::isspol()
        .merge_vars(
            "AFILIADO_",
            vars(&[
                ("AFILIADO_LOCKOUT__THRESHOLD", "7"),
                ("AFILIADO_lockout__Window", "30m"),
                ("AFILIADO_LOCKOUT__REVEAL_LOCK_STATE", "false"),
                ("AFILIADO_IDENTIFIERS", "[\"cedula\", \"foreigner\"]"),
                ("PATH", "/usr/bin"),
            ]),
        )
        .unwrap();
    assert_eq!(p.lockout.threshold, 7);
    assert_eq!(p.lockout.window, Duration::from_secs(1800));
    assert!(!p.lockout.reveal_lock_state);
    assert_eq!(p.identifiers.len(), 2);
    assert_eq!(p.registration, Policy::isspol().registration);
    // Unknown keys and wrong types name their path; nothing to do gives the policy back.
    let err = Policy::isspol()
        .merge_vars("AFILIADO_", vars(&[("AFILIADO_LOCKOUT__THRESHHOLD", "7")]))
        .unwrap_err();
    assert!(
        matches!(&err, PolicyError::Parse { path, .. } if path.starts_with("lockout")),
        "{err:?}"
    );
    let err = Policy::isspol()
        .merge_vars(
            "AFILIADO_",
            vars(&[("AFILIADO_LOCKOUT__THRESHOLD", "siete")]),
        )
        .unwrap_err();
    assert!(
        matches!(&err, PolicyError::Parse { path, .. } if path == "lockout.threshold"),
        "{err:?}"
    );
    assert!(
        Policy::isspol()
            .merge_vars("AFILIADO_", vars(&[("AFILIADO___X", "1")]))
            .is_err()
    );
    assert_eq!(
        Policy::iess().merge_vars("AFILIADO_", Vec::new()).unwrap(),
        Policy::iess()
    );
}

#[test]
fn sent_mail_retention_is_bounded_and_defaults_when_absent() {
    let mut p = Policy::iess();
    p.retention.sent_mail = Duration::from_secs(3600);
    assert!(
        matches!(p.validate(), Err(PolicyError::Invalid { field, .. }) if field == "retention.sent_mail")
    );
    p.retention.sent_mail = Duration::from_secs(51 * 365 * 86_400);
    assert!(p.validate().is_err());
    // A file written before the key existed still loads, with the default.
    let old = Policy::iess()
        .to_toml()
        .unwrap()
        .replace("sent_mail = \"30d\"\n", "");
    assert!(!old.contains("sent_mail"));
    assert_eq!(Policy::from_toml(&old).unwrap(), Policy::iess());
}
