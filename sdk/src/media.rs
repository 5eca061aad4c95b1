//! The files that came with the event (needs `capabilities = ["media"]`):
//! [`Event::attachments`](crate::Event) lists them, [`fetch`] downloads one.
//! Nothing is downloaded unless asked, and only within the operator's cap
//! (`MEDIA_MAX_MB`, 20 MB by default).

use crate::Attachment;
use crate::bindings::wasmbot::plugin0_2_0::media as wit;
pub use crate::bindings::wasmbot::plugin0_2_0::media::MediaError;

/// The bytes of one of the event's attachments.
pub fn fetch(attachment: &Attachment) -> Result<Vec<u8>, MediaError> {
    wit::fetch(&attachment.id)
}

impl MediaError {
    /// What to tell the user.
    pub fn user_message(&self) -> String {
        match self {
            MediaError::NotFound(_) => "I could not find that file in your message.".into(),
            MediaError::TooLarge(cap) => format!(
                "That file is too large for me: I can take at most {} MB.",
                cap >> 20
            ),
            MediaError::Unavailable(_) => {
                "I could not download your file right now. Please try again in a moment.".into()
            }
            MediaError::OverBudget(_) => {
                "That needed more files than one message may fetch.".into()
            }
        }
    }
}

impl From<MediaError> for String {
    fn from(error: MediaError) -> Self {
        error.user_message()
    }
}
