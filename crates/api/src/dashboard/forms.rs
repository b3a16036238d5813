//! Form bodies (`application/x-www-form-urlencoded`) and their CSRF tokens.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use super::DashError;

/// The fields of a submitted form (the last value of a repeated field wins).
#[derive(Default)]
pub struct Form(HashMap<String, String>);

impl Form {
    pub fn parse(body: &[u8]) -> Self {
        Form(
            url::form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Refuses the form (`403`) unless its `csrf` field equals `expected`.
    pub fn check_csrf(&self, expected: &str) -> Result<(), DashError> {
        match self.get("csrf") {
            Some(sent) if same_token(sent, expected) => Ok(()),
            _ => Err(DashError::Csrf),
        }
    }
}

/// Compares two tokens by their digests, so the time taken says nothing about the token.
pub fn same_token(a: &str, b: &str) -> bool {
    !a.is_empty() && !b.is_empty() && Sha256::digest(a.as_bytes()) == Sha256::digest(b.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_needs_the_same_non_empty_token() {
        let f = Form::parse(b"csrf=abc%2Bd&x=1");
        assert_eq!(f.get("x"), Some("1"));
        assert!(f.check_csrf("abc+d").is_ok());
        assert!(matches!(f.check_csrf("abc+e"), Err(DashError::Csrf)));
        assert!(matches!(
            Form::parse(b"x=1").check_csrf("abc"),
            Err(DashError::Csrf)
        ));
        assert!(matches!(
            Form::parse(b"csrf=").check_csrf(""),
            Err(DashError::Csrf)
        ));
    }
}
