//! Signed result links: `/v1/results/<task_id>.zip?expires=<unix seconds>&signature=<mac>`.
//!
//! The MAC is HMAC-SHA256 over `<task_id>.<expires>` with a 32-byte secret kept in the data
//! folder, base64url without padding. A link is good for one task until it expires; changing
//! the task id, the time or one character of the signature makes it worthless.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use numcheck_core::TaskId;
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// Mints and checks result links.
#[derive(Clone)]
pub struct LinkSigner {
    secret: [u8; 32],
}

impl std::fmt::Debug for LinkSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkSigner { .. }")
    }
}

/// Why a link does not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkError {
    Expired,
    BadSignature,
}

impl LinkSigner {
    pub fn new(secret: [u8; 32]) -> Self {
        LinkSigner { secret }
    }

    fn mac(&self, task: &str, expires: i64) -> [u8; 32] {
        // HMAC takes keys of any length, so this cannot fail.
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.secret)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(task.as_bytes());
        mac.update(b".");
        mac.update(expires.to_string().as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The query string (`expires=…&signature=…`) of a link valid until `expires`.
    pub fn query(&self, task: &TaskId, expires: i64) -> String {
        format!(
            "expires={expires}&signature={}",
            URL_SAFE_NO_PAD.encode(self.mac(task.as_str(), expires))
        )
    }

    /// Checks a link's parameters at time `now` (Unix seconds).
    pub fn verify(
        &self,
        task: &TaskId,
        expires: i64,
        signature: &str,
        now: i64,
    ) -> Result<(), LinkError> {
        // As `query` writes it, and only so: unpadded URL-safe base64.
        let given = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| LinkError::BadSignature)?;
        let want = self.mac(task.as_str(), expires);
        if given.len() != want.len() || !bool::from(given.ct_eq(&want)) {
            return Err(LinkError::BadSignature);
        }
        if now > expires {
            return Err(LinkError::Expired);
        }
        Ok(())
    }
}

/// A link's `expires` as [`Signer::query`] writes it: decimal digits without a sign or a
/// leading zero. Any other spelling of the same number is refused, so a link has one form.
pub fn parse_expires(text: &str) -> Option<i64> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && !(text.len() > 1 && text.starts_with('0'));
    canonical.then(|| text.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_has_one_spelling() {
        assert_eq!(parse_expires("1796044099"), Some(1_796_044_099));
        assert_eq!(parse_expires("0"), Some(0));
        for other in [
            "+1796044099",
            "01796044099",
            "-5",
            " 17",
            "17 ",
            "",
            "1e9",
            "99999999999999999999",
        ] {
            assert_eq!(parse_expires(other), None, "{other:?}");
        }
    }

    fn parts(q: &str) -> (i64, String) {
        let mut expires = 0;
        let mut sig = String::new();
        for kv in q.split('&') {
            let (k, v) = kv.split_once('=').unwrap();
            match k {
                "expires" => expires = v.parse().unwrap(),
                "signature" => sig = v.to_owned(),
                _ => {}
            }
        }
        (expires, sig)
    }

    #[test]
    fn a_minted_link_verifies_until_it_expires() {
        let s = LinkSigner::new([1; 32]);
        let t: TaskId = "d4g8o46p2jvh04o9uolg".parse().unwrap();
        let (exp, sig) = parts(&s.query(&t, 1000));
        assert_eq!(s.verify(&t, exp, &sig, 999), Ok(()));
        assert_eq!(s.verify(&t, exp, &sig, 1000), Ok(()));
        assert_eq!(s.verify(&t, exp, &sig, 1001), Err(LinkError::Expired));
    }

    #[test]
    fn a_link_is_bound_to_its_task_time_and_secret() {
        let s = LinkSigner::new([1; 32]);
        let t: TaskId = "d4g8o46p2jvh04o9uolg".parse().unwrap();
        let other: TaskId = "d4g8o46p2jvh04o9uolh".parse().unwrap();
        let (exp, sig) = parts(&s.query(&t, 1000));
        assert_eq!(s.verify(&other, exp, &sig, 0), Err(LinkError::BadSignature));
        assert_eq!(s.verify(&t, exp + 1, &sig, 0), Err(LinkError::BadSignature));
        assert_eq!(
            LinkSigner::new([2; 32]).verify(&t, exp, &sig, 0),
            Err(LinkError::BadSignature)
        );
        let mut tampered = sig.clone().into_bytes();
        tampered[0] = if tampered[0] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert_eq!(
            s.verify(&t, exp, &tampered, 0),
            Err(LinkError::BadSignature)
        );
        assert_eq!(s.verify(&t, exp, "", 0), Err(LinkError::BadSignature));
        assert_eq!(s.verify(&t, exp, "!!!", 0), Err(LinkError::BadSignature));
    }
}
