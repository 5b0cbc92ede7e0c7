//! `#[writer(retry)]`: re-running a whole outermost transaction.

use super::*;

/// Re-run `attempt` while it fails with a retryable error, up to the
/// policy's limit and `max_duration` after the first attempt began,
/// sleeping with capped exponential backoff and full jitter.
pub(crate) fn with_retry<C, R, E>(
    facade: &Facade<C>,
    policy: RetryPolicy,
    mut attempt: impl FnMut() -> Attempt<R, E>,
) -> Result<R, E>
where
    C: SupportedConnection,
{
    let mut retries = Retries::new(&facade.inner.retry, policy);
    loop {
        let outcome = attempt();
        if !retries.again(outcome.retry, &facade.inner.counters) {
            return outcome.result;
        }
    }
}

/// The retry loop's state and decisions, apart from the attempt itself.
struct Retries<'a> {
    settings: &'a RetrySettings,
    max: u32,
    started: Instant,
    done: u32,
}

impl<'a> Retries<'a> {
    fn new(settings: &'a RetrySettings, policy: RetryPolicy) -> Self {
        Retries {
            settings,
            max: policy.max_retries.unwrap_or(settings.max_retries),
            started: Instant::now(),
            done: 0,
        }
    }

    /// Whether to run the attempt again after it failed with `retry` (`None`:
    /// not retryable); sleeps the backoff first when so.
    fn again(&mut self, retry: Option<(ErrorKind, String)>, counters: &Counters) -> bool {
        let settings = self.settings;
        let delay = backoff(
            self.done + 1,
            settings.initial_backoff,
            settings.max_backoff,
        );
        let in_time = self.started.elapsed().saturating_add(delay) <= settings.max_duration;
        match retry {
            Some((kind, message)) if self.done < self.max && in_time => {
                self.done += 1;
                Counters::bump(&counters.retries);
                tracing::warn!(
                    attempt = self.done + 1,
                    max_attempts = self.max + 1,
                    error_kind = ?kind,
                    error = %message,
                    delay_us = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX),
                    "retrying transaction"
                );
                std::thread::sleep(delay);
                true
            }
            Some((kind, _)) if self.done < self.max => {
                tracing::warn!(
                    attempts = self.done + 1,
                    error_kind = ?kind,
                    max_retry_duration = ?settings.max_duration,
                    "not retrying: max_retry_duration reached"
                );
                false
            }
            _ => false,
        }
    }
}

fn backoff(retry: u32, initial: Duration, max: Duration) -> Duration {
    let exp = initial.saturating_mul(1u32 << (retry - 1).min(20));
    let cap = exp.min(max);
    let nanos = u64::try_from(cap.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(fastrand::u64(0..=nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_capped_and_jittered() {
        let initial = Duration::from_millis(5);
        let max = Duration::from_millis(100);
        for retry in 1..40 {
            let d = backoff(retry, initial, max);
            assert!(d <= max, "{d:?}");
            let exp = initial.saturating_mul(1 << (retry - 1).min(20)).min(max);
            assert!(d <= exp);
        }
    }
}
