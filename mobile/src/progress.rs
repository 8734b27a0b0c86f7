//! Live progress of a sync, for the sync bar: what the sync is doing
//! (sending changes, receiving page k, photo k of n), the bytes of the
//! current photo and of the whole photo queue, the speed and the time left.
//! The sync engine reports into a [`Tracker`]; whoever shows it holds the
//! receiving end of a `tokio::sync::watch` channel and sees the latest
//! state (a slow screen skips states, it never queues them).

use std::time::{Duration, Instant};

use tokio::sync::watch;

/// What a sync is doing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Stage {
    /// No sync running.
    #[default]
    Idle,
    /// Sending this device's changes (request `round` of the sync).
    Sending { round: u32 },
    /// Receiving the server's changes, page `page` (from 1).
    Receiving { page: u32 },
    /// Uploading photo `index` (from 1) of `count`.
    Photos { index: usize, count: usize },
    /// Finished: everything sent and received.
    Done,
}

/// A sync's progress as the bar shows it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Progress {
    pub stage: Stage,
    /// Bytes of the current photo on the server, and its size.
    pub photo: (u64, u64),
    /// Bytes of this sync's photo queue on the server, and the queue's size.
    pub queue: (u64, u64),
    /// Bytes sent and received so far by this sync (requests, answers,
    /// photos).
    pub bytes: u64,
    /// Bytes per second since the sync started (none in its first instant).
    pub bytes_per_sec: Option<f64>,
    /// Time left for the photo queue at that speed.
    pub left: Option<Duration>,
}

impl Progress {
    /// The photo queue's share sent, from 0 to 1 (1 for an empty queue).
    pub fn queue_fraction(&self) -> f64 {
        fraction(self.queue)
    }

    /// The current photo's share sent, from 0 to 1.
    pub fn photo_fraction(&self) -> f64 {
        fraction(self.photo)
    }
}

fn fraction((done, total): (u64, u64)) -> f64 {
    if total == 0 {
        1.0
    } else {
        (done as f64 / total as f64).clamp(0.0, 1.0)
    }
}

/// Where a sync reports its progress: the engine owns one per sync (a
/// clone goes with a photo's upload body); without a receiver, reports
/// cost next to nothing.
#[derive(Clone)]
pub struct Tracker {
    tx: watch::Sender<Progress>,
    started: Instant,
}

impl Tracker {
    /// A tracker publishing to `tx`, starting now.
    pub fn new(tx: watch::Sender<Progress>) -> Self {
        let started = Instant::now();
        tx.send_replace(Progress::default());
        Self { tx, started }
    }

    /// A tracker nobody watches (syncs from the command line, tests).
    pub fn unwatched() -> Self {
        Self::new(watch::channel(Progress::default()).0)
    }

    /// The latest state.
    pub fn current(&self) -> Progress {
        self.tx.borrow().clone()
    }

    /// The sync moved to `stage`.
    pub fn stage(&self, stage: Stage) {
        self.update(|p| {
            p.stage = stage;
            if stage == Stage::Done {
                p.queue.0 = p.queue.1;
                p.photo.0 = p.photo.1;
                p.left = Some(Duration::ZERO);
            }
        });
    }

    /// `n` more bytes crossed the network (either way).
    pub fn transferred(&self, n: u64) {
        self.update(|p| p.bytes += n);
    }

    /// The photo queue of this sync: its total size.
    pub fn queue(&self, total: u64) {
        self.update(|p| p.queue = (0, total));
    }

    /// Photo `index` of `count` starts, of `size` bytes of which the server
    /// already holds `on_server` (a resumed upload).
    pub fn photo(&self, index: usize, count: usize, size: u64, on_server: u64) {
        self.update(|p| {
            p.stage = Stage::Photos { index, count };
            p.photo = (on_server.min(size), size);
            p.queue.0 = (p.queue.0 + on_server.min(size)).min(p.queue.1);
        });
    }

    /// `n` more bytes of the current photo were sent.
    pub fn photo_sent(&self, n: u64) {
        self.update(|p| {
            p.photo.0 = (p.photo.0 + n).min(p.photo.1);
            p.queue.0 = (p.queue.0 + n).min(p.queue.1);
            p.bytes += n;
        });
    }

    /// The current photo's bytes the server did not keep (a cut upload
    /// that resumes from an earlier offset): taken back from the figures,
    /// which then only go forward again.
    pub fn photo_rewound(&self, to: u64) {
        self.update(|p| {
            let back = p.photo.0.saturating_sub(to);
            p.photo.0 -= back;
            p.queue.0 = p.queue.0.saturating_sub(back);
        });
    }

    /// Time passed with nothing else to report (a request waiting on a
    /// slow link): the speed and the time left are brought up to date.
    pub fn tick(&self) {
        self.update(|_| {});
    }

    fn update(&self, f: impl FnOnce(&mut Progress)) {
        let elapsed = self.started.elapsed().as_secs_f64();
        self.tx.send_modify(|p| {
            f(p);
            if elapsed > 0.2 && p.bytes > 0 {
                let speed = p.bytes as f64 / elapsed;
                p.bytes_per_sec = Some(speed);
                if p.stage != Stage::Done {
                    let rest = p.queue.1.saturating_sub(p.queue.0) as f64;
                    p.left = Some(Duration::from_secs_f64(rest / speed));
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_goes_forward_with_each_photo_and_ends_at_all_sent() {
        let (tx, rx) = watch::channel(Progress::default());
        let t = Tracker::new(tx);
        t.stage(Stage::Sending { round: 1 });
        t.queue(300);
        t.photo(1, 2, 100, 0);
        t.photo_sent(60);
        assert_eq!(rx.borrow().photo, (60, 100));
        assert_eq!(rx.borrow().queue, (60, 300));
        t.photo_sent(40);
        t.photo(2, 2, 200, 50);
        assert_eq!(rx.borrow().queue, (150, 300), "the resumed part counts");
        assert_eq!(rx.borrow().stage, Stage::Photos { index: 2, count: 2 });
        t.photo_sent(150);
        t.stage(Stage::Done);
        let p = rx.borrow().clone();
        assert_eq!((p.queue_fraction(), p.photo_fraction()), (1.0, 1.0));
        assert_eq!(p.left, Some(Duration::ZERO));
    }

    #[test]
    fn a_cut_upload_takes_back_what_the_server_did_not_keep() {
        let t = Tracker::unwatched();
        t.queue(100);
        t.photo(1, 1, 100, 0);
        t.photo_sent(80);
        t.photo_rewound(50);
        let p = t.current();
        assert_eq!((p.photo, p.queue), ((50, 100), (50, 100)));
        assert_eq!(p.bytes, 80, "bytes that crossed the network stay counted");
    }

    #[test]
    fn an_empty_queue_reads_as_complete() {
        assert_eq!(Progress::default().queue_fraction(), 1.0);
    }
}
