//! `proptest` strategies for passwords and password policies.
//!
//! * [`password_policy`] generates random policies that pass
//!   [`PasswordPolicy::validate`].
//! * [`passing_password`] generates passwords that pass
//!   [`PasswordPolicy::check`] with an empty [`PasswordContext`].
//! * [`failing_password`] generates a password together with a rule of the
//!   policy that it violates.
//!
//! Generated passwords mix ASCII and non-ASCII letters, digits, symbols,
//! spaces and emoji (when the policy's alphabet allows them) and are shuffled,
//! so required characters can appear anywhere.
//!
//! ```
//! use afiliado::password::{PasswordContext, PasswordPolicy};
//! use afiliado::strategies::password::passing_password;
//! use proptest::strategy::{Strategy, ValueTree};
//! use proptest::test_runner::TestRunner;
//!
//! let policy = PasswordPolicy::isspol();
//! let mut runner = TestRunner::deterministic();
//! let password = passing_password(&policy)
//!     .new_tree(&mut runner)
//!     .map_err(|e| e.to_string())?
//!     .current();
//! assert!(policy.check(&password, &PasswordContext::new()).is_ok());
//! # Ok::<(), String>(())
//! ```
//!
//! [`PasswordContext`]: crate::password::PasswordContext

use std::ops::RangeInclusive;

use proptest::prelude::*;
use proptest::sample::{Index, select};

use crate::password::{
    Alphabet, Password, PasswordPolicy, PasswordRule, common_passwords, is_common_password,
};

/// Longest stretch above the minimum length that generated passwords use.
const LENGTH_SPREAD: usize = 32;

/// Character classes of the policy rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Lower,
    Upper,
    Letter,
    Digit,
    Symbol,
}

impl Class {
    fn contains(self, c: char) -> bool {
        match self {
            Self::Lower => c.is_lowercase(),
            Self::Upper => c.is_uppercase(),
            Self::Letter => c.is_alphabetic(),
            Self::Digit => c.is_numeric(),
            Self::Symbol => !c.is_alphanumeric(),
        }
    }

    /// The rule a password without any character of this class violates.
    fn missing_rule(self) -> PasswordRule {
        match self {
            Self::Lower => PasswordRule::MissingLowercase,
            Self::Upper => PasswordRule::MissingUppercase,
            Self::Letter => PasswordRule::MissingLetter,
            Self::Digit => PasswordRule::MissingDigit,
            Self::Symbol => PasswordRule::MissingSymbol,
        }
    }
}

/// Non-ASCII characters mixed into passwords when the alphabet is `Any`.
const NON_ASCII: &[char] = &[
    'ñ', 'á', 'é', 'í', 'ó', 'ú', 'ü', 'ß', 'ж', 'ç', // lowercase
    'Ñ', 'Á', 'É', 'Í', 'Ó', 'Ú', 'Ü', 'Ж', 'Ç', // uppercase
    '中', 'あ', '한', // caseless letters
    '٣', '७', // non-ASCII decimal digits
];

/// Symbols (neither letter nor digit) used when the alphabet is `Any`.
const SYMBOLS: &[char] = &[
    ' ', '!', '@', '#', '$', '%', '^', '&', '*', '(', ')', '-', '_', '=', '+', '[', ']', '{', '}',
    ';', ':', ',', '.', '?', '/', '~', '¿', '¡', '€', '😀',
];

/// Characters outside [`Alphabet::AsciiAlphanumeric`].
const NOT_ASCII_ALPHANUMERIC: &[char] =
    &['ñ', 'Ñ', 'á', 'é', ' ', '!', '@', '-', '_', '.', '😀', '中'];

/// Suffixes appended to common passwords (the common check ignores them).
const COMMON_SUFFIXES: &[&str] = &["", "", "1", "12", "123", "1234", "!", "1!", "2024", "*"];

/// Every character the policy's alphabet allows that generators may use.
fn alphabet_pool(alphabet: Alphabet) -> Vec<char> {
    let mut pool: Vec<char> = ('a'..='z').chain('A'..='Z').chain('0'..='9').collect();
    if alphabet == Alphabet::Any {
        pool.extend_from_slice(NON_ASCII);
        pool.extend_from_slice(SYMBOLS);
    }
    pool.retain(|&c| alphabet.allows(c));
    pool
}

/// The classes a policy requires, one character each (a required letter is
/// implied by a required lowercase or uppercase letter).
fn required_classes(policy: &PasswordPolicy) -> Vec<Class> {
    let mut classes = Vec::new();
    if policy.require_lowercase {
        classes.push(Class::Lower);
    }
    if policy.require_uppercase {
        classes.push(Class::Upper);
    }
    if policy.require_letter && !policy.require_lowercase && !policy.require_uppercase {
        classes.push(Class::Letter);
    }
    if policy.require_digit {
        classes.push(Class::Digit);
    }
    if policy.require_symbol {
        classes.push(Class::Symbol);
    }
    classes
}

/// Ingredients of a password meeting the composition rules of `policy`
/// while containing no character of `exclude`: one pool per required class
/// (classes that cannot be met without `exclude` are dropped) and a filler
/// pool.
struct Recipe {
    required: Vec<Vec<char>>,
    filler: Vec<char>,
}

impl Recipe {
    fn new(policy: &PasswordPolicy, exclude: Option<Class>) -> Self {
        let allowed = |c: &char| exclude.is_none_or(|class| !class.contains(*c));
        let mut filler: Vec<char> = alphabet_pool(policy.alphabet)
            .into_iter()
            .filter(allowed)
            .collect();
        if filler.is_empty() {
            filler.push('x');
        }
        let required = required_classes(policy)
            .into_iter()
            .map(|class| {
                filler
                    .iter()
                    .copied()
                    .filter(|&c| class.contains(c))
                    .collect::<Vec<char>>()
            })
            .filter(|pool| !pool.is_empty())
            .collect();
        Self { required, filler }
    }

    /// Length range for a password meant to satisfy the length rules.
    fn lengths(&self, policy: &PasswordPolicy) -> RangeInclusive<usize> {
        let lo = policy.min_length.max(self.required.len());
        let hi = policy
            .max_length
            .min(lo.saturating_add(LENGTH_SPREAD))
            .max(lo);
        lo..=hi
    }

    /// Shuffled characters: one from each required pool (as far as `len`
    /// allows), the rest from the filler pool.
    fn chars(self, lengths: RangeInclusive<usize>) -> impl Strategy<Value = Vec<char>> {
        let Self { required, filler } = self;
        lengths
            .prop_flat_map(move |len| {
                let picks: Vec<BoxedStrategy<char>> = required
                    .iter()
                    .take(len)
                    .map(|pool| select(pool.clone()).boxed())
                    .collect();
                let rest = len.saturating_sub(picks.len());
                (
                    picks,
                    proptest::collection::vec(select(filler.clone()), rest),
                )
            })
            .prop_map(|(mut picks, rest)| {
                picks.extend(rest);
                picks
            })
            .prop_shuffle()
    }
}

/// Passwords that pass `policy.check(.., &PasswordContext::new())`.
///
/// Lengths range from the minimum (or the number of required classes, if
/// larger) to at most 32 characters above it, capped by the maximum. Every
/// required class is present; all characters belong to the alphabet. The
/// rare random string that hits the common-password list is filtered out.
/// `policy` must be valid ([`PasswordPolicy::validate`]); for an invalid one
/// the generated passwords may fail.
pub fn passing_password(policy: &PasswordPolicy) -> impl Strategy<Value = Password> + use<> {
    let reject_common = policy.reject_common;
    let recipe = Recipe::new(policy, None);
    let lengths = recipe.lengths(policy);
    recipe
        .chars(lengths)
        .prop_map(|chars| Password::new(chars.into_iter().collect::<String>()))
        .prop_filter("hit the common-password list", move |password| {
            !(reject_common && is_common_password(password))
        })
}

/// A password and a rule of `policy` that it violates when checked with an
/// empty [`PasswordContext`](crate::password::PasswordContext).
///
/// The rule is chosen among those the policy enforces: `TooShort`, `TooLong`,
/// the `Missing*` rule of each `require_*` flag, `DisallowedCharacter` for a
/// restricted alphabet and `Common` when `reject_common` is set (and a list
/// entry fits in `max_length`). `ContainsIdentifier` needs a context and is
/// never chosen. The password is built to satisfy the other rules where
/// possible, but may violate more than the returned one (e.g. a too-short
/// password may also lack a required class); the returned rule is always
/// among those `check` reports. `policy` must be valid.
pub fn failing_password(
    policy: &PasswordPolicy,
) -> impl Strategy<Value = (Password, PasswordRule)> + use<> {
    let policy = policy.clone();
    select(enforced_rules(&policy))
        .prop_flat_map(move |rule| (violating(&policy, rule), Just(rule)))
        .prop_map(|(text, rule)| (Password::new(text), rule))
}

/// The rules `failing_password` can violate for `policy`.
fn enforced_rules(policy: &PasswordPolicy) -> Vec<PasswordRule> {
    let mut rules = Vec::new();
    if policy.min_length > 0 {
        rules.push(PasswordRule::TooShort {
            min: policy.min_length,
        });
    }
    if policy.max_length < usize::MAX {
        rules.push(PasswordRule::TooLong {
            max: policy.max_length,
        });
    }
    let flags = [
        (policy.require_lowercase, Class::Lower),
        (policy.require_uppercase, Class::Upper),
        (policy.require_letter, Class::Letter),
        (policy.require_digit, Class::Digit),
        (policy.require_symbol, Class::Symbol),
    ];
    rules.extend(
        flags
            .into_iter()
            .filter(|(required, _)| *required)
            .map(|(_, class)| class.missing_rule()),
    );
    if policy.alphabet != Alphabet::Any {
        rules.push(PasswordRule::DisallowedCharacter);
    }
    if policy.reject_common && common_fitting(policy.max_length).next().is_some() {
        rules.push(PasswordRule::Common);
    }
    if rules.is_empty() {
        // Only reachable for absurd policies (min 0 and max usize::MAX).
        rules.push(PasswordRule::TooShort { min: 0 });
    }
    rules
}

/// Common-list entries that fit in `max_length` characters.
fn common_fitting(max_length: usize) -> impl Iterator<Item = &'static str> {
    common_passwords().filter(move |entry| entry.chars().count() <= max_length)
}

/// Passwords violating `rule` under `policy`.
fn violating(policy: &PasswordPolicy, rule: PasswordRule) -> BoxedStrategy<String> {
    let collect = |chars: Vec<char>| chars.into_iter().collect::<String>();
    match rule {
        PasswordRule::TooShort { min } => {
            let recipe = Recipe::new(policy, None);
            recipe
                .chars(0..=min.saturating_sub(1))
                .prop_map(collect)
                .boxed()
        }
        PasswordRule::TooLong { max } => {
            let lo = max.saturating_add(1);
            Recipe::new(policy, None)
                .chars(lo..=lo.saturating_add(LENGTH_SPREAD))
                .prop_map(collect)
                .boxed()
        }
        PasswordRule::MissingLowercase => missing(policy, Class::Lower),
        PasswordRule::MissingUppercase => missing(policy, Class::Upper),
        PasswordRule::MissingLetter => missing(policy, Class::Letter),
        PasswordRule::MissingDigit => missing(policy, Class::Digit),
        PasswordRule::MissingSymbol => missing(policy, Class::Symbol),
        PasswordRule::DisallowedCharacter => {
            let max = policy.max_length;
            let recipe = Recipe::new(policy, None);
            let lengths = recipe.lengths(policy);
            let outside: Vec<char> = NOT_ASCII_ALPHANUMERIC
                .iter()
                .copied()
                .filter(|&c| !policy.alphabet.allows(c))
                .collect();
            let outside = if outside.is_empty() {
                vec!['\u{0}']
            } else {
                outside
            };
            (recipe.chars(lengths), any::<Index>(), select(outside))
                .prop_map(move |(mut chars, index, bad)| {
                    let len = chars.len();
                    if len < max {
                        chars.insert(index.index(len + 1), bad);
                    } else if let Some(slot) = chars.get_mut(index.index(len.max(1))) {
                        *slot = bad;
                    } else {
                        chars.push(bad);
                    }
                    collect(chars)
                })
                .boxed()
        }
        PasswordRule::Common => {
            let max = policy.max_length;
            let entries: Vec<&'static str> = common_fitting(max).collect();
            let entries = if entries.is_empty() {
                vec!["123456"]
            } else {
                entries
            };
            let alphabet = policy.alphabet;
            let suffixes: Vec<&'static str> = COMMON_SUFFIXES
                .iter()
                .copied()
                .filter(|suffix| suffix.chars().all(|c| alphabet.allows(c)))
                .collect();
            (select(entries), 0..3_u8, select(suffixes))
                .prop_map(move |(entry, case, suffix)| {
                    let mut text = match case {
                        0 => entry.to_owned(),
                        1 => entry.to_uppercase(),
                        _ => capitalize(entry),
                    };
                    let len = entry.chars().count();
                    if len >= 6 && len + suffix.chars().count() <= max {
                        text.push_str(suffix);
                    }
                    text
                })
                .boxed()
        }
        // ContainsIdentifier (needs a context) and future rules: a password
        // that only violates the length rule, which every policy has.
        _ => Recipe::new(policy, None)
            .chars(0..=policy.min_length.saturating_sub(1))
            .prop_map(collect)
            .boxed(),
    }
}

/// Passwords meeting every other composition rule but lacking `class`.
fn missing(policy: &PasswordPolicy, class: Class) -> BoxedStrategy<String> {
    let recipe = Recipe::new(policy, Some(class));
    let lengths = recipe.lengths(policy);
    recipe
        .chars(lengths)
        .prop_map(|chars| chars.into_iter().collect::<String>())
        .boxed()
}

/// `entry` with its first character in upper case.
fn capitalize(entry: &str) -> String {
    let mut chars = entry.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

/// Random policies that pass [`PasswordPolicy::validate`].
///
/// Minimum lengths range over 1–24, maximum lengths up to 140 characters
/// above the minimum and occasionally [`PasswordPolicy::MAX_LENGTH_LIMIT`];
/// every flag and alphabet combination is generated, except that
/// `require_symbol` is cleared for [`Alphabet::AsciiAlphanumeric`] and
/// `max_length` is raised to fit the required classes.
pub fn password_policy() -> impl Strategy<Value = PasswordPolicy> {
    let alphabet = prop_oneof![Just(Alphabet::Any), Just(Alphabet::AsciiAlphanumeric)];
    let spread = prop_oneof![
        4 => 0_usize..=140,
        1 => Just(PasswordPolicy::MAX_LENGTH_LIMIT),
    ];
    (1_usize..=24, spread, alphabet, any::<[bool; 7]>()).prop_map(
        |(min_length, spread, alphabet, flags)| {
            let [lower, upper, letter, digit, symbol, identifiers, common] = flags;
            let mut policy = PasswordPolicy::recommended();
            policy.min_length = min_length;
            policy.require_lowercase = lower;
            policy.require_uppercase = upper;
            policy.require_letter = letter;
            policy.require_digit = digit;
            policy.require_symbol = symbol && alphabet.allows('!');
            policy.alphabet = alphabet;
            policy.reject_identifiers = identifiers;
            policy.reject_common = common;
            let required = required_classes(&policy).len();
            policy.max_length = min_length
                .saturating_add(spread)
                .min(PasswordPolicy::MAX_LENGTH_LIMIT)
                .max(required);
            policy
        },
    )
}
