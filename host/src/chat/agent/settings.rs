//! The operator's limits on one agent turn.

use std::time::Duration;

use crate::env::{ConfigError, parse_number};

/// Claude's requests in one turn, by default (`AGENT_MAX_STEPS`).
pub const DEFAULT_MAX_STEPS: u32 = 8;
/// Tokens (input and output, all steps) one turn may spend (`AGENT_TURN_TOKENS`).
pub const DEFAULT_TURN_TOKENS: u32 = 100_000;
/// How long a tool waits for the user's Allow or Deny.
pub const CONFIRM_WAIT: Duration = Duration::from_secs(60 * 60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentSettings {
    pub max_steps: u32,
    pub turn_tokens: u32,
    pub confirm_wait: Duration,
}

impl Default for AgentSettings {
    fn default() -> Self {
        Self {
            max_steps: DEFAULT_MAX_STEPS,
            turn_tokens: DEFAULT_TURN_TOKENS,
            confirm_wait: CONFIRM_WAIT,
        }
    }
}

impl AgentSettings {
    /// `AGENT_MAX_STEPS` (1-50) and `AGENT_TURN_TOKENS` (1000-10000000).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let value = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let max_steps = parse_number(
            "AGENT_MAX_STEPS",
            value("AGENT_MAX_STEPS"),
            u64::from(DEFAULT_MAX_STEPS),
            1..=50,
            "steps",
        )? as u32;
        let turn_tokens = parse_number(
            "AGENT_TURN_TOKENS",
            value("AGENT_TURN_TOKENS"),
            u64::from(DEFAULT_TURN_TOKENS),
            1_000..=10_000_000,
            "tokens",
        )? as u32;
        Ok(Self {
            max_steps,
            turn_tokens,
            ..Self::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_read_and_checked() {
        let read = |vars: &[(&str, &str)]| AgentSettings::from_lookup(crate::env::lookup_in(vars));
        assert_eq!(read(&[]).unwrap(), AgentSettings::default());
        let set = read(&[("AGENT_MAX_STEPS", "3"), ("AGENT_TURN_TOKENS", "5000")]).unwrap();
        assert_eq!((set.max_steps, set.turn_tokens), (3, 5000));
        let error = read(&[("AGENT_MAX_STEPS", "0")]).unwrap_err().to_string();
        assert!(error.contains("AGENT_MAX_STEPS"), "{error}");
        assert!(read(&[("AGENT_TURN_TOKENS", "lots")]).is_err());
    }
}
