//! `/weather <city>`: the current weather and a three-day forecast from
//! Open-Meteo (no API key). The city is looked up with Open-Meteo's
//! geocoding, then its forecast is asked for; both base URLs are settings,
//! and the manifest's `http` allow-list names exactly those two.

mod open_meteo;
mod report;
mod wmo;

use wasmbot_sdk::prelude::*;

const USAGE: &str = "Usage: /weather <city>, e.g. /weather Berlin";

fn handle(msg: Message) -> HandlerResult {
    let city = msg.args.trim();
    if city.is_empty() {
        return Ok(Reply::text(USAGE));
    }
    Ok(Reply::text(weather(city)?))
}

/// The report for `city`, or that there is no such place.
fn weather(city: &str) -> Result<String, String> {
    let geocoding_url = config::require("geocoding_url")?;
    let forecast_url = config::require("forecast_url")?;
    let Some(place) = open_meteo::find_place(&geocoding_url, city)? else {
        return Ok(format!("I could not find a place called {city}."));
    };
    let forecast = open_meteo::forecast(&forecast_url, &place)?;
    Ok(report::report(&place, &forecast))
}

/// The assistant's tool `weather`: today's weather and the next days' for a city.
fn tool(call: ToolCall) -> ToolResult {
    let city = call.text("city").unwrap_or_default().trim();
    if city.is_empty() {
        return Err("Which city?".into());
    }
    Ok(weather(city)?.into())
}

wasmbot_sdk::handler!(handle, tools = tool);
