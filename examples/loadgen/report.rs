//! What a run of the load generator saw, and the one line it prints.

use std::thread;
use std::time::{Duration, Instant};

use namaste::wire::Request;

use super::Server;

/// What a run saw.
#[derive(Default)]
pub struct Tally {
    pub cycles: u64,
    pub latencies_us: Vec<u32>,
    pub errors: u64,
    pub wrong: u64,
    pub violations: u64,
}

impl Tally {
    pub fn merge(&mut self, other: Tally) {
        self.cycles += other.cycles;
        self.latencies_us.extend(other.latencies_us);
        self.errors += other.errors;
        self.wrong += other.wrong;
        self.violations += other.violations;
    }

    /// Times a book; counts an error when there is no reply.
    pub fn timed_ask(&mut self, server: &Server, request: &Request) -> Option<u8> {
        self.timed(|| server.ask(request))
    }

    /// Times one request made by `ask`; counts an error when there is no
    /// reply.
    pub fn timed<T>(&mut self, ask: impl FnOnce() -> Option<T>) -> Option<T> {
        let started = Instant::now();
        let reply = ask();
        let micros = started.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
        self.latencies_us.push(micros);
        if reply.is_none() {
            self.errors += 1;
        }
        reply
    }
}

/// A run's tally with the server's CPU time and memory around it.
pub struct Report {
    pub tally: Tally,
    pub elapsed: Duration,
    pub cpu: Option<Duration>,
    pub rss_start: Option<u64>,
    pub rss_end: Option<u64>,
    pub extra: String,
}

impl Report {
    pub fn measure(server: &Server, run: impl FnOnce() -> Tally) -> Report {
        let (rss_start, cpu_start) = (server.rss_kib(), server.cpu());
        let started = Instant::now();
        let tally = run();
        let elapsed = started.elapsed();
        let cpu = server.cpu().zip(cpu_start).map(|(end, start)| end - start);
        Report {
            tally,
            elapsed,
            cpu,
            rss_start,
            rss_end: server.rss_kib(),
            extra: String::new(),
        }
    }

    pub fn clean(&self) -> bool {
        self.tally.errors == 0 && self.tally.wrong == 0 && self.tally.violations == 0
    }

    pub fn line(&self) -> String {
        let t = &self.tally;
        let mut sorted = t.latencies_us.clone();
        sorted.sort_unstable();
        let pct = |p: f64| -> u32 {
            if sorted.is_empty() {
                return 0;
            }
            sorted[((sorted.len() - 1) as f64 * p).round() as usize]
        };
        let cpu_per_cycle = self
            .cpu
            .filter(|_| t.cycles > 0)
            .map(|cpu| (cpu.as_secs_f64() * 1e6 / t.cycles as f64).round() as u64);
        format!(
            "cycles={} seconds={:.2} rate={:.0} p50_us={} p90_us={} p99_us={} max_us={} errors={} wrong={} violations={} cpu_us_per_cycle={} rss_start_kib={} rss_end_kib={}{}",
            t.cycles,
            self.elapsed.as_secs_f64(),
            t.cycles as f64 / self.elapsed.as_secs_f64(),
            pct(0.5),
            pct(0.9),
            pct(0.99),
            sorted.last().copied().unwrap_or(0),
            t.errors,
            t.wrong,
            t.violations,
            show(cpu_per_cycle),
            show(self.rss_start),
            show(self.rss_end),
            self.extra
        )
    }
}

/// A measurement, or `-` when it could not be taken.
pub fn show(value: Option<u64>) -> String {
    value.map_or("-".to_string(), |v| v.to_string())
}

/// Runs `work` on `workers` threads and adds up what they saw.
pub fn on_workers(workers: usize, work: impl Fn() -> Tally + Sync) -> Tally {
    let mut total = Tally::default();
    thread::scope(|scope| {
        let handles: Vec<_> = (0..workers).map(|_| scope.spawn(&work)).collect();
        for handle in handles {
            total.merge(handle.join().expect("worker panicked"));
        }
    });
    total
}
