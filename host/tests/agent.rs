//! The assistant uses the plugins: the Telegram bot (the code `wasmbot run`
//! runs) against the Bot API emulator and a fake Messages API that speaks
//! the tool-use wire format (streamed `tool_use` blocks, `input_json_delta`
//! pieces, `tool_result` blocks in the next request). Each tool runs in its
//! own plugin's sandbox; a `confirm` tool waits for Allow; errors go back
//! to Claude as `is_error`; a message handled again reuses the results.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::anthropic::{Answer, FakeAnthropic, tool_results};
use common::bot_api::BotApi;
use common::plugins_dir;
use common::running_bot::{ALLOWED, RunningBot, TOKEN};
use serde_json::json;
use wasmbot::infra::store::StartedToolCall;

/// The bot with the assistant, notes and remind, Claude faked.
async fn bot(extra: &[(&'static str, String)]) -> (RunningBot, Arc<FakeAnthropic>) {
    bot_with(&["assistant", "notes", "remind"], extra).await
}

/// The bot with these plugins, Claude faked.
async fn bot_with(
    plugins: &[&str],
    extra: &[(&'static str, String)],
) -> (RunningBot, Arc<FakeAnthropic>) {
    let (bot, fake, _) = bot_and_vars(plugins, extra).await;
    (bot, fake)
}

/// As [`bot_with`], with the variables it started with (for a restart).
async fn bot_and_vars(
    plugins: &[&str],
    extra: &[(&'static str, String)],
) -> (RunningBot, Arc<FakeAnthropic>, Vec<(&'static str, String)>) {
    let (fake, url) = FakeAnthropic::start().await;
    let data = tempfile::tempdir().unwrap();
    let mut vars = vec![
        ("ANTHROPIC_BASE_URL", url),
        ("ANTHROPIC_API_KEY", "sk-ant-test-key".to_string()),
        (
            "VECTORS_DIR",
            data.path().join("vectors").display().to_string(),
        ),
    ];
    vars.extend(extra.iter().cloned());
    let bot = RunningBot::start_with(
        BotApi::start(TOKEN).await,
        plugins_dir(plugins),
        data,
        &vars,
    )
    .await;
    (bot, fake, vars)
}

/// Waits until the fake has had `count` requests.
async fn requests(fake: &FakeAnthropic, count: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let seen = fake.requests();
        if seen.len() >= count {
            return seen.into_iter().map(|r| r.body).collect();
        }
        assert!(
            Instant::now() < deadline,
            "{} of {count} requests to Claude",
            seen.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits for a message in the chat whose text contains `part`.
async fn said(api: &BotApi, part: &str) -> common::bot_api::Sent {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(sent) = api.sent().into_iter().find(|s| s.text.contains(part)) {
            return sent;
        }
        assert!(
            Instant::now() < deadline,
            "no message with {part:?}; sent: {:?}",
            api.sent()
                .iter()
                .map(|s| s.text.clone())
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn tool_rows(bot: &RunningBot) -> Vec<(Option<String>, String, Option<String>)> {
    let url = format!("sqlite://{}", bot.data.path().join("bot.db").display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let rows = sqlx::query_as("SELECT parent_id, tool, status FROM tool_calls ORDER BY at_ms, id")
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    rows
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_words_make_claude_set_a_reminder_that_fires_and_two_tools_run_in_one_answer() {
    let (bot, fake) = bot(&[]).await;
    bot.api.push(ALLOWED, ALLOWED, "/note buy milk");
    said(&bot.api, "Noted").await;
    fake.script([
        Answer::ToolUse {
            text: "On it.",
            calls: vec![
                (
                    "toolu_1",
                    "remind",
                    json!({"when": "in 2 seconds", "text": "stretch"}),
                ),
                ("toolu_2", "notes_list", json!({})),
            ],
        },
        Answer::Text("Reminder set, and you have one note."),
    ]);
    bot.api.push(
        ALLOWED,
        ALLOWED,
        "remind me in 2 seconds to stretch, and what are my notes?",
    );
    let seen = requests(&fake, 2).await;
    // Claude was offered the tools, with their schemas.
    let offered: Vec<&str> = seen[0]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|tool| tool["name"].as_str())
        .collect();
    for name in ["remind", "note_add", "notes_list", "note_done"] {
        assert!(offered.contains(&name), "{name} not offered: {offered:?}");
    }
    // Both results came back in one message, each to its tool_use id.
    let results = tool_results(&seen[1]);
    let (reminder, failed) = &results["toolu_1"];
    assert!(!failed && reminder.contains("stretch"), "{reminder}");
    let (notes, failed) = &results["toolu_2"];
    assert!(!failed && notes.contains("1. buy milk"), "{notes}");
    // The assistant turn with the tool_use blocks went back before them.
    let history = seen[1]["messages"].as_array().unwrap();
    let asked = &history[history.len() - 2];
    assert_eq!(asked["role"], "assistant");
    assert_eq!(
        asked["content"][1]["input"],
        json!({"when": "in 2 seconds", "text": "stretch"})
    );
    said(&bot.api, "Reminder set, and you have one note.").await;
    // The reminder fires (the job runs in the remind plugin, not the assistant).
    said(&bot.api, "⏰").await;
    // Two rows per call: started (no parent) and completed (pointing to it).
    let rows = tool_rows(&bot).await;
    let started = rows
        .iter()
        .filter(|(parent, _, _)| parent.is_none())
        .count();
    let completed: Vec<_> = rows
        .iter()
        .filter(|(parent, _, _)| parent.is_some())
        .collect();
    assert_eq!((started, completed.len()), (2, 2), "{rows:?}");
    assert!(
        completed
            .iter()
            .all(|(_, _, status)| status.as_deref() == Some("ok"))
    );
    // `wasmbot tools log` prints them, newest first.
    let printed = std::process::Command::new(env!("CARGO_BIN_EXE_wasmbot"))
        .args(["tools", "log", "--chat", &ALLOWED.to_string()])
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/bot.db", bot.data.path().display()),
        )
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&printed.stdout);
    assert!(
        printed.contains("remind/remind") && printed.contains("notes/notes_list"),
        "{printed}"
    );
    assert!(printed.contains("\tok in "), "{printed}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_confirm_tool_waits_for_allow_and_deny_is_told_to_claude() {
    let (bot, fake, vars) = bot_and_vars(&["assistant", "notes", "remind"], &[]).await;
    bot.api.push(ALLOWED, ALLOWED, "/note first thing");
    said(&bot.api, "Noted (1").await;
    fake.script([
        Answer::ToolUse {
            text: "",
            calls: vec![("toolu_d", "note_done", json!({"number": 1}))],
        },
        Answer::Text("Okay, I left it."),
    ]);
    bot.api.push(ALLOWED, ALLOWED, "mark the first note done");
    let question = said(&bot.api, "Allow `note_done`").await;
    let buttons = question.buttons();
    assert_eq!(buttons.len(), 2, "{buttons:?}");
    // Nothing ran yet: one request to Claude, the note still there.
    assert_eq!(fake.requests().len(), 1);
    // The question survives a restart.
    let bot = bot.restart(&vars).await;
    bot.api
        .press(ALLOWED, ALLOWED, question.message_id, &buttons[1].1);
    let seen = requests(&fake, 2).await;
    let (refusal, failed) = &tool_results(&seen[1])["toolu_d"];
    assert!(*failed && refusal.contains("refused"), "{refusal}");
    said(&bot.api, "Okay, I left it.").await;
    // Allowed this time: the tool runs.
    fake.script([
        Answer::ToolUse {
            text: "",
            calls: vec![("toolu_a", "note_done", json!({"number": 1}))],
        },
        Answer::Text("Done."),
    ]);
    bot.api.push(ALLOWED, ALLOWED, "mark the first note done");
    let deadline = Instant::now() + Duration::from_secs(30);
    let question = loop {
        let asked: Vec<_> = bot
            .api
            .sent()
            .into_iter()
            .filter(|s| s.text.contains("Allow `note_done`"))
            .collect();
        if asked.len() == 2 {
            break asked[1].clone();
        }
        assert!(Instant::now() < deadline, "no second question");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let allow = question.buttons()[0].1.clone();
    bot.api.press(ALLOWED, ALLOWED, question.message_id, &allow);
    let seen = requests(&fake, 4).await;
    let (done, failed) = &tool_results(&seen[3])["toolu_a"];
    assert!(!failed && done.contains("Done: first thing"), "{done}");
    said(&bot.api, "Done.").await;
    // A second press finds nothing to answer and runs nothing.
    bot.api.press(ALLOWED, ALLOWED, question.message_id, &allow);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fake.requests().len(), 4);
    let statuses: Vec<Option<String>> = tool_rows(&bot)
        .await
        .into_iter()
        .filter(|(parent, _, _)| parent.is_some())
        .map(|(_, _, status)| status)
        .collect();
    assert_eq!(
        statuses,
        [Some("denied".to_string()), Some("ok".to_string())]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_tool_and_a_refused_input_are_errors_for_claude_and_steps_are_limited() {
    let (bot, fake) = bot_with(
        &["assistant", "notes", "crash"],
        &[("AGENT_MAX_STEPS", "2".to_string())],
    )
    .await;
    fake.script([
        Answer::ToolUse {
            text: "",
            calls: vec![
                ("toolu_x", "launch_rockets", json!({})),
                ("toolu_y", "note_done", json!({"number": "first"})),
                ("toolu_t", "crash_tool", json!({})),
            ],
        },
        Answer::ToolUse {
            text: "Trying again.",
            calls: vec![("toolu_z", "notes_list", json!({}))],
        },
    ]);
    bot.api.push(ALLOWED, ALLOWED, "do something odd");
    let seen = requests(&fake, 2).await;
    let results = tool_results(&seen[1]);
    let (unknown, failed) = &results["toolu_x"];
    assert!(*failed && unknown.contains("no tool called"), "{unknown}");
    let (refused, failed) = &results["toolu_y"];
    assert!(
        *failed && refused.contains("does not fit the schema"),
        "{refused}"
    );
    // The second step asked for a tool again: the limit ends the turn.
    said(&bot.api, "AGENT_MAX_STEPS").await;
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_handled_again_reuses_the_completed_tool_call() {
    let (bot, fake) = bot(&[]).await;
    let first = Answer::ToolUse {
        text: "",
        calls: vec![("toolu_n", "note_add", json!({"text": "call mum"}))],
    };
    fake.script([
        first.clone(),
        Answer::Text("Noted it."),
        first,
        Answer::Text("Noted it."),
    ]);
    let update = bot
        .api
        .update(ALLOWED, ALLOWED, "note that I should call mum");
    bot.api.push_update(update.clone());
    said(&bot.api, "Noted it.").await;
    // The same message again (as after a crash before the update was done).
    // A new update id (the emulator's next), the same message.
    let mut again = bot.api.update(ALLOWED, ALLOWED, "unused");
    again["message"] = update["message"].clone();
    bot.api.push_update(again);
    let seen = requests(&fake, 4).await;
    let (text, failed) = &tool_results(&seen[3])["toolu_n"];
    assert!(!failed && text.contains("Noted (1"), "{text}");
    // The tool ran once: one note, one started row.
    bot.api.push(ALLOWED, ALLOWED, "/notes");
    said(&bot.api, "1. call mum").await;
    let started = tool_rows(&bot)
        .await
        .into_iter()
        .filter(|(parent, _, _)| parent.is_none())
        .count();
    assert_eq!(started, 1);
}

#[tokio::test]
async fn the_tool_log_keeps_two_rows_per_call_on_both_backends() {
    for test_store in common::stores::all().await {
        let store = &test_store.store;
        let call = |id: &'static str, key: Option<&'static str>| StartedToolCall {
            id,
            correlation_id: "corr",
            turn_key: key,
            chat_id: 7,
            user_id: 8,
            plugin: "notes",
            tool: "note_add",
            input: r#"{"text":"x"}"#,
        };
        let first = format!("{}-a", uuid::Uuid::new_v4().simple());
        let second = format!("{}-b", uuid::Uuid::new_v4().simple());
        let key = format!("telegram:7:{}", uuid::Uuid::new_v4().simple());
        let key: &'static str = Box::leak(key.into_boxed_str());
        let first: &'static str = Box::leak(first.into_boxed_str());
        let second: &'static str = Box::leak(second.into_boxed_str());
        store
            .tool_call_started(&call(first, Some(key)))
            .await
            .unwrap();
        store
            .tool_call_finished(&call(first, Some(key)), "ok", r#"{"text":"Noted"}"#, 3.5)
            .await
            .unwrap();
        // Killed mid-way: only its started row.
        store
            .tool_call_started(&call(second, Some(key)))
            .await
            .unwrap();
        let completed = store.tool_calls_completed(key).await.unwrap();
        assert_eq!(completed.len(), 1, "{}", test_store.label);
        assert_eq!(completed[0].status, "ok");
        let log = store.tool_calls_log(Some(7), 10).await.unwrap();
        let ours: Vec<_> = log
            .iter()
            .filter(|row| row.id == first || row.id == second)
            .collect();
        assert_eq!(ours.len(), 2, "{}", test_store.label);
        let finished = ours.iter().find(|row| row.id == first).unwrap();
        assert_eq!(finished.status.as_deref(), Some("ok"));
        assert_eq!(finished.duration_ms, Some(3.5));
        assert!(
            ours.iter()
                .find(|row| row.id == second)
                .unwrap()
                .status
                .is_none()
        );
        assert!(store.tool_calls_log(None, 1).await.unwrap().len() == 1);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_agent_calls_a_python_and_a_javascript_tool() {
    let (bot, fake) = bot_with(&["assistant", "convert", "dice"], &[]).await;
    fake.script([
        Answer::ToolUse {
            text: "",
            calls: vec![
                (
                    "toolu_c",
                    "convert",
                    json!({"value": 5, "from": "km", "to": "mi"}),
                ),
                ("toolu_r", "roll", json!({"dice": "3d6"})),
                ("toolu_bad", "roll", json!({"dice": "banana"})),
            ],
        },
        Answer::Text("5 km is about 3.1 miles, and you rolled."),
    ]);
    bot.api.push(
        ALLOWED,
        ALLOWED,
        "how many miles is 5 km, and roll 3d6 for me",
    );
    let seen = requests(&fake, 2).await;
    let results = tool_results(&seen[1]);
    let (converted, failed) = &results["toolu_c"];
    assert!(!failed && converted.contains("3.107 mi"), "{converted}");
    let (rolled, failed) = &results["toolu_r"];
    assert!(!failed && rolled.starts_with("3d6: "), "{rolled}");
    // The JS plugin's own refusal (Declined) is an error result.
    let (refused, failed) = &results["toolu_bad"];
    assert!(*failed && refused.contains("is not a roll"), "{refused}");
    said(&bot.api, "5 km is about 3.1 miles").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn in_the_console_a_reminder_from_plain_words_fires_and_a_confirm_tool_asks_first() {
    use common::console::{collect, console, ends_cleanly, until_printed};
    use std::io::Write as _;
    let (fake, url) = FakeAnthropic::start().await;
    fake.script([
        Answer::ToolUse {
            text: "Sure.",
            calls: vec![(
                "toolu_1",
                "remind",
                json!({"when": "in 2 seconds", "text": "stretch"}),
            )],
        },
        Answer::Text("I'll remind you to stretch."),
    ]);
    let plugins = plugins_dir(&["assistant", "notes", "remind"]);
    let data = tempfile::tempdir().unwrap();
    let mut child = console(data.path(), plugins.path(), &url);
    let seen = collect(child.stdout.take().unwrap());
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(b"remind me in 2 seconds to stretch\n")
        .unwrap();
    // The tool call is a line between the streamed text.
    until_printed(&seen, "🔧 remind(").await;
    until_printed(&seen, "→ ok").await;
    until_printed(&seen, "I'll remind you to stretch.").await;
    until_printed(&seen, "⏰").await;
    // A confirm tool asks first: the question's buttons, pressed with /press.
    fake.script([
        Answer::ToolUse {
            text: "",
            calls: vec![("toolu_2", "note_done", json!({"number": 1}))],
        },
        Answer::Text("Marked it done."),
    ]);
    stdin.write_all(b"/note water the plants\n").unwrap();
    until_printed(&seen, "Noted").await;
    stdin.write_all(b"mark the first note done\n").unwrap();
    until_printed(&seen, "Allow `note_done`").await;
    until_printed(&seen, "✅ Allow]").await;
    let printed = seen.lock().unwrap().clone();
    let allow = printed
        .lines()
        .rev()
        .find_map(|line| {
            let at = line.find("✅ Allow]")?;
            let open = line[..at].rfind('[')?;
            line[open + 1..at].trim().parse::<u32>().ok()
        })
        .unwrap_or_else(|| panic!("no Allow button number in {printed:?}"));
    stdin
        .write_all(format!("/press {allow}\n").as_bytes())
        .unwrap();
    until_printed(&seen, "🔧 note_done(number: 1) → ok").await;
    until_printed(&seen, "Marked it done.").await;
    ends_cleanly(child, stdin).await;
}
