//! When probes and journeys run: each on its interval, at a fixed offset
//! inside it (spread by a hash of its name, so a thousand checks do not all
//! start on the same second, and a restart keeps each one's phase), never
//! overlapping itself (a run still going when the next is due makes that
//! one `skipped`, counted), and at most `concurrency` runs at once (a run
//! due while all slots are busy waits for one, and its lateness is
//! measured). A slow target therefore costs one slot, never a pile of runs.
//!
//! One task keeps a heap of due times; [`Stats`] says how late runs
//! started (the scheduling jitter the benchmark reports) and how many were
//! skipped.
//!
//! Hand-written rather than a cron/scheduler crate: what is needed is a
//! heap of `Instant`s and a semaphore, and the skip/overlap rule above is
//! the point; the crates looked at (tokio-cron-scheduler, clokwerk) schedule
//! by wall-clock expressions and allow overlap.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;

/// One scheduled check.
#[derive(Debug, Clone)]
pub struct Job {
    pub name: String,
    pub interval: Duration,
}

/// The offset of `name`'s runs inside its interval: stable across restarts.
pub fn offset(name: &str, interval: Duration) -> Duration {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    name.hash(&mut h);
    let ms = interval.as_millis().max(1) as u64;
    Duration::from_millis(h.finish() % ms)
}

/// What the scheduler did.
#[derive(Debug, Default)]
pub struct Stats {
    pub started: AtomicU64,
    /// Runs not started because the previous run of the same check was still going.
    pub skipped: AtomicU64,
    /// Lateness of every start (ms), for percentiles; bounded to the newest 65,536.
    lateness_ms: std::sync::Mutex<std::collections::VecDeque<f64>>,
}

const LATENESS_KEPT: usize = 65_536;

impl Stats {
    fn record_lateness(&self, late: Duration) {
        let mut l = self.lateness_ms.lock().unwrap_or_else(|e| e.into_inner());
        if l.len() == LATENESS_KEPT {
            l.pop_front();
        }
        l.push_back(late.as_secs_f64() * 1000.0);
    }

    /// The `q` quantile (0–1) of start lateness in ms, over the kept starts.
    pub fn lateness_quantile_ms(&self, q: f64) -> Option<f64> {
        self.lateness_quantiles_ms(&[q])[0]
    }

    /// Several quantiles of start lateness in ms, from one sorted copy.
    pub fn lateness_quantiles_ms(&self, qs: &[f64]) -> Vec<Option<f64>> {
        let mut v: Vec<f64> = self.lateness_ms.lock().unwrap_or_else(|e| e.into_inner()).iter().copied().collect();
        v.sort_by(f64::total_cmp);
        qs.iter()
            .map(|q| {
                let last = v.len().checked_sub(1)?;
                Some(v[(last as f64 * q.clamp(0.0, 1.0)).round() as usize])
            })
            .collect()
    }
}

/// Run `jobs` until `stop` turns true: `run(index)` is called for each due
/// run of `jobs[index]`. Returns when stopped (runs in progress are left to
/// finish on their own tasks).
pub async fn run<F, Fut>(
    jobs: Vec<Job>,
    concurrency: usize,
    run: F,
    stats: Arc<Stats>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let run = Arc::new(run);
    let slots = Arc::new(Semaphore::new(concurrency.max(1)));
    let running: Arc<Vec<AtomicBool>> = Arc::new(jobs.iter().map(|_| AtomicBool::new(false)).collect());
    let start = Instant::now();
    let mut due: BinaryHeap<Reverse<(Instant, usize)>> =
        jobs.iter().enumerate().map(|(i, j)| Reverse((start + offset(&j.name, j.interval), i))).collect();
    while let Some(Reverse((at, i))) = due.pop() {
        tokio::select! {
            _ = tokio::time::sleep_until(at) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
        // The next run is due one interval later, whatever happens to this one.
        let mut next = at + jobs[i].interval;
        let now = Instant::now();
        while next <= now {
            next += jobs[i].interval;
        }
        due.push(Reverse((next, i)));
        if running[i].swap(true, Ordering::AcqRel) {
            stats.skipped.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            _ = stop.changed() => return,
        };
        stats.record_lateness(Instant::now().saturating_duration_since(at));
        stats.started.fetch_add(1, Ordering::Relaxed);
        let (run, running) = (run.clone(), running.clone());
        tokio::spawn(async move {
            run(i).await;
            running[i].store(false, Ordering::Release);
            drop(permit);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(name: &str, secs: u64) -> Job {
        Job { name: name.into(), interval: Duration::from_secs(secs) }
    }

    #[test]
    fn offsets_are_stable_and_inside_the_interval() {
        let i = Duration::from_secs(30);
        assert_eq!(offset("storefront", i), offset("storefront", i));
        let spread: std::collections::BTreeSet<u128> =
            (0..100).map(|n| offset(&format!("probe-{n}"), i).as_millis() / 1000).collect();
        assert!(spread.len() > 20, "offsets spread over the interval: {spread:?}");
        assert!((0..100).all(|n| offset(&format!("p{n}"), i) < i));
    }

    /// On a paused clock: each job runs once per interval; a run that takes
    /// longer than its interval makes the next one skipped, not doubled.
    #[tokio::test(start_paused = true)]
    async fn runs_keep_their_interval_and_never_overlap() {
        let counts: Arc<Vec<AtomicU64>> = Arc::new((0..2).map(|_| AtomicU64::new(0)).collect());
        let c = counts.clone();
        let stats = Arc::new(Stats::default());
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let jobs = vec![job("fast", 10), job("slow", 10)];
        let task = tokio::spawn(run(
            jobs,
            4,
            move |i| {
                let c = c.clone();
                async move {
                    c[i].fetch_add(1, Ordering::SeqCst);
                    // The slow target takes 25 s: two of its next runs are due meanwhile.
                    let took = if i == 1 { 25 } else { 1 };
                    tokio::time::sleep(Duration::from_secs(took)).await;
                }
            },
            stats.clone(),
            stop_rx,
        ));
        tokio::time::sleep(Duration::from_secs(100)).await;
        stop_tx.send(true).unwrap();
        task.await.unwrap();
        let fast = counts[0].load(Ordering::SeqCst);
        let slow = counts[1].load(Ordering::SeqCst);
        assert!((10..=11).contains(&fast), "fast ran {fast} times in 100 s");
        // Every 30 s: it runs, its next two due times are skipped.
        assert!((3..=4).contains(&slow), "slow ran {slow} times");
        assert!(stats.skipped.load(Ordering::SeqCst) >= 6, "{:?}", stats.skipped);
        assert_eq!(stats.lateness_quantile_ms(0.99), Some(0.0), "a paused clock starts everything on time");
    }

    /// With one slot, a due run waits for it, and its lateness is measured.
    #[tokio::test(start_paused = true)]
    async fn a_full_set_of_slots_delays_runs_and_the_delay_is_measured() {
        let stats = Arc::new(Stats::default());
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        // The same name: the same offset, so all three are due at once.
        let jobs: Vec<Job> = (0..3).map(|_| job("same", 60)).collect();
        let task = tokio::spawn(run(
            jobs,
            1,
            |_| async { tokio::time::sleep(Duration::from_secs(5)).await },
            stats.clone(),
            stop_rx,
        ));
        tokio::time::sleep(Duration::from_secs(59)).await;
        stop_tx.send(true).unwrap();
        task.await.unwrap();
        let at = offset("same", Duration::from_secs(60));
        assert!(at < Duration::from_secs(45), "pick a name whose offset leaves room: {at:?}");
        assert_eq!(stats.started.load(Ordering::SeqCst), 3);
        // One slot: the second waits one run (5 s), the third two.
        assert_eq!(stats.lateness_quantile_ms(0.0), Some(0.0));
        assert_eq!(stats.lateness_quantile_ms(0.5), Some(5_000.0));
        assert_eq!(stats.lateness_quantile_ms(1.0), Some(10_000.0));
    }
}
