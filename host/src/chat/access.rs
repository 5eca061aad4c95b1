//! Who may talk to the bot. Strangers get one polite refusal, then silence
//! for a while (the bot is no echo chamber for spam); every refused message
//! is still audited.

use std::collections::HashSet;
use std::time::Duration;

/// How long a refused user is not told again.
const REFUSAL_QUIET: Duration = Duration::from_secs(24 * 60 * 60);

pub const REFUSAL_TEXT: &str =
    "Sorry, this is a private assistant and you are not on its list of users.";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Allowed,
    /// Refused; tell the user.
    Refused,
    /// Refused, and told recently: say nothing.
    RefusedQuietly,
}

pub struct AccessPolicy {
    allowed: Option<HashSet<i64>>,
    told: moka::sync::Cache<i64, ()>,
}

impl AccessPolicy {
    /// Everyone may use the bot (the console; a bot without an allow-list).
    pub fn everyone() -> Self {
        Self {
            allowed: None,
            told: moka::sync::Cache::new(0),
        }
    }

    /// Only these user ids.
    pub fn only(users: impl IntoIterator<Item = i64>) -> Self {
        Self {
            allowed: Some(users.into_iter().collect()),
            told: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(REFUSAL_QUIET)
                .build(),
        }
    }

    pub fn check(&self, user_id: i64) -> Access {
        match &self.allowed {
            None => Access::Allowed,
            Some(users) if users.contains(&user_id) => Access::Allowed,
            Some(_) if self.told.entry(user_id).or_insert(()).is_fresh() => Access::Refused,
            Some(_) => Access::RefusedQuietly,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_list_refuses_strangers_once() {
        let policy = AccessPolicy::only([7, 8]);
        assert_eq!(policy.check(7), Access::Allowed);
        assert_eq!(policy.check(9), Access::Refused);
        assert_eq!(policy.check(9), Access::RefusedQuietly);
        assert_eq!(policy.check(10), Access::Refused);
        assert_eq!(AccessPolicy::everyone().check(9), Access::Allowed);
    }
}
