//! GitHub's notification threads (`GET /notifications`) and the summary
//! `/github` replies with.

use serde::Deserialize;

/// How many threads the summary lists.
const SHOWN: usize = 5;

/// One thread, the fields the summary uses.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Notification {
    pub unread: bool,
    pub subject: Subject,
    pub repository: Repository,
    /// ISO 8601 in UTC ("2024-05-02T09:14:11Z"): sorts as text.
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Subject {
    pub title: String,
    /// "PullRequest", "Issue", "Release", "CheckSuite"...
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Repository {
    pub full_name: String,
}

pub fn parse(body: &[u8]) -> Result<Vec<Notification>, String> {
    serde_json::from_slice(body)
        .map_err(|error| format!("GitHub sent notifications I could not read ({error})."))
}

/// Whether a `Link` header points to another page (GitHub sends 50 a page).
pub fn has_next_page(link: &str) -> bool {
    link.split(',').any(|part| part.contains("rel=\"next\""))
}

/// "You have N unread notifications." and the latest [`SHOWN`], newest
/// first, as "• owner/repo — Title (PullRequest)".
pub fn summary(notifications: Vec<Notification>, more_pages: bool) -> String {
    let mut unread: Vec<Notification> = notifications.into_iter().filter(|n| n.unread).collect();
    if unread.is_empty() {
        return "No unread notifications. 🎉".to_string();
    }
    unread.sort_by(|a, b| b.updated_at.cmp(&a.updated_at));
    let count = unread.len();
    let mut lines = vec![match (count, more_pages) {
        (_, true) => format!("You have more than {count} unread notifications."),
        (1, false) => "You have 1 unread notification.".to_string(),
        (_, false) => format!("You have {count} unread notifications."),
    }];
    lines.extend(unread.iter().take(SHOWN).map(|n| {
        format!(
            "• {} — {} ({})",
            n.repository.full_name, n.subject.title, n.subject.kind
        )
    }));
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two threads as `GET /notifications` returns them (trimmed of the
    /// fields nobody reads, the shape kept).
    const SAMPLE: &str = r#"[
      {
        "id": "1",
        "repository": {"id": 1296269, "name": "Hello-World", "full_name": "octocat/Hello-World",
                       "owner": {"login": "octocat", "id": 1}, "private": false},
        "subject": {"title": "Greetings", "url": "https://api.github.com/repos/octocat/Hello-World/issues/123",
                    "latest_comment_url": "https://api.github.com/repos/octocat/Hello-World/issues/comments/123",
                    "type": "Issue"},
        "reason": "subscribed",
        "unread": true,
        "updated_at": "2014-11-07T22:01:45Z",
        "last_read_at": "2014-11-07T22:01:45Z",
        "url": "https://api.github.com/notifications/threads/1",
        "subscription_url": "https://api.github.com/notifications/threads/1/subscription"
      },
      {
        "id": "2",
        "repository": {"id": 1, "name": "wasmbot", "full_name": "acme/wasmbot", "owner": {"login": "acme", "id": 2}, "private": true},
        "subject": {"title": "Add /weather", "url": null, "latest_comment_url": null, "type": "PullRequest"},
        "reason": "review_requested",
        "unread": true,
        "updated_at": "2024-05-02T09:14:11Z",
        "last_read_at": null,
        "url": "https://api.github.com/notifications/threads/2",
        "subscription_url": "https://api.github.com/notifications/threads/2/subscription"
      }
    ]"#;

    fn thread(repo: &str, title: &str, updated_at: &str, unread: bool) -> Notification {
        Notification {
            unread,
            subject: Subject {
                title: title.into(),
                kind: "Issue".into(),
            },
            repository: Repository {
                full_name: repo.into(),
            },
            updated_at: updated_at.into(),
        }
    }

    #[test]
    fn lists_the_newest_first() {
        let list = parse(SAMPLE.as_bytes()).expect("parses");
        assert_eq!(
            summary(list, false),
            "You have 2 unread notifications.\n\
             • acme/wasmbot — Add /weather (PullRequest)\n\
             • octocat/Hello-World — Greetings (Issue)"
        );
    }

    #[test]
    fn shows_five_and_counts_the_unread() {
        let mut list: Vec<Notification> = (1..=7)
            .map(|i| {
                thread(
                    "o/r",
                    &format!("T{i}"),
                    &format!("2024-05-0{i}T00:00:00Z"),
                    true,
                )
            })
            .collect();
        list.push(thread("o/r", "read", "2024-05-09T00:00:00Z", false));
        let text = summary(list, false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "You have 7 unread notifications.");
        assert_eq!(lines.len(), 6);
        assert_eq!(lines[1], "• o/r — T7 (Issue)");
        assert_eq!(lines[5], "• o/r — T3 (Issue)");
    }

    #[test]
    fn counts_one_and_none() {
        let one = vec![thread("o/r", "T", "2024-01-01T00:00:00Z", true)];
        assert!(summary(one, false).starts_with("You have 1 unread notification.\n"));
        assert_eq!(summary(Vec::new(), false), "No unread notifications. 🎉");
        let read = vec![thread("o/r", "T", "2024-01-01T00:00:00Z", false)];
        assert_eq!(summary(read, false), "No unread notifications. 🎉");
        assert_eq!(
            parse(b"[]").map(|list| summary(list, false)),
            Ok("No unread notifications. 🎉".to_string())
        );
    }

    #[test]
    fn says_when_there_is_another_page() {
        let link = r#"<https://api.github.com/notifications?page=2>; rel="next", <https://api.github.com/notifications?page=3>; rel="last""#;
        assert!(has_next_page(link));
        assert!(!has_next_page(
            r#"<https://api.github.com/notifications?page=1>; rel="prev""#
        ));
        let one = vec![thread("o/r", "T", "2024-01-01T00:00:00Z", true)];
        assert!(summary(one, true).starts_with("You have more than 1 unread notifications."));
    }

    #[test]
    fn an_unexpected_answer_is_explained() {
        let error = parse(br#"{"message":"Bad credentials"}"#).unwrap_err();
        assert!(error.starts_with("GitHub sent notifications I could not read"));
    }
}
