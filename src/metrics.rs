//! Prometheus metrics. Labels are bounded: controller names, result kinds,
//! error reasons (a fixed set of codes), object types and import outcomes,
//! never object names or error text.

use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    pub controller: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    pub controller: &'static str,
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TypeLabels {
    pub object_type: &'static str,
}

/// Every metric the operator exports.
pub struct Metrics {
    registry: Registry,
    reconciles: Family<ControllerLabels, Counter>,
    failures: Family<FailureLabels, Counter>,
    durations: Family<ControllerLabels, Histogram>,
    imports: Family<OutcomeLabels, Counter>,
    objects: Family<TypeLabels, Counter>,
    cached_plans: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("ferry");
        let reconciles = Family::<ControllerLabels, Counter>::default();
        let failures = Family::<FailureLabels, Counter>::default();
        let durations = Family::<ControllerLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.005, 2.0, 14))
        });
        let imports = Family::<OutcomeLabels, Counter>::default();
        let objects = Family::<TypeLabels, Counter>::default();
        registry.register(
            "reconciles",
            "Reconcile passes, per controller",
            reconciles.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Failed reconcile passes, per controller and reason",
            failures.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Duration of reconcile passes",
            durations.clone(),
        );
        registry.register(
            "imports",
            "Imports that finished, per outcome (completed, partial, failed)",
            imports.clone(),
        );
        registry.register(
            "objects_imported",
            "Objects written by imports, per object type",
            objects.clone(),
        );
        let cached_plans = Gauge::default();
        registry.register(
            "import_plans_cached",
            "Import plans held in memory (running, suspended or failed tasks; a deleted task's plan is dropped)",
            cached_plans.clone(),
        );
        Metrics {
            registry,
            cached_plans,
            reconciles,
            failures,
            durations,
            imports,
            objects,
        }
    }
}

impl Metrics {
    /// Records one reconcile pass that started at `start`.
    pub fn reconciled(&self, controller: &'static str, start: Instant) {
        let labels = ControllerLabels { controller };
        self.reconciles.get_or_create(&labels).inc();
        self.durations
            .get_or_create(&labels)
            .observe(start.elapsed().as_secs_f64());
    }

    /// Records a failed pass.
    pub fn failed(&self, controller: &'static str, reason: &'static str) {
        self.failures
            .get_or_create(&FailureLabels { controller, reason })
            .inc();
    }

    /// Records a finished import.
    pub fn import_finished(&self, outcome: &'static str) {
        self.imports.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    /// How many import plans are held in memory.
    pub fn set_cached_plans(&self, n: usize) {
        self.cached_plans.set(n as i64);
    }

    /// Records objects written by an import.
    pub fn objects_imported(&self, object_type: &'static str, n: u64) {
        self.objects
            .get_or_create(&TypeLabels { object_type })
            .inc_by(n);
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_bounded_labelled_series() {
        let m = Metrics::default();
        m.reconciled("import", Instant::now());
        m.failed("import", "ApiError");
        m.import_finished("partial");
        m.objects_imported("ScheduledTask", 3);
        let text = m.encode();
        assert!(
            text.contains(r#"ferry_reconciles_total{controller="import"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"ferry_reconcile_errors_total{controller="import",reason="ApiError"} 1"#
            )
        );
        assert!(text.contains(r#"ferry_imports_total{outcome="partial"} 1"#));
        assert!(text.contains(r#"ferry_objects_imported_total{object_type="ScheduledTask"} 3"#));
        assert!(text.contains("ferry_reconcile_duration_seconds_bucket"));
    }
}
