//! Conversations (WIT 0.2) end to end: inline buttons and their presses,
//! plain text to the default plugin, questions that wait for the next
//! message, across restarts; a 0.1.0 plugin still answered. Through the
//! Telegram adapter against the Bot API emulator, and through the real
//! `wasmbot chat` binary with piped stdin.

mod common;

use std::time::Duration;

use common::anthropic::FakeAnthropic;
use common::bot_api::{BOT_USERNAME, BotApi, Sent};
use common::running_bot::{ALLOWED, RunningBot, TOKEN};
use serde_json::Value;

const GROUP: i64 = -1_001_234_567_890;

async fn bot(plugins: &[&str], extra: &[(&str, String)]) -> RunningBot {
    let emulator = BotApi::start(TOKEN).await;
    let plugins = common::plugins_dir(plugins);
    RunningBot::start_with(emulator, plugins, tempfile::tempdir().unwrap(), extra).await
}

/// Sends `text` from the allowed user and returns the bot's next message.
async fn say(bot: &RunningBot, chat: i64, text: &str) -> Sent {
    let before = sent_to(&bot.api, chat).len();
    bot.api.push(chat, ALLOWED, text);
    bot.api.wait_for_sent(chat, before + 1).await[before].clone()
}

/// Waits until message `id` reads `text`: in a group a streamed answer is
/// sent with its first words and edited as the rest arrives.
async fn until_reads(api: &BotApi, id: i64, text: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let held = api.held(id).map(|m| m.text);
        if held.as_deref() == Some(text) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "message {id} reads {held:?}, not {text:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn sent_to(api: &BotApi, chat: i64) -> Vec<Sent> {
    api.sent()
        .into_iter()
        .filter(|s| s.chat_id == chat)
        .collect()
}

/// Presses the button labelled `label` on `message_id`; returns the
/// callback answer's body once the bot answered it.
async fn press(bot: &RunningBot, chat: i64, message_id: i64, label: &str) -> Value {
    let held = bot.api.held(message_id).expect("the message is there");
    let (_, token) = held
        .buttons()
        .into_iter()
        .find(|(l, _)| l.starts_with(label))
        .unwrap_or_else(|| panic!("no button {label:?} in {:?}", held.buttons()));
    press_token(bot, chat, message_id, &token).await
}

async fn press_token(bot: &RunningBot, chat: i64, message_id: i64, token: &str) -> Value {
    let query = bot.api.press(chat, ALLOWED, message_id, token);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let answers = bot.api.wait_for_action("answercallbackquery", 1).await;
        if let Some(answer) = answers
            .into_iter()
            .find(|a| a["callback_query_id"] == query.as_str())
        {
            return answer;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the press {query} was never answered"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn notes_buttons_edit_the_list_in_place_and_every_press_is_answered() {
    let bot = bot(&["notes"], &[]).await;
    say(&bot, ALLOWED, "/note buy milk").await;
    say(&bot, ALLOWED, "/note call mom").await;
    let list = say(&bot, ALLOWED, "/notes").await;
    assert_eq!(list.text, "1. buy milk\n2. call mom");
    let buttons = list.buttons();
    assert_eq!(buttons.len(), 2, "{buttons:?}");
    for (label, token) in &buttons {
        assert!(label.starts_with('✓'), "{label}");
        // Telegram gets an opaque token within its 64 bytes, never the plugin's data.
        assert!(token.len() <= 64 && token.starts_with('b'), "{token}");
        assert!(!token.contains("done"), "{token}");
    }

    let answer = press(&bot, ALLOWED, list.message_id, "✓ 1").await;
    assert_eq!(answer["text"], "Done: buy milk");
    let edited = bot.api.held(list.message_id).unwrap();
    assert_eq!(edited.text, "1. call mom");
    assert_eq!(edited.buttons().len(), 1);
    // The press edited the list; it sent no new message.
    assert_eq!(sent_to(&bot.api, ALLOWED).len(), 3);

    let answer = press(&bot, ALLOWED, list.message_id, "✓ 1").await;
    assert_eq!(answer["text"], "Done: call mom");
    let edited = bot.api.held(list.message_id).unwrap();
    assert_eq!(edited.text, "No notes left.");
    assert!(edited.buttons().is_empty());
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_button_works_after_a_restart_and_expired_forged_or_foreign_ones_get_a_notice() {
    let bot = bot(&["notes"], &[]).await;
    say(&bot, ALLOWED, "/note water the plants").await;
    say(&bot, ALLOWED, "/note pay rent").await;
    let list = say(&bot, ALLOWED, "/notes").await;

    let bot = bot.restart(&[]).await;
    let answer = press(&bot, ALLOWED, list.message_id, "✓ 2").await;
    assert_eq!(answer["text"], "Done: pay rent");
    assert_eq!(
        bot.api.held(list.message_id).unwrap().text,
        "1. water the plants"
    );

    // A forged token and a token pressed in another chat reach no plugin.
    let answer = press_token(&bot, ALLOWED, list.message_id, "bdeadbeef").await;
    assert_eq!(
        answer["text"],
        "This button no longer works. Send the command again."
    );
    let (_, token) = bot.api.held(list.message_id).unwrap().buttons()[0].clone();
    let answer = press_token(&bot, 8, list.message_id, &token).await;
    assert_eq!(answer["text"], "This button belongs to another chat.");

    // Buttons expire (30 days); an expired one says so and changes nothing.
    let db = bot.data.path().join("bot.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    sqlx::query("UPDATE chat_buttons SET expires_at = 0")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let answer = press(&bot, ALLOWED, list.message_id, "✓ 1").await;
    assert_eq!(
        answer["text"],
        "This button has expired. Send the command again."
    );
    assert_eq!(
        bot.api.held(list.message_id).unwrap().text,
        "1. water the plants"
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_button_still_works_after_its_plugin_was_reloaded() {
    let bot = bot(&["notes"], &[]).await;
    say(&bot, ALLOWED, "/note feed the cat").await;
    let list = say(&bot, ALLOWED, "/notes").await;
    // A new version of the plugin (here: a new description) is swapped in.
    let manifest = bot.plugins.path().join("notes.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let changed = text.replace("List your notes", "Show your notes");
    assert_ne!(text, changed, "the manifest describes /notes");
    std::fs::write(&manifest, changed).unwrap();
    bot.wait_until(|api| {
        api.commands.lock().unwrap().as_ref().is_some_and(|menu| {
            menu.iter()
                .any(|(c, d)| c == "notes" && d.starts_with("Show your notes"))
        })
    })
    .await;
    let answer = press(&bot, ALLOWED, list.message_id, "✓ 1").await;
    assert_eq!(answer["text"], "Done: feed the cat");
    assert_eq!(
        bot.api.held(list.message_id).unwrap().text,
        "No notes left."
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_question_waits_for_the_next_message_across_a_restart_and_cancel_leaves_it() {
    let bot = bot(&["notes", "start"], &[]).await;
    let question = say(&bot, ALLOWED, "/note").await;
    assert_eq!(question.text, "What should I note?");

    let bot = bot.restart(&[]).await;
    assert_eq!(
        say(&bot, ALLOWED, "buy bread").await.text,
        "Noted (1 in this chat)."
    );
    assert_eq!(say(&bot, ALLOWED, "/notes").await.text, "1. buy bread");

    // Answered once: the next text is no answer (and no plugin takes free text here).
    assert_eq!(
        say(&bot, ALLOWED, "more bread").await.text,
        "I answer commands that start with a slash: send /help to see them."
    );

    // /cancel leaves the question; a command interrupts it.
    say(&bot, ALLOWED, "/note").await;
    assert_eq!(
        say(&bot, ALLOWED, "/cancel").await.text,
        "Cancelled: notes no longer waits for your answer."
    );
    assert_eq!(
        say(&bot, ALLOWED, "/cancel").await.text,
        "There is no question to cancel."
    );
    say(&bot, ALLOWED, "/note").await;
    assert!(
        say(&bot, ALLOWED, "/start")
            .await
            .text
            .starts_with("Hello, ada!")
    );
    assert_eq!(
        say(&bot, ALLOWED, "not a note").await.text,
        "I answer commands that start with a slash: send /help to see them."
    );
    assert_eq!(say(&bot, ALLOWED, "/notes").await.text, "1. buy bread");
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn free_text_goes_to_the_assistant_and_in_groups_only_when_addressed() {
    let (claude, url) = FakeAnthropic::start().await;
    let extra = [
        ("ANTHROPIC_BASE_URL", url),
        ("ANTHROPIC_API_KEY", "sk-ant-test".to_string()),
    ];
    let bot = bot(&["assistant"], &extra).await;
    assert_eq!(
        say(&bot, ALLOWED, "what is wasm?").await.text,
        "Claude says: what is wasm?"
    );
    // The conversation goes on with the history, and /ask is the same conversation.
    assert_eq!(
        say(&bot, ALLOWED, "/ask and why?").await.text,
        "Claude says: and why?"
    );
    let last = claude.requests().last().unwrap().body.clone();
    assert_eq!(last["messages"].as_array().unwrap().len(), 3, "{last}");

    // In a group, chatter is not for the bot; a mention or a reply to it is.
    let asked = claude.requests().len();
    bot.api.push(GROUP, ALLOWED, "lunch at noon?");
    let reply = say(&bot, GROUP, &format!("@{BOT_USERNAME} what time is it")).await;
    until_reads(&bot.api, reply.message_id, "Claude says: what time is it").await;
    let update = bot
        .api
        .reply_update(GROUP, ALLOWED, "and tomorrow?", reply.message_id);
    bot.api.push_update(update);
    let sent = bot.api.wait_for_sent(GROUP, 2).await;
    until_reads(&bot.api, sent[1].message_id, "Claude says: and tomorrow?").await;
    // A stranger's chatter is not refused in the group: it is not for the bot.
    bot.api.push(GROUP, 666, "anyone for lunch?");
    // Not a mention: another name that starts like ours, an e-mail address.
    bot.api
        .push(GROUP, ALLOWED, &format!("@{BOT_USERNAME}s hi"));
    bot.api
        .push(GROUP, ALLOWED, &format!("write to me@{BOT_USERNAME}.com"));
    // A mention keeps the rest of the text as written, line breaks and all.
    let reply = say(
        &bot,
        GROUP,
        &format!("İstanbul @{BOT_USERNAME} éé\nline two"),
    )
    .await;
    until_reads(
        &bot.api,
        reply.message_id,
        "Claude says: İstanbul éé\nline two",
    )
    .await;
    bot.wait_handled(9).await;
    assert_eq!(
        claude.requests().len(),
        asked + 3,
        "the group chatter reached no model"
    );
    assert_eq!(
        sent_to(&bot.api, GROUP).len(),
        3,
        "nothing else was said in the group"
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn in_a_group_only_the_user_who_was_asked_answers_the_question() {
    let bot = bot(&["notes"], &[]).await;
    let question = say(&bot, GROUP, "/note").await;
    assert_eq!(question.text, "What should I note?");
    // Another member replying to the question does not answer it.
    let other = bot
        .api
        .reply_update(GROUP, 8, "not my note", question.message_id);
    bot.api.push_update(other);
    let sent = bot.api.wait_for_sent(GROUP, 2).await;
    assert_eq!(
        sent[1].text,
        "I answer commands that start with a slash: send /help to see them."
    );
    let mine = bot
        .api
        .reply_update(GROUP, ALLOWED, "buy bread", question.message_id);
    bot.api.push_update(mine);
    let sent = bot.api.wait_for_sent(GROUP, 3).await;
    assert_eq!(sent[2].text, "Noted (1 in this chat).");
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_assistant_tells_claude_the_remembered_notes_closest_to_the_question() {
    let (claude, claude_url) = FakeAnthropic::start().await;
    let (_embeddings, embeddings_url) = common::embeddings::FakeEmbeddings::start().await;
    let vectors = tempfile::tempdir().unwrap();
    let extra = [
        ("ANTHROPIC_BASE_URL", claude_url),
        ("ANTHROPIC_API_KEY", "sk-ant-test".to_string()),
        ("EMBEDDINGS_URL", embeddings_url),
        ("VECTORS_DIR", vectors.path().display().to_string()),
    ];
    let bot = bot(&["assistant"], &extra).await;
    say(
        &bot,
        ALLOWED,
        "/remember the spare key is under the blue flower pot",
    )
    .await;
    let reply = say(&bot, ALLOWED, "where is the spare key?").await;
    assert_eq!(reply.text, "Claude says: where is the spare key?");
    let request = claude.requests().last().unwrap().body.clone();
    let system = request["system"].as_str().unwrap_or_default().to_string();
    assert!(
        system.contains("the spare key is under the blue flower pot"),
        "the note reached Claude's instructions: {request}"
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn health_now_edits_its_own_message_and_a_0_1_0_plugin_is_still_answered() {
    let bot = bot(&["health", "legacy"], &[]).await;
    assert_eq!(
        say(&bot, ALLOWED, "/legacy still here").await.text,
        "legacy 0.1.0 plugin: still here"
    );
    let report = say(&bot, ALLOWED, "/health now").await;
    assert_eq!(report.buttons().len(), 1, "{:?}", report.reply_markup);
    let answer = press(&bot, ALLOWED, report.message_id, "Check again").await;
    assert_eq!(answer["text"], "Checked");
    // The re-check edited the same message, with its button again (Telegram
    // refuses an edit that changes nothing, and the host takes that as done).
    let edits = bot.api.wait_for_action("editmessagetext", 1).await;
    assert_eq!(edits[0]["message_id"], report.message_id, "{edits:?}");
    assert!(
        edits[0]["text"].as_str().unwrap().contains("database"),
        "{edits:?}"
    );
    assert_eq!(
        edits[0]["reply_markup"]["inline_keyboard"][0][0]["text"],
        "Check again"
    );
    let held = bot.api.held(report.message_id).unwrap();
    assert_eq!(held.buttons().len(), 1);
    assert_eq!(
        sent_to(&bot.api, ALLOWED).len(),
        2,
        "the press sent no new message"
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_named_message_is_edited_and_deleted_by_later_calls_even_after_a_restart() {
    let bot = bot(&["status"], &[]).await;
    let status = say(&bot, ALLOWED, "/status new building…").await;
    bot.api.push(ALLOWED, ALLOWED, "/status set built");
    bot.api.wait_for_action("editmessagetext", 1).await;
    assert_eq!(bot.api.held(status.message_id).unwrap().text, "built");

    let bot = bot.restart(&[]).await;
    // A newer message takes the name over; the old one is left alone.
    let newer = say(&bot, ALLOWED, "/status new deploying…").await;
    bot.api.push(ALLOWED, ALLOWED, "/status set deployed");
    bot.api.wait_for_action("editmessagetext", 2).await;
    assert_eq!(bot.api.held(newer.message_id).unwrap().text, "deployed");
    assert_eq!(bot.api.held(status.message_id).unwrap().text, "built");

    // A plugin may not change a message it did not send (here the user's own).
    bot.api.push(ALLOWED, ALLOWED, "/status theirs");
    bot.api.push(ALLOWED, ALLOWED, "/status delete");
    bot.api.wait_for_action("deletemessage", 1).await;
    assert!(bot.api.held(newer.message_id).is_none());
    bot.wait_handled(6).await;
    let edits = bot.api.wait_for_action("editmessagetext", 2).await;
    assert_eq!(
        edits.len(),
        2,
        "the user's message was not edited: {edits:?}"
    );
    bot.stop().await;
}

#[test]
fn the_console_shows_buttons_presses_them_and_answers_questions() {
    let dir = common::plugins_dir(&["notes", "legacy", "start"]);
    let data = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}/wasmbot.db", data.path().display());
    let env = [
        ("PLUGINS_DIR", dir.path().to_str().unwrap()),
        ("DATABASE_URL", database.as_str()),
    ];
    let input =
        "/note buy milk\n/notes\n/press 1\n/press 9\n/note\nbread\n/notes\n/legacy hi\nhello\n";
    let output = common::chat_binary(data.path(), &env, &[], input);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "Noted (1 in this chat).\n\
         1. buy milk\n\
         [1 ✓ 1 buy milk]\n\
         (edited) No notes left.\n\
         (notice) Done: buy milk\n\
         (there is no button 9 on screen)\n\
         What should I note?\n\
         Noted (1 in this chat).\n\
         1. bread\n\
         [2 ✓ 1 bread]\n\
         legacy 0.1.0 plugin: hi\n\
         I answer commands that start with a slash: send /help to see them.\n"
    );

    // The question survives a restart of the console too.
    let first = common::chat_binary(data.path(), &env, &[], "/note\n");
    assert_eq!(
        String::from_utf8_lossy(&first.stdout),
        "What should I note?\n"
    );
    let second = common::chat_binary(data.path(), &env, &[], "eggs\n/notes\n");
    assert_eq!(
        String::from_utf8_lossy(&second.stdout),
        "Noted (2 in this chat).\n1. bread\n2. eggs\n[1 ✓ 1 bread]\n[2 ✓ 2 eggs]\n"
    );
}

#[test]
fn plugins_list_names_each_plugins_world() {
    let dir = common::plugins_dir(&["notes", "legacy", "start"]);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_wasmbot"))
        .args(["plugins", "list"])
        // Its compile cache goes under the working folder.
        .current_dir(dir.path())
        .env_clear()
        .env("PLUGINS_DIR", dir.path())
        .env("DATABASE_URL", "sqlite://nowhere/none.db")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("legacy\t0.1.0\tloaded\t/legacy\tlanguage: rust\tsize: "),
        "{text}"
    );
    assert!(text.contains("\tworld: handler@0.1.0\t"), "{text}");
    assert!(text.contains("\tworld: conversation@0.2.0\t"), "{text}");
    // With tools: built against 0.3.0.
    assert!(text.contains("\tworld: proactive@0.3.0\t"), "{text}");
}
