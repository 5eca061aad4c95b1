//! `wasmbot chat`: the console adapter. Each stdin line is a message from one
//! local user; each reply is printed to stdout. Needs no external service.

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};

use super::dispatcher::{Dispatcher, IncomingMessage};

/// Who the console user is, as the plugins see them.
#[derive(Debug, Clone)]
pub struct ConsoleUser {
    pub user_id: i64,
    pub chat_id: i64,
    pub username: Option<String>,
}

/// Reads lines until end of input. `prompt` is shown before each line (for a terminal).
pub async fn run<R, W>(
    dispatcher: &Dispatcher,
    user: &ConsoleUser,
    input: R,
    mut output: W,
    prompt: bool,
) -> std::io::Result<()>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut lines = input.lines();
    loop {
        if prompt {
            output.write_all(b"> ").await?;
            output.flush().await?;
        }
        let Some(line) = lines.next_line().await? else {
            break;
        };
        if line.trim().is_empty() {
            continue;
        }
        let incoming = IncomingMessage {
            chat_id: user.chat_id,
            user_id: user.user_id,
            username: user.username.clone(),
            text: line,
        };
        if let Some(reply) = dispatcher.handle(incoming).await {
            output.write_all(reply.text.as_bytes()).await?;
            output.write_all(b"\n").await?;
            output.flush().await?;
        }
    }
    if prompt {
        output.write_all(b"\n").await?;
        output.flush().await?;
    }
    Ok(())
}
