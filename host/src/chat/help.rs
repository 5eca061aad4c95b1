//! The help reply: the loaded commands and what they do.

use crate::runtime::PluginSet;

pub fn help_text(plugins: &PluginSet) -> String {
    let mut text = String::from("Here is what I can do:\n/help - show this list");
    for command in plugins.commands() {
        text.push_str(&format!("\n/{} - {}", command.name, command.description));
    }
    text
}

pub fn unknown_command_text(command: &str, plugins: &PluginSet) -> String {
    format!("Sorry, I don't know /{command}.\n\n{}", help_text(plugins))
}
