//! Time budgets per stage (docs/ARCHITECTURE.md "Every photo state is left again"): a render that
//! runs past its stage's budget is abandoned, so a photo that hangs or runs for hours
//! cannot hold a worker slot for ever, and after its last attempt it is shown failed.

use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeBudgets {
    per_stage: BTreeMap<String, Duration>,
    /// For stages not named: the longest budget named, so a new stage is never cut short.
    otherwise: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BudgetError {
    #[error("{0:?} is not stage=duration (example: quick=2m,slow=5m)")]
    NotAPair(String),
    #[error("{pair:?}: {message} (examples: 90s, 2m, 1h)")]
    BadDuration { pair: String, message: String },
    #[error("the budget of stage {0:?} must be between 1 second and 12 hours")]
    OutOfRange(String),
    #[error("name at least one stage's budget")]
    Empty,
}

impl TimeBudgets {
    /// Parses `stage=duration` pairs, comma-separated.
    pub fn parse(text: &str) -> Result<Self, BudgetError> {
        let mut per_stage = BTreeMap::new();
        for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (stage, duration) = pair.split_once('=').ok_or_else(|| BudgetError::NotAPair(pair.to_owned()))?;
            let duration = humantime::parse_duration(duration.trim())
                .map_err(|e| BudgetError::BadDuration { pair: pair.to_owned(), message: e.to_string() })?;
            if duration < Duration::from_secs(1) || duration > Duration::from_secs(12 * 3600) {
                return Err(BudgetError::OutOfRange(stage.trim().to_owned()));
            }
            per_stage.insert(stage.trim().to_owned(), duration);
        }
        let otherwise = per_stage.values().max().copied().ok_or(BudgetError::Empty)?;
        Ok(Self { per_stage, otherwise })
    }

    pub fn uniform(budget: Duration) -> Self {
        Self { per_stage: BTreeMap::new(), otherwise: budget }
    }

    pub fn for_stage(&self, stage: &str) -> Duration {
        self.per_stage.get(stage).copied().unwrap_or(self.otherwise)
    }
}

/// "5 minutes", "90 seconds": how a budget is named to a user.
pub fn describe(budget: Duration) -> String {
    let seconds = budget.as_secs();
    match seconds {
        s if s >= 60 && s % 60 == 0 => format!("{}-minute", s / 60),
        s => format!("{s}-second"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pairs_and_gives_unnamed_stages_the_longest_budget() {
        let budgets = TimeBudgets::parse("quick=2m, slow=5m").unwrap();
        assert_eq!(budgets.for_stage("quick"), Duration::from_secs(120));
        assert_eq!(budgets.for_stage("slow"), Duration::from_secs(300));
        assert_eq!(budgets.for_stage("gpu"), Duration::from_secs(300));
        assert!(matches!(TimeBudgets::parse("quick"), Err(BudgetError::NotAPair(_))));
        assert!(matches!(TimeBudgets::parse("quick=soon"), Err(BudgetError::BadDuration { .. })));
        assert!(matches!(TimeBudgets::parse("quick=0s"), Err(BudgetError::OutOfRange(_))));
        assert_eq!(TimeBudgets::parse(""), Err(BudgetError::Empty));
        assert_eq!(describe(Duration::from_secs(300)), "5-minute");
        assert_eq!(describe(Duration::from_secs(90)), "90-second");
    }
}
