//! PKCE (RFC 7636, S256), the CSRF `state` and the `x-request-id`, all from the host's
//! randomness so that tests can pin them.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hermes_plugin_sdk::{kind, Host, PluginError};
use sha2::{Digest, Sha256};

/// Random bytes behind the verifier: 64 bytes give the 86-character verifier MiniMax expects.
const VERIFIER_BYTES: usize = 64;
/// Random bytes behind the CSRF state.
const STATE_BYTES: usize = 16;

/// One login's PKCE pair and CSRF state.
pub struct Pkce {
    /// The secret the token poll proves possession of. Never logged.
    pub verifier: String,
    /// `base64url(SHA-256(verifier))`, sent with the code request.
    pub challenge: String,
    /// Echoed back by the server; a mismatch means the answer is not ours.
    pub state: String,
}

impl std::fmt::Debug for Pkce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkce")
            .field("verifier", &"<redacted>")
            .field("challenge", &self.challenge)
            .field("state", &self.state)
            .finish()
    }
}

impl Pkce {
    /// A fresh verifier, its challenge and a state.
    pub fn generate(host: &Host) -> Result<Self, PluginError> {
        let verifier = URL_SAFE_NO_PAD.encode(random(host, VERIFIER_BYTES)?);
        let state = URL_SAFE_NO_PAD.encode(random(host, STATE_BYTES)?);
        Ok(Self {
            challenge: challenge_for(&verifier),
            verifier,
            state,
        })
    }
}

/// The S256 challenge of a verifier.
pub fn challenge_for(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A random UUID v4 in its canonical lower-case form, for `x-request-id`.
pub fn request_id(host: &Host) -> Result<String, PluginError> {
    let bytes: [u8; 16] = random(host, 16)?
        .try_into()
        .map_err(|_| PluginError::new(kind::BUG, "random_unavailable", "short random read"))?;
    Ok(uuid_v4(bytes))
}

/// Formats 16 random bytes as a UUID, setting the version (4) and variant (RFC 4122) bits.
pub fn uuid_v4(mut b: [u8; 16]) -> String {
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// Exactly `n` bytes from the host; a short answer would silently weaken the verifier.
fn random(host: &Host, n: usize) -> Result<Vec<u8>, PluginError> {
    let bytes = host.random_bytes(n);
    if bytes.len() == n {
        Ok(bytes)
    } else {
        Err(PluginError::new(
            kind::TERMINAL,
            "random_unavailable",
            format!(
                "the host returned {} random bytes instead of {n}",
                bytes.len()
            ),
        ))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use hermes_plugin_sdk::testkit::FakeHost;

    fn is_base64url(s: &str) -> bool {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }

    #[test]
    fn pkce_lengths_and_s256_relation() {
        let host = FakeHost::new(0).sdk_host();
        let p = Pkce::generate(&host).unwrap();
        assert_eq!(p.verifier.len(), 86);
        assert_eq!(p.challenge.len(), 43);
        assert_eq!(p.state.len(), 22);
        assert!(is_base64url(&p.verifier) && is_base64url(&p.challenge) && is_base64url(&p.state));
        // Recompute independently of challenge_for.
        let digest = Sha256::digest(p.verifier.as_bytes());
        assert_eq!(
            URL_SAFE_NO_PAD.decode(&p.challenge).unwrap(),
            digest.to_vec()
        );
        assert_eq!(URL_SAFE_NO_PAD.decode(&p.verifier).unwrap().len(), 64);
    }

    #[test]
    fn s256_matches_rfc7636_appendix_b() {
        assert_eq!(
            challenge_for("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn each_login_gets_fresh_values() {
        let host = FakeHost::new(0).sdk_host();
        let a = Pkce::generate(&host).unwrap();
        let b = Pkce::generate(&host).unwrap();
        assert_ne!(a.verifier, b.verifier);
        assert_ne!(a.state, b.state);
    }

    #[test]
    fn debug_hides_the_verifier() {
        let host = FakeHost::new(0).sdk_host();
        let p = Pkce::generate(&host).unwrap();
        assert!(!format!("{p:?}").contains(&p.verifier));
    }

    #[test]
    fn x_request_id_is_uuid_v4_shape() {
        assert_eq!(uuid_v4([0xff; 16]), "ffffffff-ffff-4fff-bfff-ffffffffffff");
        assert_eq!(uuid_v4([0; 16]), "00000000-0000-4000-8000-000000000000");
        let host = FakeHost::new(0).sdk_host();
        let id = request_id(&host).unwrap();
        assert_uuid_v4(&id);
    }

    /// Shared by the login tests, which check the header on the wire.
    pub(crate) fn assert_uuid_v4(id: &str) {
        let parts: Vec<&str> = id.split('-').collect();
        let lens: Vec<usize> = parts.iter().map(|p| p.len()).collect();
        assert_eq!(lens, [8, 4, 4, 4, 12], "{id}");
        assert!(id
            .bytes()
            .all(|b| b == b'-' || b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert!(parts[2].starts_with('4'), "version nibble: {id}");
        assert!(
            matches!(parts[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'),
            "variant: {id}"
        );
    }
}
