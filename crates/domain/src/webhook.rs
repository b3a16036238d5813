//! Webhook delivery rules with no I/O: Standard Webhooks signing, which answers count as
//! delivered, which are retried, and when.
//!
//! Signing follows <https://www.standardwebhooks.com/>: the signed content is
//! `{webhook-id}.{webhook-timestamp}.{body}`, the key is the base64-decoded part of a
//! `whsec_<base64>` secret, the signature is `v1,<base64 of HMAC-SHA256>`, and several
//! signatures (during a secret rotation) are separated by spaces.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The prefix of every signing secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// Random bytes in a new secret (the standard asks for 24 to 64).
pub const SECRET_BYTES: usize = 32;

/// The default retry schedule, seconds after each failed attempt: it reaches 6 hours.
pub const DEFAULT_RETRY_SCHEDULE: &str = "5,30,120,600,1800,7200,21600";

/// A secret that is not `whsec_` followed by base64 of at least one byte.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a webhook secret is `whsec_` followed by base64")]
pub struct BadSecret;

/// A secret made of `bytes` (which the caller draws from a secure random source).
pub fn format_secret(bytes: &[u8]) -> String {
    format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes))
}

/// The HMAC key inside a `whsec_` secret.
pub fn secret_key(secret: &str) -> Result<Vec<u8>, BadSecret> {
    let b64 = secret.strip_prefix(SECRET_PREFIX).ok_or(BadSecret)?;
    let key = STANDARD.decode(b64).map_err(|_| BadSecret)?;
    if key.is_empty() {
        return Err(BadSecret);
    }
    Ok(key)
}

/// One signature: `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`.
pub fn sign(
    secret: &str,
    webhook_id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<String, BadSecret> {
    let key = secret_key(secret)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|_| BadSecret)?;
    mac.update(webhook_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// The `webhook-signature` header: one signature per secret, space-separated.
pub fn signature_header(
    secrets: &[String],
    webhook_id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<String, BadSecret> {
    let sigs = secrets
        .iter()
        .map(|s| sign(s, webhook_id, timestamp, body))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(sigs.join(" "))
}

/// True when any `v1` signature in `header` was made with `secret` (a receiver's check,
/// without the timestamp tolerance; used by tests and the documentation).
pub fn verify(secret: &str, webhook_id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
    let Ok(expected) = sign(secret, webhook_id, timestamp, body) else {
        return false;
    };
    header
        .split(' ')
        .any(|s| constant_time_eq(s.as_bytes(), expected.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What one attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// 200, 201, 202 or 204.
    Delivered,
    /// Worth trying again later: connection errors, timeouts, 408, 429, 5xx.
    Retry,
    /// Any other answer (other 4xx, 3xx, 1xx, other 2xx): not retried.
    GiveUp,
}

/// The verdict on an HTTP answer. Only the four success codes of the seed count as
/// delivered; a redirect is a failure (redirects are never followed).
pub fn verdict(status: u16) -> Verdict {
    match status {
        200 | 201 | 202 | 204 => Verdict::Delivered,
        408 | 429 | 500..=599 => Verdict::Retry,
        _ => Verdict::GiveUp,
    }
}

/// Parses a retry schedule: comma-separated whole seconds, each above 0.
pub fn parse_retry_schedule(text: &str) -> Result<Vec<Duration>, String> {
    text.split(',')
        .map(str::trim)
        .map(|s| match s.parse::<u64>() {
            Ok(0) => Err("0 is not a delay; every delay is at least 1 second".to_string()),
            Ok(n) => Ok(Duration::from_secs(n)),
            Err(_) => Err(format!("`{s}` is not a whole number of seconds")),
        })
        .collect()
}

/// The `Retry-After` header in seconds (the HTTP-date form is not honoured).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// The longest `Retry-After` honoured when the schedule's longest delay is shorter.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(6 * 3600);

/// When to try again after failed attempt number `attempt` (1-based), or `None` when the
/// schedule is used up. `jitter` in `[0, 1)` adds up to 20 % to the scheduled delay, so
/// receivers that failed together are not retried together. A `Retry-After` longer than
/// the delay is honoured, up to 6 hours or the schedule's longest delay if that is longer.
pub fn retry_delay(
    schedule: &[Duration],
    attempt: u32,
    retry_after: Option<Duration>,
    jitter: f64,
) -> Option<Duration> {
    let index = usize::try_from(attempt).ok()?.checked_sub(1)?;
    let base = *schedule.get(index)?;
    let jitter = jitter.clamp(0.0, 1.0);
    let delay = base + base.mul_f64(0.2 * jitter);
    let cap = schedule
        .iter()
        .max()
        .copied()
        .unwrap_or(base)
        .max(MAX_RETRY_AFTER);
    Some(match retry_after {
        Some(ra) if ra > delay => ra.min(cap),
        _ => delay,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Both vectors were computed independently with Python's `hmac` and `base64` modules:
    //   key = base64.b64decode(secret[6:])
    //   "v1," + base64.b64encode(hmac.new(key, f"{id}.{ts}.{body}".encode(), sha256).digest())
    #[test]
    fn signs_the_standard_webhooks_reference_vector() {
        let sig = sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        )
        .expect("valid secret");
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn signs_our_own_vector() {
        let bytes: Vec<u8> = (0u8..32).collect();
        let secret = format_secret(&bytes);
        assert_eq!(secret, "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=");
        let body = br#"{"job_id":"12345","status":"success","batch_id":"550e8400-e29b-41d4-a716-446655440000"}"#;
        let id = "01890a5d-ac96-774b-bcce-b302099a8057";
        let sig = sign(&secret, id, 1767225600, body).expect("valid secret");
        assert_eq!(sig, "v1,vw4Q0Rb5N2cW4yKoMoXd/6mMEVQ7Lyrofycg+7VHHpA=");
        assert!(verify(&secret, id, 1767225600, body, &sig));
        assert!(
            !verify(&secret, id, 1767225601, body, &sig),
            "timestamp is signed"
        );
        assert!(
            !verify(&secret, "other", 1767225600, body, &sig),
            "id is signed"
        );
        assert!(
            !verify(&secret, id, 1767225600, b"{}", &sig),
            "body is signed"
        );
    }

    #[test]
    fn rotation_signs_with_every_live_secret() {
        let old = format_secret(&[1; 24]);
        let new = format_secret(&[2; 32]);
        let header =
            signature_header(&[new.clone(), old.clone()], "id", 1, b"{}").expect("valid secrets");
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert!(parts.iter().all(|p| p.starts_with("v1,")));
        assert!(verify(&old, "id", 1, b"{}", &header));
        assert!(verify(&new, "id", 1, b"{}", &header));
        assert!(!verify(&format_secret(&[3; 32]), "id", 1, b"{}", &header));
    }

    #[test]
    fn malformed_secrets_are_refused() {
        assert_eq!(secret_key("AAAA"), Err(BadSecret));
        assert_eq!(secret_key("whsec_"), Err(BadSecret));
        assert_eq!(secret_key("whsec_!!!"), Err(BadSecret));
        assert!(sign("nope", "id", 1, b"").is_err());
    }

    #[test]
    fn only_the_four_success_codes_deliver() {
        for s in [200, 201, 202, 204] {
            assert_eq!(verdict(s), Verdict::Delivered, "{s}");
        }
        for s in [408, 429, 500, 502, 503, 504, 599] {
            assert_eq!(verdict(s), Verdict::Retry, "{s}");
        }
        for s in [203, 206, 301, 302, 307, 308, 400, 401, 403, 404, 410, 422] {
            assert_eq!(verdict(s), Verdict::GiveUp, "{s}");
        }
    }

    #[test]
    fn schedules_parse_and_reach_six_hours_by_default() {
        let d = parse_retry_schedule(DEFAULT_RETRY_SCHEDULE).expect("default parses");
        assert_eq!(d.len(), 7);
        assert_eq!(d.last().copied(), Some(Duration::from_secs(6 * 3600)));
        assert_eq!(
            parse_retry_schedule("1, 2,3").expect("parses"),
            vec![
                Duration::from_secs(1),
                Duration::from_secs(2),
                Duration::from_secs(3)
            ]
        );
        assert!(parse_retry_schedule("1,x").is_err());
        assert!(parse_retry_schedule("0").is_err());
        assert!(parse_retry_schedule("").is_err());
    }

    #[test]
    fn delays_follow_the_schedule_with_jitter_and_retry_after() {
        let s = parse_retry_schedule("5,30,120").expect("parses");
        assert_eq!(retry_delay(&s, 1, None, 0.0), Some(Duration::from_secs(5)));
        assert_eq!(retry_delay(&s, 2, None, 0.0), Some(Duration::from_secs(30)));
        assert_eq!(
            retry_delay(&s, 3, None, 0.5),
            Some(Duration::from_secs(132))
        );
        assert_eq!(retry_delay(&s, 4, None, 0.0), None, "schedule used up");
        assert_eq!(retry_delay(&s, 0, None, 0.0), None);
        let jittered = retry_delay(&s, 2, None, 0.999).expect("scheduled");
        assert!(jittered >= Duration::from_secs(30) && jittered < Duration::from_secs(36));
        // Retry-After longer than the delay wins, capped at 6 hours (or the longest delay).
        assert_eq!(
            retry_delay(&s, 1, Some(Duration::from_secs(60)), 0.0),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            retry_delay(&s, 1, Some(Duration::from_secs(999_999)), 0.0),
            Some(MAX_RETRY_AFTER)
        );
        let long = parse_retry_schedule("5,86400").expect("parses");
        assert_eq!(
            retry_delay(&long, 1, Some(Duration::from_secs(999_999)), 0.0),
            Some(Duration::from_secs(86400))
        );
        // A shorter Retry-After never brings a retry forward.
        assert_eq!(
            retry_delay(&s, 2, Some(Duration::from_secs(1)), 0.0),
            Some(Duration::from_secs(30))
        );
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
