//! A plugin's settings: declared with defaults under `[settings]` in its
//! manifest, overridden by the operator with `PLUGIN_<PLUGIN>_<KEY>`
//! (upper case, `-` as `_`). Resolved once at load, so a bad override is a
//! load error naming the variable, and every call reads the same values.

use std::collections::BTreeMap;

/// The operator's `PLUGIN_<PLUGIN>_<KEY>` variables (name → value), read
/// once at start-up; the host's own `PLUGIN_*` variables are not in it.
pub type SettingOverrides = BTreeMap<String, String>;

/// The settings a plugin's calls see.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    values: BTreeMap<String, String>,
    /// Keys whose value came from the environment, with the variable.
    overridden: BTreeMap<String, String>,
}

impl Settings {
    /// The manifest's defaults with the operator's overrides applied. A
    /// variable belongs to the plugin whose name is its longest prefix: with
    /// plugin `git-hub` among `others` (every plugin in the folder, loaded
    /// or not), `PLUGIN_GIT_HUB_TOKEN` is `git-hub`'s `token` and never
    /// `git`'s `hub_token`, even when `git` declares one. Without `git-hub`
    /// it can only be `git`'s: nothing else could claim it. Any other
    /// override for a key the manifest does not declare is refused: it is a
    /// typo the operator would otherwise never notice.
    pub fn resolve(
        plugin: &str,
        declared: &BTreeMap<String, String>,
        overrides: &SettingOverrides,
        others: &[String],
    ) -> Result<Self, String> {
        let prefix = format!("PLUGIN_{}_", variable_part(plugin));
        let theirs: Vec<String> = others
            .iter()
            .map(|other| format!("PLUGIN_{}_", variable_part(other)))
            .filter(|other| other.len() > prefix.len() && other.starts_with(&prefix))
            .collect();
        let mut settings = Self {
            values: declared.clone(),
            overridden: BTreeMap::new(),
        };
        for (variable, value) in overrides.range(prefix.clone()..) {
            let Some(rest) = variable.strip_prefix(&prefix) else {
                break;
            };
            if theirs
                .iter()
                .any(|other| variable.starts_with(other.as_str()))
            {
                continue;
            }
            let Some(key) = declared.keys().find(|key| variable_part(key) == rest) else {
                let known: Vec<&str> = declared.keys().map(String::as_str).collect();
                return Err(format!(
                    "{variable} is set, but the manifest declares no setting `{}` (settings: {})",
                    rest.to_ascii_lowercase(),
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ));
            };
            settings.values.insert(key.clone(), value.clone());
            settings.overridden.insert(key.clone(), variable.clone());
        }
        Ok(settings)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// Every setting, sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Where `key`'s value comes from, for error messages.
    pub fn origin(&self, key: &str) -> String {
        match self.overridden.get(key) {
            Some(variable) => format!("`{variable}`"),
            None => format!("the manifest's `[settings] {key}`"),
        }
    }
}

/// `weather-bot` → `WEATHER_BOT`.
pub fn variable_part(name: &str) -> String {
    name.to_ascii_uppercase().replace('-', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn declared() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("api_url".to_string(), "https://api.github.com".to_string()),
            ("page-size".to_string(), "5".to_string()),
        ])
    }

    #[test]
    fn overrides_win_and_say_where_they_come_from() {
        let overrides = SettingOverrides::from([
            (
                "PLUGIN_GIT_HUB_API_URL".to_string(),
                "http://proxy".to_string(),
            ),
            ("PLUGIN_GIT_HUB_PAGE_SIZE".to_string(), "9".to_string()),
            ("PLUGIN_OTHER_API_URL".to_string(), "ignored".to_string()),
        ]);
        let settings = Settings::resolve("git-hub", &declared(), &overrides, &[]).unwrap();
        assert_eq!(settings.get("api_url"), Some("http://proxy"));
        assert_eq!(settings.get("page-size"), Some("9"));
        assert_eq!(settings.origin("api_url"), "`PLUGIN_GIT_HUB_API_URL`");
        let plain =
            Settings::resolve("git-hub", &declared(), &SettingOverrides::new(), &[]).unwrap();
        assert_eq!(plain.get("api_url"), Some("https://api.github.com"));
        assert_eq!(
            plain.origin("api_url"),
            "the manifest's `[settings] api_url`"
        );
    }

    #[test]
    fn an_override_for_an_undeclared_key_is_refused() {
        let overrides =
            SettingOverrides::from([("PLUGIN_GIT_HUB_API_ULR".to_string(), "x".to_string())]);
        let error = Settings::resolve("git-hub", &declared(), &overrides, &[]).unwrap_err();
        assert_eq!(
            error,
            "PLUGIN_GIT_HUB_API_ULR is set, but the manifest declares no setting `api_ulr` (settings: api_url, page-size)"
        );
    }

    #[test]
    fn another_plugins_variables_are_left_to_it() {
        let overrides = SettingOverrides::from([
            (
                "PLUGIN_GIT_HUB_API_URL".to_string(),
                "http://proxy".to_string(),
            ),
            ("PLUGIN_GIT_URL".to_string(), "http://git".to_string()),
        ]);
        let declared = BTreeMap::from([("url".to_string(), "x".to_string())]);
        let others = ["git-hub".to_string()];
        let settings = Settings::resolve("git", &declared, &overrides, &others).unwrap();
        assert_eq!(settings.get("url"), Some("http://git"));
        // Without `git-hub` beside it, the variable is a typo of `git`'s.
        let error = Settings::resolve("git", &declared, &overrides, &[]).unwrap_err();
        assert!(
            error.starts_with("PLUGIN_GIT_HUB_API_URL is set"),
            "{error}"
        );
    }

    #[test]
    fn the_longest_plugin_name_owns_a_variable_even_when_a_shorter_declares_its_key() {
        let overrides = SettingOverrides::from([(
            "PLUGIN_GIT_HUB_TOKEN".to_string(),
            "git-hub's token".to_string(),
        )]);
        let declared = BTreeMap::from([("hub_token".to_string(), "none".to_string())]);
        let others = ["git-hub".to_string()];
        let git = Settings::resolve("git", &declared, &overrides, &others).unwrap();
        assert_eq!(
            git.get("hub_token"),
            Some("none"),
            "git read git-hub's token"
        );
        assert_eq!(
            git.origin("hub_token"),
            "the manifest's `[settings] hub_token`"
        );
        let theirs = BTreeMap::from([("token".to_string(), String::new())]);
        let git_hub = Settings::resolve("git-hub", &theirs, &overrides, &["git".to_string()]);
        assert_eq!(git_hub.unwrap().get("token"), Some("git-hub's token"));
        // With no `git-hub` in the folder the variable can only mean `git`'s
        // `hub_token`: refusing it would leave that key unsettable.
        let alone = Settings::resolve("git", &declared, &overrides, &[]).unwrap();
        assert_eq!(alone.get("hub_token"), Some("git-hub's token"));
    }
}
