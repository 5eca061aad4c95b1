//! The tools a plugin declares (`[[tools]]` in its manifest) and the checks
//! the host makes on them: at load (a name Claude accepts, a description,
//! an input schema that is a well-formed JSON Schema of an object) and
//! before every call (the input valid against that schema), so a plugin
//! never sees input its schema refuses.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

/// At most this many tools per plugin; Claude reads every description on
/// every request, so a long list costs every turn.
pub const MAX_TOOLS_PER_PLUGIN: usize = 16;
/// Claude's limit on a tool's name.
const MAX_NAME_CHARS: usize = 64;
/// A description Claude reads on every request: a few sentences.
const MAX_DESCRIPTION_CHARS: usize = 1024;

/// One tool as the manifest declares it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    /// A JSON Schema of an object: what the tool's input must be.
    #[serde(default = "empty_object_schema")]
    pub input_schema: Value,
    /// Runs only after the user presses Allow (in the chat); MCP clients
    /// see it marked destructive.
    #[serde(default)]
    pub confirm: bool,
}

fn empty_object_schema() -> Value {
    serde_json::json!({"type": "object", "properties": {}})
}

/// A declared tool with its schema compiled, as a loaded plugin keeps it.
#[derive(Clone)]
pub struct Tool {
    pub spec: ToolSpec,
    validator: Arc<jsonschema::Validator>,
}

impl std::fmt::Debug for Tool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.spec.fmt(f)
    }
}

impl Tool {
    /// The tool, or why the manifest's declaration is refused.
    pub fn compile(spec: &ToolSpec) -> Result<Self, String> {
        let name = &spec.name;
        if !valid_name(name) {
            return Err(format!(
                "tool name {name:?} must be 1-{MAX_NAME_CHARS} letters, digits, `_` or `-`"
            ));
        }
        if spec.description.trim().is_empty() {
            return Err(format!(
                "tool `{name}` needs a description: Claude reads it to decide when to call the tool"
            ));
        }
        if spec.description.chars().count() > MAX_DESCRIPTION_CHARS {
            return Err(format!(
                "tool `{name}`: the description is longer than {MAX_DESCRIPTION_CHARS} characters"
            ));
        }
        if spec.input_schema.get("type").and_then(Value::as_str) != Some("object") {
            return Err(format!(
                "tool `{name}`: input_schema must be the JSON Schema of an object (`type = \"object\"`)"
            ));
        }
        let validator = jsonschema::validator_for(&spec.input_schema).map_err(|error| {
            format!("tool `{name}`: input_schema is not a valid JSON Schema: {error}")
        })?;
        Ok(Self {
            spec: spec.clone(),
            validator: Arc::new(validator),
        })
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// Why `input` does not fit the tool's schema (every problem, with
    /// where it is), or nothing when it does.
    pub fn refuses(&self, input: &Value) -> Option<String> {
        let problems: Vec<String> = self
            .validator
            .iter_errors(input)
            .take(5)
            .map(|error| {
                let at = error.instance_path().to_string();
                if at.is_empty() {
                    error.to_string()
                } else {
                    format!("{at}: {error}")
                }
            })
            .collect();
        (!problems.is_empty()).then(|| {
            format!(
                "the input does not fit the schema of `{}`: {}",
                self.spec.name,
                problems.join("; ")
            )
        })
    }
}

/// Claude's rule for tool names: `^[a-zA-Z0-9_-]{1,64}$`.
pub fn valid_name(name: &str) -> bool {
    (1..=MAX_NAME_CHARS).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Every declared tool compiled, or the first refusal.
pub fn compile_all(specs: &[ToolSpec]) -> Result<Vec<Tool>, String> {
    if specs.len() > MAX_TOOLS_PER_PLUGIN {
        return Err(format!(
            "declares {} tools; a plugin may offer at most {MAX_TOOLS_PER_PLUGIN}",
            specs.len()
        ));
    }
    let mut tools: Vec<Tool> = Vec::with_capacity(specs.len());
    for spec in specs {
        if tools.iter().any(|tool| tool.name() == spec.name) {
            return Err(format!("declares the tool `{}` twice", spec.name));
        }
        tools.push(Tool::compile(spec)?);
    }
    Ok(tools)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(name: &str, schema: Value) -> ToolSpec {
        ToolSpec {
            name: name.into(),
            description: "Does a thing.".into(),
            input_schema: schema,
            confirm: false,
        }
    }

    #[test]
    fn names_descriptions_and_schemas_are_checked_at_load() {
        let object =
            json!({"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]});
        assert!(Tool::compile(&spec("note_done", object.clone())).is_ok());
        assert!(
            Tool::compile(&spec("bad name", object.clone()))
                .unwrap_err()
                .contains("letters")
        );
        assert!(Tool::compile(&spec(&"x".repeat(65), object.clone())).is_err());
        assert!(Tool::compile(&spec("", object.clone())).is_err());
        let mut silent = spec("t", object.clone());
        silent.description = " ".into();
        assert!(Tool::compile(&silent).unwrap_err().contains("description"));
        assert!(
            Tool::compile(&spec("t", json!({"type": "string"})))
                .unwrap_err()
                .contains("object")
        );
        let broken = json!({"type": "object", "properties": {"n": {"type": "integr"}}});
        assert!(
            Tool::compile(&spec("t", broken))
                .unwrap_err()
                .contains("not a valid JSON Schema")
        );
        let twice = [spec("a", object.clone()), spec("a", object)];
        assert!(compile_all(&twice).unwrap_err().contains("twice"));
    }

    #[test]
    fn input_is_checked_against_the_schema() {
        let tool = Tool::compile(&spec(
            "note_done",
            json!({"type": "object", "properties": {"number": {"type": "integer", "minimum": 1}}, "required": ["number"]}),
        ))
        .unwrap();
        assert_eq!(tool.refuses(&json!({"number": 2})), None);
        let missing = tool.refuses(&json!({})).unwrap();
        assert!(
            missing.contains("note_done") && missing.contains("number"),
            "{missing}"
        );
        let wrong = tool.refuses(&json!({"number": "two"})).unwrap();
        assert!(wrong.contains("/number"), "{wrong}");
        assert!(tool.refuses(&json!({"number": 0})).is_some());
    }
}
