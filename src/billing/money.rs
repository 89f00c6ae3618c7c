//! Billing arithmetic, pure and integer only: proration to the second, tier models (graduated,
//! volume, package) and the one rounding step of each invoice line. Amounts are minor units
//! (cents); unit prices that need fractions of a cent are micro-units, millionths of the
//! currency's major unit (10,000 per cent). Products are taken in `i128`, so nothing overflows.

use serde::{Deserialize, Serialize};

/// Micro-units in one minor unit (currencies with two decimals).
pub const MICROS_PER_CENT: i64 = 10_000;

/// `num / den` rounded half up (halves away from zero), for `den > 0`.
pub fn div_round(num: i128, den: i128) -> i128 {
    debug_assert!(den > 0);
    let (q, r) = (num / den, num % den);
    if 2 * r.abs() >= den { q + num.signum() } else { q }
}

/// A line's amount in cents from its quantity and unit price in micro-units: the one rounding.
pub fn line_amount(quantity: i64, unit_price_micros: i64) -> i64 {
    div_round(quantity as i128 * unit_price_micros as i128, MICROS_PER_CENT as i128) as i64
}

/// The share of `amount_cents` (a price for `[start, end)`) that falls in `[from, end)`, to the
/// second, as a unit price in micro-units. `from` outside the period is clamped to it.
pub fn prorate_micros(amount_cents: i64, start_ms: i64, end_ms: i64, from_ms: i64) -> i64 {
    let (start, end) = (start_ms.div_euclid(1000), end_ms.div_euclid(1000));
    let total = end - start;
    if total <= 0 {
        return 0;
    }
    // Whole seconds: the second that has begun counts as used.
    let left = (end - from_ms.div_euclid(1000).clamp(start, end)).clamp(0, total);
    div_round(amount_cents as i128 * MICROS_PER_CENT as i128 * left as i128, total as i128) as i64
}

/// How a metric's quantity is priced across tiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TierModel {
    /// Each unit at the price of the tier it falls in (the overage of the request quota).
    #[default]
    Graduated,
    /// Every unit at the price of the tier the total falls in.
    Volume,
    /// `package_size` units at a time, each started package charged whole at the first tier's
    /// price per package.
    Package,
}

/// One tier: units up to `up_to` (the last has none) at `unit_price_micros` each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tier {
    pub up_to: Option<i64>,
    pub unit_price_micros: i64,
}

/// Why a list of tiers is refused.
pub fn validate_tiers(tiers: &[Tier]) -> Result<(), String> {
    let mut last = 0i64;
    for (i, t) in tiers.iter().enumerate() {
        if t.unit_price_micros < 0 {
            return Err(format!("tier {}: unitPriceMicros must not be negative", i + 1));
        }
        match t.up_to {
            Some(u) if u <= last => {
                return Err(format!("tier {}: upTo must be greater than the previous tier's ({last})", i + 1));
            }
            Some(u) => last = u,
            None if i + 1 != tiers.len() => {
                return Err(format!("tier {}: only the last tier may have no upTo", i + 1));
            }
            None => {}
        }
    }
    Ok(())
}

/// One priced slice of a quantity: `quantity` units from unit `from + 1` at `unit_price_micros`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slice {
    pub from: i64,
    pub to: Option<i64>,
    pub quantity: i64,
    pub unit_price_micros: i64,
    pub amount_cents: i64,
}

/// The graduated price of `quantity` units of which the first `included` are free: one slice per
/// tier that holds chargeable units, each rounded once. Units past the last tier's `up_to` are
/// priced at the last tier.
pub fn graduated(tiers: &[Tier], included: i64, quantity: i64) -> Vec<Slice> {
    let mut out = Vec::new();
    let mut lo = 0i64;
    for (i, t) in tiers.iter().enumerate() {
        let hi = if i + 1 == tiers.len() { None } else { t.up_to };
        let start = lo.max(included);
        let end = hi.map_or(quantity, |h| h.min(quantity));
        if end > start {
            let n = end - start;
            out.push(Slice {
                from: start,
                to: hi,
                quantity: n,
                unit_price_micros: t.unit_price_micros,
                amount_cents: line_amount(n, t.unit_price_micros),
            });
        }
        match hi {
            Some(h) => lo = h,
            None => break,
        }
    }
    out
}

/// The volume price: every chargeable unit at the price of the tier the total falls in.
pub fn volume(tiers: &[Tier], included: i64, quantity: i64) -> Vec<Slice> {
    let n = quantity - included;
    if n <= 0 || tiers.is_empty() {
        return Vec::new();
    }
    let tier = tiers.iter().find(|t| t.up_to.is_none_or(|u| quantity <= u)).unwrap_or(&tiers[tiers.len() - 1]);
    vec![Slice {
        from: included,
        to: tier.up_to,
        quantity: n,
        unit_price_micros: tier.unit_price_micros,
        amount_cents: line_amount(n, tier.unit_price_micros),
    }]
}

/// The package price: started packages of `size` chargeable units at the first tier's price each.
pub fn package(tiers: &[Tier], size: i64, included: i64, quantity: i64) -> Vec<Slice> {
    let n = quantity - included;
    if n <= 0 || tiers.is_empty() || size <= 0 {
        return Vec::new();
    }
    let packages = (n + size - 1) / size;
    let price = tiers[0].unit_price_micros;
    vec![Slice {
        from: included,
        to: None,
        quantity: packages,
        unit_price_micros: price,
        amount_cents: line_amount(packages, price),
    }]
}

/// The price of `quantity` under a tier model.
pub fn price(model: TierModel, tiers: &[Tier], package_size: i64, included: i64, quantity: i64) -> Vec<Slice> {
    match model {
        TierModel::Graduated => graduated(tiers, included, quantity),
        TierModel::Volume => volume(tiers, included, quantity),
        TierModel::Package => package(tiers, package_size, included, quantity),
    }
}

/// The most units (from 0) whose graduated price past `included` stays within `cap_cents`, or
/// `None` when any number does (the tiers end free).
pub fn max_units_within(tiers: &[Tier], included: i64, cap_cents: i64) -> Option<i64> {
    const LIMIT: i64 = 1 << 50;
    let cost = |q: i64| total(&graduated(tiers, included, q));
    let included = included.max(0);
    // Grow the step until the cap is passed, then halve back to the last unit within it.
    let (mut lo, mut step) = (included, 1i64);
    while cost(lo + step) <= cap_cents {
        lo += step;
        step = step.saturating_mul(2);
        if lo > LIMIT {
            return None;
        }
    }
    while step > 1 {
        step /= 2;
        if cost(lo + step) <= cap_cents {
            lo += step;
        }
    }
    Some(lo)
}

pub fn total(slices: &[Slice]) -> i64 {
    slices.iter().map(|s| s.amount_cents).sum()
}

/// The lines of an immediate plan change at `now` within `[start, end)`: a credit for the unused
/// time of what was paid for the old plan, a charge for the rest of the period on the new one.
/// Both are unit prices in micro-units (quantity 1); the credit is negative.
pub fn change_lines(paid_cents: i64, new_cents: i64, start_ms: i64, end_ms: i64, now_ms: i64) -> (i64, i64) {
    let credit = prorate_micros(paid_cents, start_ms, end_ms, now_ms);
    let charge = prorate_micros(new_cents, start_ms, end_ms, now_ms);
    (-credit, charge)
}

/// The charge for the rest of a new period `[now, new_end)` that replaces `[start, end)`: the
/// credit for the old period's unused time and the new price prorated over its own period.
pub fn cross_period_lines(
    paid_cents: i64,
    old: (i64, i64),
    new_cents: i64,
    new: (i64, i64),
    now_ms: i64,
) -> (i64, i64) {
    (-prorate_micros(paid_cents, old.0, old.1, now_ms), prorate_micros(new_cents, new.0, new.1, now_ms))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn seed_tiers() -> Vec<Tier> {
        vec![
            Tier { up_to: Some(20_000_000), unit_price_micros: 100 },
            Tier { up_to: Some(50_000_000), unit_price_micros: 80 },
            Tier { up_to: None, unit_price_micros: 50 },
        ]
    }

    #[test]
    fn rounding_is_half_up_once() {
        assert_eq!(div_round(5, 10), 1);
        assert_eq!(div_round(4, 10), 0);
        assert_eq!(div_round(-5, 10), -1);
        assert_eq!(div_round(15, 10), 2);
        assert_eq!(line_amount(1, 5_000), 1, "half a cent rounds up");
        assert_eq!(line_amount(1, 4_999), 0);
        assert_eq!(line_amount(3, 3_333), 1);
    }

    #[test]
    fn overage_at_the_tier_edges_of_the_seed() {
        let t = seed_tiers();
        let included = 10_000_000;
        assert!(graduated(&t, included, 10_000_000).is_empty(), "exactly the quota: nothing");
        let one = graduated(&t, included, 10_000_001);
        assert_eq!(one.len(), 1);
        assert_eq!((one[0].quantity, one[0].unit_price_micros, one[0].amount_cents), (1, 100, 0));
        // 10M at 0.10 USD per 1,000 = 1,000.00 USD.
        assert_eq!(total(&graduated(&t, included, 20_000_000)), 100_000);
        // + 30M at 0.08 per 1,000 = 2,400.00 USD.
        assert_eq!(total(&graduated(&t, included, 50_000_000)), 100_000 + 240_000);
        // + 10M at 0.05 per 1,000 = 500.00 USD.
        let above = graduated(&t, included, 60_000_000);
        assert_eq!(above.len(), 3);
        assert_eq!(total(&above), 100_000 + 240_000 + 50_000);
        assert_eq!(above[2].from, 50_000_000);
    }

    #[test]
    fn volume_and_package() {
        let t =
            vec![Tier { up_to: Some(100), unit_price_micros: 20_000 }, Tier { up_to: None, unit_price_micros: 10_000 }];
        assert_eq!(total(&volume(&t, 0, 100)), 200);
        assert_eq!(total(&volume(&t, 0, 101)), 101, "past 100 every unit is at the second tier");
        let p = vec![Tier { up_to: None, unit_price_micros: 5_000_000 }];
        assert_eq!(
            package(&p, 1000, 0, 1),
            vec![Slice { from: 0, to: None, quantity: 1, unit_price_micros: 5_000_000, amount_cents: 500 }]
        );
        assert_eq!(total(&package(&p, 1000, 0, 2001)), 1500);
    }

    #[test]
    fn tiers_are_validated() {
        assert!(validate_tiers(&seed_tiers()).is_ok());
        assert!(
            validate_tiers(&[
                Tier { up_to: None, unit_price_micros: 1 },
                Tier { up_to: Some(5), unit_price_micros: 1 }
            ])
            .is_err()
        );
        assert!(
            validate_tiers(&[
                Tier { up_to: Some(5), unit_price_micros: 1 },
                Tier { up_to: Some(5), unit_price_micros: 1 }
            ])
            .is_err()
        );
        assert!(validate_tiers(&[Tier { up_to: Some(5), unit_price_micros: -1 }]).is_err());
    }

    #[test]
    fn proration_to_the_second() {
        let day = 86_400_000;
        // Half of a 30-day period left of 99.00: 49.50.
        assert_eq!(prorate_micros(9900, 0, 30 * day, 15 * day), 49_500_000);
        assert_eq!(prorate_micros(9900, 0, 30 * day, 0), 99_000_000);
        assert_eq!(prorate_micros(9900, 0, 30 * day, 30 * day), 0);
        // Milliseconds do not count: the same second gives the same amount.
        assert_eq!(prorate_micros(9900, 0, 30 * day, 1_000), prorate_micros(9900, 0, 30 * day, 1_999));
    }

    fn period() -> impl Strategy<Value = (i64, i64, i64)> {
        (1i64..400 * 86_400, 0i64..1_000).prop_flat_map(|(len_s, start_s)| {
            let start = start_s * 1000;
            let end = start + len_s * 1000;
            (Just(start), Just(end), start..=end)
        })
    }

    #[test]
    fn a_spend_cap_affords_a_whole_number_of_requests() {
        let t = seed_tiers();
        // 10 USD of overage at 0.10 per 1,000 = 100,000 requests past 10M.
        assert_eq!(max_units_within(&t, 10_000_000, 1_000), Some(10_100_049));
        assert_eq!(max_units_within(&t, 10_000_000, 0), Some(10_000_049));
        let free = vec![Tier { up_to: None, unit_price_micros: 0 }];
        assert_eq!(max_units_within(&free, 10, 5), None);
    }

    proptest! {
        #[test]
        fn the_spend_stop_is_the_last_request_within_the_cap(included in 0i64..20_000_000, cap in 0i64..1_000_000) {
            let t = seed_tiers();
            let q = max_units_within(&t, included, cap).unwrap();
            prop_assert!(total(&graduated(&t, included, q)) <= cap);
            prop_assert!(total(&graduated(&t, included, q + 1)) > cap);
        }

        #[test]
        fn a_credit_never_exceeds_what_was_paid(paid in 0i64..10_000_000, (start, end, now) in period()) {
            let (credit, _) = change_lines(paid, 0, start, end, now);
            prop_assert!(-line_amount(1, credit) <= paid);
            prop_assert!(credit <= 0);
        }

        #[test]
        fn up_and_back_down_costs_no_more_than_the_higher_plan(low in 0i64..1_000_000, extra in 0i64..1_000_000, (start, end, now) in period()) {
            let high = low + extra;
            // Paid the low plan for the period, upgraded at `now`, downgraded back at period end.
            let (credit, charge) = change_lines(low, high, start, end, now);
            let paid = low + line_amount(1, credit) + line_amount(1, charge);
            prop_assert!(paid <= high, "paid {} for a period of the {} plan", paid, high);
            prop_assert!(paid >= low);
        }

        #[test]
        fn the_graduated_amount_is_monotonic_in_usage(included in 0i64..20_000_000, a in 0i64..80_000_000, b in 0i64..80_000_000) {
            let t = seed_tiers();
            let (lo, hi) = (a.min(b), a.max(b));
            prop_assert!(total(&graduated(&t, included, lo)) <= total(&graduated(&t, included, hi)));
            prop_assert!(graduated(&t, included, lo).iter().all(|s| s.quantity > 0));
            let q: i64 = graduated(&t, included, hi).iter().map(|s| s.quantity).sum();
            prop_assert_eq!(q, (hi - included).max(0));
        }

        #[test]
        fn volume_and_package_are_monotonic(a in 0i64..10_000, b in 0i64..10_000, size in 1i64..500) {
            let t = vec![Tier { up_to: Some(1000), unit_price_micros: 30_000 }, Tier { up_to: None, unit_price_micros: 30_000 }];
            let (lo, hi) = (a.min(b), a.max(b));
            prop_assert!(total(&volume(&t, 0, lo)) <= total(&volume(&t, 0, hi)));
            prop_assert!(total(&package(&t, size, 0, lo)) <= total(&package(&t, size, 0, hi)));
        }
    }
}
