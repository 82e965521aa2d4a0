//! Medians, minima and maxima of repeated runs.

use std::time::Duration;

/// Repeated measurements of one figure.
#[derive(Clone, Debug, Default)]
pub struct Samples(pub Vec<f64>);

impl Samples {
    pub fn push(&mut self, v: f64) {
        self.0.push(v);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn sorted(&self) -> Vec<f64> {
        let mut v = self.0.clone();
        v.sort_by(f64::total_cmp);
        v
    }

    /// The middle value; the mean of the two middle values for an even count.
    pub fn median(&self) -> f64 {
        let v = self.sorted();
        match v.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    }

    pub fn min(&self) -> f64 {
        self.sorted().first().copied().unwrap_or(f64::NAN)
    }

    pub fn max(&self) -> f64 {
        self.sorted().last().copied().unwrap_or(f64::NAN)
    }

    /// `median (min–max, n runs)` with `digits` decimals.
    pub fn show(&self, digits: usize) -> String {
        if self.is_empty() {
            return "–".into();
        }
        if self.0.len() == 1 {
            return format!("{:.digits$} (1 run)", self.median());
        }
        format!(
            "{:.digits$} ({:.digits$}–{:.digits$}, {} runs)",
            self.median(),
            self.min(),
            self.max(),
            self.0.len()
        )
    }
}

/// Objects per second.
pub fn rate(objects: usize, elapsed: Duration) -> f64 {
    objects as f64 / elapsed.as_secs_f64().max(1e-9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(Samples(vec![3.0, 1.0, 2.0]).median(), 2.0);
        assert_eq!(Samples(vec![4.0, 1.0, 3.0, 2.0]).median(), 2.5);
        assert!(Samples(vec![]).median().is_nan());
    }

    #[test]
    fn shows_median_min_max_and_runs() {
        let s = Samples(vec![10.0, 30.0, 20.0]);
        assert_eq!(s.show(0), "20 (10–30, 3 runs)");
        assert_eq!(Samples(vec![5.25]).show(1), "5.2 (1 run)");
    }
}
