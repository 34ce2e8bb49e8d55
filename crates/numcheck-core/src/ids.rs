//! Identifiers that cross the API boundary: task ids and user ids.

use std::fmt;
use std::str::FromStr;

/// What the two ids share: they are 20 bytes that each pass `$allowed`, read with `FromStr`
/// (refused with `$bad`), shown as they are.
macro_rules! twenty_byte_id {
    ($id:ident, $bad:ident, $allowed:expr) => {
        impl $id {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $id {
            type Err = $bad;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let allowed: fn(u8) -> bool = $allowed;
                if s.len() == 20 && s.bytes().all(allowed) {
                    Ok($id(s.to_owned()))
                } else {
                    Err($bad)
                }
            }
        }

        impl fmt::Display for $id {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

/// A task id: an xid, 20 characters of `0-9a-v` (base32hex of 12 bytes), time-sortable.
/// Generating one needs the clock and randomness, so that happens outside this crate; here it
/// is only validated.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId(String);

/// A string that is not a task id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a task id is 20 characters of 0-9 and a-v")]
pub struct BadTaskId;

twenty_byte_id!(
    TaskId,
    BadTaskId,
    |b| matches!(b, b'0'..=b'9' | b'a'..=b'v')
);

/// A user id: 20 ASCII letters and digits, as the original service shows (`wfi7wGPS4B4PdtTMox5Y`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserId(String);

/// A string that is not a user id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a user id is 20 ASCII letters and digits")]
pub struct BadUserId;

impl UserId {
    /// Builds a user id from 20 random bytes (each mapped onto the 62 letters and digits).
    pub fn from_random(bytes: [u8; 20]) -> Self {
        const ALPHABET: &[u8; 62] =
            b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        UserId(
            bytes
                .iter()
                .map(|b| ALPHABET[usize::from(*b) % 62] as char)
                .collect(),
        )
    }
}

twenty_byte_id!(UserId, BadUserId, |b| b.is_ascii_alphanumeric());

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_id_accepts_xids_only() {
        assert!("d4g8o46p2jvh04o9uolg".parse::<TaskId>().is_ok());
        assert!("d4g8o46p2jvh04o9uolw".parse::<TaskId>().is_err());
        assert!("d4g8o46p2jvh04o9uol".parse::<TaskId>().is_err());
        assert!("D4G8O46P2JVH04O9UOLG".parse::<TaskId>().is_err());
        assert!("../../../etc/passwdx".parse::<TaskId>().is_err());
    }

    #[test]
    fn user_id_from_random_is_a_valid_user_id() {
        let id = UserId::from_random([255; 20]);
        assert_eq!(id.as_str().len(), 20);
        assert!(id.as_str().parse::<UserId>().is_ok());
    }
}
