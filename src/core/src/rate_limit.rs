//! Token-bucket rate limiting keyed by user ID (or client IP for unauthenticated requests).
//! Each homeserver has its own limiter; limits are process-local.

use std::num::NonZeroU32;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter as Governor, clock::Clock};
use http::StatusCode;
use ruma::api::error::{ErrorKind, LimitExceededErrorData, RetryAfter};

use crate::{Error, Result, config::RateLimitConfig};

/// The limiter of one homeserver; `None` inside when limits are off.
pub struct RateLimiter(Option<DefaultKeyedRateLimiter<String>>);

impl RateLimiter {
    /// Builds the limiter from configuration.
    pub fn new(config: &RateLimitConfig) -> Self {
        let limiter =
            match (config.enabled, NonZeroU32::new(config.per_second), NonZeroU32::new(config.burst)) {
                (true, Some(rate), Some(burst)) => {
                    Some(Governor::keyed(Quota::per_second(rate).allow_burst(burst)))
                }
                _ => None,
            };
        RateLimiter(limiter)
    }

    /// Takes one request from `key`'s bucket, or fails with 429 `M_LIMIT_EXCEEDED`.
    pub fn check(&self, key: &str) -> Result<()> {
        let Some(limiter) = &self.0 else { return Ok(()) };
        limiter.check_key(&key.to_owned()).map_err(|not_until| {
            let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
            let mut data = LimitExceededErrorData::new();
            data.retry_after = Some(RetryAfter::Delay(wait.max(std::time::Duration::from_millis(1))));
            Error::matrix(StatusCode::TOO_MANY_REQUESTS, ErrorKind::LimitExceeded(data), "Too many requests")
        })
    }
}
