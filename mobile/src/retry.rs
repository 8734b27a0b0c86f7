//! When the automatic sync tries again. While the server answers, every
//! [`Backoff::STEPS`]`[0]`; while it cannot be reached (no network, a
//! basement, a dead zone), longer and longer waits up to five minutes, so a
//! phone out of coverage does not wake its radio every 15 s all day. A tap
//! on "Synchroniser" (or the platform telling the app the network is back)
//! syncs at once and starts over.

use std::time::Duration;

/// The automatic sync's waits: what comes after each outcome.
#[derive(Debug, Default, Clone)]
pub struct Backoff {
    /// Syncs in a row that could not reach the server.
    failures: usize,
}

impl Backoff {
    /// The waits after 0, 1, 2, 3, 4 and more failed syncs in a row.
    pub const STEPS: [Duration; 6] = [
        Duration::from_secs(15),
        Duration::from_secs(15),
        Duration::from_secs(30),
        Duration::from_secs(60),
        Duration::from_secs(120),
        Duration::from_secs(300),
    ];

    /// The wait before the next automatic sync, after one that reached the
    /// server (`reached`) or not.
    pub fn after(&mut self, reached: bool) -> Duration {
        if reached {
            self.failures = 0;
        } else {
            self.failures += 1;
        }
        Self::STEPS[self.failures.min(Self::STEPS.len() - 1)]
    }

    /// Syncs in a row that could not reach the server.
    pub fn failures(&self) -> usize {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(d: Duration) -> u64 {
        d.as_secs()
    }

    #[test]
    fn waits_grow_while_the_server_is_unreachable_and_stop_at_five_minutes() {
        let mut b = Backoff::default();
        let waits: Vec<u64> = (0..7).map(|_| secs(b.after(false))).collect();
        assert_eq!(waits, [15, 30, 60, 120, 300, 300, 300]);
        assert_eq!(b.failures(), 7);
    }

    #[test]
    fn a_sync_that_reaches_the_server_starts_over_at_fifteen_seconds() {
        let mut b = Backoff::default();
        assert_eq!(secs(b.after(true)), 15);
        for _ in 0..4 {
            b.after(false);
        }
        assert_eq!(secs(b.after(true)), 15);
        assert_eq!(secs(b.after(false)), 15, "first failure after a success");
        assert_eq!(secs(b.after(false)), 30);
    }
}
