//! WMO weather interpretation codes (the `weather_code` Open-Meteo
//! reports) as an emoji and a few words.

/// `(emoji, description)` for `code`; an unknown code says so.
pub fn describe(code: u16) -> (&'static str, &'static str) {
    match code {
        0 => ("☀️", "Clear sky"),
        1 => ("🌤", "Mainly clear"),
        2 => ("🌤", "Partly cloudy"),
        3 => ("☁️", "Overcast"),
        45 => ("🌫", "Fog"),
        48 => ("🌫", "Rime fog"),
        51 => ("🌦", "Light drizzle"),
        53 => ("🌦", "Drizzle"),
        55 => ("🌦", "Dense drizzle"),
        56 | 57 => ("🌧", "Freezing drizzle"),
        61 => ("🌧", "Slight rain"),
        63 => ("🌧", "Rain"),
        65 => ("🌧", "Heavy rain"),
        66 | 67 => ("🌧", "Freezing rain"),
        71 => ("🌨", "Slight snow"),
        73 => ("🌨", "Snow"),
        75 => ("🌨", "Heavy snow"),
        77 => ("🌨", "Snow grains"),
        80 => ("🌦", "Rain showers"),
        81 => ("🌧", "Heavy rain showers"),
        82 => ("⛈", "Violent rain showers"),
        85 | 86 => ("🌨", "Snow showers"),
        95 => ("⛈", "Thunderstorm"),
        96 | 99 => ("⛈", "Thunderstorm with hail"),
        _ => ("❔", "Unknown conditions"),
    }
}

/// `"🌤 Partly cloudy"`.
pub fn label(code: u16) -> String {
    let (emoji, text) = describe(code);
    format!("{emoji} {text}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_codes() {
        assert_eq!(label(0), "☀️ Clear sky");
        assert_eq!(label(2), "🌤 Partly cloudy");
        assert_eq!(label(63), "🌧 Rain");
        assert_eq!(label(99), "⛈ Thunderstorm with hail");
        assert_eq!(label(42), "❔ Unknown conditions");
    }
}
