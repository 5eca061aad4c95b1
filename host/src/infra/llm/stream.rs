//! A streamed Messages API answer (`"stream": true`): server-sent events
//! read as they arrive — `message_start` (model, input tokens),
//! `content_block_delta` (text), `message_delta` (stop reason, output
//! tokens), `message_stop`, `ping`, and `error` mid-stream. The text is
//! handed on piece by piece; the stream ends in a completion, or in a
//! failure that keeps what had arrived.

use serde::Deserialize;

use super::completion::{Completion, LlmFailure};

/// How a streamed answer ended when it did not complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamBroken {
    pub failure: LlmFailure,
    /// What arrived before it broke: its text and the usage the service
    /// had reported, with stop reason "interrupted".
    /// Boxed: a completion carries its content blocks.
    pub partial: Box<Completion>,
}

/// Reads server-sent events from chunks split anywhere (inside a line, a
/// UTF-8 character or an event), and keeps what the answer is so far.
#[derive(Debug, Default)]
pub struct EventStream {
    pending: Vec<u8>,
    text: String,
    model: String,
    stop_reason: Option<String>,
    input_tokens: u32,
    output_tokens: u32,
    stopped: bool,
    /// The answer's content blocks so far, by index: text, or a tool use
    /// whose input arrives as pieces of JSON (`input_json_delta`).
    blocks: Vec<Block>,
}

#[derive(Debug)]
enum Block {
    Text(String),
    ToolUse {
        id: String,
        name: String,
        json: String,
    },
}

impl Block {
    /// The block as the API would have sent it whole.
    fn value(&self) -> serde_json::Value {
        match self {
            Block::Text(text) => serde_json::json!({"type": "text", "text": text}),
            Block::ToolUse { id, name, json } => {
                let input = if json.trim().is_empty() {
                    serde_json::json!({})
                } else {
                    // Input that is not JSON stays visible as a string: the
                    // schema check refuses it and Claude is told why.
                    serde_json::from_str(json).unwrap_or_else(|_| serde_json::json!(json))
                };
                serde_json::json!({"type": "tool_use", "id": id, "name": name, "input": input})
            }
        }
    }
}

/// One event's payload, as far as the host reads it.
#[derive(Deserialize)]
struct Payload {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    message: Option<StartMessage>,
    #[serde(default)]
    delta: Option<Delta>,
    #[serde(default)]
    usage: Option<OutputUsage>,
    #[serde(default)]
    error: Option<ErrorBody>,
    #[serde(default)]
    index: Option<usize>,
    #[serde(default)]
    content_block: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct StartMessage {
    #[serde(default)]
    model: String,
    #[serde(default)]
    usage: Option<InputUsage>,
}

#[derive(Deserialize)]
struct InputUsage {
    #[serde(default)]
    input_tokens: u32,
}

#[derive(Deserialize)]
struct OutputUsage {
    #[serde(default)]
    output_tokens: u32,
}

#[derive(Deserialize)]
struct Delta {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    partial_json: String,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    message: String,
}

impl EventStream {
    /// Takes the next chunk; calls `on_text` with each piece of text, in
    /// order. An `error` event ends the stream with its failure.
    pub fn feed(
        &mut self,
        chunk: &[u8],
        on_text: &mut dyn FnMut(&str),
    ) -> Result<(), StreamBroken> {
        self.pending.extend_from_slice(chunk);
        // Events end with a blank line; "\r\n" line ends are allowed too.
        while let Some((end, skip)) = event_end(&self.pending) {
            let event: Vec<u8> = self.pending.drain(..end + skip).take(end).collect();
            self.event(&event, on_text)?;
        }
        Ok(())
    }

    /// The answer once the body ended: complete only after `message_stop`.
    pub fn finish(self) -> Result<Completion, StreamBroken> {
        if !self.stopped {
            return Err(self.broken(LlmFailure::Unavailable(
                "the answer stopped before it was complete".into(),
            )));
        }
        let content: Vec<serde_json::Value> = self.blocks.iter().map(Block::value).collect();
        let tool_uses = content
            .iter()
            .filter_map(super::completion::tool_use)
            .collect();
        Ok(Completion {
            text: self.text,
            stop_reason: self.stop_reason.unwrap_or_else(|| "unknown".into()),
            model: self.model,
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens,
            tool_uses,
            content,
        })
    }

    /// The text so far.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// A failure that keeps the text so far (the connection broke, say).
    pub fn broken(mut self, failure: LlmFailure) -> StreamBroken {
        self.take_broken(failure)
    }

    fn event(&mut self, raw: &[u8], on_text: &mut dyn FnMut(&str)) -> Result<(), StreamBroken> {
        let raw = String::from_utf8_lossy(raw);
        // Only `data:` lines matter: the payload carries its own type.
        let data: Vec<&str> = raw
            .lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .map(|data| data.strip_prefix(' ').unwrap_or(data))
            .collect();
        if data.is_empty() {
            return Ok(());
        }
        let Ok(payload) = serde_json::from_str::<Payload>(&data.join("\n")) else {
            return Err(self.take_broken(LlmFailure::Unavailable(
                "the service sent an event that is not JSON".into(),
            )));
        };
        match payload.kind.as_str() {
            "message_start" => {
                if let Some(message) = payload.message {
                    self.model = message.model;
                    self.input_tokens = message.usage.map_or(0, |u| u.input_tokens);
                }
            }
            "content_block_start" => {
                let block = payload.content_block.unwrap_or_default();
                let block = match block["type"].as_str() {
                    Some("tool_use") => Block::ToolUse {
                        id: block["id"].as_str().unwrap_or_default().to_string(),
                        name: block["name"].as_str().unwrap_or_default().to_string(),
                        json: String::new(),
                    },
                    _ => Block::Text(String::new()),
                };
                let index = payload.index.unwrap_or(self.blocks.len());
                if index >= self.blocks.len() {
                    self.blocks
                        .resize_with(index, || Block::Text(String::new()));
                    self.blocks.push(block);
                } else {
                    self.blocks[index] = block;
                }
            }
            "content_block_delta" => {
                let Some(delta) = payload.delta else {
                    return Ok(());
                };
                if self.blocks.is_empty() {
                    // A stream without block starts: one text block.
                    self.blocks.push(Block::Text(String::new()));
                }
                let index = payload.index.unwrap_or(0);
                let block = self.blocks.get_mut(index);
                match delta.kind.as_str() {
                    "text_delta" if !delta.text.is_empty() => {
                        on_text(&delta.text);
                        self.text.push_str(&delta.text);
                        if let Some(Block::Text(text)) = block {
                            text.push_str(&delta.text);
                        }
                    }
                    "input_json_delta" => {
                        if let Some(Block::ToolUse { json, .. }) = block {
                            json.push_str(&delta.partial_json);
                        }
                    }
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(reason) = payload.delta.and_then(|d| d.stop_reason) {
                    self.stop_reason = Some(reason);
                }
                if let Some(usage) = payload.usage {
                    self.output_tokens = usage.output_tokens;
                }
            }
            "message_stop" => self.stopped = true,
            "error" => {
                let error = payload.error.unwrap_or(ErrorBody {
                    kind: String::new(),
                    message: String::new(),
                });
                let failure = match error.kind.as_str() {
                    "overloaded_error" | "api_error" => {
                        LlmFailure::Unavailable(format!("{}: {}", error.kind, error.message))
                    }
                    "rate_limit_error" => LlmFailure::RateLimited(None),
                    "authentication_error" | "permission_error" => LlmFailure::Unauthorized,
                    _ => LlmFailure::BadRequest(format!("{}: {}", error.kind, error.message)),
                };
                return Err(self.take_broken(failure));
            }
            // `ping`, `content_block_stop`, and whatever new event types
            // the API adds.
            _ => {}
        }
        Ok(())
    }

    fn take_broken(&mut self, failure: LlmFailure) -> StreamBroken {
        StreamBroken {
            failure,
            partial: Box::new(Completion {
                text: std::mem::take(&mut self.text),
                stop_reason: "interrupted".into(),
                model: std::mem::take(&mut self.model),
                input_tokens: self.input_tokens,
                output_tokens: self.output_tokens,
                ..Completion::default()
            }),
        }
    }
}

/// Where the first complete event in `bytes` ends, and the length of the
/// blank line that ends it.
fn event_end(bytes: &[u8]) -> Option<(usize, usize)> {
    let lf = find(bytes, b"\n\n").map(|at| (at, 2));
    let crlf = find(bytes, b"\r\n\r\n").map(|at| (at, 4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (one, other) => one.or(other),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A streamed answer as the Messages API sends it.
    const ANSWER: &str = "event: message_start\n\
        data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-x\",\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n\
        event: content_block_start\n\
        data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n\
        event: ping\n\
        data: {\"type\": \"ping\"}\n\n\
        event: content_block_delta\n\
        data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Grüß\"}}\n\n\
        event: content_block_delta\n\
        data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\" dich!\"}}\n\n\
        event: content_block_stop\n\
        data: {\"type\":\"content_block_stop\",\"index\":0}\n\n\
        event: message_delta\n\
        data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":15}}\n\n\
        event: message_stop\n\
        data: {\"type\":\"message_stop\"}\n\n";

    fn read(chunks: &[&[u8]]) -> (Vec<String>, Result<Completion, StreamBroken>) {
        let mut stream = EventStream::default();
        let mut pieces = Vec::new();
        for chunk in chunks {
            if let Err(broken) = stream.feed(chunk, &mut |text| pieces.push(text.to_string())) {
                return (pieces, Err(broken));
            }
        }
        (pieces, stream.finish())
    }

    #[test]
    fn text_arrives_piece_by_piece_however_the_chunks_are_cut() {
        let bytes = ANSWER.as_bytes();
        // Every split point, including inside "ü" (two bytes).
        for cut in 1..bytes.len() {
            let (pieces, completion) = read(&[&bytes[..cut], &bytes[cut..]]);
            let completion = completion.unwrap();
            assert_eq!(pieces, ["Grüß", " dich!"], "cut at {cut}");
            assert_eq!(completion.text, "Grüß dich!");
            assert_eq!(
                (completion.model.as_str(), completion.stop_reason.as_str()),
                ("claude-x", "end_turn")
            );
            assert_eq!(
                (completion.input_tokens, completion.output_tokens),
                (25, 15)
            );
        }
        let crlf = ANSWER.replace('\n', "\r\n");
        let (pieces, completion) = read(&[crlf.as_bytes()]);
        assert_eq!(pieces.concat(), "Grüß dich!");
        assert!(completion.is_ok());
    }

    #[test]
    fn a_tool_use_block_arrives_as_pieces_of_json() {
        let answer = "data: {\"type\":\"message_start\",\"message\":{\"model\":\"claude-x\",\"usage\":{\"input_tokens\":30}}}\n\n\
            data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n\
            data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Let me set that.\"}}\n\n\
            data: {\"type\":\"content_block_stop\",\"index\":0}\n\n\
            data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"remind\",\"input\":{}}}\n\n\
            data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"when\\\": \\\"in 5\"}}\n\n\
            data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\" seconds\\\"}\"}}\n\n\
            data: {\"type\":\"content_block_stop\",\"index\":1}\n\n\
            data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":{\"output_tokens\":40}}\n\n\
            data: {\"type\":\"message_stop\"}\n\n";
        let (pieces, completion) = read(&[answer.as_bytes()]);
        let completion = completion.unwrap();
        assert_eq!(pieces, ["Let me set that."]);
        assert_eq!(completion.stop_reason, "tool_use");
        assert_eq!(completion.tool_uses.len(), 1);
        let call = &completion.tool_uses[0];
        assert_eq!(
            (call.id.as_str(), call.name.as_str()),
            ("toolu_1", "remind")
        );
        assert_eq!(call.input, serde_json::json!({"when": "in 5 seconds"}));
        assert_eq!(completion.content.len(), 2);
        assert_eq!(
            completion.content[0],
            serde_json::json!({"type": "text", "text": "Let me set that."})
        );
        assert_eq!(completion.content[1]["type"], "tool_use");
    }

    #[test]
    fn an_error_event_mid_stream_keeps_what_arrived() {
        let cut = ANSWER.find("event: content_block_stop").unwrap();
        let error = "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
        let (pieces, outcome) = read(&[&ANSWER.as_bytes()[..cut], error.as_bytes()]);
        assert_eq!(pieces.concat(), "Grüß dich!");
        let broken = outcome.unwrap_err();
        assert_eq!(broken.partial.text, "Grüß dich!");
        // The usage reported before it broke is kept with the part.
        assert_eq!(
            (broken.partial.input_tokens, broken.partial.model.as_str()),
            (25, "claude-x")
        );
        assert_eq!(broken.partial.stop_reason, "interrupted");
        assert!(
            matches!(&broken.failure, LlmFailure::Unavailable(why) if why.contains("Overloaded")),
            "{broken:?}"
        );
    }

    #[test]
    fn a_stream_that_stops_early_is_not_a_completion() {
        let cut = ANSWER.find("event: message_delta").unwrap();
        let (_, outcome) = read(&[&ANSWER.as_bytes()[..cut]]);
        let broken = outcome.unwrap_err();
        assert_eq!(broken.partial.text, "Grüß dich!");
        assert!(matches!(broken.failure, LlmFailure::Unavailable(_)));
        let (_, outcome) = read(&[b"data: <html>\n\n"]);
        assert!(outcome.is_err());
    }
}
