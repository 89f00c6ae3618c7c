//! Secrets and hashes: random tokens, keyed hashes of tokens (HMAC-SHA-256 with the server
//! secret, so a stolen database alone cannot be used to test guesses), and argon2id passwords.
//! Nothing here logs; callers must never log a plaintext token either.

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use hmac::{Hmac, KeyInit, Mac};
use rand::Rng;
use sha2::Sha256;

const HEX: &[u8; 16] = b"0123456789abcdef";
const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A random base62 string of `len` characters from the OS-seeded CSPRNG.
/// 43 characters carry 256 bits of entropy.
pub fn random_base62(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len).map(|_| BASE62[rng.random_range(0..BASE62.len())] as char).collect()
}

/// Random bytes from the OS-seeded CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    rand::rng().fill(&mut out[..]);
    out
}

/// The server's secret pepper, used to key every token hash. The keyed HMAC state is prepared
/// once and cloned per hash, so hashing a token costs two compressions, not four.
#[derive(Clone)]
pub struct ServerSecret(Hmac<Sha256>);

impl std::fmt::Debug for ServerSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerSecret(..)")
    }
}

impl ServerSecret {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(<Hmac<Sha256> as KeyInit>::new_from_slice(&bytes).expect("HMAC takes any key length"))
    }

    /// Hex HMAC-SHA-256 of `token` under this secret, with a domain label so a key hash can never
    /// be confused with a session hash.
    pub fn keyed_hash(&self, domain: &str, token: &str) -> String {
        let mut mac = self.0.clone();
        mac.update(domain.as_bytes());
        mac.update(b"\0");
        mac.update(token.as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut out = String::with_capacity(64);
        for b in digest.iter() {
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        }
        out
    }
}

/// argon2id hash of a password in PHC format. CPU-heavy: call from a blocking task.
/// Compares two secrets in time that does not depend on where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let hash = argon2::Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("argon2: {e}"));
    super::memory::release_thread_memory();
    hash
}

/// Checks a password against a PHC hash. CPU-heavy: call from a blocking task.
pub fn verify_password(password: &str, phc: &str) -> bool {
    let ok = argon2::Argon2::default().verify_password(password.as_bytes(), phc).is_ok();
    super::memory::release_thread_memory();
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_hash_depends_on_secret_and_domain() {
        let a = ServerSecret::new(vec![1; 32]);
        let b = ServerSecret::new(vec![2; 32]);
        assert_eq!(a.keyed_hash("key", "t"), a.keyed_hash("key", "t"));
        assert_ne!(a.keyed_hash("key", "t"), b.keyed_hash("key", "t"));
        assert_ne!(a.keyed_hash("key", "t"), a.keyed_hash("session", "t"));
        assert_eq!(a.keyed_hash("key", "t").len(), 64);
    }

    #[test]
    fn passwords_round_trip() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn random_tokens_are_base62_and_distinct() {
        let a = random_base62(43);
        assert_eq!(a.len(), 43);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, random_base62(43));
    }
}
