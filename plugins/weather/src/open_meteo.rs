//! Open-Meteo's geocoding and forecast APIs: the requests, and the parts of
//! their answers `/weather` shows. Parsing is apart from fetching so the
//! tests can feed it recorded answers.

use serde::Deserialize;
use wasmbot_sdk::http;

/// What `/forecast` is asked for: `current` and `daily` name the variables.
const CURRENT: &str =
    "temperature_2m,apparent_temperature,relative_humidity_2m,wind_speed_10m,weather_code";
const DAILY: &str =
    "weather_code,temperature_2m_max,temperature_2m_min,precipitation_probability_max";
/// Today, tomorrow and the day after.
const DAYS: u32 = 3;

/// One geocoding result.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Place {
    pub name: String,
    /// Missing for places in no country (oceans, Antarctica).
    #[serde(default)]
    pub country: Option<String>,
    /// The state, region or province.
    #[serde(default)]
    pub admin1: Option<String>,
    pub latitude: f64,
    pub longitude: f64,
    #[serde(default)]
    pub timezone: Option<String>,
}

/// Open-Meteo leaves `results` out when nothing matches.
#[derive(Deserialize)]
struct Geocoding {
    #[serde(default)]
    results: Vec<Place>,
}

/// The answer to `/v1/forecast`; a value the model lacks is `null`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Forecast {
    pub current: Current,
    #[serde(default)]
    pub current_units: CurrentUnits,
    pub daily: Daily,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Current {
    pub temperature_2m: Option<f64>,
    pub apparent_temperature: Option<f64>,
    pub relative_humidity_2m: Option<f64>,
    pub wind_speed_10m: Option<f64>,
    pub weather_code: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct CurrentUnits {
    pub temperature_2m: String,
    pub relative_humidity_2m: String,
    pub wind_speed_10m: String,
}

impl Default for CurrentUnits {
    fn default() -> Self {
        Self {
            temperature_2m: "°C".into(),
            relative_humidity_2m: "%".into(),
            wind_speed_10m: "km/h".into(),
        }
    }
}

/// One array per variable, one entry per day.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Daily {
    /// `YYYY-MM-DD`, in the place's time zone.
    pub time: Vec<String>,
    #[serde(default)]
    pub weather_code: Vec<Option<u16>>,
    #[serde(default)]
    pub temperature_2m_max: Vec<Option<f64>>,
    #[serde(default)]
    pub temperature_2m_min: Vec<Option<f64>>,
    #[serde(default)]
    pub precipitation_probability_max: Vec<Option<f64>>,
}

/// The best match for `city`, or `None` when Open-Meteo knows no such place.
pub fn find_place(base_url: &str, city: &str) -> Result<Option<Place>, String> {
    let response = http::Request::get(format!("{}/v1/search", base(base_url)))
        .query("name", city)
        .query("count", 1)
        .query("language", "en")
        .query("format", "json")
        .send()
        .and_then(http::Response::error_for_status)?;
    first_place(&response.body)
}

/// The current weather and the next days at `place`.
pub fn forecast(base_url: &str, place: &Place) -> Result<Forecast, String> {
    let response = http::Request::get(format!("{}/v1/forecast", base(base_url)))
        .query("latitude", place.latitude)
        .query("longitude", place.longitude)
        .query("current", CURRENT)
        .query("daily", DAILY)
        .query("timezone", "auto")
        .query("forecast_days", DAYS)
        .send()
        .and_then(http::Response::error_for_status)?;
    parse_forecast(&response.body)
}

/// The first result of a geocoding answer.
pub fn first_place(body: &[u8]) -> Result<Option<Place>, String> {
    let geocoding: Geocoding = serde_json::from_slice(body).map_err(unreadable)?;
    Ok(geocoding.results.into_iter().next())
}

pub fn parse_forecast(body: &[u8]) -> Result<Forecast, String> {
    serde_json::from_slice(body).map_err(unreadable)
}

fn unreadable(error: serde_json::Error) -> String {
    format!("Open-Meteo sent an answer I could not read ({error}).")
}

/// A setting may end with a slash; the paths start with one.
fn base(url: &str) -> &str {
    url.trim().trim_end_matches('/')
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `GET /v1/search?name=Berlin&count=1&language=en&format=json`, as
    /// Open-Meteo answers it.
    pub const GEOCODING: &str = r#"{"results":[{"id":2950159,"name":"Berlin","latitude":52.52437,"longitude":13.41053,"elevation":74.0,"feature_code":"PPLC","country_code":"DE","admin1_id":2950157,"admin3_id":6547383,"admin4_id":6547539,"timezone":"Europe/Berlin","population":3426354,"postcodes":["10967","13347"],"country_id":2921044,"country":"Germany","admin1":"State of Berlin","admin3":"Berlin, Stadt","admin4":"Berlin"}],"generationtime_ms":0.9260178}"#;

    /// The answer when nothing matches: no `results` at all.
    pub const GEOCODING_NONE: &str = r#"{"generationtime_ms":0.4420280}"#;

    /// `GET /v1/forecast?latitude=52.52437&longitude=13.41053&current=...&daily=...&timezone=auto&forecast_days=3`.
    pub const FORECAST: &str = r#"{"latitude":52.52,"longitude":13.419998,"generationtime_ms":0.0940561294555664,"utc_offset_seconds":7200,"timezone":"Europe/Berlin","timezone_abbreviation":"GMT+2","elevation":38.0,"current_units":{"time":"iso8601","interval":"seconds","temperature_2m":"°C","apparent_temperature":"°C","relative_humidity_2m":"%","wind_speed_10m":"km/h","weather_code":"wmo code"},"current":{"time":"2024-05-02T14:15","interval":900,"temperature_2m":12.3,"apparent_temperature":10.1,"relative_humidity_2m":70,"wind_speed_10m":14.4,"weather_code":2},"daily_units":{"time":"iso8601","weather_code":"wmo code","temperature_2m_max":"°C","temperature_2m_min":"°C","precipitation_probability_max":"%"},"daily":{"time":["2024-05-02","2024-05-03","2024-05-04"],"weather_code":[2,61,95],"temperature_2m_max":[14.1,13.4,16.0],"temperature_2m_min":[6.2,8.1,7.5],"precipitation_probability_max":[10,80,null]}}"#;

    #[test]
    fn reads_the_first_place() {
        let place = first_place(GEOCODING.as_bytes())
            .expect("parses")
            .expect("a place");
        assert_eq!(place.name, "Berlin");
        assert_eq!(place.country.as_deref(), Some("Germany"));
        assert_eq!(place.admin1.as_deref(), Some("State of Berlin"));
        assert_eq!(place.latitude, 52.52437);
        assert_eq!(place.longitude, 13.41053);
        assert_eq!(place.timezone.as_deref(), Some("Europe/Berlin"));
    }

    #[test]
    fn no_results_is_no_place() {
        assert_eq!(first_place(GEOCODING_NONE.as_bytes()), Ok(None));
        assert_eq!(first_place(br#"{"results":[]}"#), Ok(None));
        let error = first_place(b"<html>").unwrap_err();
        assert!(error.starts_with("Open-Meteo sent an answer I could not read"));
    }

    #[test]
    fn reads_the_forecast() {
        let forecast = parse_forecast(FORECAST.as_bytes()).expect("parses");
        assert_eq!(forecast.current.temperature_2m, Some(12.3));
        assert_eq!(forecast.current.relative_humidity_2m, Some(70.0));
        assert_eq!(forecast.current.weather_code, Some(2));
        assert_eq!(forecast.current_units.wind_speed_10m, "km/h");
        assert_eq!(forecast.daily.time.len(), 3);
        assert_eq!(
            forecast.daily.precipitation_probability_max,
            [Some(10.0), Some(80.0), None]
        );
    }

    #[test]
    fn trims_the_base_url() {
        assert_eq!(
            base("https://api.open-meteo.com/ "),
            "https://api.open-meteo.com"
        );
    }
}
