//! Form tokens (SPEC §10): every POST form carries one; a POST without it, or with another,
//! is a 403 page and does nothing. Signed in, the token is the session's (kept in its row).
//! Before sign-in there is no session, so the sign-in form's token is also set in a cookie of
//! its own and the two must agree (a cross-site page can set neither).

/// The pre-session cookie of the sign-in form.
pub const SIGN_IN_COOKIE: &str = "cpis_viewer_sign_in";
/// The form field.
pub const FIELD: &str = "csrf";

/// Whether `given` is the expected token, compared in constant time.
pub fn matches(expected: &str, given: Option<&str>) -> bool {
    let Some(given) = given else {
        return false;
    };
    if expected.is_empty() || expected.len() != given.len() {
        return false;
    }
    expected
        .bytes()
        .zip(given.bytes())
        .fold(0u8, |diff, (a, b)| diff | (a ^ b))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_token_matches() {
        assert!(matches("abc123", Some("abc123")));
        assert!(!matches("abc123", Some("abc124")));
        assert!(!matches("abc123", Some("abc12")));
        assert!(!matches("abc123", None));
        assert!(!matches("", Some("")));
    }
}
