//! Queue names (docs/ARCHITECTURE.md "Command line and settings"): `<prefix>-requests-<stage>`,
//! `<prefix>-responses`, each with a `-dlq` twin. setup, docker-compose, the AWS template
//! and the README all use these names.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueNames {
    prefix: String,
}

impl QueueNames {
    pub fn new(prefix: impl Into<String>) -> Self {
        Self { prefix: prefix.into() }
    }

    pub fn requests(&self, stage: &str) -> String {
        format!("{}-requests-{stage}", self.prefix)
    }

    pub fn responses(&self) -> String {
        format!("{}-responses", self.prefix)
    }

    /// Finished jobs whose webhook is to be delivered (see the webhooks crate).
    pub fn webhooks(&self) -> String {
        format!("{}-webhooks", self.prefix)
    }

    pub fn dead_letter(queue: &str) -> String {
        format!("{queue}-dlq")
    }

    /// Every queue of a deployment with these stages, each with its dead-letter queue:
    /// what setup creates and health reports. (Status drains the photo queues' dead
    /// letters; the webhook queue's are an operator's.)
    pub fn all(&self, stages: &[String]) -> Vec<QueuePair> {
        let requests = stages.iter().map(|stage| (self.requests(stage), true));
        requests
            .chain([(self.responses(), false), (self.webhooks(), false)])
            .map(|(queue, shared_fairly)| QueuePair { dead_letter: Self::dead_letter(&queue), queue, shared_fairly })
            .collect()
    }
}

/// A queue and its dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuePair {
    pub queue: String,
    pub dead_letter: String,
    /// Whether receives take turns between the tenants whose work waits in it (the
    /// request queues; docs/ARCHITECTURE.md, "Fair sharing").
    pub shared_fairly: bool,
}

/// SQS allows 1–80 characters of letters, digits, '-' and '_'; the longest name we make
/// is `<prefix>-requests-<stage>-dlq`.
pub fn is_valid_prefix(prefix: &str) -> bool {
    (1..=30).contains(&prefix.len()) && prefix.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_contract() {
        let names = QueueNames::new("darkroom");
        assert_eq!(names.requests("quick"), "darkroom-requests-quick");
        assert_eq!(names.responses(), "darkroom-responses");
        assert_eq!(QueueNames::dead_letter(&names.requests("slow")), "darkroom-requests-slow-dlq");
        assert!(is_valid_prefix("darkroom") && !is_valid_prefix("dark room") && !is_valid_prefix(""));
        let all = names.all(&["quick".into(), "slow".into()]);
        let queues: Vec<&str> = all.iter().map(|pair| pair.queue.as_str()).collect();
        assert_eq!(
            queues,
            ["darkroom-requests-quick", "darkroom-requests-slow", "darkroom-responses", "darkroom-webhooks"]
        );
        assert_eq!(all[2].dead_letter, "darkroom-responses-dlq");
    }
}
