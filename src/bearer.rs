//! `Authorization: Bearer <token>` checks for endpoints that machines call (the metrics scrape).

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Whether an `Authorization` header value carries `expected` as its bearer token. Both tokens
/// are hashed before the comparison so neither their contents nor their lengths show in the time
/// it takes.
pub fn matches(header: Option<&str>, expected: &str) -> bool {
    let presented = header
        .map(str::trim)
        .and_then(|h| h.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .unwrap_or_default();
    let a = Sha256::digest(presented.as_bytes());
    let b = Sha256::digest(expected.as_bytes());
    let same: bool = a.as_slice().ct_eq(b.as_slice()).into();
    same && !presented.is_empty() && !expected.is_empty()
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn only_the_exact_bearer_token_matches() {
        let token = "scrape-7f3a9c";
        assert!(matches(Some("Bearer scrape-7f3a9c"), token));
        assert!(matches(Some("bearer  scrape-7f3a9c "), token));
        for wrong in [
            None,
            Some(""),
            Some("Bearer"),
            Some("Bearer "),
            Some("scrape-7f3a9c"),
            Some("Basic scrape-7f3a9c"),
            Some("Bearer scrape-7f3a9"),
            Some("Bearer scrape-7f3a9cX"),
            Some("Bearer SCRAPE-7F3A9C"),
        ] {
            assert!(!matches(wrong, token), "{wrong:?}");
        }
        assert!(
            !matches(Some("Bearer "), ""),
            "an empty token never matches"
        );
    }
}
