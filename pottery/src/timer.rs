//! `ContextTimer`: pottery's wall-clock timer, with its state machine and its errors.

use std::fmt;
use std::time::{Duration, Instant};

/// A call made in the wrong state: starting twice, stopping before starting, and so on
/// (pottery's `RuntimeError`s, with the same messages).
///
/// ```
/// use pottery::{ContextTimer, TimerError};
///
/// let mut timer = ContextTimer::new();
/// assert_eq!(timer.stop(), Err(TimerError::NotStarted));
/// assert_eq!(TimerError::NotStarted.to_string(), "timer hasn't yet been started");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TimerError {
    /// `start` on a running timer.
    AlreadyStarted,
    /// `start` or `stop` on a stopped timer.
    AlreadyStopped,
    /// `stop` or `elapsed` on a timer never started.
    NotStarted,
}

impl fmt::Display for TimerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimerError::AlreadyStarted => "timer has already been started",
            TimerError::AlreadyStopped => "timer has already been stopped",
            TimerError::NotStarted => "timer hasn't yet been started",
        })
    }
}

impl std::error::Error for TimerError {}

/// Measures wall time, as Python pottery's `ContextTimer`: `new` → `start` → `stop`, once;
/// `elapsed` reads the running or final time in whole milliseconds. A timer is not restarted:
/// make a new one.
///
/// [`scope`](Self::scope) is pottery's `with timer:` — it starts the timer and stops it when
/// the guard is dropped, however the scope ends. It uses a monotonic clock ([`Instant`]).
///
/// ```
/// use std::time::Duration;
/// use pottery::ContextTimer;
///
/// let mut timer = ContextTimer::new();
/// {
///     let _running = timer.scope()?;
///     std::thread::sleep(Duration::from_millis(20));
/// }
/// assert!(timer.elapsed()? >= 20);
/// assert!(timer.start().is_err()); // stopped for good
/// # Ok::<(), pottery::TimerError>(())
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct ContextTimer {
    started: Option<Instant>,
    stopped: Option<Instant>,
}

impl ContextTimer {
    /// A timer that has not started.
    ///
    /// ```
    /// let timer = pottery::ContextTimer::new();
    /// assert!(timer.elapsed().is_err());
    /// ```
    pub fn new() -> Self {
        ContextTimer::default()
    }

    /// A timer started now.
    ///
    /// ```
    /// let timer = pottery::ContextTimer::started();
    /// assert!(timer.is_running());
    /// ```
    pub fn started() -> Self {
        ContextTimer {
            started: Some(Instant::now()),
            stopped: None,
        }
    }

    /// Starts the timer.
    ///
    /// ```
    /// let mut timer = pottery::ContextTimer::new();
    /// timer.start()?;
    /// assert_eq!(timer.start(), Err(pottery::TimerError::AlreadyStarted));
    /// # Ok::<(), pottery::TimerError>(())
    /// ```
    pub fn start(&mut self) -> Result<(), TimerError> {
        match (self.started, self.stopped) {
            (_, Some(_)) => Err(TimerError::AlreadyStopped),
            (Some(_), None) => Err(TimerError::AlreadyStarted),
            (None, None) => {
                self.started = Some(Instant::now());
                Ok(())
            }
        }
    }

    /// Stops the timer; `elapsed` then stays fixed.
    ///
    /// ```
    /// let mut timer = pottery::ContextTimer::started();
    /// timer.stop()?;
    /// assert_eq!(timer.stop(), Err(pottery::TimerError::AlreadyStopped));
    /// # Ok::<(), pottery::TimerError>(())
    /// ```
    pub fn stop(&mut self) -> Result<(), TimerError> {
        match (self.started, self.stopped) {
            (_, Some(_)) => Err(TimerError::AlreadyStopped),
            (None, None) => Err(TimerError::NotStarted),
            (Some(_), None) => {
                self.stopped = Some(Instant::now());
                Ok(())
            }
        }
    }

    /// Whether the timer has started and not stopped.
    ///
    /// ```
    /// let mut timer = pottery::ContextTimer::new();
    /// assert!(!timer.is_running());
    /// timer.start()?;
    /// assert!(timer.is_running());
    /// # Ok::<(), pottery::TimerError>(())
    /// ```
    pub fn is_running(&self) -> bool {
        self.started.is_some() && self.stopped.is_none()
    }

    /// The time from start to stop (or to now, while running).
    ///
    /// ```
    /// let timer = pottery::ContextTimer::started();
    /// assert!(timer.elapsed_duration()? < std::time::Duration::from_secs(60));
    /// # Ok::<(), pottery::TimerError>(())
    /// ```
    pub fn elapsed_duration(&self) -> Result<Duration, TimerError> {
        let started = self.started.ok_or(TimerError::NotStarted)?;
        Ok(self.stopped.unwrap_or_else(Instant::now) - started)
    }

    /// The elapsed time in whole milliseconds, rounded half to even as Python's `round` does.
    ///
    /// ```
    /// let mut timer = pottery::ContextTimer::started();
    /// timer.stop()?;
    /// assert!(timer.elapsed()? < 1000);
    /// # Ok::<(), pottery::TimerError>(())
    /// ```
    pub fn elapsed(&self) -> Result<u64, TimerError> {
        Ok(millis(self.elapsed_duration()?))
    }

    /// Starts the timer and returns a guard that stops it when dropped (pottery's
    /// `with timer:`). A started or stopped timer cannot be scoped.
    ///
    /// ```
    /// let mut timer = pottery::ContextTimer::new();
    /// {
    ///     let running = timer.scope()?;
    ///     assert!(running.elapsed_duration() < std::time::Duration::from_secs(60));
    /// }
    /// assert!(!timer.is_running());
    /// assert!(timer.scope().is_err());
    /// # Ok::<(), pottery::TimerError>(())
    /// ```
    pub fn scope(&mut self) -> Result<TimerScope<'_>, TimerError> {
        self.start()?;
        Ok(TimerScope { timer: self })
    }

    /// Runs `f` and returns its result with the wall time it took.
    ///
    /// ```
    /// let (sum, took) = pottery::ContextTimer::time(|| (1..=10).sum::<u32>());
    /// assert_eq!(sum, 55);
    /// assert!(took < std::time::Duration::from_secs(60));
    /// ```
    pub fn time<R>(f: impl FnOnce() -> R) -> (R, Duration) {
        let started = Instant::now();
        let out = f();
        (out, started.elapsed())
    }
}

/// Python's `round(seconds * 1000)`: to the nearest millisecond, ties to even.
fn millis(d: Duration) -> u64 {
    (d.as_secs_f64() * 1000.0).round_ties_even() as u64
}

/// A running [`ContextTimer`] that stops when dropped; made by [`ContextTimer::scope`].
///
/// ```
/// let mut timer = pottery::ContextTimer::new();
/// let guard: pottery::TimerScope<'_> = timer.scope()?;
/// drop(guard);
/// assert!(timer.elapsed().is_ok());
/// # Ok::<(), pottery::TimerError>(())
/// ```
#[derive(Debug)]
pub struct TimerScope<'a> {
    timer: &'a mut ContextTimer,
}

impl TimerScope<'_> {
    /// The time since the scope started.
    ///
    /// ```
    /// let mut timer = pottery::ContextTimer::new();
    /// let running = timer.scope()?;
    /// assert!(running.elapsed_duration().as_secs() < 60);
    /// # Ok::<(), pottery::TimerError>(())
    /// ```
    pub fn elapsed_duration(&self) -> Duration {
        self.timer.elapsed_duration().unwrap_or_default()
    }

    /// The time since the scope started, in whole milliseconds.
    ///
    /// ```
    /// let mut timer = pottery::ContextTimer::new();
    /// let running = timer.scope()?;
    /// assert!(running.elapsed() < 60_000);
    /// # Ok::<(), pottery::TimerError>(())
    /// ```
    pub fn elapsed(&self) -> u64 {
        millis(self.elapsed_duration())
    }
}

impl Drop for TimerScope<'_> {
    fn drop(&mut self) {
        // The scope started the timer and holds it exclusively: it is running, so this
        // succeeds.
        let _ = self.timer.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_machine_as_pottery() {
        let mut t = ContextTimer::new();
        assert_eq!(t.elapsed(), Err(TimerError::NotStarted));
        assert_eq!(t.stop(), Err(TimerError::NotStarted));
        t.start().unwrap();
        assert_eq!(t.start(), Err(TimerError::AlreadyStarted));
        t.stop().unwrap();
        assert_eq!(t.stop(), Err(TimerError::AlreadyStopped));
        assert_eq!(t.start(), Err(TimerError::AlreadyStopped));
        let frozen = t.elapsed_duration().unwrap();
        assert_eq!(t.elapsed_duration().unwrap(), frozen);
    }

    #[test]
    fn rounding_is_pythons() {
        assert_eq!(millis(Duration::from_micros(2500)), 2);
        assert_eq!(millis(Duration::from_micros(3500)), 4);
        assert_eq!(millis(Duration::from_micros(3499)), 3);
        assert_eq!(millis(Duration::from_micros(3501)), 4);
    }

    #[test]
    fn scope_stops_even_on_panic() {
        let mut t = ContextTimer::new();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _s = t.scope().unwrap();
            panic!("boom");
        }));
        assert!(r.is_err());
        assert!(!t.is_running());
        assert!(t.elapsed().is_ok());
    }
}
