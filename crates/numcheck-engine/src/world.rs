//! A simulated world with ground truth, for measuring accuracy (`numcheck demo --world DIR`).
//!
//! A population of numbers in several countries lives through a stretch of time: each number
//! is held by a subscriber who sooner or later leaves (churn); the number is then out of
//! service for at least its country's reuse period and usually a while longer, and is then
//! given to a new subscriber, who may leave in turn. A sender — the operator running numcheck —
//! got each number from the subscriber who held it then (its customer) and sends it SMS,
//! calls it and sees its app being used. What the sender sees is written in the shipped
//! evidence formats; what really happened is written beside it as the truth.
//!
//! Files written ([`World::write`]):
//!
//! | file | format | import with |
//! |---|---|---|
//! | `receipts.smpp` | `number<TAB>SMPP receipt`, MAP error codes in `err:` | `format=smpp&err_table=map` |
//! | `calls.csv` | FreeSWITCH `mod_cdr_csv` (the `example` template, UTC) | `format=freeswitch` |
//! | `deactivations.csv` | `number,date` | `format=deactivation` |
//! | `app.ndjson` | numcheck's own rows (`kind` `app_event`) | NDJSON |
//! | `numbers.txt` | the sender's list, one E.164 number a line | a task |
//! | `truth.csv` | `number,truth,holder_changed` | `numcheck evaluate --truth` |
//! | `world.json` | the parameters of this world | `numcheck demo --world-params` |
//!
//! What a row of `truth.csv` means: `truth` is `active` when a subscriber holds the number at
//! the world's `now` (whether or not their handset is on), `inactive` when nobody does (out of
//! service after a churn, never assigned, or not a valid number at all). `holder_changed` is
//! `true` when the number is active and its holder is not the subscriber the sender got it
//! from: the number was reassigned since.
//!
//! Every parameter is in [`WorldParams`], with its default's source where one exists. The
//! minimum reuse period of each country is the shipped table numcheck's policy reads
//! ([`numcheck_core::reuse::ReuseTable`]); how long operators wait beyond it is this world's
//! own parameter. Everything is deterministic from the seed.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use chrono::{DateTime, SecondsFormat};
use numcheck_core::E164;
use numcheck_core::reuse::ReuseTable;
use serde::{Deserialize, Serialize};

use crate::demo::{Rng, draw_population};

const DAY_MS: i64 = 86_400_000;

/// A country of the world.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountryParams {
    /// ISO 3166 alpha-2 code (`US`, `GB`, …); must be one the demo can draw numbers for.
    pub region: String,
    /// Relative share of the population.
    pub share: f64,
    /// Mean days an operator waits beyond the country's minimum reuse period before it gives a
    /// number to a new subscriber (exponential). No regulator publishes this; it is the
    /// world's own parameter.
    pub reuse_extra_days: f64,
}

/// The parameters of a world. Rates are per number unless said otherwise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorldParams {
    pub seed: u64,
    /// Numbers in the sender's list.
    pub numbers: usize,
    /// Days of history: the sender got its oldest numbers this long before `now`.
    pub horizon_days: f64,
    /// The sender got a number between `horizon_days` and this many days before `now`.
    pub newest_contact_days: f64,
    pub countries: Vec<CountryParams>,
    /// Share of the list that is not a valid number of its plan (typos).
    pub invalid_share: f64,
    /// Share of the list that is valid but was never in service.
    pub unallocated_share: f64,
    /// Subscriptions ending per month. Reported mobile phone churn: postpaid about 0.8–1% a
    /// month, prepaid about 3–4% (US carriers' 2023–2024 quarterly reports); 1.5% blends them.
    pub churn_per_month: f64,
    /// Share of out-of-service numbers an operator never gives out again within the horizon.
    pub never_reused_share: f64,
    /// Chance that an ordinary subscriber's handset is unreachable when a message or call
    /// comes (off, out of coverage).
    pub unreachable: f64,
    /// Share of subscribers whose SIM is a second one, mostly switched off…
    pub second_sim_share: f64,
    /// …and the chance theirs is unreachable.
    pub second_sim_unreachable: f64,
    /// SMS the sender sends a number per month.
    pub sms_per_month: f64,
    /// Chance that the sender stops messaging (and calling) a number after its first hard
    /// failure (unknown subscriber); the rest keep sending at the same rate.
    pub stop_after_hard_failure: f64,
    /// Share of customers the sender also calls, and calls per month to them.
    pub voice_share: f64,
    pub calls_per_month: f64,
    /// Share of customers who use the sender's app, and their app events per month.
    pub app_share: f64,
    pub app_events_per_month: f64,
    /// Chance that an app user keeps signing in with the old number after leaving it
    /// (misleading activity), for a mean of `app_afterlife_days`.
    pub app_afterlife_share: f64,
    pub app_afterlife_days: f64,
    /// Share of disconnections the carriers' deactivation feed lists.
    pub deactivation_feed_share: f64,
    /// Chance that a message or call fails for a reason that says nothing about the number
    /// (system failure, congestion, rejected by the SMSC).
    pub network_error: f64,
    /// Chance that a receipt for a live subscriber says "unknown subscriber" (an HLR glitch,
    /// a misrouted message): misleading.
    pub false_unknown: f64,
    /// Chance that a receipt for a number nobody holds says "delivered" (grey routes that fake
    /// delivery receipts): misleading.
    pub fake_delivery: f64,
}

impl Default for WorldParams {
    fn default() -> Self {
        let country = |region: &str, share: f64, reuse_extra_days: f64| CountryParams {
            region: region.into(),
            share,
            reuse_extra_days,
        };
        WorldParams {
            seed: 1,
            numbers: 20_000,
            horizon_days: 1460.0,
            newest_contact_days: 30.0,
            countries: vec![
                country("US", 0.25, 180.0),
                country("GB", 0.12, 365.0),
                country("DE", 0.10, 365.0),
                country("FR", 0.08, 365.0),
                country("IN", 0.10, 180.0),
                country("BR", 0.08, 365.0),
                country("AU", 0.07, 180.0),
                country("CA", 0.07, 180.0),
                country("ES", 0.07, 365.0),
                country("IT", 0.06, 365.0),
            ],
            invalid_share: 0.01,
            unallocated_share: 0.03,
            churn_per_month: 0.015,
            never_reused_share: 0.2,
            unreachable: 0.06,
            second_sim_share: 0.08,
            second_sim_unreachable: 0.6,
            sms_per_month: 0.5,
            stop_after_hard_failure: 0.1,
            voice_share: 0.3,
            calls_per_month: 0.15,
            app_share: 0.2,
            app_events_per_month: 0.1,
            app_afterlife_share: 0.1,
            app_afterlife_days: 60.0,
            deactivation_feed_share: 0.35,
            network_error: 0.02,
            false_unknown: 0.0005,
            fake_delivery: 0.001,
        }
    }
}

impl WorldParams {
    /// Checks the parameters make a world.
    pub fn validate(&self) -> Result<(), String> {
        let unit = |name: &str, v: f64| {
            if (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                Err(format!("{name} must be between 0 and 1, not {v}"))
            }
        };
        for (name, v) in [
            ("invalid_share", self.invalid_share),
            ("unallocated_share", self.unallocated_share),
            ("churn_per_month", self.churn_per_month),
            ("never_reused_share", self.never_reused_share),
            ("unreachable", self.unreachable),
            ("second_sim_share", self.second_sim_share),
            ("second_sim_unreachable", self.second_sim_unreachable),
            ("stop_after_hard_failure", self.stop_after_hard_failure),
            ("voice_share", self.voice_share),
            ("app_share", self.app_share),
            ("app_afterlife_share", self.app_afterlife_share),
            ("deactivation_feed_share", self.deactivation_feed_share),
            ("network_error", self.network_error),
            ("false_unknown", self.false_unknown),
            ("fake_delivery", self.fake_delivery),
        ] {
            unit(name, v)?;
        }
        for (name, v) in [
            ("horizon_days", self.horizon_days),
            ("newest_contact_days", self.newest_contact_days),
            ("sms_per_month", self.sms_per_month),
            ("calls_per_month", self.calls_per_month),
            ("app_events_per_month", self.app_events_per_month),
            ("app_afterlife_days", self.app_afterlife_days),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(format!("{name} must be a number of at least 0, not {v}"));
            }
        }
        if self.newest_contact_days > self.horizon_days {
            return Err("newest_contact_days must not exceed horizon_days".into());
        }
        if self.numbers == 0 || self.countries.is_empty() {
            return Err("a world needs numbers and at least one country".into());
        }
        for c in &self.countries {
            if !(c.share.is_finite() && c.share > 0.0 && c.reuse_extra_days >= 0.0) {
                return Err(format!(
                    "countries.{}: share must be above 0 and reuse_extra_days at least 0",
                    c.region
                ));
            }
            if !crate::demo::can_draw(&c.region) {
                return Err(format!(
                    "countries.{}: the demo has no number ranges for this region",
                    c.region
                ));
            }
        }
        Ok(())
    }
}

/// One subscriber's time with a number, in ms.
#[derive(Debug, Clone, PartialEq)]
struct Holding {
    start_ms: i64,
    /// `i64::MAX` while still held.
    end_ms: i64,
    unreachable: f64,
    /// The sender's customer (the first holding after the sender got the number).
    customer: bool,
}

/// What the sender can see of one number over time.
#[derive(Debug, Clone, PartialEq)]
struct Line {
    number: E164,
    /// Not a valid number of its plan.
    invalid: bool,
    holdings: Vec<Holding>,
    contact_ms: i64,
    voice: bool,
    app: bool,
}

impl Line {
    fn holding_at(&self, t: i64) -> Option<&Holding> {
        self.holdings
            .iter()
            .find(|h| h.start_ms <= t && t < h.end_ms)
    }
}

/// The truth about one number at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Truth {
    pub number: E164,
    pub active: bool,
    pub holder_changed: bool,
}

/// A generated world: the population and what the sender saw.
#[derive(Debug, Clone)]
pub struct World {
    pub params: WorldParams,
    pub now_ms: i64,
    lines: Vec<Line>,
}

/// Counts of what a world holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorldStats {
    pub numbers: usize,
    pub active: usize,
    pub holder_changed: usize,
    pub receipts: usize,
    pub calls: usize,
    pub app_events: usize,
    pub deactivations: usize,
}

impl World {
    /// Draws a world ending at `now_ms`.
    pub fn generate(
        params: &WorldParams,
        reuse: &ReuseTable,
        now_ms: i64,
    ) -> Result<World, String> {
        params.validate()?;
        let mut rng = Rng::new(params.seed ^ 0x776f_726c_6421);
        let weights: Vec<(&str, f64)> = params
            .countries
            .iter()
            .map(|c| (c.region.as_str(), c.share))
            .collect();
        let invalid = (params.numbers as f64 * params.invalid_share).round() as usize;
        let population = draw_population(&mut rng, params.numbers, invalid, &weights);
        let mut lines = Vec::with_capacity(population.len());
        let churn_per_ms = params.churn_per_month / (30.0 * DAY_MS as f64);
        for (number, region, valid) in population {
            let contact_ms =
                now_ms - days(rng.uniform(params.newest_contact_days, params.horizon_days));
            let mut line = Line {
                number,
                invalid: !valid,
                holdings: Vec::new(),
                contact_ms,
                voice: rng.chance(params.voice_share),
                app: rng.chance(params.app_share),
            };
            let unallocated = rng.chance(params.unallocated_share);
            if valid && !unallocated {
                let country = params
                    .countries
                    .iter()
                    .find(|c| c.region == region)
                    .map_or(0.0, |c| c.reuse_extra_days);
                let min_reuse = reuse.period(Some(region)).min_days;
                // The customer has held the number for a while already; lifetimes are
                // memoryless, so what is left of theirs is drawn afresh.
                let mut start = contact_ms - days(rng.uniform(0.0, 365.0));
                let mut customer = true;
                loop {
                    let unreachable = if rng.chance(params.second_sim_share) {
                        params.second_sim_unreachable
                    } else {
                        params.unreachable
                    };
                    let from = start.max(contact_ms);
                    let end = if churn_per_ms > 0.0 {
                        from.saturating_add(rng.exponential(1.0 / churn_per_ms) as i64)
                    } else {
                        i64::MAX
                    };
                    let end = if end >= now_ms { i64::MAX } else { end };
                    line.holdings.push(Holding {
                        start_ms: start,
                        end_ms: end,
                        unreachable,
                        customer,
                    });
                    if end == i64::MAX || rng.chance(params.never_reused_share) {
                        break;
                    }
                    let out_of_service = days(min_reuse + rng.exponential(country));
                    start = end + out_of_service;
                    if start >= now_ms {
                        break;
                    }
                    customer = false;
                }
            }
            lines.push(line);
        }
        Ok(World {
            params: params.clone(),
            now_ms,
            lines,
        })
    }

    /// The truth about every number at `now`.
    pub fn truth(&self) -> Vec<Truth> {
        self.lines
            .iter()
            .map(|l| {
                let holder = l.holding_at(self.now_ms - 1);
                Truth {
                    number: l.number,
                    active: holder.is_some(),
                    holder_changed: holder.is_some_and(|h| !h.customer),
                }
            })
            .collect()
    }

    /// Writes the world's files into `dir` (created when missing).
    pub fn write(&self, dir: &Path) -> anyhow::Result<WorldStats> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let mut stats = WorldStats {
            numbers: self.lines.len(),
            ..WorldStats::default()
        };
        let mut receipts = String::new();
        let mut calls = String::new();
        let mut app = String::new();
        let mut deactivations = String::from("number,date\n");
        for (i, line) in self.lines.iter().enumerate() {
            let mut rng = Rng::new(self.params.seed ^ line.number.as_u64().rotate_left(17));
            let traffic = self.traffic(line, &mut rng);
            for t in traffic {
                match t {
                    Traffic::Sms { at_ms, stat, err } => {
                        stats.receipts += 1;
                        write_receipt(
                            &mut receipts,
                            line.number,
                            i,
                            stats.receipts,
                            at_ms,
                            stat,
                            err,
                        );
                    }
                    Traffic::Call {
                        at_ms,
                        cause,
                        billsec,
                    } => {
                        stats.calls += 1;
                        write_call(&mut calls, line.number, stats.calls, at_ms, cause, billsec);
                    }
                    Traffic::App { at_ms } => {
                        stats.app_events += 1;
                        write_app(&mut app, line.number, stats.app_events, at_ms);
                    }
                    Traffic::Deactivated { at_ms } => {
                        stats.deactivations += 1;
                        let _ = writeln!(deactivations, "{},{}", line.number, date(at_ms));
                    }
                }
            }
        }
        let truth = self.truth();
        stats.active = truth.iter().filter(|t| t.active).count();
        stats.holder_changed = truth.iter().filter(|t| t.holder_changed).count();
        let mut numbers = String::new();
        let mut truth_csv = String::from("number,truth,holder_changed\n");
        for t in &truth {
            let _ = writeln!(numbers, "{}", t.number);
            let _ = writeln!(
                truth_csv,
                "{},{},{}",
                t.number,
                if t.active { "active" } else { "inactive" },
                t.holder_changed
            );
        }
        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
        };
        write("receipts.smpp", &receipts)?;
        write("calls.csv", &calls)?;
        write("app.ndjson", &app)?;
        write("deactivations.csv", &deactivations)?;
        write("numbers.txt", &numbers)?;
        write("truth.csv", &truth_csv)?;
        write(
            "world.json",
            &serde_json::to_string_pretty(&self.params).context("writing the parameters")?,
        )?;
        Ok(stats)
    }

    /// Everything the sender saw of one number, in time order.
    fn traffic(&self, line: &Line, rng: &mut Rng) -> Vec<Traffic> {
        let p = &self.params;
        let mut out = Vec::new();
        let month_ms = 30.0 * DAY_MS as f64;
        // The deactivation feed: disconnections after the sender got the number.
        for h in &line.holdings {
            if h.end_ms >= line.contact_ms
                && h.end_ms < self.now_ms
                && rng.chance(p.deactivation_feed_share)
            {
                out.push(Traffic::Deactivated { at_ms: h.end_ms });
            }
        }
        // Messages and calls, until the sender gives up on the number.
        let mut sends: Vec<(i64, bool)> = Vec::new();
        poisson(
            rng,
            line.contact_ms,
            self.now_ms,
            p.sms_per_month / month_ms,
            |t| sends.push((t, false)),
        );
        if line.voice {
            poisson(
                rng,
                line.contact_ms,
                self.now_ms,
                p.calls_per_month / month_ms,
                |t| sends.push((t, true)),
            );
        }
        sends.sort_unstable();
        let mut stopped = false;
        let mut decided_to_stop = None;
        for (at_ms, call) in sends {
            if stopped {
                break;
            }
            let holder = if line.invalid {
                None
            } else {
                line.holding_at(at_ms)
            };
            let hard = if call {
                let (cause, billsec) = call_outcome(p, holder, rng);
                out.push(Traffic::Call {
                    at_ms,
                    cause,
                    billsec,
                });
                cause == "UNALLOCATED_NUMBER"
            } else {
                let (stat, err) = sms_outcome(p, holder, rng);
                out.push(Traffic::Sms { at_ms, stat, err });
                matches!(err, "001" | "005")
            };
            if hard {
                let stop =
                    *decided_to_stop.get_or_insert_with(|| rng.chance(p.stop_after_hard_failure));
                stopped = stop;
            }
        }
        // The app: the customer's own use, and some keep using the old number after leaving.
        if line.app
            && let Some(customer) = line.holdings.iter().find(|h| h.customer)
        {
            let from = customer.start_ms.max(line.contact_ms);
            let mut until = customer.end_ms.min(self.now_ms);
            if customer.end_ms < self.now_ms && rng.chance(p.app_afterlife_share) {
                until = (customer.end_ms + days(rng.exponential(p.app_afterlife_days)))
                    .min(self.now_ms);
            }
            poisson(rng, from, until, p.app_events_per_month / month_ms, |t| {
                out.push(Traffic::App { at_ms: t })
            });
        }
        out.sort_by_key(Traffic::at_ms);
        out
    }
}

/// One thing the sender saw.
#[derive(Debug, Clone, PartialEq)]
enum Traffic {
    Sms {
        at_ms: i64,
        stat: &'static str,
        err: &'static str,
    },
    Call {
        at_ms: i64,
        cause: &'static str,
        billsec: u32,
    },
    App {
        at_ms: i64,
    },
    Deactivated {
        at_ms: i64,
    },
}

impl Traffic {
    fn at_ms(&self) -> i64 {
        match self {
            Traffic::Sms { at_ms, .. }
            | Traffic::Call { at_ms, .. }
            | Traffic::App { at_ms }
            | Traffic::Deactivated { at_ms } => *at_ms,
        }
    }
}

/// Network failures that say nothing about the number: (stat, MAP err).
const NETWORK_ERRORS: &[(&str, &str)] = &[
    ("UNDELIV", "034"),
    ("UNDELIV", "036"),
    ("REJECTD", "000"),
    ("UNDELIV", "032"),
];

/// A receipt's `stat` and MAP `err` (3GPP TS 29.002: 1 unknown subscriber, 5 unidentified
/// subscriber, 6 absent subscriber SM, 27 absent subscriber, 32 SM delivery failure, 34 system
/// failure, 36 unexpected data value).
fn sms_outcome(
    p: &WorldParams,
    holder: Option<&Holding>,
    rng: &mut Rng,
) -> (&'static str, &'static str) {
    if rng.chance(p.network_error) {
        return rng.pick(NETWORK_ERRORS);
    }
    match holder {
        Some(h) => {
            if rng.chance(p.false_unknown) {
                ("UNDELIV", "001")
            } else if rng.chance(h.unreachable) {
                rng.pick(&[("EXPIRED", "027"), ("UNDELIV", "006"), ("UNDELIV", "027")])
            } else {
                ("DELIVRD", "000")
            }
        }
        None => {
            if rng.chance(p.fake_delivery) {
                ("DELIVRD", "000")
            } else {
                rng.pick(&[
                    ("UNDELIV", "001"),
                    ("UNDELIV", "001"),
                    ("UNDELIV", "001"),
                    ("UNDELIV", "001"),
                    ("UNDELIV", "001"),
                    ("UNDELIV", "001"),
                    ("UNDELIV", "005"),
                    ("EXPIRED", "000"),
                ])
            }
        }
    }
}

/// A call's Q.850 cause name and billed seconds.
fn call_outcome(p: &WorldParams, holder: Option<&Holding>, rng: &mut Rng) -> (&'static str, u32) {
    if rng.chance(p.network_error) {
        return ("NORMAL_TEMPORARY_FAILURE", 0);
    }
    match holder {
        Some(h) if rng.chance(h.unreachable) => {
            (rng.pick(&["SUBSCRIBER_ABSENT", "NO_USER_RESPONSE"]), 0)
        }
        Some(_) => match rng.below(20) {
            0..=11 => ("NORMAL_CLEARING", 5 + rng.below(600) as u32),
            12..=16 => ("NO_ANSWER", 0),
            17..=18 => ("USER_BUSY", 0),
            _ => ("CALL_REJECTED", 0),
        },
        None => {
            if rng.chance(0.85) {
                ("UNALLOCATED_NUMBER", 0)
            } else {
                ("NORMAL_TEMPORARY_FAILURE", 0)
            }
        }
    }
}

fn days(d: f64) -> i64 {
    (d * DAY_MS as f64) as i64
}

/// Calls `f` with the times of a Poisson process of `rate` per ms in `from..until`.
fn poisson(rng: &mut Rng, from: i64, until: i64, rate: f64, mut f: impl FnMut(i64)) {
    if rate <= 0.0 || from >= until {
        return;
    }
    let mut t = from as f64;
    loop {
        t += rng.exponential(1.0 / rate);
        if t >= until as f64 {
            break;
        }
        f(t as i64);
    }
}

fn date(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// `YYMMDDhhmm`, as SMPP receipts write dates.
fn smpp_date(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%y%m%d%H%M").to_string())
        .unwrap_or_default()
}

fn stamp(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

fn write_receipt(
    out: &mut String,
    number: E164,
    line: usize,
    seq: usize,
    at_ms: i64,
    stat: &str,
    err: &str,
) {
    let delivered = u8::from(stat == "DELIVRD");
    let _ = writeln!(
        out,
        "{number}\tid:{line:06x}{seq:08x} sub:001 dlvrd:{delivered:03} submit date:{} done date:{} stat:{stat} err:{err} text:Your code is 0000",
        smpp_date(at_ms - 60_000),
        smpp_date(at_ms),
    );
}

fn write_call(out: &mut String, number: E164, seq: usize, at_ms: i64, cause: &str, billsec: u32) {
    let answered = billsec > 0;
    let ring = 15_000;
    let start = at_ms - i64::from(billsec) * 1000 - ring;
    let answer = if answered {
        stamp(start + ring)
    } else {
        String::new()
    };
    let duration = (at_ms - start) / 1000;
    let _ = writeln!(
        out,
        "\"Support\",\"+18005550100\",\"{number}\",\"default\",\"{}\",\"{answer}\",\"{}\",\"{duration}\",\"{billsec}\",\"{cause}\",\"{:08x}-0000-4000-8000-{seq:012x}\",\"\",\"\",\"PCMU\",\"PCMU\"",
        stamp(start),
        stamp(at_ms),
        seq,
    );
}

fn write_app(out: &mut String, number: E164, seq: usize, at_ms: i64) {
    let at = DateTime::from_timestamp_millis(at_ms)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "{{\"number\":\"{number}\",\"observed_at\":\"{at}\",\"source\":\"app\",\"kind\":\"app_event\",\"raw_code\":\"login\",\"message_id\":\"app-{seq}\"}}"
    );
}

/// The region of a number, by the numbering plan (`None`: not geographic, or not valid).
fn region_of(number: E164) -> Option<String> {
    numcheck_core::NumberingPlan
        .check_line(number.to_string().as_bytes(), None)
        .ok()
        .and_then(|c| c.region)
        .map(|r| r.as_str().to_owned())
}

/// Counts per country, for the summary a run prints.
pub fn by_region(truth: &[Truth]) -> BTreeMap<String, (usize, usize)> {
    let mut out: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for t in truth {
        let region = region_of(t.number).unwrap_or_else(|| "??".to_owned());
        let e = out.entry(region).or_default();
        e.0 += 1;
        e.1 += usize::from(t.active);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use numcheck_core::connectors::ConnectorFormat;
    use numcheck_core::connectors::codebook::{CodeBook, SourceSpec, observe};
    use numcheck_core::{CodeTable, Row, RowFormat, RowReader};

    const NOW: i64 = 1_800_000_000_000;

    fn small(seed: u64) -> WorldParams {
        WorldParams {
            seed,
            numbers: 600,
            ..WorldParams::default()
        }
    }

    fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn a_seed_gives_one_world_and_another_seed_another() {
        let reuse = ReuseTable::shipped();
        let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        for (dir, seed) in dirs.iter().zip([5, 5, 6]) {
            World::generate(&small(seed), &reuse, NOW)
                .unwrap()
                .write(dir.path())
                .unwrap();
        }
        let [a, b, c] = [0, 1, 2].map(|i| files(dirs[i].path()));
        assert_eq!(a, b);
        assert_ne!(a, c);
        let names: Vec<&str> = a.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "app.ndjson",
                "calls.csv",
                "deactivations.csv",
                "numbers.txt",
                "receipts.smpp",
                "truth.csv",
                "world.json"
            ]
        );
        // world.json reads back as the parameters it was written from.
        let json = &a.iter().find(|(n, _)| n == "world.json").unwrap().1;
        assert_eq!(
            serde_json::from_slice::<WorldParams>(json).unwrap(),
            small(5)
        );
    }

    #[test]
    fn the_truth_follows_the_lifecycles() {
        let world = World::generate(&small(9), &ReuseTable::shipped(), NOW).unwrap();
        let truth = world.truth();
        assert_eq!(truth.len(), 600);
        // Only a number someone holds can have changed holder; churn and recycling leave
        // both kinds of number, and some reassigned ones.
        assert!(truth.iter().all(|t| t.active || !t.holder_changed));
        let active = truth.iter().filter(|t| t.active).count();
        let changed = truth.iter().filter(|t| t.holder_changed).count();
        assert!((300..580).contains(&active), "{active}");
        assert!(changed > 10, "{changed}");
        // A new holder only after the country's minimum reuse period.
        let reuse = ReuseTable::shipped();
        for line in &world.lines {
            for pair in line.holdings.windows(2) {
                let min = reuse.period(region_of(line.number).as_deref()).min_days;
                let gap = (pair[1].start_ms - pair[0].end_ms) as f64 / DAY_MS as f64;
                assert!(gap >= min, "{}: {gap} < {min}", line.number);
            }
        }
    }

    #[test]
    fn every_file_reads_with_the_shipped_readers_and_formats() {
        let dir = tempfile::tempdir().unwrap();
        let world = World::generate(&small(11), &ReuseTable::shipped(), NOW).unwrap();
        let stats = world.write(dir.path()).unwrap();
        let book = CodeBook::shipped();
        let read = |file: &str, format: ConnectorFormat, err_table: &str| {
            let mut reader = format.reader();
            let spec = SourceSpec {
                err_table: err_table.to_owned(),
                ..SourceSpec::new(file)
            };
            let text = std::fs::read_to_string(dir.path().join(file)).unwrap();
            let mut observations = 0;
            for (i, line) in text.lines().enumerate() {
                let event = reader
                    .line(line.as_bytes())
                    .unwrap_or_else(|e| panic!("{file}:{}: {e:?}", i + 1));
                if let Some(event) = event {
                    match observe(&book, &spec, event, NOW) {
                        Ok(Row::Observation(_)) => observations += 1,
                        Ok(_) => {}
                        Err(e) => panic!("{file}:{}: {e:?}", i + 1),
                    }
                }
            }
            observations
        };
        assert_eq!(
            read("receipts.smpp", ConnectorFormat::Smpp, "map"),
            stats.receipts
        );
        assert_eq!(
            read("calls.csv", ConnectorFormat::Freeswitch, "map"),
            stats.calls
        );
        assert_eq!(
            read("deactivations.csv", ConnectorFormat::Deactivation, "map"),
            stats.deactivations
        );
        let mut rows = RowReader::new(RowFormat::Ndjson, CodeTable::generic(), NOW);
        let app = std::fs::read_to_string(dir.path().join("app.ndjson")).unwrap();
        for line in app.lines() {
            assert!(
                matches!(rows.line(line.as_bytes()), Ok(Row::Observation(_))),
                "{line}"
            );
        }
        assert_eq!(app.lines().count(), stats.app_events);
        assert!(
            stats.receipts > 1000 && stats.calls > 0 && stats.deactivations > 0,
            "{stats:?}"
        );
        // The truth file is what `numcheck evaluate` reads, for every number of the list.
        let truth = crate::evaluate::read_truth(
            &std::fs::read_to_string(dir.path().join("truth.csv")).unwrap(),
        )
        .unwrap();
        assert_eq!(truth.len(), 600);
    }

    #[test]
    fn parameters_that_make_no_world_are_refused_by_name() {
        for (change, says) in [
            (
                Box::new(|p: &mut WorldParams| p.churn_per_month = 1.5)
                    as Box<dyn Fn(&mut WorldParams)>,
                "churn_per_month",
            ),
            (
                Box::new(|p: &mut WorldParams| p.sms_per_month = -1.0),
                "sms_per_month",
            ),
            (
                Box::new(|p: &mut WorldParams| p.newest_contact_days = 5000.0),
                "newest_contact_days",
            ),
            (Box::new(|p: &mut WorldParams| p.numbers = 0), "numbers"),
            (
                Box::new(|p: &mut WorldParams| p.countries[0].region = "ZZ".into()),
                "countries.ZZ",
            ),
        ] {
            let mut p = WorldParams::default();
            change(&mut p);
            let e = p.validate().unwrap_err();
            assert!(e.contains(says), "{e}");
        }
    }
}
