//! API keys: `sk_live_` (private) or `pk_live_` (public) and 32 random bytes in base64url.
//! Only a SHA-256 of a key is stored; a short prefix is kept for people to recognise it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use enconvert_domain::request::KeyKind;
use sha2::{Digest, Sha256};

/// A new key of `kind`: the secret (shown once) and its hash.
pub fn generate(kind: KeyKind) -> (String, Vec<u8>) {
    let bytes: [u8; 32] = rand::random();
    let key = format!("{}{}", kind.prefix(), URL_SAFE_NO_PAD.encode(bytes));
    let hash = hash(&key);
    (key, hash)
}

pub fn hash(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

/// The part of a key that may be shown: its kind prefix and four characters.
pub fn display_prefix(key: &str) -> String {
    key.chars().take(12).collect()
}

/// The kind a key's text claims, if it looks like a key at all.
pub fn kind_of(key: &str) -> Option<KeyKind> {
    if key.len() < 20 || key.len() > 200 {
        None
    } else if key.starts_with("sk_live_") {
        Some(KeyKind::Private)
    } else if key.starts_with("pk_live_") {
        Some(KeyKind::Public)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_long_random_and_hashed() {
        let (a, ha) = generate(KeyKind::Private);
        let (b, _) = generate(KeyKind::Public);
        assert!(a.starts_with("sk_live_") && b.starts_with("pk_live_"));
        assert!(a.len() >= 8 + 43, "256 bits of randomness");
        assert_eq!(hash(&a), ha);
        assert_ne!(generate(KeyKind::Private).0, a);
        assert_eq!(display_prefix(&a).len(), 12);
        assert_eq!(kind_of(&a), Some(KeyKind::Private));
        assert_eq!(kind_of("sk_live_short"), None);
    }
}
