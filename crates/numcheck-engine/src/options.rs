//! Per-task output options, from the create form: which columns, which formats.

use numcheck_core::TaskType;
use serde::{Deserialize, Serialize};

use crate::EngineError;
use crate::config::LookupConfig;
use crate::lookup::TaskLookups;

/// Which result columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Columns {
    /// Every column (the default).
    #[default]
    Full,
    /// Only the first two: what the original service returns.
    Basic,
}

/// Output options of one task, stored with it as JSON.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TaskOptions {
    pub columns: Columns,
    /// Also write an `.xlsx` copy of the result.
    pub xlsx: bool,
    /// Live lookups for undecided numbers, when the task asked for them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lookup: Option<TaskLookups>,
    /// The task's confidence floor (`min_confidence`): verdicts less sure become `unknown`.
    /// `None`: the policy's own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_confidence: Option<f64>,
}

impl TaskOptions {
    /// Reads the `min_confidence` form field: a probability from 0 to 1 (blank: the policy's).
    pub fn min_confidence_from_form(value: Option<&str>) -> Result<Option<f64>, EngineError> {
        match value.map(str::trim) {
            None | Some("") => Ok(None),
            Some(text) => text
                .parse::<f64>()
                .ok()
                .filter(|v| (0.0..=1.0).contains(v))
                .map(Some)
                .ok_or_else(|| {
                    EngineError::invalid(
                        "invalid_min_confidence",
                        format!("min_confidence {text:?} is not a number from 0 to 1"),
                    )
                }),
        }
    }

    /// Reads the `live_lookup`, `max_lookups` and `max_age_days` form fields against the
    /// config's defaults. Asking for lookups with no provider configured is an error.
    pub fn lookup_from_form(
        live_lookup: Option<&str>,
        max_lookups: Option<&str>,
        max_age_days: Option<&str>,
        config: &LookupConfig,
        have_providers: bool,
    ) -> Result<Option<TaskLookups>, EngineError> {
        let wanted = match live_lookup
            .map(|v| v.trim().to_ascii_lowercase())
            .as_deref()
        {
            None | Some("") => config.enabled_by_default && have_providers,
            Some("true" | "1" | "yes" | "on") => true,
            Some("false" | "0" | "no" | "off") => false,
            Some(other) => {
                return Err(EngineError::invalid(
                    "invalid_live_lookup",
                    format!("live_lookup {other:?} is not true or false"),
                ));
            }
        };
        let number =
            |name: &'static str, v: Option<&str>, max: u64| -> Result<Option<u64>, EngineError> {
                match v.map(str::trim) {
                    None | Some("") => Ok(None),
                    Some(t) => t
                        .parse::<u64>()
                        .ok()
                        .filter(|n| *n <= max)
                        .map(Some)
                        .ok_or_else(|| {
                            EngineError::invalid(
                                if name == "max_lookups" {
                                    "invalid_max_lookups"
                                } else {
                                    "invalid_max_age_days"
                                },
                                format!("{name} must be a whole number from 0 to {max}"),
                            )
                        }),
                }
            };
        let max = number("max_lookups", max_lookups, 1_000_000_000)?;
        let age = number("max_age_days", max_age_days, 3650)?;
        if !wanted {
            return Ok(None);
        }
        if !have_providers {
            return Err(EngineError::invalid(
                "live_lookup_unavailable",
                "live_lookup=true, but this server has no lookup provider configured ([[lookup.providers]])",
            ));
        }
        Ok(Some(TaskLookups {
            max_lookups: max.unwrap_or(config.max_lookups_per_task),
            max_age_days: age.map_or(config.max_age_days, |a| a.max(1) as u32),
        }))
    }

    /// Reads the `columns` and `formats` form fields.
    pub fn from_form(columns: Option<&str>, formats: Option<&str>) -> Result<Self, EngineError> {
        let columns = match columns.map(|c| c.trim().to_ascii_lowercase()).as_deref() {
            None | Some("") | Some("full") => Columns::Full,
            Some("basic") => Columns::Basic,
            Some(other) => {
                return Err(EngineError::invalid(
                    "invalid_columns",
                    format!("columns {other:?} is not supported; use basic or full"),
                ));
            }
        };
        let mut xlsx = false;
        for f in formats.unwrap_or("csv").split(',') {
            match f.trim().to_ascii_lowercase().as_str() {
                "" | "csv" => {}
                "xlsx" => xlsx = true,
                other => {
                    return Err(EngineError::invalid(
                        "invalid_formats",
                        format!("format {other:?} is not supported; use csv, xlsx or csv,xlsx"),
                    ));
                }
            }
        }
        Ok(TaskOptions {
            columns,
            xlsx,
            lookup: None,
            min_confidence: None,
        })
    }

    /// The stored form; unreadable stored options fall back to the defaults.
    pub fn from_json(json: &str) -> TaskOptions {
        serde_json::from_str(json).unwrap_or_default()
    }

    pub fn to_json(self) -> String {
        serde_json::to_string(&self).unwrap_or_else(|_| "{}".into())
    }
}

/// The result CSV's header (with its line end) for a task type and column choice.
pub fn header(task_type: TaskType, columns: Columns) -> &'static str {
    match (task_type, columns) {
        (TaskType::ActiveCheck, Columns::Full) => {
            "Number,ActiveStatus,Reason,Confidence,LastActivity,LineType,Region,PossiblyReassigned,Line\n"
        }
        (TaskType::ActiveCheck, Columns::Basic) => "Number,ActiveStatus\n",
        (TaskType::NumberInfo, Columns::Full) => {
            "Number,Valid,LineType,Region,CountryCode,NationalFormat,InternationalFormat,Line\n"
        }
        (TaskType::NumberInfo, Columns::Basic) => "Number,Valid\n",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_fields_parse_and_bad_values_are_refused() {
        assert_eq!(
            TaskOptions::from_form(None, None).unwrap(),
            TaskOptions::default()
        );
        let o = TaskOptions::from_form(Some("basic"), Some("csv, XLSX")).unwrap();
        assert_eq!((o.columns, o.xlsx), (Columns::Basic, true));
        assert!(TaskOptions::from_form(Some("some"), None).is_err());
        assert!(TaskOptions::from_form(None, Some("pdf")).is_err());
        assert_eq!(TaskOptions::from_json(&o.to_json()), o);
        assert_eq!(TaskOptions::from_json("{}"), TaskOptions::default());
    }

    #[test]
    fn every_header_starts_with_number() {
        for t in TaskType::ALL {
            for c in [Columns::Full, Columns::Basic] {
                assert!(header(*t, c).starts_with("Number,"));
            }
        }
        assert!(header(TaskType::ActiveCheck, Columns::Basic) == "Number,ActiveStatus\n");
    }
}
