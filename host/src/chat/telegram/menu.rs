//! The bot's command menu in Telegram, kept equal to the loaded plugins.

use teloxide::prelude::{Bot, Requester as _};
use teloxide::types::BotCommand;

use crate::runtime::{HELP_COMMAND, MAX_DESCRIPTION_CHARS, PluginSet};

/// Telegram shows at most this many commands.
const MAX_COMMANDS: usize = 100;

/// `/help` (the host's own) and every loaded plugin's commands, by name.
pub fn commands(plugins: &PluginSet) -> Vec<BotCommand> {
    let mut commands: Vec<BotCommand> = plugins
        .plugins()
        .iter()
        .flat_map(|plugin| plugin.manifest().commands.iter())
        .map(|command| {
            let description: String = command
                .description
                .chars()
                .take(MAX_DESCRIPTION_CHARS)
                .collect();
            let description = if description.trim().is_empty() {
                format!("/{}", command.name)
            } else {
                description
            };
            BotCommand::new(command.name.clone(), description)
        })
        .collect();
    commands.push(BotCommand::new(HELP_COMMAND, "List the commands"));
    commands.sort_by(|a, b| a.command.cmp(&b.command));
    if commands.len() > MAX_COMMANDS {
        tracing::warn!(
            count = commands.len(),
            "more commands than Telegram's menu holds; showing the first 100"
        );
        commands.truncate(MAX_COMMANDS);
    }
    commands
}

/// Publishes the menu; a failure is logged, never fatal.
pub async fn publish(bot: &Bot, plugins: &PluginSet) {
    let commands = commands(plugins);
    let count = commands.len();
    match bot.set_my_commands(commands).await {
        Ok(_) => tracing::info!(count, "command menu updated"),
        Err(error) => tracing::warn!(%error, "could not update the command menu"),
    }
}
