//! The vocabulary of tasks: which checks exist, the states a task moves through, and the
//! per-number answer.

use std::fmt;
use std::str::FromStr;

use crate::vocabulary::vocabulary;

/// A [`vocabulary!`] read back strictly, with an error type of its own.
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident, $err:ident, $what:literal { $($variant:ident => $text:literal),+ $(,)? }) => {
        vocabulary!($(#[$meta])* $name { $($variant => $text),+ });

        #[doc = concat!("A string that is not a ", $what, ".")]
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $err(pub String);

        impl fmt::Display for $err {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "unknown {}: {:?}", $what, self.0)
            }
        }

        impl std::error::Error for $err {}

        impl FromStr for $name {
            type Err = $err;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s { $($text => Ok($name::$variant),)+ _ => Err($err(s.to_owned())) }
            }
        }
    };
}

string_enum!(
    /// The kind of check a task runs. Other checkers share the same flow and are added here.
    TaskType, UnknownTaskType, "task type" {
        ActiveCheck => "active_check",
        NumberInfo => "number_info",
    }
);

string_enum!(
    /// Where a task is in its life. `pending → processing → exported` is the original flow;
    /// `failed` and `cancelled` are our terminal extensions.
    TaskStatus, UnknownTaskStatus, "task status" {
        Pending => "pending",
        Processing => "processing",
        Exported => "exported",
        Failed => "failed",
        Cancelled => "cancelled",
    }
);

string_enum!(
    /// The answer for one number, exactly the original service's vocabulary.
    ActiveStatus, UnknownActiveStatus, "activity status" {
        Active => "active",
        Inactive => "inactive",
        Unknown => "unknown",
    }
);

impl TaskType {
    /// The supported task types, comma separated, for error messages.
    pub fn supported_list() -> String {
        TaskType::ALL
            .iter()
            .map(|t| t.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl TaskStatus {
    /// Whether the task can still change.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskStatus::Exported | TaskStatus::Failed | TaskStatus::Cancelled
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_spellings_round_trip() {
        for t in TaskStatus::ALL {
            assert_eq!(t.as_str().parse::<TaskStatus>().unwrap(), *t);
        }
        for a in ActiveStatus::ALL {
            assert_eq!(a.as_str().parse::<ActiveStatus>().unwrap(), *a);
        }
        assert_eq!(
            "active_check".parse::<TaskType>().unwrap(),
            TaskType::ActiveCheck
        );
    }

    #[test]
    fn unknown_task_type_is_refused_and_supported_list_names_active_check() {
        assert!("bogus".parse::<TaskType>().is_err());
        assert!("Active_Check".parse::<TaskType>().is_err());
        assert_eq!(TaskType::supported_list(), "active_check, number_info");
    }

    #[test]
    fn only_exported_failed_and_cancelled_are_terminal() {
        assert!(!TaskStatus::Pending.is_terminal());
        assert!(!TaskStatus::Processing.is_terminal());
        assert!(TaskStatus::Exported.is_terminal());
        assert!(TaskStatus::Failed.is_terminal());
        assert!(TaskStatus::Cancelled.is_terminal());
    }
}
