//! Answers that stream and files both ways, end to end: the Telegram bot
//! (the code `wasmbot run` runs) against the Bot API emulator and a fake
//! Messages API streaming server-sent events. `/ask` grows as a draft in a
//! private chat and as one edited message in a group (or where drafts are
//! refused); a photo reaches Claude as an image block; a document past the
//! cap is refused before any download; `/notes export` uploads a file.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::anthropic::{Answer, FakeAnthropic, StreamEnd, paced_text};
use common::bot_api::BotApi;
use common::console::{collect, console, ends_cleanly, until_printed};
use common::plugins_dir;
use common::running_bot::{ALLOWED, RunningBot, TOKEN};
use wasmbot::chat::telegram::{EDIT_INTERVAL, GROUP_EDIT_INTERVAL};

const GROUP: i64 = -100_777;

/// The bot with `assistant` and `notes`, Claude faked at `fake`.
async fn bot(extra: &[(&str, String)]) -> (RunningBot, Arc<FakeAnthropic>) {
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
        plugins_dir(&["assistant", "notes"]),
        data,
        &vars,
    )
    .await;
    (bot, fake)
}

/// Words the fake sends one by one; the rest only once `gate` is notified.
fn gated(words: Vec<&'static str>, end: StreamEnd) -> (Answer, Arc<tokio::sync::Notify>) {
    let gate = Arc::new(tokio::sync::Notify::new());
    let answer = Answer::Stream {
        words,
        gate: Some(gate.clone()),
        end,
    };
    (answer, gate)
}

/// Waits until `check` holds for the emulator.
async fn until(api: &BotApi, what: &str, check: impl Fn(&BotApi) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check(api) {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; calls: {:?}; sent: {:?}",
            api.calls.lock().unwrap(),
            api.sent()
                .iter()
                .map(|s| s.text.clone())
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn in_a_private_chat_the_answer_grows_as_a_draft_and_is_then_sent_whole() {
    let (bot, fake) = bot(&[]).await;
    let (answer, gate) = gated(vec!["Paris", " is", " the", " capital."], StreamEnd::Stop);
    fake.script([answer]);
    bot.api.push(ALLOWED, ALLOWED, "/ask capital of France?");
    // The first word is shown while Claude has not written the rest.
    until(&bot.api, "a draft with the first word", |api| {
        api.drafts
            .lock()
            .unwrap()
            .iter()
            .any(|(_, _, text, _)| text == "Paris")
    })
    .await;
    assert!(
        bot.api.sent().iter().all(|s| s.chat_id != ALLOWED),
        "nothing sent before the end"
    );
    gate.notify_one();
    let sent = bot.api.wait_for_sent(ALLOWED, 1).await;
    assert_eq!(sent[0].text, "Paris is the capital.");
    assert_eq!(sent[0].parse_mode, None, "a streamed answer is plain text");
    let drafts = bot.api.drafts.lock().unwrap().clone();
    assert!(
        drafts
            .iter()
            .all(|(chat, id, _, _)| *chat == ALLOWED && *id == drafts[0].1)
    );
    // The request asked for a stream, and the history keeps the answer.
    assert_eq!(fake.requests()[0].body["stream"], true);
    bot.api.push(ALLOWED, ALLOWED, "/ask and of Italy?");
    let sent = bot.api.wait_for_sent(ALLOWED, 2).await;
    assert_eq!(sent[1].text, "Claude says: and of Italy?");
    let history = &fake.requests()[1].body["messages"];
    assert_eq!(history[1]["content"], "Paris is the capital.");
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn in_a_group_the_answer_is_one_message_edited_as_it_grows() {
    let (bot, fake) = bot(&[]).await;
    let (answer, gate) = gated(vec!["One", " two", " three."], StreamEnd::Stop);
    fake.script([answer]);
    bot.api.push(GROUP, ALLOWED, "/ask count");
    // The first word is sent as a message before the rest is written.
    let first = bot.api.wait_for_sent(GROUP, 1).await;
    assert_eq!(first[0].text, "One");
    gate.notify_one();
    let edits = bot.api.wait_for_action("editmessagetext", 1).await;
    until(&bot.api, "the full text", |api| {
        api.held(first[0].message_id)
            .is_some_and(|m| m.text == "One two three.")
    })
    .await;
    assert!(edits.iter().all(|e| e["message_id"] == first[0].message_id));
    assert_eq!(
        bot.api.sent().iter().filter(|s| s.chat_id == GROUP).count(),
        1
    );
    assert!(
        bot.api.drafts.lock().unwrap().is_empty(),
        "no drafts in a group"
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn where_drafts_are_refused_edits_are_throttled_and_the_final_text_is_whole() {
    let (bot, fake) = bot(&[]).await;
    bot.api.refuse_drafts.store(true, Ordering::SeqCst);
    // 30 words, 80 ms apart: over 2 s of writing, long enough to need edits.
    fake.script([Answer::Paced {
        words: 30,
        every: Duration::from_millis(80),
    }]);
    bot.api.push(ALLOWED, ALLOWED, "/ask count slowly");
    let sent = bot.api.wait_for_sent(ALLOWED, 1).await;
    until(&bot.api, "the full text", |api| {
        api.held(sent[0].message_id)
            .is_some_and(|m| m.text == paced_text(30))
    })
    .await;
    bot.wait_handled(1).await;
    // One refused draft, then only edits of the one message, at least the
    // throttle's interval apart (after the first message) but the final one.
    let refused = bot.api.wait_for_action("sendmessagedraft", 1).await;
    assert_eq!(refused.len(), 1, "a refused draft is not tried again");
    let mut times = vec![sent[0].at];
    times.extend(
        bot.api
            .action_times
            .lock()
            .unwrap()
            .iter()
            .filter(|(method, _)| method == "editmessagetext")
            .map(|(_, at)| *at),
    );
    assert!(times.len() >= 3, "{} edits", times.len() - 1);
    let slack = Duration::from_millis(20);
    for pair in times[..times.len() - 1].windows(2) {
        assert!(
            pair[1] - pair[0] + slack >= EDIT_INTERVAL,
            "edits {:?} apart",
            pair[1] - pair[0]
        );
    }
    assert_eq!(
        bot.api
            .sent()
            .iter()
            .filter(|s| s.chat_id == ALLOWED)
            .count(),
        1
    );
    // The next answer does not try drafts again.
    bot.api.push(ALLOWED, ALLOWED, "/ask again");
    bot.api.wait_for_sent(ALLOWED, 2).await;
    bot.wait_handled(2).await;
    assert_eq!(
        bot.api.wait_for_action("sendmessagedraft", 1).await.len(),
        1
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_draft_telegram_asks_to_slow_down_waits_and_drafts_go_on() {
    let (bot, fake) = bot(&[]).await;
    bot.api.throttle_drafts.store(1, Ordering::SeqCst);
    fake.script([Answer::Paced {
        words: 30,
        every: Duration::from_millis(80),
    }]);
    bot.api.push(ALLOWED, ALLOWED, "/ask count slowly");
    let sent = bot.api.wait_for_sent(ALLOWED, 1).await;
    assert_eq!(sent[0].text, paced_text(30));
    let calls = bot.api.wait_for_action("sendmessagedraft", 2).await;
    assert!(
        !bot.api.drafts.lock().unwrap().is_empty(),
        "drafts went on after the 429: {calls:?}"
    );
    // The draft after the 429 waited its second.
    let drafts: Vec<Instant> = bot
        .api
        .action_times
        .lock()
        .unwrap()
        .iter()
        .filter(|(method, _)| method == "sendmessagedraft")
        .map(|(_, at)| *at)
        .collect();
    assert!(
        drafts[1] - drafts[0] >= Duration::from_millis(980),
        "{:?}",
        drafts[1] - drafts[0]
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_private_answer_that_stops_early_is_sent_with_what_came_and_a_notice() {
    let (bot, fake) = bot(&[]).await;
    fake.script([Answer::Stream {
        words: vec!["Half", " an", " answer"],
        gate: None,
        end: StreamEnd::Cut,
    }]);
    bot.api.push(ALLOWED, ALLOWED, "/ask tell me");
    let sent = bot.api.wait_for_sent(ALLOWED, 1).await;
    assert!(
        sent[0]
            .text
            .starts_with("Half an answer\n\n⚠️ The answer was cut off"),
        "{}",
        sent[0].text
    );
    bot.wait_handled(1).await;
    assert_eq!(
        bot.api
            .sent()
            .iter()
            .filter(|s| s.chat_id == ALLOWED)
            .count(),
        1
    );
    // The history keeps what the user saw.
    bot.api.push(ALLOWED, ALLOWED, "/ask go on");
    bot.api.wait_for_sent(ALLOWED, 2).await;
    assert_eq!(
        fake.requests()[1].body["messages"][1]["content"],
        "Half an answer"
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_answer_that_breaks_off_keeps_what_arrived_with_a_notice() {
    let (bot, fake) = bot(&[]).await;
    fake.script([Answer::Stream {
        words: vec!["Half", " an", " answer"],
        gate: None,
        end: StreamEnd::Error,
    }]);
    bot.api.push(GROUP, ALLOWED, "/ask tell me");
    let sent = bot.api.wait_for_sent(GROUP, 1).await;
    until(&bot.api, "the notice", |api| {
        api.held(sent[0].message_id)
            .is_some_and(|m| m.text.contains("cut off"))
    })
    .await;
    let text = bot.api.held(sent[0].message_id).unwrap().text;
    assert!(
        text.starts_with("Half an answer\n\n⚠️ The answer was cut off"),
        "{text}"
    );
    // One message only: the plugin does not repeat the error.
    bot.wait_handled(1).await;
    assert_eq!(
        bot.api.sent().iter().filter(|s| s.chat_id == GROUP).count(),
        1
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_answer_in_a_group_is_edited_sparingly_and_split_past_4096() {
    let (bot, fake) = bot(&[]).await;
    // 1000 words of 5-9 characters: two messages' worth, over ~2 s.
    fake.script([Answer::Paced {
        words: 1000,
        every: Duration::from_millis(2),
    }]);
    let started = Instant::now();
    bot.api.push(GROUP, ALLOWED, "/ask a lot");
    let full = paced_text(1000);
    assert!(full.chars().count() > 4096);
    until(&bot.api, "the whole answer in two messages", |api| {
        let texts: Vec<String> = api
            .sent()
            .iter()
            .filter(|s| s.chat_id == GROUP)
            .filter_map(|s| api.held(s.message_id))
            .map(|m| m.text)
            .collect();
        texts.len() == 2 && texts.concat() == full
    })
    .await;
    bot.wait_handled(1).await;
    let requests = bot
        .api
        .calls
        .lock()
        .unwrap()
        .iter()
        .filter(|m| m.as_str() == "sendmessage" || m.as_str() == "editmessagetext")
        .count();
    // One render per interval while it was written (two requests where it
    // splits), and the final ones: not one per piece.
    let renders = (started.elapsed().as_millis() / GROUP_EDIT_INTERVAL.as_millis()) as usize + 1;
    assert!(
        requests <= 2 * renders + 2,
        "{requests} requests in {:?}",
        started.elapsed()
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_photo_captioned_ask_reaches_claude_as_an_image_block() {
    let (bot, fake) = bot(&[]).await;
    let jpeg = b"\xFF\xD8\xFF\xE0 a tiny jpeg".to_vec();
    let update = bot
        .api
        .photo_update(ALLOWED, ALLOWED, "/ask what is this?", &jpeg);
    bot.api.push_update(update);
    let sent = bot.api.wait_for_sent(ALLOWED, 1).await;
    assert_eq!(sent[0].text, "Claude says: what is this?");
    let request = &fake.requests()[0].body;
    let content = &request["messages"][0]["content"];
    use base64::Engine as _;
    assert_eq!(content[0]["type"], "image");
    assert_eq!(content[0]["source"]["media_type"], "image/jpeg");
    assert_eq!(
        content[0]["source"]["data"],
        base64::engine::general_purpose::STANDARD.encode(&jpeg)
    );
    assert_eq!(
        content[1],
        serde_json::json!({"type": "text", "text": "what is this?"})
    );
    // Only the largest size was downloaded.
    let got = bot.api.wait_for_action("getfile", 1).await;
    assert_eq!(got.len(), 1);
    assert!(got[0]["file_id"].as_str().unwrap().ends_with("-l"));
    // A photo without a caption, as free text, is asked about too.
    let update = bot.api.photo_update(ALLOWED, ALLOWED, "", &jpeg);
    bot.api.push_update(update);
    let sent = bot.api.wait_for_sent(ALLOWED, 2).await;
    assert_eq!(sent[1].text, "Claude says: What is this?");
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_document_past_the_cap_is_refused_before_any_download() {
    let (bot, fake) = bot(&[("MEDIA_MAX_MB", "1".to_string())]).await;
    let update = bot.api.document_update(
        ALLOWED,
        ALLOWED,
        "/ask summarise",
        ("big.pdf", "application/pdf", 3 << 20),
        b"%PDF-1.4",
    );
    bot.api.push_update(update);
    let sent = bot.api.wait_for_sent(ALLOWED, 1).await;
    assert_eq!(
        sent[0].text,
        "That file is too large for me: I can take at most 1 MB."
    );
    assert!(!bot.api.called("getFile"), "nothing is downloaded");
    assert!(fake.requests().is_empty(), "Claude is not asked");
    // A voice note is refused with what the assistant can read.
    let mut update =
        bot.api
            .document_update(ALLOWED, ALLOWED, "", ("v.ogg", "audio/ogg", 5), b"OggS!");
    let message = &mut update["message"];
    message["voice"] = serde_json::json!({"file_id": "v", "file_unique_id": "uv", "duration": 1, "mime_type": "audio/ogg"});
    message.as_object_mut().unwrap().remove("document");
    bot.api.push_update(update);
    let sent = bot.api.wait_for_sent(ALLOWED, 2).await;
    assert!(
        sent[1].text.contains("can't listen to audio"),
        "{}",
        sent[1].text
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn notes_export_uploads_a_text_file() {
    let (bot, _fake) = bot(&[]).await;
    bot.api.push(ALLOWED, ALLOWED, "/note buy milk");
    bot.api.wait_for_sent(ALLOWED, 1).await;
    bot.api.push(ALLOWED, ALLOWED, "/note call Ada");
    bot.api.wait_for_sent(ALLOWED, 2).await;
    bot.api.push(ALLOWED, ALLOWED, "/notes export");
    let uploads = bot.api.wait_for_uploads(1).await;
    let upload = &uploads[0];
    assert_eq!(upload.method, "senddocument");
    assert_eq!(upload.chat_id, ALLOWED);
    assert_eq!(upload.name, "notes.txt");
    assert_eq!(
        String::from_utf8_lossy(&upload.bytes),
        "1. buy milk\n2. call Ada\n"
    );
    assert_eq!(upload.caption.as_deref(), Some("Your 2 notes."));
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_prints_an_answer_as_it_is_written() {
    use std::io::Write as _;
    let (fake, url) = FakeAnthropic::start().await;
    let (answer, gate) = gated(vec!["Paris", " is", " the", " capital."], StreamEnd::Stop);
    fake.script([answer]);
    let plugins = plugins_dir(&["assistant"]);
    let data = tempfile::tempdir().unwrap();
    let mut child = console(data.path(), plugins.path(), &url);
    let seen = collect(child.stdout.take().unwrap());
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"/ask capital of France?\n").unwrap();
    // The first word is on screen while the rest is not written yet.
    until_printed(&seen, "Paris").await;
    assert!(!seen.lock().unwrap().contains("capital"));
    gate.notify_one();
    until_printed(&seen, "Paris is the capital.\n").await;
    ends_cleanly(child, stdin).await;
    // Printed once: as it grew, not again when the plugin returned.
    assert_eq!(
        seen.lock().unwrap().matches("Paris").count(),
        1,
        "{:?}",
        seen.lock().unwrap()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_attaches_a_local_file_and_saves_the_files_it_gets() {
    let (fake, url) = FakeAnthropic::start().await;
    let plugins = plugins_dir(&["assistant", "notes"]);
    let data = tempfile::tempdir().unwrap();
    let photo = data.path().join("cat photo.png");
    std::fs::write(&photo, b"\x89PNG a cat").unwrap();
    let input = format!(
        "/note buy milk\n/notes export\n/notes export\n/attach \"{}\" /ask what is this?\n/attach /no/such.png hi\n",
        photo.display()
    );
    let output = tokio::task::spawn_blocking({
        let (dir, plugins) = (data.path().to_path_buf(), plugins.path().to_path_buf());
        move || {
            let plugins = plugins.display().to_string();
            let env = [
                ("PLUGINS_DIR", plugins.as_str()),
                ("ANTHROPIC_API_KEY", "sk-ant-test-key"),
                ("ANTHROPIC_BASE_URL", url.as_str()),
            ];
            common::chat_binary(&dir, &env, &[], &input)
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Saved, shown as one line; a second file of that name gets a new one.
    assert!(
        stdout.contains(
            "(file) notes.txt · text/plain · 12 B · saved to data/received/notes.txt\nYour 1 note."
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("saved to data/received/notes (2).txt"),
        "{stdout}"
    );
    let saved = std::fs::read_to_string(data.path().join("data/received/notes.txt")).unwrap();
    assert_eq!(saved, "1. buy milk\n");
    // The attached picture reached Claude with its caption.
    assert!(stdout.contains("Claude says: what is this?"), "{stdout}");
    let request = &fake.requests()[0].body;
    let content = &request["messages"][0]["content"];
    assert_eq!(content[0]["source"]["media_type"], "image/png");
    use base64::Engine as _;
    assert_eq!(
        content[0]["source"]["data"],
        base64::engine::general_purpose::STANDARD.encode(b"\x89PNG a cat")
    );
    assert!(
        stdout.contains("(cannot attach /no/such.png: No such file"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_answer_is_said_so_instead_of_nothing() {
    let (bot, fake) = bot(&[]).await;
    fake.script([Answer::Stream {
        words: vec![],
        gate: None,
        end: StreamEnd::Stop,
    }]);
    bot.api.push(ALLOWED, ALLOWED, "/ask say nothing");
    let sent = bot.api.wait_for_sent(ALLOWED, 1).await;
    assert_eq!(
        sent[0].text,
        "Claude gave no answer to that; please try again."
    );
    bot.stop().await;
}
