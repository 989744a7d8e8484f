//! `proptest` strategies for the identity values of [`crate::identity`].
//!
//! Valid-value strategies build values with the real rules (e.g. the módulo
//! 10 check digit) and then go through the public parsers, so every generated
//! value is exactly what parsing would produce.

use proptest::array::{uniform6, uniform7, uniform8, uniform9, uniform10};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{Index, select};

use crate::identity::{Cedula, Email, ForeignerCode, Landline, MemberId, MobilePhone, check_digit};

/// Re-exported so tests can compare the kind of a failed parse.
pub use crate::identity::CedulaErrorKind;

/// Upper-case ASCII letters.
const UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
/// Upper-case ASCII letters and digits.
const UPPER_ALNUM: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
/// Characters used in generated e-mail local parts (besides dots).
const LOCAL_CHARS: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-'";
/// Characters used in generated domain labels (mixed case, to exercise
/// lower-casing).
const LABEL_CHARS: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789";
/// Lower-case ASCII letters (top-level domains).
const LOWER: &str = "abcdefghijklmnopqrstuvwxyz";
/// Characters that are neither digits, separators nor whitespace, so they
/// always make a cédula invalid wherever they are inserted.
const NON_CEDULA_CHARS: &str = "aZxOl.,/+_#*ñÉ٣０";

/// The characters of `s`, for [`select`].
fn chars_of(s: &str) -> Vec<char> {
    s.chars().collect()
}

/// Strings of `len` characters drawn from `alphabet`.
fn string_of(
    alphabet: &str,
    len: std::ops::RangeInclusive<usize>,
) -> impl Strategy<Value = String> + use<> {
    vec(select(chars_of(alphabet)), len).prop_map(String::from_iter)
}

/// Renders digit values (0–9) as text.
fn digits_to_string(digits: &[u8]) -> String {
    digits.iter().map(|d| char::from(b'0' + d % 10)).collect()
}

/// Valid province codes: 1–24 and 30.
fn valid_provinces() -> Vec<u8> {
    (1..=24).chain([30]).collect()
}

/// Invalid province codes: 0, 25–29 and 31–99.
fn invalid_provinces() -> Vec<u8> {
    std::iter::once(0).chain(25..=29).chain(31..=99).collect()
}

/// The ten digit values of a valid cédula.
fn valid_cedula_digits() -> impl Strategy<Value = [u8; 10]> {
    (select(valid_provinces()), 0u8..=6, uniform6(0u8..=9)).prop_map(
        |(province, third, [a, b, c, d, e, f])| {
            let nine = [province / 10, province % 10, third, a, b, c, d, e, f];
            let check = check_digit(&nine);
            [province / 10, province % 10, third, a, b, c, d, e, f, check]
        },
    )
}

/// A valid [`Cedula`], uniform over the valid provinces (01–24, 30), the valid
/// third digits (0–6) and the remaining digits, with the correct check digit.
pub fn valid_cedula() -> impl Strategy<Value = Cedula> {
    valid_cedula_digits().prop_filter_map("valid cédula", |digits| {
        digits_to_string(&digits).parse().ok()
    })
}

/// A valid cédula as a user might type it — random spaces and hyphens between
/// the digits and surrounding whitespace — paired with the [`Cedula`] it must
/// parse to.
pub fn valid_cedula_text() -> impl Strategy<Value = (String, Cedula)> {
    let separator = select(vec!["", "", "", " ", "-", " - ", "--"]);
    let whitespace = select(vec!["", "", " ", "  ", "\t", "\n ", " \r\n"]);
    (
        valid_cedula(),
        uniform10(separator),
        whitespace.clone(),
        whitespace,
    )
        .prop_map(|(cedula, separators, leading, trailing)| {
            let mut text = String::from(leading);
            for (digit, separator) in cedula.as_str().chars().zip(separators) {
                text.push(digit);
                text.push_str(separator);
            }
            text.push_str(trailing);
            (text, cedula)
        })
}

/// An invalid cédula text paired with the kind of error parsing must report.
/// Every [`CedulaErrorKind`] is generated.
pub fn invalid_cedula() -> impl Strategy<Value = (String, CedulaErrorKind)> {
    let empty = select(vec!["", " ", "\t", " \n ", "-", " - - "])
        .prop_map(|text| (text.to_owned(), CedulaErrorKind::Empty));

    let invalid_character = (
        valid_cedula(),
        0usize..=10,
        select(chars_of(NON_CEDULA_CHARS)),
    )
        .prop_map(|(cedula, position, character)| {
            let digits = cedula.as_str();
            let text = digits
                .chars()
                .take(position)
                .chain(std::iter::once(character))
                .chain(digits.chars().skip(position))
                .collect();
            (text, CedulaErrorKind::InvalidCharacter)
        });

    let wrong_length = prop_oneof![vec(0u8..=9, 1..=9), vec(0u8..=9, 11..=20)]
        .prop_map(|digits| (digits_to_string(&digits), CedulaErrorKind::WrongLength));

    let invalid_province =
        (select(invalid_provinces()), uniform8(0u8..=9)).prop_map(|(province, rest)| {
            let text = format!("{province:02}{}", digits_to_string(&rest));
            (text, CedulaErrorKind::InvalidProvince)
        });

    let invalid_third_digit = (select(valid_provinces()), 7u8..=9, uniform7(0u8..=9)).prop_map(
        |(province, third, rest)| {
            let text = format!("{province:02}{third}{}", digits_to_string(&rest));
            (text, CedulaErrorKind::InvalidThirdDigit)
        },
    );

    let check_digit_mismatch = (valid_cedula_digits(), 1u8..=9).prop_map(|(digits, offset)| {
        let [d0, d1, d2, d3, d4, d5, d6, d7, d8, check] = digits;
        let wrong = (check + offset) % 10;
        let text = digits_to_string(&[d0, d1, d2, d3, d4, d5, d6, d7, d8, wrong]);
        (text, CedulaErrorKind::CheckDigitMismatch)
    });

    prop_oneof![
        empty,
        invalid_character,
        wrong_length,
        invalid_province,
        invalid_third_digit,
        check_digit_mismatch,
    ]
}

/// A valid [`ForeignerCode`]: 3–20 upper-case ASCII letters and digits with at
/// least one letter.
pub fn foreigner_code() -> impl Strategy<Value = ForeignerCode> {
    (
        string_of(UPPER_ALNUM, 2..=19),
        select(chars_of(UPPER)),
        any::<Index>(),
    )
        .prop_filter_map("valid foreigner code", |(rest, letter, index)| {
            let at = index.index(rest.len() + 1);
            let text: String = rest
                .chars()
                .take(at)
                .chain(std::iter::once(letter))
                .chain(rest.chars().skip(at))
                .collect();
            text.parse().ok()
        })
}

/// A valid [`MemberId`]: a cédula or a foreigner code, half and half.
pub fn member_id() -> impl Strategy<Value = MemberId> {
    prop_oneof![
        valid_cedula().prop_map(MemberId::from),
        foreigner_code().prop_map(MemberId::from),
    ]
}

/// A valid [`Email`]: dot-separated ASCII atoms in the local part (mixed
/// case), one or two mixed-case labels and a lower-case top-level domain.
pub fn email() -> impl Strategy<Value = Email> {
    let local = vec(string_of(LOCAL_CHARS, 1..=10), 1..=3).prop_map(|atoms| atoms.join("."));
    let labels = vec(string_of(LABEL_CHARS, 1..=12), 1..=2);
    let tld = string_of(LOWER, 2..=6);
    (local, labels, tld).prop_filter_map("valid e-mail", |(local, labels, tld)| {
        format!("{local}@{}.{tld}", labels.join(".")).parse().ok()
    })
}

/// A valid [`MobilePhone`].
pub fn mobile_phone() -> impl Strategy<Value = MobilePhone> {
    uniform8(0u8..=9).prop_filter_map("valid mobile phone", |rest| {
        format!("09{}", digits_to_string(&rest)).parse().ok()
    })
}

/// A valid mobile phone as a user might type it — national or international
/// prefix, separators between digits, surrounding whitespace — paired with
/// the [`MobilePhone`] it must parse to.
pub fn mobile_phone_text() -> impl Strategy<Value = (String, MobilePhone)> {
    let prefix = select(vec![
        "0", "0", "(0", "+593", "+593 ", "+593-", "(+593) ", "593", "593 ", "00593", "00 593 ",
    ]);
    let separator = select(vec!["", "", "", " ", "-", ".", ") "]);
    let whitespace = select(vec!["", "", " ", "\t"]);
    (
        mobile_phone(),
        prefix,
        uniform9(separator),
        whitespace.clone(),
        whitespace,
    )
        .prop_map(|(phone, prefix, separators, leading, trailing)| {
            let mut text = format!("{leading}{prefix}");
            let nsn = phone.as_e164().chars().skip(4);
            for (digit, separator) in nsn.zip(separators) {
                text.push(digit);
                text.push_str(separator);
            }
            text.push_str(trailing);
            (text, phone)
        })
}

/// A valid [`Landline`]: area code 2–7 and a 7-digit subscriber number whose
/// first digit is 2–7.
pub fn landline() -> impl Strategy<Value = Landline> {
    (2u8..=7, 2u8..=7, uniform6(0u8..=9)).prop_filter_map(
        "valid landline",
        |(area, first, rest)| {
            format!("0{area}{first}{}", digits_to_string(&rest))
                .parse()
                .ok()
        },
    )
}
