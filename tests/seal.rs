//! Sealing of link secrets for the outbox: round trips, binding to the associated data,
//! tamper detection and redaction.

use afiliado::crypto::{NumericCode, Token};
use afiliado::seal::{LinkSecrets, SealError, SealKey};
use rand::SeedableRng;
use rand::rngs::StdRng;

const AAD: &[u8] = b"outbox:activation:acct-7:1";

fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

fn secrets(r: &mut StdRng, code: bool) -> LinkSecrets {
    let token = Token::generate(r);
    let code = code.then(|| NumericCode::generate(6, r).unwrap());
    LinkSecrets::new(token, code)
}

fn same(a: &LinkSecrets, b: &LinkSecrets) -> bool {
    a.token.expose_secret() == b.token.expose_secret()
        && a.code
            .as_ref()
            .map(|c| (c.expose_secret().to_owned(), c.digits()))
            == b.code
                .as_ref()
                .map(|c| (c.expose_secret().to_owned(), c.digits()))
}

#[test]
fn round_trip_with_and_without_code() {
    let mut r = rng(1);
    let key = SealKey::generate(&mut r);
    for with_code in [true, false] {
        let s = secrets(&mut r, with_code);
        let sealed = key.seal(&s, AAD, &mut r);
        assert_eq!(sealed[0], 2, "version byte");
        assert_eq!(sealed[1..5], key.id().as_bytes(), "key id");
        let opened = key.open(&sealed, AAD).unwrap();
        assert!(same(&s, &opened));
        assert_eq!(opened.code.is_some(), with_code);
        let opened = key.open_optional(&sealed, AAD).unwrap().unwrap();
        assert!(same(&s, &opened));
    }
}

#[test]
fn codes_of_every_length_and_leading_zeros_survive() {
    let mut r = rng(2);
    let key = SealKey::from_bytes(&[7; 32]).unwrap();
    for code in ["0000", "01234", "000001", "9876543210"] {
        let digits = u8::try_from(code.len()).unwrap();
        let s = LinkSecrets::new(
            Token::generate(&mut r),
            Some(NumericCode::parse(code, digits).unwrap()),
        );
        let opened = key.open(&key.seal(&s, AAD, &mut r), AAD).unwrap();
        assert!(same(&s, &opened), "{code}");
    }
}

#[test]
fn empty_aad_works_and_is_distinct_from_other_aad() {
    let mut r = rng(3);
    let key = SealKey::generate(&mut r);
    let s = secrets(&mut r, true);
    let sealed = key.seal(&s, b"", &mut r);
    assert!(same(&s, &key.open(&sealed, b"").unwrap()));
    assert_eq!(
        key.open(&sealed, b"\x01").unwrap_err(),
        SealError::Authentication
    );
}

#[test]
fn empty_input_means_no_secrets_only_for_open_optional() {
    let key = SealKey::from_bytes(&[1; 32]).unwrap();
    assert!(key.open_optional(&[], AAD).unwrap().is_none());
    assert!(matches!(
        key.open(&[], AAD),
        Err(SealError::Truncated { found: 0, .. })
    ));
}

#[test]
fn wrong_aad_is_rejected() {
    let mut r = rng(4);
    let key = SealKey::generate(&mut r);
    let sealed = key.seal(&secrets(&mut r, true), AAD, &mut r);
    assert_eq!(
        key.open(&sealed, b"outbox:activation:acct-7:2")
            .unwrap_err(),
        SealError::Authentication
    );
    assert_eq!(
        key.open(&sealed, b"").unwrap_err(),
        SealError::Authentication
    );
    assert_eq!(
        key.open_optional(&sealed, b"other").unwrap_err(),
        SealError::Authentication
    );
}

#[test]
fn wrong_key_is_rejected() {
    let mut r = rng(5);
    let key = SealKey::generate(&mut r);
    let other = SealKey::generate(&mut r);
    let sealed = key.seal(&secrets(&mut r, false), AAD, &mut r);
    // The payload names its key, so the error says which key it needs.
    assert_eq!(
        other.open(&sealed, AAD).unwrap_err(),
        SealError::UnknownKey { id: key.id() }
    );
    // A clone is the same key.
    assert!(key.clone().open(&sealed, AAD).is_ok());
}

#[test]
fn every_flipped_byte_is_rejected() {
    let mut r = rng(6);
    let key = SealKey::generate(&mut r);
    let sealed = key.seal(&secrets(&mut r, true), AAD, &mut r);
    for i in 0..sealed.len() {
        for bit in [0x01u8, 0x80] {
            let mut bad = sealed.clone();
            bad[i] ^= bit;
            let err = key.open(&bad, AAD).unwrap_err();
            if i == 0 {
                // Another version byte: unknown, or the first format (no key id), which
                // then fails authentication.
                assert!(
                    matches!(
                        err,
                        SealError::UnsupportedVersion { .. } | SealError::Authentication
                    ),
                    "{i}: {err:?}"
                );
            } else if (1..5).contains(&i) {
                assert!(matches!(err, SealError::UnknownKey { .. }), "{i}: {err:?}");
            } else {
                assert_eq!(err, SealError::Authentication, "byte {i}");
            }
        }
    }
}

#[test]
fn truncated_or_extended_input_is_rejected() {
    let mut r = rng(7);
    let key = SealKey::generate(&mut r);
    let sealed = key.seal(&secrets(&mut r, true), AAD, &mut r);
    for len in 0..sealed.len() {
        let err = key.open(&sealed[..len], AAD).unwrap_err();
        if len < 1 + 4 + 12 + 16 {
            assert!(matches!(err, SealError::Truncated { .. }), "{len}: {err:?}");
        } else {
            assert_eq!(err, SealError::Authentication, "{len}");
        }
    }
    let mut longer = sealed.clone();
    longer.push(0);
    assert_eq!(
        key.open(&longer, AAD).unwrap_err(),
        SealError::Authentication
    );
}

#[test]
fn unknown_versions_are_rejected() {
    let mut r = rng(8);
    let key = SealKey::generate(&mut r);
    let sealed = key.seal(&secrets(&mut r, true), AAD, &mut r);
    for version in [0u8, 3, 0xff] {
        let mut bad = sealed.clone();
        bad[0] = version;
        assert_eq!(
            key.open(&bad, AAD).unwrap_err(),
            SealError::UnsupportedVersion { version }
        );
        assert_eq!(
            key.open(&[version], AAD).unwrap_err(),
            SealError::UnsupportedVersion { version }
        );
    }
}

#[test]
fn fresh_nonce_per_seal() {
    let mut r = rng(9);
    let key = SealKey::generate(&mut r);
    let s = secrets(&mut r, true);
    let a = key.seal(&s, AAD, &mut r);
    let b = key.seal(&s, AAD, &mut r);
    assert_ne!(a, b);
    assert_ne!(a[5..17], b[5..17], "nonces differ");
    assert!(same(
        &key.open(&a, AAD).unwrap(),
        &key.open(&b, AAD).unwrap()
    ));
}

#[test]
fn layout_is_version_key_id_nonce_ciphertext_tag() {
    let key = SealKey::from_bytes(&[3; 32]).unwrap();
    let s = LinkSecrets::new(
        Token::generate(&mut rng(10)),
        Some(NumericCode::parse("123456", 6).unwrap()),
    );
    let sealed = key.seal(&s, AAD, &mut rng(11));
    // version + key id + nonce + (format byte + 43-char token + NUL + 6 digits) + tag
    assert_eq!(sealed.len(), 1 + 4 + 12 + (1 + 43 + 1 + 6) + 16);
    assert_eq!(sealed[1..5], key.id().as_bytes());
    let mut nonce = [0u8; 12];
    rand::RngCore::fill_bytes(&mut rng(11), &mut nonce);
    assert_eq!(sealed[5..17], nonce);
    let no_code = key.seal(&LinkSecrets::new(s.token.clone(), None), AAD, &mut rng(11));
    assert_eq!(no_code.len(), 1 + 4 + 12 + (1 + 43 + 1) + 16);
}

#[test]
fn sealed_bytes_do_not_contain_the_secrets() {
    let mut r = rng(12);
    let key = SealKey::generate(&mut r);
    let s = LinkSecrets::new(
        Token::generate(&mut r),
        Some(NumericCode::parse("424242", 6).unwrap()),
    );
    let sealed = key.seal(&s, AAD, &mut r);
    let token = s.token.expose_secret().as_bytes();
    for needle in [token, &token[..8], &token[20..28], b"424242".as_slice()] {
        assert!(
            !sealed.windows(needle.len()).any(|w| w == needle),
            "secret found in sealed bytes"
        );
    }
}

#[test]
fn key_length_rules() {
    for len in [0usize, 16, 31, 33, 64] {
        assert_eq!(
            SealKey::from_bytes(&vec![9; len]).unwrap_err(),
            SealError::InvalidKeyLength {
                expected: 32,
                found: len
            }
        );
    }
    assert!(SealKey::from_bytes(&[9; 32]).is_ok());
    assert_eq!(SealKey::LEN, 32);
    // A generated key is 32 bytes from the rng.
    let mut raw = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rng(13), &mut raw);
    let generated = SealKey::generate(&mut rng(13));
    let imported = SealKey::from_bytes(&raw).unwrap();
    let mut r = rng(14);
    let sealed = generated.seal(&secrets(&mut r, true), AAD, &mut r);
    assert!(imported.open(&sealed, AAD).is_ok());
}

#[test]
fn debug_and_errors_are_redacted() {
    let mut r = rng(15);
    let key = SealKey::from_bytes(&[0x41; 32]).unwrap();
    let dbg = format!("{key:?} {key:#?}");
    assert_eq!(format!("{key:?}"), "SealKey([REDACTED])");
    assert!(!dbg.contains("AAAA") && !dbg.contains("4141") && !dbg.contains("65"));

    let s = LinkSecrets::new(
        Token::generate(&mut r),
        Some(NumericCode::parse("987654", 6).unwrap()),
    );
    let dbg = format!("{s:?} {s:#?}");
    assert_eq!(format!("{s:?}"), "LinkSecrets([REDACTED])");
    assert!(!dbg.contains(s.token.expose_secret()) && !dbg.contains("987654"));

    let sealed = key.seal(&s, AAD, &mut r);
    let errors = [
        key.open(&sealed, b"x").unwrap_err(),
        key.open(&sealed[..5], AAD).unwrap_err(),
        key.open(&[2], AAD).unwrap_err(),
        SealKey::from_bytes(&[0x41; 3]).unwrap_err(),
    ];
    for e in errors {
        let text = format!("{e} {e:?}");
        assert!(
            !text.contains(s.token.expose_secret()) && !text.contains("987654"),
            "{text}"
        );
        assert!(!text.contains("AAAA") && !text.contains("outbox"), "{text}");
    }
}

/// Seals an arbitrary plaintext exactly as the documented format says, with the
/// `chacha20poly1305` crate directly.
fn seal_raw(key: &[u8; 32], nonce: [u8; 12], plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
    use chacha20poly1305::aead::{AeadInPlace, KeyInit};
    use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
    let cipher = ChaCha20Poly1305::new(Key::from_slice(key));
    let mut full_aad = vec![1u8];
    full_aad.extend_from_slice(aad);
    let mut ct = plaintext.to_vec();
    let tag = cipher
        .encrypt_in_place_detached(Nonce::from_slice(&nonce), &full_aad, &mut ct)
        .unwrap();
    ct.extend_from_slice(&tag);
    let mut out = vec![1u8];
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    out
}

#[test]
fn documented_format_interoperates_and_bad_plaintexts_are_rejected() {
    let raw = [0x5a; 32];
    let key = SealKey::from_bytes(&raw).unwrap();
    let token = Token::generate(&mut rng(16));
    let t = token.expose_secret().as_bytes();
    let cat = |parts: &[&[u8]]| parts.concat();

    let good = seal_raw(&raw, [4; 12], &cat(&[b"\x01", t, b"\x000123"]), AAD);
    let opened = key.open(&good, AAD).unwrap();
    assert_eq!(opened.token.expose_secret(), token.expose_secret());
    let code = opened.code.unwrap();
    assert_eq!((code.expose_secret(), code.digits()), ("0123", 4));
    let good = seal_raw(&raw, [4; 12], &cat(&[b"\x01", t, b"\x00"]), AAD);
    assert!(key.open(&good, AAD).unwrap().code.is_none());

    for bad in [
        cat(&[]),
        cat(&[b"\x02", t, b"\x00"]),
        cat(&[b"\x01", t]),
        cat(&[b"\x01", t, b"\x00\xff\xfe\xfd\xfc"]),
    ] {
        let sealed = seal_raw(&raw, [5; 12], &bad, AAD);
        assert_eq!(key.open(&sealed, AAD).unwrap_err(), SealError::Malformed);
    }
    for bad in [
        cat(&[b"\x01", &t[..42], b"\x00"]),
        cat(&[b"\x01", t, b"\x00123"]),
        cat(&[b"\x01", t, b"\x0012345678901"]),
        cat(&[b"\x01", t, b"\x0012a4"]),
        cat(&[b"\x01", t, b"\x001234\x005678"]),
    ] {
        let sealed = seal_raw(&raw, [6; 12], &bad, AAD);
        assert!(matches!(
            key.open(&sealed, AAD).unwrap_err(),
            SealError::InvalidSecret(_)
        ));
    }
}
