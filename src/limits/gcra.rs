//! GCRA over several windows in one all-or-nothing step: a request is admitted only when every
//! window admits it, and only then is any window charged (a refusal in the per-day window must
//! not spend per-second capacity — Unkey #1995). Pure arithmetic on theoretical arrival times in
//! microseconds, shared by the in-memory limiter and mirrored line by line in the Redis script.

/// One window of a policy: at most `capacity` requests at once, refilled at `limit` per `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// `second`, `minute`, `hour`, `day` (the name in headers and errors).
    pub name: &'static str,
    pub period_ms: i64,
    pub limit: u64,
    /// `limit` plus the burst allowance (the burst applies to the shortest window).
    pub capacity: u64,
    /// Charged the query's cost in points (the query-cost bucket) instead of one per request.
    pub points: bool,
}

impl Window {
    /// Microseconds between two requests at the sustained rate.
    pub fn interval_us(&self) -> i64 {
        ((self.period_ms * 1000) / self.limit.max(1) as i64).max(1)
    }
}

/// The state of one window after a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowState {
    pub remaining: u64,
    /// Milliseconds until the window is back to full capacity.
    pub reset_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub allowed: bool,
    pub windows: Vec<WindowState>,
    /// When refused: milliseconds until the request would be admitted.
    pub retry_after_ms: i64,
    /// Index of the window that refused (or, when admitted, the one closest to refusing).
    pub binding: usize,
}

/// Decides for `cost` units at `now_us` against `tats` (one theoretical arrival time per window,
/// 0 = never used), updating `tats` only when every window admits.
/// Request windows are charged `cost` (at least 1); points windows are charged `points`.
pub fn decide(windows: &[Window], tats: &mut [i64], now_us: i64, cost: u64, points: u64) -> Outcome {
    let cost = cost.max(1) as i64;
    let mut allowed = true;
    let mut retry_after_us = 0i64;
    let mut new_tats = Vec::with_capacity(windows.len());
    let mut binding = 0usize;
    for (i, w) in windows.iter().enumerate() {
        let interval = w.interval_us();
        let cap = (w.capacity.min(i64::MAX as u64) as i64).saturating_mul(interval);
        let tat = tats[i].max(now_us);
        let charge = if w.points { points as i64 } else { cost };
        let new_tat = tat.saturating_add(charge.saturating_mul(interval));
        if new_tat - now_us > cap {
            if allowed || new_tat - cap - now_us > retry_after_us {
                binding = i;
            }
            allowed = false;
            retry_after_us = retry_after_us.max(new_tat - cap - now_us);
        }
        new_tats.push(new_tat);
    }
    if allowed {
        tats.copy_from_slice(&new_tats);
    }
    let states = states(windows, tats, now_us);
    if allowed {
        binding = binding_of(windows, &states);
    }
    Outcome { allowed, windows: states, retry_after_ms: (retry_after_us + 999) / 1000, binding }
}

/// Window states from arrival times, charging nothing.
pub fn states(windows: &[Window], tats: &[i64], now_us: i64) -> Vec<WindowState> {
    windows
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let interval = w.interval_us();
            let cap = (w.capacity.min(i64::MAX as u64) as i64).saturating_mul(interval);
            let used = tats.get(i).copied().unwrap_or(0).max(now_us) - now_us;
            WindowState { remaining: ((cap - used).max(0) / interval) as u64, reset_ms: (used + 999) / 1000 }
        })
        .collect()
}

/// The request window closest to refusing: the least remaining share of its capacity. It binds
/// the headers (a points window binds only when there is nothing else).
pub fn binding_of(windows: &[Window], states: &[WindowState]) -> usize {
    let has_requests = windows.iter().any(|w| !w.points);
    (0..windows.len())
        .filter(|&i| !has_requests || !windows[i].points)
        .min_by(|&a, &b| {
            let ra = states[a].remaining as u128 * windows[b].capacity as u128;
            let rb = states[b].remaining as u128 * windows[a].capacity as u128;
            ra.cmp(&rb)
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn second(limit: u64, burst: u64) -> Window {
        Window { name: "second", period_ms: 1000, limit, capacity: limit + burst, points: false }
    }

    fn minute(limit: u64) -> Window {
        Window { name: "minute", period_ms: 60_000, limit, capacity: limit, points: false }
    }

    #[test]
    fn admits_capacity_at_once_then_refills_at_the_rate() {
        let w = [second(10, 5)];
        let mut tats = [0];
        let now = 1_000_000_000;
        for i in 0..15 {
            let o = decide(&w, &mut tats, now, 1, 0);
            assert!(o.allowed, "request {i} within limit + burst");
            assert_eq!(o.windows[0].remaining, 14 - i);
        }
        let o = decide(&w, &mut tats, now, 1, 0);
        assert!(!o.allowed);
        assert_eq!(o.retry_after_ms, 100, "one request refills every 100 ms");
        assert!(!decide(&w, &mut tats, now + 99_000, 1, 0).allowed);
        assert!(decide(&w, &mut tats, now + 100_000, 1, 0).allowed);
    }

    #[test]
    fn a_refusal_in_one_window_charges_no_window() {
        let w = [second(10, 0), minute(3)];
        let mut tats = [0, 0];
        let now = 5_000_000_000;
        for _ in 0..3 {
            assert!(decide(&w, &mut tats, now, 1, 0).allowed);
        }
        let before = tats;
        let o = decide(&w, &mut tats, now, 1, 0);
        assert!(!o.allowed);
        assert_eq!(o.binding, 1, "the minute window refused");
        assert_eq!(tats, before, "nothing was charged");
        assert_eq!(o.windows[0].remaining, 7, "the per-second window kept its capacity");
        assert_eq!(o.retry_after_ms, 20_000);
    }

    #[test]
    fn cost_above_one_spends_several_units_or_none() {
        let w = [second(10, 0)];
        let mut tats = [0];
        assert!(decide(&w, &mut tats, 0, 8, 0).allowed);
        assert!(!decide(&w, &mut tats, 0, 3, 0).allowed);
        assert_eq!(decide(&w, &mut tats, 0, 2, 0).windows[0].remaining, 0);
    }
}
