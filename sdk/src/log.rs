//! Structured logging through the host (needs `capabilities = ["log"]`).
//!
//! The host adds the plugin name and the message's correlation id to each line.

use crate::bindings::wasmbot::plugin0_1_0::log::{Field, Level, log};

fn emit(level: Level, message: &str, fields: &[(&str, &str)]) {
    let fields: Vec<Field> = fields
        .iter()
        .map(|(key, value)| Field {
            key: (*key).to_string(),
            value: (*value).to_string(),
        })
        .collect();
    log(level, message, &fields);
}

pub fn trace(message: &str, fields: &[(&str, &str)]) {
    emit(Level::Trace, message, fields);
}

pub fn debug(message: &str, fields: &[(&str, &str)]) {
    emit(Level::Debug, message, fields);
}

pub fn info(message: &str, fields: &[(&str, &str)]) {
    emit(Level::Info, message, fields);
}

pub fn warn(message: &str, fields: &[(&str, &str)]) {
    emit(Level::Warn, message, fields);
}

pub fn error(message: &str, fields: &[(&str, &str)]) {
    emit(Level::Error, message, fields);
}
