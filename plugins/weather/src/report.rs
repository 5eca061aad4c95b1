//! The reply: one line for now, one per forecast day.

use crate::open_meteo::{Forecast, Place};
use crate::wmo;

/// "Weather in Berlin, Germany: 🌤 Partly cloudy, 12.3 °C (feels 10.1 °C),
/// humidity 70 %, wind 14 km/h", then a line for each day.
pub fn report(place: &Place, forecast: &Forecast) -> String {
    let mut lines = vec![format!(
        "Weather in {}: {}",
        place_name(place),
        current(forecast)
    )];
    let daily = &forecast.daily;
    let unit = &forecast.current_units.temperature_2m;
    for (i, date) in daily.time.iter().enumerate() {
        let day = Day {
            code: daily.weather_code.get(i).copied().flatten(),
            min: daily.temperature_2m_min.get(i).copied().flatten(),
            max: daily.temperature_2m_max.get(i).copied().flatten(),
            precipitation: daily
                .precipitation_probability_max
                .get(i)
                .copied()
                .flatten(),
        };
        lines.push(format!("{}: {}", day_label(i, date), day.describe(unit)));
    }
    lines.join("\n")
}

/// "Berlin, Germany"; the region too when it adds something
/// ("Springfield, Illinois, United States", but not "State of Berlin").
fn place_name(place: &Place) -> String {
    let mut parts = vec![place.name.as_str()];
    if let Some(region) = place.admin1.as_deref().filter(|region| {
        !region.is_empty() && !region.to_lowercase().contains(&place.name.to_lowercase())
    }) {
        parts.push(region);
    }
    if let Some(country) = place.country.as_deref().filter(|c| !c.is_empty()) {
        parts.push(country);
    }
    parts.join(", ")
}

/// "🌤 Partly cloudy, 12.3 °C (feels 10.1 °C), humidity 70 %, wind 14 km/h",
/// leaving out what the model did not report.
fn current(forecast: &Forecast) -> String {
    let now = &forecast.current;
    let units = &forecast.current_units;
    let mut parts = Vec::new();
    if let Some(code) = now.weather_code {
        parts.push(wmo::label(code));
    }
    if let Some(temperature) = now.temperature_2m {
        let mut text = format!("{temperature:.1} {}", units.temperature_2m);
        if let Some(feels) = now.apparent_temperature {
            text.push_str(&format!(" (feels {feels:.1} {})", units.temperature_2m));
        }
        parts.push(text);
    }
    if let Some(humidity) = now.relative_humidity_2m {
        parts.push(format!(
            "humidity {humidity:.0} {}",
            units.relative_humidity_2m
        ));
    }
    if let Some(wind) = now.wind_speed_10m {
        parts.push(format!("wind {wind:.0} {}", units.wind_speed_10m));
    }
    if parts.is_empty() {
        return "no current observations".to_string();
    }
    parts.join(", ")
}

struct Day {
    code: Option<u16>,
    min: Option<f64>,
    max: Option<f64>,
    precipitation: Option<f64>,
}

impl Day {
    /// "🌧 Slight rain, 8.1–13.4 °C, 80 % chance of precipitation".
    fn describe(&self, unit: &str) -> String {
        let mut parts = Vec::new();
        if let Some(code) = self.code {
            parts.push(wmo::label(code));
        }
        match (self.min, self.max) {
            (Some(min), Some(max)) => parts.push(format!("{min:.1}–{max:.1} {unit}")),
            (Some(min), None) => parts.push(format!("low {min:.1} {unit}")),
            (None, Some(max)) => parts.push(format!("high {max:.1} {unit}")),
            (None, None) => {}
        }
        if let Some(chance) = self.precipitation {
            parts.push(format!("{chance:.0} % chance of precipitation"));
        }
        if parts.is_empty() {
            return "no forecast".to_string();
        }
        parts.join(", ")
    }
}

/// "Today", "Tomorrow", then the weekday of `date` ("Saturday").
fn day_label(index: usize, date: &str) -> String {
    match index {
        0 => "Today".to_string(),
        1 => "Tomorrow".to_string(),
        _ => weekday(date).map_or_else(|| date.to_string(), str::to_string),
    }
}

/// The weekday of a `YYYY-MM-DD` date (Sakamoto's method).
fn weekday(date: &str) -> Option<&'static str> {
    const NAMES: [&str; 7] = [
        "Sunday",
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
    ];
    const OFFSETS: [u32; 12] = [0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4];
    let mut parts = date.splitn(3, '-').map(|part| part.parse::<u32>().ok());
    let (year, month, day) = (parts.next()??, parts.next()??, parts.next()??);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || year == 0 {
        return None;
    }
    let year = if month < 3 { year - 1 } else { year };
    let index =
        (year + year / 4 - year / 100 + year / 400 + OFFSETS[(month - 1) as usize] + day) % 7;
    NAMES.get(index as usize).copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::open_meteo::tests::{FORECAST, GEOCODING};
    use crate::open_meteo::{first_place, parse_forecast};

    fn berlin() -> Place {
        first_place(GEOCODING.as_bytes())
            .expect("parses")
            .expect("a place")
    }

    #[test]
    fn reports_now_and_three_days() {
        let forecast = parse_forecast(FORECAST.as_bytes()).expect("parses");
        assert_eq!(
            report(&berlin(), &forecast),
            "Weather in Berlin, Germany: 🌤 Partly cloudy, 12.3 °C (feels 10.1 °C), humidity 70 %, wind 14 km/h\n\
             Today: 🌤 Partly cloudy, 6.2–14.1 °C, 10 % chance of precipitation\n\
             Tomorrow: 🌧 Slight rain, 8.1–13.4 °C, 80 % chance of precipitation\n\
             Saturday: ⛈ Thunderstorm, 7.5–16.0 °C"
        );
    }

    #[test]
    fn names_the_region_when_it_adds_something() {
        let springfield = Place {
            name: "Springfield".into(),
            country: Some("United States".into()),
            admin1: Some("Illinois".into()),
            latitude: 39.8,
            longitude: -89.6,
            timezone: None,
        };
        assert_eq!(
            place_name(&springfield),
            "Springfield, Illinois, United States"
        );
        let nowhere = Place {
            country: None,
            admin1: None,
            ..springfield
        };
        assert_eq!(place_name(&nowhere), "Springfield");
    }

    #[test]
    fn leaves_out_missing_values() {
        let mut forecast = parse_forecast(FORECAST.as_bytes()).expect("parses");
        forecast.current.apparent_temperature = None;
        forecast.current.weather_code = None;
        forecast.current.relative_humidity_2m = None;
        forecast.daily.temperature_2m_min = vec![];
        forecast.daily.weather_code = vec![None, None, None];
        forecast.daily.precipitation_probability_max = vec![];
        let lines: Vec<String> = report(&berlin(), &forecast)
            .lines()
            .map(str::to_string)
            .collect();
        assert_eq!(
            lines[0],
            "Weather in Berlin, Germany: 12.3 °C, wind 14 km/h"
        );
        assert_eq!(lines[1], "Today: high 14.1 °C");
    }

    #[test]
    fn knows_weekdays() {
        assert_eq!(weekday("2024-05-04"), Some("Saturday"));
        assert_eq!(weekday("2000-01-01"), Some("Saturday"));
        assert_eq!(weekday("2024-02-29"), Some("Thursday"));
        assert_eq!(weekday("2024-13-01"), None);
        assert_eq!(weekday("soon"), None);
        assert_eq!(day_label(2, "soon"), "soon");
    }
}
