//! Rendering of notices into mails: every kind in both locales, links only from the configured
//! base, Ecuador time, secrets kept out of `Debug`, the HTML part (escaping, language, link),
//! whole-text snapshots in es-EC, and `insta` snapshots of every notice in both locales, text
//! and HTML (`tests/snapshots/`; regenerate with `INSTA_UPDATE=always` or `cargo insta`, and
//! review the diff by eye: a missing snapshot fails the test, and with `CI=true` none is
//! written).

use afiliado::Email;
use afiliado::core::{Locale, LockReason, Notice, NoticeKind};
use afiliado::crypto::{NumericCode, Token, TokenPurpose};
use afiliado::notices::{LinkBase, NoticeError, render};
use afiliado::ports::Mail;
use afiliado::seal::LinkSecrets;
use rand::SeedableRng;
use rand::rngs::StdRng;
use time::OffsetDateTime;
use time::macros::datetime;

/// Base64url of `test-token-for-afiliado-notices!`.
const TOKEN: &str = "dGVzdC10b2tlbi1mb3ItYWZpbGlhZG8tbm90aWNlcyE";
const CODE: &str = "4821";
const BASE: &str = "https://afiliados.example.ec/portal/";
/// 00:25 UTC on the 23rd is 19:25 on the 22nd in Ecuador.
const EXPIRES: OffsetDateTime = datetime!(2026-11-23 00:25 UTC);

fn email(s: &str) -> Email {
    s.parse().unwrap()
}

fn links() -> LinkBase {
    LinkBase::new(BASE).unwrap()
}

fn secrets() -> LinkSecrets {
    LinkSecrets::new(
        Token::parse(TOKEN).unwrap(),
        Some(NumericCode::parse(CODE, 4).unwrap()),
    )
}

fn all_kinds() -> Vec<NoticeKind> {
    vec![
        NoticeKind::Activation {
            expires_at: EXPIRES,
            with_code: true,
        },
        NoticeKind::Activation {
            expires_at: EXPIRES,
            with_code: false,
        },
        NoticeKind::UnlockLink {
            expires_at: EXPIRES,
        },
        NoticeKind::ResetLink {
            expires_at: EXPIRES,
        },
        NoticeKind::Locked {
            reason: LockReason::FailedLogins,
            until: Some(EXPIRES),
        },
        NoticeKind::Locked {
            reason: LockReason::FailedLogins,
            until: None,
        },
        NoticeKind::Locked {
            reason: LockReason::FailedRecovery,
            until: Some(EXPIRES),
        },
        NoticeKind::Locked {
            reason: LockReason::FailedRecovery,
            until: None,
        },
        NoticeKind::Locked {
            reason: LockReason::Staff,
            until: None,
        },
        NoticeKind::Unlocked,
        NoticeKind::PasswordChanged,
        NoticeKind::EmailChangedFrom {
            new_masked: email("nuevo@correo.ec").masked(),
        },
        NoticeKind::EmailChangedTo,
        NoticeKind::RegistrationAttemptOnActive,
        NoticeKind::EmailChangeConfirm {
            expires_at: EXPIRES,
        },
        NoticeKind::EmailChangeRequested {
            new_masked: email("nuevo@correo.ec").masked(),
        },
    ]
}

fn notice(locale: Locale, kind: NoticeKind) -> Notice {
    Notice::new(email("ana@example.ec"), locale, kind)
}

fn expected_link(purpose: TokenPurpose) -> String {
    let path = match purpose {
        TokenPurpose::Activation => "/activar",
        TokenPurpose::Unlock => "/desbloquear",
        TokenPurpose::Reset => "/restablecer",
        TokenPurpose::EmailChange => "/confirmar-correo",
        other => panic!("no link for {other}"),
    };
    format!("https://afiliados.example.ec/portal{path}?token={TOKEN}")
}

fn full_text(mail: &Mail) -> String {
    format!("{}\n{}", mail.subject, mail.text)
}

#[test]
fn every_kind_renders_in_both_locales() {
    for locale in [Locale::EsEc, Locale::En] {
        for kind in all_kinds() {
            let n = notice(locale, kind.clone());
            let mail = render(&n, Some(&secrets()), &links(), "msg-7").unwrap();
            let ctx = format!("{locale:?} {kind:?}");
            assert_eq!(mail.message_id, "msg-7", "{ctx}");
            assert_eq!(mail.to, n.to, "{ctx}");
            assert!(!mail.subject.trim().is_empty(), "{ctx}");
            assert!(!mail.subject.contains('\n'), "{ctx}");
            assert!(!mail.text.trim().is_empty(), "{ctx}");
            let all = full_text(&mail);

            // Links: exactly the configured one for link-bearing kinds, none otherwise.
            match kind.link_purpose() {
                Some(purpose) => {
                    let link = expected_link(purpose);
                    assert!(all.contains(&format!("\n{link}\n")), "{ctx}: {all}");
                    assert_eq!(all.matches("http").count(), 1, "{ctx}: {all}");
                    assert_eq!(all.matches(TOKEN).count(), 1, "{ctx}");
                }
                None => {
                    assert!(!all.contains("http"), "{ctx}: {all}");
                    assert!(!all.contains(TOKEN), "{ctx}");
                }
            }

            // The code only where announced.
            let with_code = matches!(
                kind,
                NoticeKind::Activation {
                    with_code: true,
                    ..
                }
            );
            assert_eq!(all.contains(CODE), with_code, "{ctx}: {all}");
            if with_code {
                let line = match locale {
                    Locale::EsEc => format!("Su código de activación es {CODE}."),
                    _ => format!("Your activation code is {CODE}."),
                };
                assert!(all.contains(&line), "{ctx}: {all}");
            }

            // Times in Ecuador, with the zone named; never the UTC rendering.
            let zone = match locale {
                Locale::EsEc => "(hora de Ecuador)",
                _ => "(Ecuador time)",
            };
            let shows_time = kind.link_purpose().is_some()
                || matches!(kind, NoticeKind::Locked { until: Some(_), .. });
            assert_eq!(
                all.contains(&format!("22/11/2026 19:25 {zone}")),
                shows_time,
                "{ctx}: {all}"
            );
            assert!(!all.contains("23/11/2026"), "{ctx}");
            assert!(!all.contains("00:25"), "{ctx}");

            // Language markers.
            match locale {
                Locale::EsEc => {
                    assert!(all.starts_with(&mail.subject));
                    assert!(all.contains("Estimado(a) afiliado(a):"), "{ctx}");
                    assert!(all.contains("mensaje automático"), "{ctx}");
                    assert!(!all.contains("Dear"), "{ctx}");
                }
                _ => {
                    assert!(all.contains("Dear member,"), "{ctx}");
                    assert!(!all.contains("Estimado"), "{ctx}");
                    assert!(all.is_ascii(), "{ctx}: {all}");
                }
            }
            assert!(!all.contains('\u{FFFD}'), "{ctx}");
            assert!(!all.contains("  "), "{ctx}: double space");
            assert!(!all.contains("\n\n\n"), "{ctx}: stray blank line");
            assert!(!all.ends_with('\n'), "{ctx}");
        }
    }
}

#[test]
fn spanish_accents_survive_as_utf8() {
    let kinds = [
        (
            NoticeKind::Activation {
                expires_at: EXPIRES,
                with_code: true,
            },
            "Su código de activación es 4821. Ingréselo",
        ),
        (
            NoticeKind::PasswordChanged,
            "Si usted no cambió su contraseña, restablézcala de inmediato",
        ),
        (
            NoticeKind::EmailChangedFrom {
                new_masked: "n***@correo.ec".into(),
            },
            "El correo electrónico de contacto de su cuenta fue cambiado a n***@correo.ec.",
        ),
        (
            NoticeKind::Locked {
                reason: LockReason::FailedLogins,
                until: None,
            },
            "intentos fallidos de inicio de sesión",
        ),
    ];
    for (kind, phrase) in kinds {
        let mail = render(&notice(Locale::EsEc, kind), Some(&secrets()), &links(), "m").unwrap();
        assert!(mail.text.contains(phrase), "{}", mail.text);
        // Composed code points, not ASCII fallbacks or decomposed accents.
        assert!(mail.text.contains('ó'));
        assert!(!mail.text.contains('\u{0301}'));
        assert!(mail.text.as_bytes().windows(2).any(|w| w == "ó".as_bytes()));
    }
    let mail = render(
        &notice(
            Locale::EsEc,
            NoticeKind::ResetLink {
                expires_at: EXPIRES,
            },
        ),
        Some(&secrets()),
        &links(),
        "m",
    )
    .unwrap();
    assert_eq!(mail.subject, "Restablecimiento de su contraseña");
}

#[test]
fn default_locale_is_spanish() {
    let n = notice(Locale::default(), NoticeKind::Unlocked);
    let mail = render(&n, None, &links(), "m").unwrap();
    assert_eq!(mail.subject, "Su cuenta ha sido desbloqueada");
}

#[test]
fn guayaquil_time_and_rounding() {
    let render_es = |kind| {
        render(&notice(Locale::EsEc, kind), Some(&secrets()), &links(), "m")
            .unwrap()
            .text
    };
    // Any input offset: the same instant shows the same Ecuador time.
    for expires_at in [
        datetime!(2026-11-23 00:25 UTC),
        datetime!(2026-11-22 19:25 -5),
        datetime!(2026-11-23 01:25 +1),
        datetime!(2026-11-22 18:25 -6),
    ] {
        let text = render_es(NoticeKind::ResetLink { expires_at });
        assert!(
            text.contains("vence el 22/11/2026 19:25 (hora de Ecuador)"),
            "{text}"
        );
    }
    // Year and month boundaries, zero padding, 24-hour clock.
    let text = render_es(NoticeKind::UnlockLink {
        expires_at: datetime!(2027-01-01 03:07 UTC),
    });
    assert!(
        text.contains("vence el 31/12/2026 22:07 (hora de Ecuador)"),
        "{text}"
    );
    let text = render_es(NoticeKind::UnlockLink {
        expires_at: datetime!(2026-03-05 14:09 UTC),
    });
    assert!(
        text.contains("vence el 05/03/2026 09:09 (hora de Ecuador)"),
        "{text}"
    );
    // Expiries round down (the link still works at the time shown) …
    let text = render_es(NoticeKind::UnlockLink {
        expires_at: datetime!(2026-11-23 00:25:59.999 UTC),
    });
    assert!(
        text.contains("22/11/2026 19:25 (hora de Ecuador)"),
        "{text}"
    );
    // … automatic unlocks round up (the account is unlocked at the time shown).
    let text = render_es(NoticeKind::Locked {
        reason: LockReason::FailedLogins,
        until: Some(datetime!(2026-11-23 00:25:00.001 UTC)),
    });
    assert!(
        text.contains("Se desbloqueará automáticamente el 22/11/2026 19:26 (hora de Ecuador)"),
        "{text}"
    );
    let text = render_es(NoticeKind::Locked {
        reason: LockReason::FailedLogins,
        until: Some(datetime!(2026-11-23 04:59:30 UTC)),
    });
    assert!(
        text.contains("el 23/11/2026 00:00 (hora de Ecuador)"),
        "{text}"
    );
    let text = render_es(NoticeKind::Locked {
        reason: LockReason::FailedLogins,
        until: Some(EXPIRES),
    });
    assert!(
        text.contains("el 22/11/2026 19:25 (hora de Ecuador)"),
        "{text}"
    );
}

#[test]
fn locked_explains_how_to_unlock() {
    let text = |reason, until, locale| {
        render(
            &notice(locale, NoticeKind::Locked { reason, until }),
            None,
            &links(),
            "m",
        )
        .unwrap()
        .text
    };
    let auto = text(LockReason::FailedLogins, Some(EXPIRES), Locale::EsEc);
    assert!(auto.contains("Se desbloqueará automáticamente"), "{auto}");
    assert!(!auto.contains("solicite un enlace de desbloqueo"), "{auto}");
    let manual = text(LockReason::FailedRecovery, None, Locale::EsEc);
    assert!(manual.contains("verificación de identidad"), "{manual}");
    assert!(
        manual.contains("solicite un enlace de desbloqueo"),
        "{manual}"
    );
    assert!(!manual.contains("automáticamente"), "{manual}");
    let staff = text(LockReason::Staff, None, Locale::EsEc);
    assert!(staff.contains("suspendida por la institución"), "{staff}");
    assert!(staff.contains("comuníquese con la institución"), "{staff}");
    assert!(!staff.contains("enlace de desbloqueo"), "{staff}");
    let en = text(LockReason::FailedLogins, None, Locale::En);
    assert!(en.contains("failed login attempts"), "{en}");
    assert!(en.contains("request an unlock link"), "{en}");
    let en = text(LockReason::Staff, Some(EXPIRES), Locale::En);
    assert!(
        en.contains("unlock automatically on 22/11/2026 19:25 (Ecuador time)"),
        "{en}"
    );
}

#[test]
fn link_bearing_kinds_require_secrets() {
    for locale in [Locale::EsEc, Locale::En] {
        for kind in all_kinds() {
            let n = notice(locale, kind.clone());
            let result = render(&n, None, &links(), "m");
            match kind.link_purpose() {
                Some(purpose) => {
                    let err = result.unwrap_err();
                    assert_eq!(err, NoticeError::MissingSecrets { purpose });
                    assert!(!err.to_string().is_empty());
                }
                None => {
                    assert!(result.is_ok(), "{kind:?}");
                }
            }
        }
    }
}

#[test]
fn announced_code_is_required_and_unannounced_code_is_ignored() {
    let no_code = LinkSecrets::new(Token::parse(TOKEN).unwrap(), None);
    let with_code = NoticeKind::Activation {
        expires_at: EXPIRES,
        with_code: true,
    };
    assert_eq!(
        render(
            &notice(Locale::EsEc, with_code),
            Some(&no_code),
            &links(),
            "m"
        )
        .unwrap_err(),
        NoticeError::MissingCode
    );
    let without = NoticeKind::Activation {
        expires_at: EXPIRES,
        with_code: false,
    };
    let mail = render(
        &notice(Locale::EsEc, without),
        Some(&secrets()),
        &links(),
        "m",
    )
    .unwrap();
    assert!(!mail.text.contains(CODE));
    assert!(!mail.text.contains("código de activación"), "{}", mail.text);
    assert!(mail.text.contains("Este enlace vence el 22/11/2026 19:25"));
    // Secrets handed to a notice without a link leave no trace.
    let mail = render(
        &notice(Locale::EsEc, NoticeKind::PasswordChanged),
        Some(&secrets()),
        &links(),
        "m",
    )
    .unwrap();
    assert!(!mail.text.contains(TOKEN) && !mail.text.contains(CODE));
}

#[test]
fn mail_debug_hides_link_and_code() {
    let mut rng = StdRng::seed_from_u64(99);
    for _ in 0..16 {
        let token = Token::generate(&mut rng);
        let code = NumericCode::generate(8, &mut rng).unwrap();
        let s = LinkSecrets::new(token.clone(), Some(code.clone()));
        for locale in [Locale::EsEc, Locale::En] {
            for kind in all_kinds() {
                let mail = render(&notice(locale, kind.clone()), Some(&s), &links(), "m").unwrap();
                let dbg = format!("{mail:?} {mail:#?}");
                assert!(!dbg.contains(token.expose_secret()), "{dbg}");
                assert!(!dbg.contains(&token.expose_secret()[..10]), "{dbg}");
                assert!(!dbg.contains(code.expose_secret()), "{dbg}");
                assert!(!dbg.contains("?token="), "{dbg}");
                if kind.link_purpose().is_some() {
                    assert!(mail.text.contains(token.expose_secret()));
                }
            }
        }
    }
}

#[test]
fn links_come_only_from_the_configured_base() {
    let token = Token::parse(TOKEN).unwrap();
    let base = LinkBase::new("https://afiliados.example.ec").unwrap();
    assert_eq!(
        base.link(TokenPurpose::Activation, &token),
        format!("https://afiliados.example.ec/activar?token={TOKEN}")
    );
    assert_eq!(
        base.link(TokenPurpose::ActivationCode, &token),
        format!("https://afiliados.example.ec/activar?token={TOKEN}")
    );
    assert_eq!(
        base.link(TokenPurpose::Unlock, &token),
        format!("https://afiliados.example.ec/desbloquear?token={TOKEN}")
    );
    assert_eq!(
        base.link(TokenPurpose::Reset, &token),
        format!("https://afiliados.example.ec/restablecer?token={TOKEN}")
    );

    // Trailing slashes trimmed; ports and base paths kept.
    for (raw, trimmed) in [
        (
            "https://afiliados.example.ec/",
            "https://afiliados.example.ec",
        ),
        (
            "https://afiliados.example.ec///",
            "https://afiliados.example.ec",
        ),
        (
            "https://example.ec:8443/portal/",
            "https://example.ec:8443/portal",
        ),
        (
            "https://example.ec/a%C3%B1o/v1",
            "https://example.ec/a%C3%B1o/v1",
        ),
        ("http://localhost", "http://localhost"),
        ("http://localhost:3000/", "http://localhost:3000"),
        ("http://127.0.0.1:8080/dev", "http://127.0.0.1:8080/dev"),
    ] {
        assert_eq!(LinkBase::new(raw).unwrap().base(), trimmed, "{raw}");
    }

    // Custom paths.
    let custom = LinkBase::new("https://example.ec")
        .unwrap()
        .with_path(TokenPurpose::ActivationCode, "/cuenta/activar")
        .unwrap()
        .with_path(TokenPurpose::Unlock, "/cuenta/desbloquear")
        .unwrap()
        .with_path(TokenPurpose::Reset, "/clave")
        .unwrap();
    assert_eq!(
        custom.link(TokenPurpose::Activation, &token),
        format!("https://example.ec/cuenta/activar?token={TOKEN}")
    );
    let mail = render(
        &notice(
            Locale::En,
            NoticeKind::ResetLink {
                expires_at: EXPIRES,
            },
        ),
        Some(&secrets()),
        &custom,
        "m",
    )
    .unwrap();
    assert!(
        mail.text
            .contains(&format!("\nhttps://example.ec/clave?token={TOKEN}\n"))
    );
    for bad in [
        "",
        "/",
        "clave",
        "/clave?x=1",
        "/clave#f",
        "/cla ve",
        "/%zz",
        "/a\\b",
        "/ñ",
    ] {
        let err = LinkBase::new("https://example.ec")
            .unwrap()
            .with_path(TokenPurpose::Reset, bad)
            .unwrap_err();
        assert!(
            matches!(
                err,
                NoticeError::InvalidPath {
                    purpose: TokenPurpose::Reset,
                    ..
                }
            ),
            "{bad}: {err:?}"
        );
    }
}

#[test]
fn bad_base_urls_are_rejected() {
    for bad in [
        "",
        "afiliados.example.ec",
        "//afiliados.example.ec",
        "ftp://afiliados.example.ec",
        "http://afiliados.example.ec",
        "HTTP://localhost",
        "https://",
        "https:///portal",
        "https://afiliados.example.ec?x=1",
        "https://afiliados.example.ec/portal?next=/",
        "https://afiliados.example.ec/#frag",
        "https://afiliados.example.ec/portal#",
        "https://user:clave@afiliados.example.ec",
        "https://afiliados.example.ec@evil.example",
        "http://localhost.evil.example",
        "http://localhost@evil.example",
        "http://127.0.0.1.evil.example",
        "http://127.0.0.2",
        "https://afiliados.example.ec:",
        "https://afiliados.example.ec:0",
        "https://afiliados.example.ec:65536",
        "https://afiliados.example.ec:80a",
        "https://afiliados example.ec",
        " https://afiliados.example.ec",
        "https://afiliados.example.ec\n",
        "https://afiliados.example.ec/por tal",
        "https://afiliados.example.ec\\evil.example",
        "https://afiliadós.example.ec",
        "https://.example.ec",
        "https://a..example.ec",
        "https://[::1]",
        "https://example.ec/%4",
        "https://example.ec/a\"b",
        "https://example.ec/<script>",
        "javascript:alert(1)",
    ] {
        let err = LinkBase::new(bad).unwrap_err();
        assert!(
            matches!(err, NoticeError::InvalidBase { .. }),
            "{bad:?}: {err:?}"
        );
        // The rejected URL (which may hold credentials) is never echoed.
        let msg = err.to_string();
        assert!(!msg.contains("example"), "{msg}");
        assert!(!msg.contains("clave"), "{msg}");
    }
}

// ---------------------------------------------------------------------------------------------
// Snapshots (es-EC)
// ---------------------------------------------------------------------------------------------

#[track_caller]
fn assert_snapshot(kind: NoticeKind, expected_subject: &str, expected_text: &str) {
    let mail = render(
        &notice(Locale::EsEc, kind),
        Some(&secrets()),
        &links(),
        "snap",
    )
    .unwrap();
    assert_eq!(mail.subject, expected_subject);
    assert_eq!(
        mail.text, expected_text,
        "\n--- got ---\n{}\n--- expected ---\n{}",
        mail.text, expected_text
    );
}

#[test]
fn snapshot_activation_with_code() {
    assert_snapshot(
        NoticeKind::Activation {
            expires_at: EXPIRES,
            with_code: true,
        },
        "Active su cuenta de afiliado",
        "\
Estimado(a) afiliado(a):

Recibimos su solicitud de registro. Para activar su cuenta, abra el siguiente enlace:

https://afiliados.example.ec/portal/activar?token=dGVzdC10b2tlbi1mb3ItYWZpbGlhZG8tbm90aWNlcyE

Su código de activación es 4821. Ingréselo cuando el portal se lo solicite.

El enlace y el código vencen el 22/11/2026 19:25 (hora de Ecuador). No los comparta con nadie.

Si usted no solicitó este registro, ignore este mensaje: la cuenta no se activará.

Este es un mensaje automático; por favor, no responda a este correo.
Nunca le solicitaremos su contraseña ni sus códigos por correo electrónico ni por teléfono.",
    );
}

#[test]
fn snapshot_locked_with_automatic_unlock() {
    assert_snapshot(
        NoticeKind::Locked {
            reason: LockReason::FailedLogins,
            until: Some(datetime!(2026-11-22 20:00:13 -5)),
        },
        "Su cuenta ha sido bloqueada",
        "\
Estimado(a) afiliado(a):

Su cuenta fue bloqueada porque se registraron varios intentos fallidos de inicio de sesión.

Se desbloqueará automáticamente el 22/11/2026 20:01 (hora de Ecuador); a partir de ese momento podrá iniciar sesión nuevamente.

Si usted no realizó estos intentos, es posible que otra persona esté intentando ingresar a su cuenta: le recomendamos cambiar su contraseña en cuanto recupere el acceso.

Este es un mensaje automático; por favor, no responda a este correo.
Nunca le solicitaremos su contraseña ni sus códigos por correo electrónico ni por teléfono.",
    );
}

#[test]
fn snapshot_registration_attempt_on_active() {
    assert_snapshot(
        NoticeKind::RegistrationAttemptOnActive,
        "Intento de registro de su cuenta",
        "\
Estimado(a) afiliado(a):

Recibimos una solicitud de registro para su cuenta, que ya está activa. Su cuenta no ha sido modificada.

Si fue usted, no necesita registrarse otra vez: inicie sesión con su contraseña o, si no la recuerda, recupérela desde el portal.

Si no fue usted, puede ignorar este mensaje.

Este es un mensaje automático; por favor, no responda a este correo.
Nunca le solicitaremos su contraseña ni sus códigos por correo electrónico ni por teléfono.",
    );
}

// ---------------------------------------------------------------------------------------------
// HTML part
// ---------------------------------------------------------------------------------------------

#[test]
fn html_part_mirrors_the_text() {
    for locale in [Locale::EsEc, Locale::En] {
        for kind in all_kinds() {
            let mail = render(
                &notice(locale, kind.clone()),
                Some(&secrets()),
                &links(),
                "m",
            )
            .unwrap();
            let ctx = format!("{locale:?} {kind:?}");
            let html = mail.html.as_deref().expect("every mail has an HTML part");
            assert!(html.starts_with("<!DOCTYPE html>\n<html lang="), "{ctx}");
            assert!(html.ends_with("</html>"), "{ctx}");
            let lang = match locale {
                Locale::EsEc => "lang=\"es-EC\"",
                _ => "lang=\"en\"",
            };
            assert!(html.contains(lang), "{ctx}");
            assert!(
                html.contains(&format!("<title>{}</title>", mail.subject)),
                "{ctx}"
            );
            assert!(html.contains("<meta charset=\"utf-8\">"), "{ctx}");
            for leftover in ["{{", "}}", "{%", "%}", "&#x2f;", "&amp;"] {
                assert!(!html.contains(leftover), "{ctx}: {leftover}");
                assert!(!mail.text.contains(leftover), "{ctx}: {leftover}");
            }

            // The link as a button and as the visible address; nothing else links out.
            match kind.link_purpose() {
                Some(purpose) => {
                    let link = expected_link(purpose);
                    assert_eq!(
                        html.matches(&format!("<a href=\"{link}\" style=")).count(),
                        2,
                        "{ctx}"
                    );
                    assert!(html.contains(&format!(">{link}</a>")), "{ctx}");
                    assert_eq!(html.matches(TOKEN).count(), 3, "{ctx}");
                    assert_eq!(html.matches("http").count(), 3, "{ctx}");
                }
                None => {
                    assert!(!html.contains("<a "), "{ctx}");
                    assert!(!html.contains("http"), "{ctx}");
                    assert!(!html.contains(TOKEN), "{ctx}");
                }
            }
            let with_code = matches!(
                kind,
                NoticeKind::Activation {
                    with_code: true,
                    ..
                }
            );
            assert_eq!(html.contains(CODE), with_code, "{ctx}");

            // Same times, same closing lines, same language.
            let shows_time = mail.text.contains("22/11/2026 19:25");
            assert_eq!(
                html.contains("<strong>22/11/2026 19:25</strong>"),
                shows_time,
                "{ctx}"
            );
            match locale {
                Locale::EsEc => {
                    assert!(html.contains("Estimado(a) afiliado(a):"), "{ctx}");
                    assert!(
                        html.contains("Nunca le solicitaremos su contraseña ni sus códigos"),
                        "{ctx}"
                    );
                }
                _ => {
                    assert!(html.contains("Dear member,"), "{ctx}");
                    assert!(
                        html.contains("We will never ask for your password"),
                        "{ctx}"
                    );
                    assert!(html.is_ascii(), "{ctx}");
                }
            }
        }
    }
}

#[test]
fn html_escapes_dynamic_values() {
    let hostile = "n***<script>alert('x')</script>&\"@correo.ec";
    for locale in [Locale::EsEc, Locale::En] {
        let kind = NoticeKind::EmailChangedFrom {
            new_masked: hostile.into(),
        };
        let mail = render(&notice(locale, kind), None, &links(), "m").unwrap();
        let html = mail.html.unwrap();
        assert!(
            html.contains(
                "<strong>n***&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;@correo.ec</strong>"
            ),
            "{html}"
        );
        assert!(!html.contains("<script"), "{html}");
        // The text part is plain text: shown as given.
        assert!(mail.text.contains(hostile), "{}", mail.text);
    }
}

#[test]
fn html_keeps_spanish_accents() {
    let mail = render(
        &notice(Locale::EsEc, NoticeKind::PasswordChanged),
        None,
        &links(),
        "m",
    )
    .unwrap();
    let html = mail.html.unwrap();
    assert!(
        html.contains("<title>Su contraseña ha sido cambiada</title>"),
        "{html}"
    );
    assert!(html.contains("restablézcala de inmediato"), "{html}");
    assert!(!html.contains("&oacute;") && !html.contains('\u{0301}'));
}

// ---------------------------------------------------------------------------------------------
// insta snapshots: every notice, both locales, text and HTML
// ---------------------------------------------------------------------------------------------

/// Renders `kind` in both locales and compares subject + text and the HTML with the committed
/// snapshots `tests/snapshots/notices__{locale}__{name}__{text,html}.snap`.
#[track_caller]
fn assert_notice_snapshots(name: &str, kind: NoticeKind) {
    for (locale, tag) in [(Locale::EsEc, "es_ec"), (Locale::En, "en")] {
        let mail = render(
            &notice(locale, kind.clone()),
            Some(&secrets()),
            &links(),
            "snap",
        )
        .unwrap();
        let text = format!("Subject: {}\n\n{}", mail.subject, mail.text);
        insta::assert_snapshot!(format!("{tag}__{name}__text"), text);
        let html = mail.html.expect("every mail has an HTML part");
        insta::assert_snapshot!(format!("{tag}__{name}__html"), html);
    }
}

/// An automatic unlock at 20:00:13 Ecuador time: shown rounded up, as 20:01.
const UNTIL: OffsetDateTime = datetime!(2026-11-22 20:00:13 -5);

macro_rules! notice_snapshots {
    ($($name:ident => $kind:expr,)*) => {
        $(
            #[test]
            fn $name() {
                assert_notice_snapshots(stringify!($name), $kind);
            }
        )*
    };
}

mod snapshots {
    use super::*;

    notice_snapshots! {
        activation_with_code => NoticeKind::Activation {
            expires_at: EXPIRES,
            with_code: true,
        },
        activation_link_only => NoticeKind::Activation {
            expires_at: EXPIRES,
            with_code: false,
        },
        unlock_link => NoticeKind::UnlockLink {
            expires_at: EXPIRES,
        },
        reset_link => NoticeKind::ResetLink {
            expires_at: EXPIRES,
        },
        locked_failed_logins_until => NoticeKind::Locked {
            reason: LockReason::FailedLogins,
            until: Some(UNTIL),
        },
        locked_failed_logins_indefinite => NoticeKind::Locked {
            reason: LockReason::FailedLogins,
            until: None,
        },
        locked_failed_recovery_until => NoticeKind::Locked {
            reason: LockReason::FailedRecovery,
            until: Some(UNTIL),
        },
        locked_failed_recovery_indefinite => NoticeKind::Locked {
            reason: LockReason::FailedRecovery,
            until: None,
        },
        locked_staff_until => NoticeKind::Locked {
            reason: LockReason::Staff,
            until: Some(UNTIL),
        },
        locked_staff_indefinite => NoticeKind::Locked {
            reason: LockReason::Staff,
            until: None,
        },
        unlocked => NoticeKind::Unlocked,
        password_changed => NoticeKind::PasswordChanged,
        email_changed_from => NoticeKind::EmailChangedFrom {
            new_masked: email("nuevo@correo.ec").masked(),
        },
        email_changed_to => NoticeKind::EmailChangedTo,
        registration_attempt_on_active => NoticeKind::RegistrationAttemptOnActive,
        email_change_confirm => NoticeKind::EmailChangeConfirm {
            expires_at: EXPIRES,
        },
        email_change_requested => NoticeKind::EmailChangeRequested {
            new_masked: email("nuevo@correo.ec").masked(),
        },
    }
}
