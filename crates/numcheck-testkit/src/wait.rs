//! Bounded waits: every poll loop in a test gives up after a deadline and says what it
//! awaited, instead of hanging. The deadline only turns a hung test into a failing one; it is
//! never what a test asserts.

use std::fmt::Display;
use std::future::Future;
use std::time::{Duration, Instant};

/// How long a wait lasts unless told otherwise: far beyond what any awaited state takes on a
/// slow machine.
pub const PATIENCE: Duration = Duration::from_secs(120);

/// A wait for something, named for the message it fails with.
#[derive(Debug, Clone)]
pub struct Wait {
    what: String,
    within: Duration,
    every: Duration,
}

/// Starts describing a wait for `what` ("task X to be exported"): [`PATIENCE`] at most,
/// polling every 20 ms.
pub fn wait_for(what: impl Into<String>) -> Wait {
    Wait {
        what: what.into(),
        within: PATIENCE,
        every: Duration::from_millis(20),
    }
}

/// What a probe answers: done with a value, or not yet (with what it saw, for the message).
pub trait Probe {
    /// The value a finished wait returns.
    type Output;
    /// `Ok` when done; `Err` with an optional note on what was seen when not.
    fn settle(self) -> Result<Self::Output, Option<String>>;
}

impl<T> Probe for Option<T> {
    type Output = T;
    fn settle(self) -> Result<T, Option<String>> {
        self.ok_or(None)
    }
}

impl<T, E: Display> Probe for Result<T, E> {
    type Output = T;
    fn settle(self) -> Result<T, Option<String>> {
        self.map_err(|seen| Some(seen.to_string()))
    }
}

impl Wait {
    /// Gives up after `deadline` instead of [`PATIENCE`].
    pub fn within(mut self, deadline: Duration) -> Wait {
        self.within = deadline;
        self
    }

    /// Polls every `interval` instead of every 20 ms.
    pub fn every(mut self, interval: Duration) -> Wait {
        self.every = interval;
        self
    }

    /// Polls `probe` until it is done, sleeping on the runtime between polls; panics after the
    /// deadline with what was awaited and the last thing the probe saw.
    pub async fn until<P, F, Fut>(self, mut probe: F) -> P::Output
    where
        P: Probe,
        F: FnMut() -> Fut,
        Fut: Future<Output = P>,
    {
        let ticker = self.start();
        loop {
            match probe().await.settle() {
                Ok(done) => return done,
                Err(seen) => ticker.tick_seen(seen).await,
            }
        }
    }

    /// [`Wait::until`] for code outside a runtime: sleeps the thread between polls.
    pub fn until_blocking<P: Probe>(self, mut probe: impl FnMut() -> P) -> P::Output {
        let ticker = self.start();
        loop {
            match probe().settle() {
                Ok(done) => return done,
                Err(seen) => ticker.tick_seen_blocking(seen),
            }
        }
    }

    /// Starts the clock, for a loop that polls on its own (one whose probe needs `&mut`
    /// access a closure cannot lend): call [`Ticker::tick`] where it would sleep.
    pub fn start(self) -> Ticker {
        Ticker {
            wait: self,
            started: Instant::now(),
        }
    }
}

/// A started [`Wait`].
#[derive(Debug)]
pub struct Ticker {
    wait: Wait,
    started: Instant,
}

impl Ticker {
    /// Panics when the deadline has passed; otherwise sleeps one interval on the runtime.
    pub async fn tick(&self) {
        self.tick_seen(None).await;
    }

    /// [`Ticker::tick`], with what the loop saw last for the message.
    pub async fn tick_seen(&self, seen: Option<String>) {
        self.check(seen);
        tokio::time::sleep(self.wait.every).await;
    }

    /// [`Ticker::tick_seen`] outside a runtime: sleeps the thread.
    pub fn tick_seen_blocking(&self, seen: Option<String>) {
        self.check(seen);
        std::thread::sleep(self.wait.every);
    }

    fn check(&self, seen: Option<String>) {
        if self.started.elapsed() < self.wait.within {
            return;
        }
        let Wait { what, within, .. } = &self.wait;
        match seen {
            Some(seen) => panic!("gave up after {within:?} waiting for {what}; last seen: {seen}"),
            None => panic!("gave up after {within:?} waiting for {what}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_returns_what_the_probe_found() {
        let mut polls = 0;
        let got = wait_for("the third poll")
            .every(Duration::ZERO)
            .until_blocking(|| {
                polls += 1;
                (polls == 3).then_some(polls)
            });
        assert_eq!(got, 3);
    }

    #[test]
    #[should_panic(expected = "waiting for nothing at all; last seen: still 1")]
    fn a_wait_past_its_deadline_says_what_it_awaited_and_saw() {
        wait_for("nothing at all")
            .within(Duration::ZERO)
            .until_blocking(|| Err::<(), _>("still 1"));
    }
}
