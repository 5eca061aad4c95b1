//! Built against `wasmbot:plugin/proactive@0.2.0`. `/compat_proactive`
//! answers how many jobs `schedule` lists (`compat 0.2.0 proactive: N
//! jobs`, or what it refused); a due job says `compat job PAYLOAD`.

#[allow(clippy::all)]
mod bindings {
    wit_bindgen::generate!({
        world: "wasmbot:plugin/proactive@0.2.0",
        path: ["../../../wit", "../../../wit/v0.2"],
        generate_all,
    });
}

use bindings::wasmbot::plugin0_2_0::events::{Action, Event, Format, Outgoing};
use bindings::wasmbot::plugin0_2_0::happenings::{Happening, HappeningKind};
use bindings::wasmbot::plugin0_2_0::schedule;

struct Proactive;

fn send(text: String) -> Action {
    Action::Send(Outgoing {
        text,
        format: Format::Plain,
        keyboard: Vec::new(),
        reply_to: None,
        name: None,
    })
}

impl bindings::Guest for Proactive {
    fn handle(_event: Event) -> Result<Vec<Action>, String> {
        let jobs = match schedule::list() {
            Ok(jobs) => format!("{} jobs", jobs.len()),
            Err(error) => format!("schedule refused: {error:?}"),
        };
        Ok(vec![send(format!("compat 0.2.0 proactive: {jobs}"))])
    }

    fn on_event(happening: Happening) -> Result<Vec<Action>, String> {
        Ok(match happening.kind {
            HappeningKind::Job(job) => vec![send(format!("compat job {}", job.payload))],
            _ => Vec::new(),
        })
    }
}

bindings::export!(Proactive with_types_in bindings);
