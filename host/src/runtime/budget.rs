//! Per-call budgets: how many times one call may use a kind of host call
//! (log lines, audit entries, writes, model requests, host calls in all).
//! Capabilities declare their budgets in their table row; the runtime keeps
//! the count in the call's state. Past a budget the host call is refused
//! with the capability's typed error; the call goes on.

use std::collections::BTreeMap;

use crate::infra::metrics::{BudgetLabels, QuotaLabels, metrics};

/// One kind of host call counted per call.
#[derive(Debug, PartialEq, Eq)]
pub struct Budget {
    /// The key under `[limits]` in manifests and in the metric; the
    /// operator's default is `PLUGIN_<KEY>` (`log_lines`: `PLUGIN_LOG_LINES`).
    pub key: &'static str,
    /// What is counted, for messages: "log lines".
    pub unit: &'static str,
    pub default: u32,
    /// The most a manifest or the operator may allow.
    pub ceiling: u32,
}

impl Budget {
    pub const fn new(key: &'static str, unit: &'static str, default: u32, ceiling: u32) -> Self {
        Self {
            key,
            unit,
            default,
            ceiling,
        }
    }
}

/// Every host call a plugin makes, whatever the capability.
pub static HOST_CALLS: Budget = Budget::new("host_calls", "host calls", 1_000, 100_000);

/// Budget keys with the operator's defaults (`PLUGIN_<KEY>`); a budget
/// missing here has its built-in default.
pub type BudgetDefaults = BTreeMap<&'static str, u32>;

/// A plugin's allowance for each budget of what it was granted (and
/// [`HOST_CALLS`]), resolved from its manifest and the operator's defaults.
pub type Allowances = Vec<(&'static Budget, u32)>;

/// A host call refused because its budget for this call is used up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("over budget: at most {limit} {unit} per call (raise `limits.{key}` in the manifest)")]
pub struct OverBudget {
    pub key: &'static str,
    pub unit: &'static str,
    pub limit: u32,
}

/// What one call has used of each budget, and the writes its storage
/// quotas refused.
pub struct CallBudgets {
    entries: Vec<Spending>,
    /// By storage ("state", "vectors"): writes refused over quota.
    over_quota: Vec<(&'static str, u32)>,
    /// Refusals of a kind after its first: summarised by [`Self::report`].
    repeated: RefusalTally,
}

/// Refusals by kind within one call: the first of each kind is recorded in
/// full by its caller (a log line, an audit entry with the reason); the
/// rest are only counted and summarised once at the call's end, so a loop
/// of refusals costs the host nothing.
#[derive(Debug, Default)]
pub struct RefusalTally(Vec<(&'static str, u32)>);

impl RefusalTally {
    /// Counts a refusal of kind `what`; true when it is the call's first
    /// of that kind (the caller records it).
    pub fn first(&mut self, what: &'static str) -> bool {
        match self.0.iter_mut().find(|(known, _)| *known == what) {
            Some((_, count)) => {
                *count += 1;
                false
            }
            None => {
                self.0.push((what, 0));
                true
            }
        }
    }

    /// Kinds refused again after their first, with how many more times.
    pub fn repeated(&self) -> impl Iterator<Item = (&'static str, u32)> + '_ {
        self.0.iter().copied().filter(|(_, count)| *count > 0)
    }
}

struct Spending {
    budget: &'static Budget,
    limit: u32,
    used: u32,
    refused: u32,
}

impl CallBudgets {
    pub fn new(allowances: &[(&'static Budget, u32)]) -> Self {
        Self {
            entries: allowances
                .iter()
                .map(|&(budget, limit)| Spending {
                    budget,
                    limit,
                    used: 0,
                    refused: 0,
                })
                .collect(),
            over_quota: Vec::new(),
            repeated: RefusalTally::default(),
        }
    }

    /// Remembers a write refused over `storage`'s quota, for [`Self::report`].
    pub fn over_quota(&mut self, storage: &'static str) {
        match self
            .over_quota
            .iter_mut()
            .find(|(known, _)| *known == storage)
        {
            Some((_, refused)) => *refused += 1,
            None => self.over_quota.push((storage, 1)),
        }
    }

    /// A refusal of kind `what` (a denied secret, ...): see [`RefusalTally::first`].
    pub fn first_refusal(&mut self, what: &'static str) -> bool {
        self.repeated.first(what)
    }

    /// Counts one host call against `budget` and against [`HOST_CALLS`].
    pub fn spend(&mut self, budget: &'static Budget) -> Result<(), OverBudget> {
        self.take(&HOST_CALLS)?;
        if std::ptr::eq(budget, &HOST_CALLS) {
            return Ok(());
        }
        self.take(budget)
    }

    fn take(&mut self, budget: &'static Budget) -> Result<(), OverBudget> {
        let Some(entry) = self
            .entries
            .iter_mut()
            .find(|entry| std::ptr::eq(entry.budget, budget))
        else {
            // Not granted, so not resolved: the built-in default applies.
            self.entries.push(Spending {
                budget,
                limit: budget.default,
                used: 0,
                refused: 0,
            });
            return self.take(budget);
        };
        if entry.used < entry.limit {
            entry.used += 1;
            return Ok(());
        }
        entry.refused += 1;
        Err(OverBudget {
            key: budget.key,
            unit: budget.unit,
            limit: entry.limit,
        })
    }

    /// At the end of a call: one warning naming every budget and quota that
    /// was hit, and the refusals counted by plugin and budget or quota.
    pub fn report(&self, plugin: &str) {
        let mut hit: Vec<String> = self
            .entries
            .iter()
            .filter(|entry| entry.refused > 0)
            .map(|entry| {
                count_refusals(plugin, entry.budget, entry.refused);
                format!(
                    "{} (limit {}, {} refused)",
                    entry.budget.key, entry.limit, entry.refused
                )
            })
            .collect();
        for &(storage, refused) in &self.over_quota {
            metrics()
                .quota_refusals
                .get_or_create(&QuotaLabels {
                    plugin: plugin.to_string(),
                    quota: storage.to_string(),
                })
                .inc_by(u64::from(refused));
            hit.push(format!("{storage} quota ({refused} writes refused)"));
        }
        for (what, count) in self.repeated.repeated() {
            hit.push(format!("{what} ({count} more after the first)"));
        }
        if !hit.is_empty() {
            tracing::warn!(
                target: "plugin",
                plugin,
                limits = %hit.join(", "),
                "the call reached a per-call budget or a storage quota"
            );
        }
    }
}

/// `wasmbot_plugin_budget_refusals_total{plugin, budget}` += `refused`; for
/// a budget counted outside the call's state too (a WASI proposal's hooks).
pub fn count_refusals(plugin: &str, budget: &Budget, refused: u32) {
    metrics()
        .budget_refusals
        .get_or_create(&BudgetLabels {
            plugin: plugin.to_string(),
            budget: budget.key.to_string(),
        })
        .inc_by(u64::from(refused));
}

/// The allowances for `budgets`: the manifest's value if it set one, the
/// operator's default otherwise; each within 1..=ceiling.
pub fn resolve(
    budgets: impl IntoIterator<Item = &'static Budget>,
    manifest: &BTreeMap<String, u64>,
    defaults: &BudgetDefaults,
) -> Result<Allowances, String> {
    let mut allowances: Allowances = Vec::new();
    for budget in budgets {
        if allowances
            .iter()
            .any(|(known, _)| std::ptr::eq(*known, budget))
        {
            continue;
        }
        let limit = match manifest.get(budget.key) {
            Some(&value) if (1..=u64::from(budget.ceiling)).contains(&value) => value as u32,
            Some(&value) => {
                return Err(format!(
                    "`limits.{}` must be between 1 and {}, got {value}",
                    budget.key, budget.ceiling
                ));
            }
            None => defaults.get(budget.key).copied().unwrap_or(budget.default),
        };
        allowances.push((budget, limit));
    }
    Ok(allowances)
}

#[cfg(test)]
mod tests {
    use super::*;

    static LINES: Budget = Budget::new("lines", "lines", 2, 10);

    #[test]
    fn a_budget_refuses_past_its_limit_and_counts_host_calls() {
        let mut budgets = CallBudgets::new(&[(&LINES, 2), (&HOST_CALLS, 3)]);
        assert!(budgets.spend(&LINES).is_ok());
        assert!(budgets.spend(&LINES).is_ok());
        let refused = budgets.spend(&LINES).unwrap_err();
        assert_eq!(refused.key, "lines");
        assert_eq!(
            refused.to_string(),
            "over budget: at most 2 lines per call (raise `limits.lines` in the manifest)"
        );
        // Three host calls were made; the fourth is over that budget.
        assert_eq!(budgets.spend(&LINES).unwrap_err().key, "host_calls");
    }

    #[test]
    fn the_manifest_wins_within_the_ceiling_then_the_operator_then_the_default() {
        let manifest = BTreeMap::from([("lines".to_string(), 7)]);
        let defaults = BudgetDefaults::from([("lines", 5), ("host_calls", 9)]);
        let resolved = resolve([&LINES, &HOST_CALLS], &manifest, &defaults).unwrap();
        assert_eq!(resolved, vec![(&LINES, 7), (&HOST_CALLS, 9)]);
        let resolved = resolve([&LINES], &BTreeMap::new(), &BudgetDefaults::new()).unwrap();
        assert_eq!(resolved, vec![(&LINES, 2)]);
        let too_many = BTreeMap::from([("lines".to_string(), 11)]);
        assert_eq!(
            resolve([&LINES], &too_many, &defaults).unwrap_err(),
            "`limits.lines` must be between 1 and 10, got 11"
        );
    }
}
