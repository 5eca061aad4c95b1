//! Parsing `/command@botname args` out of a message text.

/// A message that starts with a command.
#[derive(Debug, PartialEq, Eq)]
pub struct ParsedCommand {
    /// Lower-cased, without the slash or the @mention.
    pub name: String,
    /// The `botname` of `/cmd@botname`, as written.
    pub mention: Option<String>,
    /// The rest of the text, trimmed.
    pub args: String,
}

/// Returns the command, or `None` when the text is not a command.
pub fn parse(text: &str) -> Option<ParsedCommand> {
    let text = text.trim_start();
    let rest = text.strip_prefix('/')?;
    let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    let (head, args) = rest.split_at(end);
    let (name, mention) = match head.split_once('@') {
        Some((name, mention)) => (name, Some(mention)),
        None => (head, None),
    };
    if name.is_empty() {
        return None;
    }
    Some(ParsedCommand {
        name: name.to_lowercase(),
        mention: mention.map(str::to_string),
        args: args.trim().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(name: &str, mention: Option<&str>, args: &str) -> Option<ParsedCommand> {
        Some(ParsedCommand {
            name: name.into(),
            mention: mention.map(str::to_string),
            args: args.into(),
        })
    }

    #[test]
    fn commands_with_and_without_mention_and_args() {
        assert_eq!(parse("/start"), cmd("start", None, ""));
        assert_eq!(parse("  /Start  "), cmd("start", None, ""));
        assert_eq!(
            parse("/ask what is  wasm? "),
            cmd("ask", None, "what is  wasm?")
        );
        assert_eq!(parse("/start@my_bot"), cmd("start", Some("my_bot"), ""));
        assert_eq!(
            parse("/ask@my_bot\nline two"),
            cmd("ask", Some("my_bot"), "line two")
        );
    }

    #[test]
    fn non_commands() {
        assert_eq!(parse("hello"), None);
        assert_eq!(parse(""), None);
        assert_eq!(parse("/"), None);
        assert_eq!(parse("/@bot"), None);
        assert_eq!(parse("a /start"), None);
    }
}
