//! How long a disconnected number stays out of service before it may be given to someone else,
//! per country: the reuse (aging, quarantine) periods regulators set. A hard disconnect says
//! "nobody has this number" only until the country's minimum has passed; after that a new
//! subscriber may hold it, and the policy trusts the disconnect less the older it is.
//!
//! The shipped table is `data/reuse_periods.csv` (`region,min_days,max_days,source`), every row
//! with its source; a row for region `*` covers every region without one. Operators layer
//! their own rows over it.

use std::collections::HashMap;

use crate::codes::TableError;

/// The shipped table.
pub const SHIPPED_CSV: &str = include_str!("../data/reuse_periods.csv");

/// One region's reuse period.
#[derive(Debug, Clone, PartialEq)]
pub struct ReusePeriod {
    /// Days a disconnected number stays out of service at the least.
    pub min_days: f64,
    /// Days after which it may be given out again at the latest, where a rule says.
    pub max_days: Option<f64>,
    /// Where the figures come from.
    pub source: String,
}

/// Reuse periods by region.
#[derive(Debug, Clone, PartialEq)]
pub struct ReuseTable {
    rows: HashMap<String, ReusePeriod>,
    default: ReusePeriod,
}

impl Default for ReuseTable {
    fn default() -> Self {
        ReuseTable::shipped()
    }
}

impl ReuseTable {
    /// The shipped table.
    pub fn shipped() -> ReuseTable {
        // The shipped file is checked by a unit test; an error here cannot happen.
        ReuseTable::parse(SHIPPED_CSV).unwrap_or_else(|_| ReuseTable {
            rows: HashMap::new(),
            default: ReusePeriod {
                min_days: 45.0,
                max_days: None,
                source: "built in".into(),
            },
        })
    }

    /// Reads a table: a `region,min_days,max_days,source` header, `#` comments, one row a
    /// region, and a `*` row for every other region. Errors name the line.
    pub fn parse(text: &str) -> Result<ReuseTable, TableError> {
        let mut table = ReuseTable {
            rows: HashMap::new(),
            default: ReusePeriod {
                min_days: f64::NAN,
                max_days: None,
                source: String::new(),
            },
        };
        table.overlay(text)?;
        if table.default.min_days.is_nan() {
            return Err(TableError {
                line: 0,
                reason: "the table has no `*` row for the regions without one".into(),
            });
        }
        Ok(table)
    }

    /// Layers rows over this table: a region listed again takes the new row.
    pub fn overlay(&mut self, text: &str) -> Result<(), TableError> {
        let mut header = false;
        for (i, line) in text.lines().enumerate() {
            let line_no = i + 1;
            let err = |reason: String| TableError {
                line: line_no,
                reason,
            };
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let fields = crate::connectors::split_record(trimmed.as_bytes(), ',')
                .map_err(|e| err(e.message))?;
            if !header {
                header = true;
                if fields.first().map(|f| f.trim()) == Some("region") {
                    continue;
                }
            }
            let [region, min, max, source] = match fields.as_slice() {
                [a, b, c, d] => [a, b, c, d],
                [a, b, c] => [a, b, c, &String::new()],
                _ => {
                    return Err(err("a row is region,min_days,max_days,source".into()));
                }
            };
            let region = region.trim().to_ascii_uppercase();
            let valid_region = region == "*"
                || (region.len() == 2 && region.bytes().all(|b| b.is_ascii_uppercase()));
            if !valid_region {
                return Err(err(format!(
                    "{region:?} is not a region code such as US or GB, nor *"
                )));
            }
            let days = |text: &str, what: &str| -> Result<f64, TableError> {
                text.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|d| d.is_finite() && (0.0..=3650.0).contains(d))
                    .ok_or_else(|| {
                        err(format!(
                            "{what} {text:?} is not a number of days from 0 to 3650"
                        ))
                    })
            };
            let min_days = days(min, "min_days")?;
            let max_days = match max.trim() {
                "" => None,
                text => Some(days(text, "max_days")?),
            };
            if max_days.is_some_and(|m| m < min_days) {
                return Err(err("max_days is below min_days".into()));
            }
            let period = ReusePeriod {
                min_days,
                max_days,
                source: source.trim().to_owned(),
            };
            if region == "*" {
                self.default = period;
            } else {
                self.rows.insert(region, period);
            }
        }
        Ok(())
    }

    /// The period of a region (`None`: not known), or the table's default.
    pub fn period(&self, region: Option<&str>) -> &ReusePeriod {
        region
            .and_then(|r| self.rows.get(&r.to_ascii_uppercase()))
            .unwrap_or(&self.default)
    }

    /// Whether the table has a row of its own for the region.
    pub fn has_row(&self, region: &str) -> bool {
        self.rows.contains_key(&region.to_ascii_uppercase())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_table_reads_and_every_row_names_its_source() {
        let table = ReuseTable::parse(SHIPPED_CSV).unwrap_or_else(|e| panic!("{e:?}"));
        let us = table.period(Some("US"));
        assert_eq!((us.min_days, us.max_days), (45.0, Some(90.0)));
        assert!(us.source.contains("FCC 18-177"), "{}", us.source);
        for region in ["US", "CA", "AU", "CH", "IN"] {
            assert!(table.has_row(region), "{region}");
            assert!(!table.period(Some(region)).source.is_empty(), "{region}");
        }
        let other = table.period(Some("ZZ"));
        assert_eq!(other, table.period(None));
        assert!(!other.source.is_empty());
    }

    #[test]
    fn operators_override_rows_and_mistakes_name_the_line() {
        let mut table = ReuseTable::shipped();
        table
            .overlay("region,min_days,max_days,source\nGB,60,,our carrier's rule\n")
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(table.period(Some("gb")).min_days, 60.0);
        for (bad, line) in [
            ("GB,sixty,,x\n", 1),
            ("region,min_days,max_days,source\nGBR,60,,x\n", 2),
            ("GB,60,30,x\n", 1),
            ("GB\n", 1),
        ] {
            let e = table.clone().overlay(bad).unwrap_err();
            assert_eq!(e.line, line, "{bad:?}: {e:?}");
        }
        assert!(
            ReuseTable::parse("US,45,,x\n").is_err(),
            "a table needs a * row"
        );
    }
}
