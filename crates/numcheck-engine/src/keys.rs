//! API keys: how they are made, shown and stored.
//!
//! A key is `nck_` followed by 32 characters drawn from 62 letters and digits (≈190 bits of
//! randomness). Only its SHA-256 is stored; a fast hash is right here because the key is
//! random and long, so there is nothing to brute-force. The first 12 characters are kept as
//! a prefix so that a listing can name a key without revealing it.

use anyhow::Context;
use numcheck_core::UserId;
pub use numcheck_store::KeyRights;
use numcheck_store::{Store, StoreError, User};
use sha2::{Digest, Sha256};

use crate::clock::now_ms;

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const KEY_CHARS: usize = 32;
/// Characters of a key shown in listings.
pub const PREFIX_CHARS: usize = 12;

/// A freshly made key: the secret (shown once) and what is stored.
#[derive(Clone)]
pub struct NewKey {
    pub secret: String,
    pub prefix: String,
    pub hash: [u8; 32],
}

impl std::fmt::Debug for NewKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewKey")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// Random bytes from the operating system.
pub fn random_bytes<const N: usize>() -> anyhow::Result<[u8; N]> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| anyhow::anyhow!("no randomness available: {e}"))?;
    Ok(buf)
}

/// Makes a new random key.
pub fn generate() -> anyhow::Result<NewKey> {
    let mut secret = String::with_capacity(4 + KEY_CHARS);
    secret.push_str("nck_");
    while secret.len() < 4 + KEY_CHARS {
        for b in random_bytes::<64>()? {
            // Rejection sampling keeps every character equally likely.
            if b < 248 && secret.len() < 4 + KEY_CHARS {
                secret.push(ALPHABET[usize::from(b % 62)] as char);
            }
        }
    }
    let prefix = secret[..PREFIX_CHARS].to_owned();
    let hash = hash(&secret);
    Ok(NewKey {
        secret,
        prefix,
        hash,
    })
}

/// The stored form of a key.
pub fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.trim().as_bytes()).into()
}

/// A new random user id.
pub fn new_user_id() -> anyhow::Result<UserId> {
    // Map uniformly: 248 = 4 * 62, so bytes above are redrawn.
    let mut out = [0u8; 20];
    let mut filled = 0;
    while filled < out.len() {
        for b in random_bytes::<32>()? {
            if b < 248 && filled < out.len() {
                out[filled] = b % 62;
                filled += 1;
            }
        }
    }
    Ok(UserId::from_random(out))
}

/// What `keys create` did.
#[derive(Debug)]
pub struct Issued {
    pub user: User,
    pub user_created: bool,
    pub key: NewKey,
}

/// Creates a key for `user_name`, creating the user first when it does not exist (unlimited
/// when `credits` is `None`, else with that balance). For an existing user `credits` is
/// added to the balance.
pub async fn issue(
    store: &dyn Store,
    user_name: &str,
    credits: Option<i64>,
    is_admin: bool,
    rights: KeyRights,
) -> anyhow::Result<Issued> {
    let name = user_name.trim();
    anyhow::ensure!(
        !name.is_empty() && name.len() <= 64 && !name.chars().any(char::is_control),
        "a user name is 1 to 64 printable characters"
    );
    if let Some(c) = credits {
        anyhow::ensure!(c >= 0, "credits cannot be negative");
    }
    let (user, user_created) = match store.user_by_name(name).await? {
        Some(user) => {
            if let Some(c) = credits {
                store
                    .grant_credits(&user.id, c, "granted with keys create", now_ms())
                    .await
                    .map_err(|e| match e {
                        StoreError::Conflict(m) => anyhow::anyhow!("user {name:?}: {m}"),
                        other => other.into(),
                    })?;
            }
            let user = store.user(&user.id).await?.context("user vanished")?;
            (user, false)
        }
        None => {
            let user = store
                .create_user(new_user_id()?, name, credits, is_admin, now_ms())
                .await?;
            (user, true)
        }
    };
    let key = generate()?;
    store
        .add_key(&user.id, &key.prefix, &key.hash, rights, now_ms())
        .await?;
    Ok(Issued {
        user,
        user_created,
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_long_random_and_hashed() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert_ne!(a.secret, b.secret);
        assert_eq!(a.secret.len(), 36);
        assert!(a.secret.starts_with("nck_"));
        assert!(a.secret[4..].bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(a.prefix, &a.secret[..12]);
        assert_eq!(a.hash, hash(&a.secret));
        assert!(
            !format!("{a:?}").contains(&a.secret),
            "Debug must not show the secret"
        );
    }
}
