//! The pipeline plan: which stage runs which operations (docs/ARCHITECTURE.md "pipeline"). A recipe
//! keeps its order and is cut into consecutive segments by stage; the plan travels in the
//! request message, so every worker follows the plan the web tier made even if stage maps
//! are being rewired while a photo is in flight.

use crate::recipe::{Operation, Recipe};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const DEFAULT_STAGE: &str = "quick";
/// Face-finding operations are the seed's "longer-running operations": they go to the `slow`
/// stage (its Server B); everything else runs in [`DEFAULT_STAGE`]. The command line's
/// `--stage-map` default, and [`StageMap::default`].
/// The registry's stages, written out for the command line's default (a test holds the
/// two equal: `operations::default_stage_map`).
pub const DEFAULT_STAGE_MAP: &str = "redeye=slow,whiten_teeth=slow";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StageMapError {
    #[error("stage map entry {0:?} is not of the form op=stage")]
    Syntax(String),
    #[error("stage map names unknown operation {0:?} (known: {known})", known = crate::operations::names().collect::<Vec<_>>().join(", "))]
    UnknownOperation(String),
    #[error("stage name {0:?} must be 1–40 characters of a-z, 0-9 and '-', not ending in -lane<n>")]
    BadStageName(String),
}

/// Which stage each operation runs in. Operations not named run in the default stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageMap {
    default_stage: String,
    by_operation: BTreeMap<String, String>,
}

impl Default for StageMap {
    /// [`DEFAULT_STAGE_MAP`] with [`DEFAULT_STAGE`].
    fn default() -> Self {
        Self::parse(DEFAULT_STAGE, DEFAULT_STAGE_MAP)
            .unwrap_or_else(|_| Self { default_stage: DEFAULT_STAGE.to_owned(), by_operation: BTreeMap::new() })
    }
}

pub fn is_valid_stage_name(name: &str) -> bool {
    // `-lane<n>` ends the names of a queue's lanes (see the queue crate), so no stage's own
    // queue may be mistaken for another stage's lane.
    let lane_like =
        name.rsplit_once("-lane").is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    (1..=40).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !lane_like
}

impl StageMap {
    /// Parses `op=stage,op=stage` (an empty text keeps every operation in the default stage).
    pub fn parse(default_stage: &str, text: &str) -> Result<Self, StageMapError> {
        if !is_valid_stage_name(default_stage) {
            return Err(StageMapError::BadStageName(default_stage.to_owned()));
        }
        let mut by_operation = BTreeMap::new();
        for entry in text.split(',').map(str::trim).filter(|entry| !entry.is_empty()) {
            let (op, stage) = entry.split_once('=').ok_or_else(|| StageMapError::Syntax(entry.to_owned()))?;
            let (op, stage) = (op.trim(), stage.trim());
            if crate::operations::spec(op).is_none() {
                return Err(StageMapError::UnknownOperation(op.to_owned()));
            }
            if !is_valid_stage_name(stage) {
                return Err(StageMapError::BadStageName(stage.to_owned()));
            }
            by_operation.insert(op.to_owned(), stage.to_owned());
        }
        Ok(Self { default_stage: default_stage.to_owned(), by_operation })
    }

    pub fn stage_of(&self, op: &Operation) -> &str {
        self.stage_of_name(op.name())
    }

    /// The stage of the operation named `name`.
    pub fn stage_of_name(&self, name: &str) -> &str {
        self.by_operation.get(name).map(String::as_str).unwrap_or(&self.default_stage)
    }

    /// Every stage this map can route to, the default first.
    pub fn stages(&self) -> Vec<String> {
        let mut stages = vec![self.default_stage.clone()];
        for stage in self.by_operation.values() {
            if !stages.contains(stage) {
                stages.push(stage.clone());
            }
        }
        stages
    }

    pub fn default_stage(&self) -> &str {
        &self.default_stage
    }

    /// Cuts a recipe into consecutive segments by stage.
    pub fn plan(&self, recipe: &Recipe) -> Vec<Segment> {
        let mut segments: Vec<Segment> = Vec::new();
        for (index, op) in recipe.ops.iter().enumerate() {
            let stage = self.stage_of(op);
            match segments.last_mut() {
                Some(last) if last.stage == stage => last.end_op = index + 1,
                _ => segments.push(Segment { stage: stage.to_owned(), first_op: index, end_op: index + 1 }),
            }
        }
        segments
    }
}

/// Operations `first_op..end_op` of the recipe, run by a worker of `stage`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    pub stage: String,
    pub first_op: usize,
    pub end_op: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipe(ops: &str) -> Recipe {
        Recipe::from_json(&format!(r#"{{"ops":[{ops}]}}"#)).expect("valid recipe")
    }

    #[test]
    fn cuts_a_recipe_into_consecutive_stage_segments() {
        let map = StageMap::default();
        let plan = map.plan(&recipe(
            r#"{"op":"crop","aspect":"1:1"},{"op":"redeye"},{"op":"whiten_teeth"},{"op":"thumbnail","size":9}"#,
        ));
        let shape: Vec<_> = plan.iter().map(|s| (s.stage.as_str(), s.first_op, s.end_op)).collect();
        assert_eq!(shape, [("quick", 0, 1), ("slow", 1, 3), ("quick", 3, 4)]);
    }

    #[test]
    fn rewiring_is_configuration() {
        let map = StageMap::parse("fast", "redeye=faces,thumbnail=faces").expect("valid map");
        let plan = map.plan(&recipe(r#"{"op":"redeye"},{"op":"thumbnail","size":9}"#));
        assert_eq!(plan.len(), 1);
        assert_eq!(plan[0].stage, "faces");
        assert_eq!(map.stages(), ["fast", "faces"]);
        assert!(StageMap::parse("quick", "sparkle=slow").is_err());
        assert!(StageMap::parse("quick", "redeye=Slow Lane").is_err());
        assert!(StageMap::parse("quick", "redeye").is_err());
    }

    #[test]
    fn a_stage_name_cannot_pass_for_another_stage_s_lane() {
        assert!(is_valid_stage_name("quick") && is_valid_stage_name("lane") && is_valid_stage_name("fast-lanes"));
        assert!(!is_valid_stage_name("quick-lane1") && !is_valid_stage_name("Quick") && !is_valid_stage_name(""));
        assert!(StageMap::parse("quick", "redeye=slow-lane2").is_err());
    }
}
