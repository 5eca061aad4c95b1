//! Tools: what Claude (the assistant) and MCP clients may call. The
//! manifest declares each one (`[[tools]]`: name, description,
//! `input_schema`, `confirm`); the host checks the input against the schema
//! before the handler sees it and runs the call in this plugin's sandbox.

use serde::de::DeserializeOwned;

use crate::{Action, IntoActions};

/// One call of one of this plugin's tools.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    /// The tool's name, as the manifest declares it.
    pub name: String,
    /// The input, valid against the tool's `input_schema`.
    pub input: serde_json::Value,
    pub correlation_id: String,
    /// The chat the assistant talks in; 0 when an MCP client calls.
    pub chat_id: i64,
    /// Who talks to the assistant; 0 when an MCP client calls.
    pub user_id: i64,
}

impl ToolCall {
    /// A call as the host hands it over: the input is JSON text.
    pub fn new(
        name: String,
        input: &str,
        correlation_id: String,
        chat_id: i64,
        user_id: i64,
    ) -> Result<Self, String> {
        let input = serde_json::from_str(input)
            .map_err(|error| format!("the input of `{name}` is not JSON: {error}"))?;
        Ok(Self {
            name,
            input,
            correlation_id,
            chat_id,
            user_id,
        })
    }

    /// The input as the handler's own type.
    pub fn input<T: DeserializeOwned>(&self) -> Result<T, String> {
        serde_json::from_value(self.input.clone())
            .map_err(|error| format!("the input of `{}` does not fit: {error}", self.name))
    }

    /// The string field `key` of the input, if it has one.
    pub fn text(&self, key: &str) -> Option<&str> {
        self.input.get(key).and_then(serde_json::Value::as_str)
    }
}

/// What a tool answers: the text Claude reads, and actions the chat sees too.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ToolOutput {
    pub text: String,
    pub actions: Vec<Action>,
}

impl ToolOutput {
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            actions: Vec::new(),
        }
    }

    /// Also shows `actions` in the chat (a message, buttons, a file).
    pub fn with(mut self, actions: impl IntoActions) -> Self {
        self.actions.extend(actions.into_actions());
        self
    }
}

impl From<String> for ToolOutput {
    fn from(text: String) -> Self {
        Self::text(text)
    }
}

impl From<&str> for ToolOutput {
    fn from(text: &str) -> Self {
        Self::text(text)
    }
}

/// What a tool handler returns: `Err(text)` is an error result for Claude.
pub type ToolResult = Result<ToolOutput, String>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_parses_its_input_and_reads_it_typed() {
        let call = ToolCall::new("roll".into(), r#"{"dice":"2d6"}"#, "c".into(), 1, 2).unwrap();
        assert_eq!(call.text("dice"), Some("2d6"));
        #[derive(serde::Deserialize)]
        struct Input {
            dice: String,
        }
        assert_eq!(call.input::<Input>().unwrap().dice, "2d6");
        assert!(call.input::<Vec<u8>>().unwrap_err().contains("`roll`"));
        assert!(
            ToolCall::new("roll".into(), "{", "c".into(), 1, 2)
                .unwrap_err()
                .contains("not JSON")
        );
    }
}
