//! Turning the policy's raw scores into probabilities that hold up when measured.
//!
//! For each side of a verdict (`active`, `inactive`) a [`Curve`] maps the policy's raw score
//! (0 to 1, higher meaning surer) to the probability that a verdict with that score is right.
//! Curves are fitted by isotonic regression (the pool-adjacent-violators algorithm) on
//! labelled verdicts, so they are non-decreasing step functions, read between their knots by
//! linear interpolation. A verdict's `Confidence` is its curve's value at its raw score.
//!
//! numcheck ships curves fitted on its simulated world (`data/calibration.json`, written by
//! `numcheck calibrate`); an operator with labels of their own fits theirs and points the
//! configuration at the file. A file that is malformed, or whose curves go down anywhere, is
//! refused when it is read.
//!
//! (The pool-adjacent-violators step is written here: the one crate focused on it,
//! `pav_regression`, is LGPL-3.0, which this statically linked binary does not take, and the
//! general machine-learning crates that have it bring a numerical stack with them.)

use serde::{Deserialize, Serialize};

/// The shipped calibration.
pub const SHIPPED_JSON: &str = include_str!("../data/calibration.json");

/// A non-decreasing map from raw score to probability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Curve {
    /// Raw scores, strictly increasing, within 0..=1.
    pub score: Vec<f64>,
    /// The probability at each score, non-decreasing, within 0..=1.
    pub probability: Vec<f64>,
}

impl Curve {
    /// The identity: a raw score is taken as its own probability.
    pub fn identity() -> Curve {
        Curve {
            score: vec![0.0, 1.0],
            probability: vec![0.0, 1.0],
        }
    }

    /// Checks the curve is a non-decreasing function within the unit square.
    pub fn validate(&self) -> Result<(), String> {
        if self.score.is_empty() || self.score.len() != self.probability.len() {
            return Err("score and probability must be lists of the same, non-zero length".into());
        }
        let unit = |v: &f64| v.is_finite() && (0.0..=1.0).contains(v);
        if !self.score.iter().all(unit) || !self.probability.iter().all(unit) {
            return Err("scores and probabilities must be between 0 and 1".into());
        }
        if self.score.windows(2).any(|w| w[0] >= w[1]) {
            return Err("scores must be strictly increasing".into());
        }
        if let Some(i) = self.probability.windows(2).position(|w| w[0] > w[1]) {
            return Err(format!(
                "the curve goes down between scores {} and {}: a higher score must not mean a lower probability",
                self.score[i],
                self.score[i + 1]
            ));
        }
        Ok(())
    }

    /// The probability at `score`: the knots' values interpolated linearly, held flat beyond
    /// the first and last knot.
    pub fn apply(&self, score: f64) -> f64 {
        let (xs, ys) = (&self.score, &self.probability);
        let Some((&first, &last)) = xs.first().zip(xs.last()) else {
            return score.clamp(0.0, 1.0);
        };
        if !score.is_finite() || score <= first {
            return ys[0];
        }
        if score >= last {
            return ys[ys.len() - 1];
        }
        let i = xs.partition_point(|&x| x <= score);
        let (x0, x1, y0, y1) = (xs[i - 1], xs[i], ys[i - 1], ys[i]);
        y0 + (y1 - y0) * (score - x0) / (x1 - x0)
    }

    /// Fits a curve to `(raw score, right)` pairs by isotonic regression: the non-decreasing
    /// step function closest (in squared error) to the outcomes. Each block of pooled scores
    /// becomes a flat step with a knot at its lowest and highest score, so on its own data the
    /// curve is exact: a point's probability is its block's share right. `None` without data.
    pub fn fit(points: &[(f64, bool)]) -> Option<Curve> {
        let mut pts: Vec<(f64, f64)> = points
            .iter()
            .filter(|(s, _)| s.is_finite())
            .map(|&(s, right)| (s.clamp(0.0, 1.0), f64::from(u8::from(right))))
            .collect();
        if pts.is_empty() {
            return None;
        }
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        // Blocks of (lowest score, highest score, outcomes right, count).
        let mut blocks: Vec<(f64, f64, f64, f64)> = Vec::new();
        for (s, y) in pts {
            match blocks.last_mut() {
                // Equal scores start in one block.
                Some(b) if b.1 == s => {
                    b.2 += y;
                    b.3 += 1.0;
                }
                _ => blocks.push((s, s, y, 1.0)),
            }
            // Pool adjacent violators: merge while the last block's mean is below the one
            // before it.
            while blocks.len() >= 2 {
                let n = blocks.len();
                let (a, b) = (blocks[n - 2], blocks[n - 1]);
                if a.2 / a.3 <= b.2 / b.3 {
                    break;
                }
                blocks.truncate(n - 2);
                blocks.push((a.0, b.1, a.2 + b.2, a.3 + b.3));
            }
        }
        let mut curve = Curve {
            score: Vec::with_capacity(2 * blocks.len()),
            probability: Vec::with_capacity(2 * blocks.len()),
        };
        for (low, high, right, n) in blocks {
            let p = right / n;
            curve.score.push(low);
            curve.probability.push(p);
            if high > low {
                curve.score.push(high);
                curve.probability.push(p);
            }
        }
        Some(curve)
    }
}

/// One curve per side of a verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    /// What the curves were fitted on (free text).
    #[serde(default)]
    pub fitted_on: String,
    pub active: Curve,
    pub inactive: Curve,
}

impl Default for Calibration {
    fn default() -> Self {
        Calibration::shipped()
    }
}

impl Calibration {
    /// Raw scores taken as probabilities (no calibration).
    pub fn identity() -> Calibration {
        Calibration {
            fitted_on: "identity".into(),
            active: Curve::identity(),
            inactive: Curve::identity(),
        }
    }

    /// The shipped calibration (the identity if the shipped file were broken, which a unit
    /// test rules out).
    pub fn shipped() -> Calibration {
        Calibration::parse(SHIPPED_JSON).unwrap_or_else(|_| Calibration::identity())
    }

    /// Reads a calibration file, refusing one that is malformed or not monotonic.
    pub fn parse(text: &str) -> Result<Calibration, String> {
        let c: Calibration = serde_json::from_str(text).map_err(|e| e.to_string())?;
        c.active.validate().map_err(|e| format!("active: {e}"))?;
        c.inactive
            .validate()
            .map_err(|e| format!("inactive: {e}"))?;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn the_shipped_calibration_reads() {
        let c = Calibration::parse(SHIPPED_JSON).unwrap_or_else(|e| panic!("{e}"));
        assert!(!c.fitted_on.is_empty());
    }

    #[test]
    fn pooling_makes_a_decreasing_run_flat() {
        let c = Curve::fit(&[(0.1, false), (0.2, true), (0.3, false), (0.9, true)])
            .unwrap_or_else(|| unreachable!());
        c.validate().unwrap_or_else(|e| panic!("{e}"));
        // 0.2 (right) and 0.3 (wrong) pool into one flat step of 0.5.
        assert_eq!(c.score, vec![0.1, 0.2, 0.3, 0.9]);
        assert_eq!(c.probability, vec![0.0, 0.5, 0.5, 1.0]);
        assert_eq!(c.apply(0.0), 0.0);
        assert_eq!(c.apply(0.25), 0.5);
        assert_eq!(c.apply(1.0), 1.0);
        assert!((c.apply(0.6) - 0.75).abs() < 1e-9);
    }

    #[test]
    fn curves_that_go_down_or_leave_the_unit_square_are_refused() {
        let down = r#"{"active":{"score":[0.1,0.5],"probability":[0.9,0.2]},
                       "inactive":{"score":[0],"probability":[0.5]}}"#;
        assert!(Calibration::parse(down).unwrap_err().contains("goes down"));
        let outside = r#"{"active":{"score":[0.1,1.5],"probability":[0.1,0.2]},
                          "inactive":{"score":[0],"probability":[0.5]}}"#;
        assert!(Calibration::parse(outside).is_err());
        let unequal = r#"{"active":{"score":[0.1],"probability":[0.1,0.2]},
                          "inactive":{"score":[0],"probability":[0.5]}}"#;
        assert!(Calibration::parse(unequal).is_err());
        assert!(Calibration::parse("{}").is_err());
    }

    proptest! {
        /// Whatever the data, the fitted curve is a valid non-decreasing map, and on its own
        /// data it is calibrated: the mean fitted probability equals the share right.
        #[test]
        fn fitted_curves_are_monotonic_and_calibrated_on_their_data(
            points in prop::collection::vec((0.0f64..=1.0, any::<bool>()), 1..200)
        ) {
            let c = Curve::fit(&points).unwrap_or_else(|| unreachable!());
            prop_assert!(c.validate().is_ok(), "{:?}", c);
            let right = points.iter().filter(|p| p.1).count() as f64 / points.len() as f64;
            let mean: f64 = points.iter().map(|p| c.apply(p.0)).sum::<f64>() / points.len() as f64;
            prop_assert!((mean - right).abs() < 1e-9, "mean {mean} right {right}");
        }
    }
}
