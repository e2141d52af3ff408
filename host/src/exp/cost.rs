//! What an experiment's fleet costs: the spot price history integrated over each
//! instance's life (per-second billing with a 60 s minimum), attributed to trials by the
//! time each instance held each trial; the rest (boot, image pull, idle time before
//! shutting down) is overhead. Trials plus overhead equal the total by construction.

use super::fleet::{InstanceLife, PricePoint};
use super::trial::Occupancy;
use serde::Serialize;
use std::collections::BTreeMap;

/// AWS bills at least this many seconds of an instance.
pub const MINIMUM_S: f64 = 60.0;

/// The cost of an experiment so far.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Bill {
    /// Dollars, every instance.
    pub total: f64,
    /// Dollars by trial.
    pub trials: BTreeMap<String, f64>,
    /// Dollars no trial used.
    pub overhead: f64,
    /// Dollars by instance.
    pub instances: BTreeMap<String, f64>,
    /// Dollars per hour of the instances running now.
    pub per_hour: f64,
    /// Running instances by `type zone`.
    pub running: BTreeMap<String, usize>,
}

/// The pool's price at Unix time `t`: the last point at or before it (the first, if all
/// come after). `points` are one pool's, sorted by time.
fn price_at(points: &[&PricePoint], t: f64) -> f64 {
    points.iter().rev().find(|p| p.from <= t).or(points.first()).map_or(0.0, |p| p.price)
}

/// Dollars of one instance of the pool over `[from, to]` (the price is per hour and
/// changes at the history's points).
pub fn integrate(points: &[&PricePoint], from: f64, to: f64) -> f64 {
    if to <= from {
        return 0.0;
    }
    let mut dollars = 0.0;
    let mut t = from;
    for next in points.iter().map(|p| p.from).filter(|&c| c > from && c < to).chain(std::iter::once(to)) {
        dollars += price_at(points, t) * (next - t) / 3600.0;
        t = next;
    }
    dollars
}

/// The bill at Unix time `now` for `instances` (by id), with `prices` (any pools) and
/// every trial's holdings (the current holder's stretch ending at `now`).
pub fn bill(instances: &BTreeMap<String, InstanceLife>, prices: &[PricePoint], holdings: &[(String, Occupancy)], now: f64) -> Bill {
    let mut out = Bill::default();
    for (id, life) in instances {
        let mut pool: Vec<&PricePoint> = prices.iter().filter(|p| p.instance_type == life.instance_type && p.zone == life.zone).collect();
        if pool.is_empty() {
            // No history for the zone: the type's price anywhere is the best guess.
            pool = prices.iter().filter(|p| p.instance_type == life.instance_type).collect();
        }
        pool.sort_by(|a, b| a.from.total_cmp(&b.from));
        let end = life.ended.unwrap_or(now).max(life.launched);
        let cost = integrate(&pool, life.launched, end.max(life.launched + MINIMUM_S));
        out.total += cost;
        out.instances.insert(id.clone(), cost);
        if life.ended.is_none() {
            out.per_hour += price_at(&pool, now);
            *out.running.entry(format!("{} {}", life.instance_type, life.zone)).or_default() += 1;
        }
        // Trials' stretches on this instance, within its life.
        let mut shares: Vec<(&str, f64)> = holdings
            .iter()
            .filter(|(_, o)| &o.instance == id)
            .map(|(t, o)| (t.as_str(), integrate(&pool, o.from.max(life.launched), o.to.min(end))))
            .collect();
        let used: f64 = shares.iter().map(|(_, d)| d).sum();
        if used > cost && used > 0.0 {
            // Overlapping records (clocks disagree): shares are scaled to the instance's cost.
            for s in &mut shares {
                s.1 *= cost / used;
            }
        }
        let used: f64 = shares.iter().map(|(_, d)| d).sum();
        for (t, d) in shares {
            *out.trials.entry(t.to_string()).or_default() += d;
        }
        out.overhead += cost - used;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `tests/fixtures/spot-prices.json`: three instances, four trial stretches, a price
    /// that moves twice. Worked by hand (T0 = 1_800_000_000):
    ///
    /// - i-a c7i.xlarge us-east-1a, T0 → T0+7200: 1800 s × $0.06 + 3600 s × $0.09 + 1800 s
    ///   × $0.05 = $0.03 + $0.09 + $0.025 = **$0.145**
    /// - i-b m7i.xlarge us-east-1b, T0+600 → T0+630: 30 s, billed 60 s × $0.07 = **$0.0011667**
    /// - i-c c7i.xlarge us-east-1a, T0+3600 → running at T0+9000: 1800 s × $0.09 + 3600 s ×
    ///   $0.05 = **$0.095**
    /// - total **$0.2411667**
    /// - t0 on i-a T0+100 → T0+3700: 1700 s × 0.06 + 1900 s × 0.09 = **$0.0758333**
    /// - t1 on i-a T0+3700 → T0+7000: 1700 s × 0.09 + 1600 s × 0.05 = **$0.0647222**
    /// - t2 on i-c T0+3650 → now: 1750 s × 0.09 + 3600 s × 0.05 = **$0.09375**
    /// - t3 on i-b T0+600 → T0+630: 30 s × 0.07 = **$0.0005833**
    /// - overhead: 0.2411667 − 0.2348889 = **$0.0062778**
    #[test]
    fn the_bill_matches_a_hand_calculation() {
        #[derive(serde::Deserialize)]
        struct Fixture {
            now: f64,
            instances: BTreeMap<String, InstanceLife>,
            prices: Vec<PricePoint>,
            holdings: Vec<(String, Occupancy)>,
        }
        let f: Fixture = serde_json::from_str(include_str!("../../../tests/fixtures/spot-prices.json")).expect("fixture");
        let b = bill(&f.instances, &f.prices, &f.holdings, f.now);
        let close =
            |got: f64, want: f64, what: &str| assert!((got - want).abs() < 0.01 && (got - want).abs() < 1e-6, "{what}: {got} ≠ {want}");
        close(b.instances["i-a"], 0.145, "i-a");
        close(b.instances["i-b"], 0.07 / 60.0, "i-b (60 s minimum)");
        close(b.instances["i-c"], 0.095, "i-c");
        close(b.total, 0.145 + 0.07 / 60.0 + 0.095, "total");
        close(b.trials["t0"], 1700.0 * 0.06 / 3600.0 + 1900.0 * 0.09 / 3600.0, "t0");
        close(b.trials["t1"], 1700.0 * 0.09 / 3600.0 + 1600.0 * 0.05 / 3600.0, "t1");
        close(b.trials["t2"], 1750.0 * 0.09 / 3600.0 + 0.05, "t2");
        close(b.trials["t3"], 30.0 * 0.07 / 3600.0, "t3");
        let trials: f64 = b.trials.values().sum();
        assert!((trials + b.overhead - b.total).abs() < 1e-12, "trials + overhead = total");
        close(b.overhead, 0.2411667 - 0.2348889, "overhead");
        close(b.per_hour, 0.05, "one c7i.xlarge running at $0.05");
        assert_eq!(b.running.get("c7i.xlarge us-east-1a"), Some(&1));
    }

    #[test]
    fn a_price_before_the_history_is_its_first() {
        let p = [PricePoint { instance_type: "x.large".into(), zone: "z".into(), from: 100.0, price: 3.6 }];
        let pool: Vec<&PricePoint> = p.iter().collect();
        assert!((integrate(&pool, 0.0, 200.0) - 0.2).abs() < 1e-12);
        assert_eq!(integrate(&pool, 50.0, 50.0), 0.0);
    }
}
