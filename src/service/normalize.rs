//! Normalisation of knowledge answers before hashing and comparing.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Normalises a knowledge answer (security question, image name, employer): trims, folds
/// case, removes accents (NFD, combining marks dropped: "Pérez" → "perez", "Ñuño" → "nuno")
/// and collapses inner whitespace.
///
/// ```
/// use afiliado::service::normalize_answer;
/// assert_eq!(normalize_answer("  Policía   Nacional "), "policia nacional");
/// assert_eq!(normalize_answer("QUITO"), normalize_answer("quíto"));
/// ```
pub fn normalize_answer(answer: &str) -> String {
    let folded: String = answer
        .nfd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect();
    folded.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::normalize_answer;

    #[test]
    fn folds_case_accents_and_spaces() {
        assert_eq!(
            normalize_answer("  José   María\tPÉREZ "),
            "jose maria perez"
        );
        assert_eq!(normalize_answer("Ñandú"), "nandu");
        assert_eq!(normalize_answer(""), "");
        assert_ne!(normalize_answer("quito"), normalize_answer("quitos"));
    }
}
