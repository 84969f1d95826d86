//! Request signing of the platforms' contract (upstream-api.md, "Authentication"):
//! HMAC-SHA256 over `METHOD \n path?query \n timestamp \n nonce \n sha256(body)`.
//! The pusher signs with it, the simulator verifies with it, and the HTTP source signs
//! requests to departments' APIs that reuse the scheme: one implementation.

use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// The five-line string the signature covers.
pub fn string_to_sign(
    method: &str,
    path_and_query: &str,
    timestamp: &str,
    nonce: &str,
    body: &[u8],
) -> String {
    let body_hash = hex::encode(Sha256::digest(body));
    format!("{method}\n{path_and_query}\n{timestamp}\n{nonce}\n{body_hash}")
}

/// Lowercase hex HMAC-SHA256 of the string to sign.
pub fn signature(
    secret: &str,
    method: &str,
    path_and_query: &str,
    timestamp: &str,
    nonce: &str,
    body: &[u8],
) -> String {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(string_to_sign(method, path_and_query, timestamp, nonce, body).as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Checks a signature in constant time.
pub fn verify(
    secret: &str,
    method: &str,
    path_and_query: &str,
    timestamp: &str,
    nonce: &str,
    body: &[u8],
    sig_hex: &str,
) -> bool {
    let Ok(sig) = hex::decode(sig_hex) else {
        return false;
    };
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(string_to_sign(method, path_and_query, timestamp, nonce, body).as_bytes());
    mac.verify_slice(&sig).is_ok()
}

/// A fresh nonce: 32 random hex characters.
pub fn new_nonce() -> String {
    let bytes: [u8; 16] = rand::rng().random();
    hex::encode(bytes)
}

/// Whether a nonce has the allowed form: 16 to 64 characters of `[A-Za-z0-9-]`.
pub fn nonce_ok(nonce: &str) -> bool {
    (16..=64).contains(&nonce.len())
        && nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// The authentication headers for one request, signed now with a fresh nonce.
pub fn auth_headers(
    app_id: &str,
    secret: &str,
    method: &str,
    path_and_query: &str,
    body: &[u8],
) -> [(&'static str, String); 4] {
    let ts = chrono::Utc::now().timestamp().to_string();
    let nonce = new_nonce();
    let sig = signature(secret, method, path_and_query, &ts, &nonce, body);
    [
        ("X-App-Id", app_id.to_string()),
        ("X-Timestamp", ts),
        ("X-Nonce", nonce),
        ("X-Signature", sig),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify() {
        let s = string_to_sign(
            "GET",
            "/api/v1/summary?dataset=xzcf&source_unit=X",
            "1700000000",
            "abcdefabcdefabcd",
            b"",
        );
        assert_eq!(
            s,
            "GET\n/api/v1/summary?dataset=xzcf&source_unit=X\n1700000000\nabcdefabcdefabcd\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let sig = signature("k", "POST", "/api/v1/batches", "1", "n", b"{}");
        assert!(verify(
            "k",
            "POST",
            "/api/v1/batches",
            "1",
            "n",
            b"{}",
            &sig
        ));
        assert!(!verify(
            "k2",
            "POST",
            "/api/v1/batches",
            "1",
            "n",
            b"{}",
            &sig
        ));
        assert!(!verify(
            "k",
            "POST",
            "/api/v1/batches",
            "1",
            "n",
            b"{ }",
            &sig
        ));
        assert!(nonce_ok(&new_nonce()));
        assert!(!nonce_ok("short"));
        assert!(!nonce_ok("has_underscore_____"));
    }
}
