//! What Pinpoint sends the plugin: configuration values, form values and files, read leniently.

use serde::Deserialize;
use serde_json::{Map, Value};

/// A configuration value as sent by Pinpoint, already reduced to text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigurationValue {
    pub key: String,
    pub value: String,
}

/// A submitted (or refetched) form value; the value stays raw JSON because file fields and
/// multi-selects are not strings.
#[derive(Debug, Clone, PartialEq)]
pub struct FormValue {
    pub key: String,
    pub value: Value,
}

/// Body of any call Pinpoint makes to the plugin (meta, action meta, refetch, submit, list,
/// webhook process). One lenient type serves them all because the docs only show fragments of
/// each body; whatever is not modelled stays reachable through `raw`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PluginRequest {
    /// Accepted as `[{ "key", "value" }]` (what the samples read) or as `{ key: value }`.
    pub configuration_values: Vec<ConfigurationValue>,
    /// Accepted as `[{ "key", "value" }]` (documented) or as `{ key: value }`.
    pub form_fields: Vec<FormValue>,
    /// Assessment/background-check submits only: where the provider must call back.
    pub webhook_url: Option<String>,
    pub generated_uuid: Option<String>,
    pub generated_uuid_redirect_url: Option<String>,
    /// Webhook Process Endpoint only: the provider's raw payload, which Pinpoint sends as a
    /// string. An object is re-serialised so callers always get text to parse.
    pub body: Option<String>,
    pub raw: Value,
}

impl<'de> Deserialize<'de> for PluginRequest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Value::deserialize(deserializer).map(Self::from_value)
    }
}

impl PluginRequest {
    /// An empty or whitespace-only body is a valid, empty request: the root meta call may come
    /// without a body at all.
    pub fn from_slice(body: &[u8]) -> Result<Self, serde_json::Error> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::default());
        }
        serde_json::from_slice::<Value>(body).map(Self::from_value)
    }

    /// Never fails: anything that is not an object simply yields an empty request (with `raw`
    /// kept), and the caller's own checks (e.g. a missing token) produce the real error.
    pub fn from_value(raw: Value) -> Self {
        let Some(object) = raw.as_object() else {
            return Self {
                raw,
                ..Self::default()
            };
        };
        let configuration_values = key_value_pairs(object.get("configurationValues"))
            .into_iter()
            .filter_map(|(key, value)| {
                scalar_text(value).map(|value| ConfigurationValue { key, value })
            })
            .collect();
        let form_fields = key_value_pairs(object.get("formFields"))
            .into_iter()
            .map(|(key, value)| FormValue {
                key,
                value: value.clone(),
            })
            .collect();
        let body = match object.get("body") {
            Some(Value::String(text)) => Some(text.clone()),
            Some(value @ (Value::Object(_) | Value::Array(_))) => Some(value.to_string()),
            _ => None,
        };
        Self {
            configuration_values,
            form_fields,
            webhook_url: object.get("webhookUrl").and_then(scalar_text),
            generated_uuid: object.get("generatedUuid").and_then(scalar_text),
            generated_uuid_redirect_url: object
                .get("generatedUuidRedirectUrl")
                .and_then(scalar_text),
            body,
            raw,
        }
    }

    /// Trimmed, and `None` when blank: a field the admin left empty is as good as unset, and
    /// pasted secrets often carry a stray newline.
    pub fn config_value(&self, key: &str) -> Option<&str> {
        self.configuration_values
            .iter()
            .find(|entry| entry.key == key)
            .map(|entry| entry.value.trim())
            .filter(|value| !value.is_empty())
    }

    /// `None` for a missing field and for an explicit `null`, which Pinpoint may send for an
    /// untouched field. The first entry wins if a key repeats.
    pub fn form_value(&self, key: &str) -> Option<&Value> {
        self.form_fields
            .iter()
            .find(|field| field.key == key)
            .map(|field| &field.value)
            .filter(|value| !value.is_null())
    }

    /// The field as text. Numbers and booleans are rendered because `string` fields carry
    /// numbers too; arrays and objects are not text and give `None`, as does a blank value.
    pub fn form_str(&self, key: &str) -> Option<String> {
        self.form_value(key).and_then(scalar_text)
    }

    pub fn form_file_refs(&self, key: &str) -> Vec<FileRef> {
        self.form_value(key).map(file_refs).unwrap_or_default()
    }

    /// A top-level id-like value (`generatedUuid`, a possible `applicationId`, …) whether it
    /// arrives as a number or a string.
    pub fn top_level_id(&self, key: &str) -> Option<String> {
        self.raw.get(key).and_then(scalar_text)
    }

    /// Which context ids Pinpoint sends is undocumented, so this looks for the spellings it
    /// plausibly uses for an entity (`application` → `applicationId`, `application_id`,
    /// `application.id`) instead of committing to one.
    pub fn entity_id(&self, entity: &str) -> Option<String> {
        self.top_level_id(&format!("{entity}Id"))
            .or_else(|| self.top_level_id(&format!("{entity}_id")))
            .or_else(|| {
                self.raw
                    .get(entity)
                    .and_then(|nested| nested.get("id"))
                    .and_then(scalar_text)
            })
    }
}

/// Reads either `[{ "key", "value" }]` or `{ key: value }`; entries without a string key are
/// dropped, and a missing `value` reads as `null`.
fn key_value_pairs(value: Option<&Value>) -> Vec<(String, &Value)> {
    match value {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|item| {
                let key = scalar_text(item.get("key")?)?;
                Some((key, item.get("value").unwrap_or(&Value::Null)))
            })
            .collect(),
        Some(Value::Object(map)) => map.iter().map(|(k, v)| (k.clone(), v)).collect(),
        _ => Vec::new(),
    }
}

/// Text of a scalar: trimmed string, number or boolean. Blank strings, `null`, arrays and
/// objects give `None`.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => {
            let trimmed = text.trim();
            (!trimmed.is_empty()).then(|| trimmed.to_owned())
        }
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// File values
// ---------------------------------------------------------------------------------------------

/// A file submitted through a `file`/`files` field. How Pinpoint encodes these is undocumented,
/// so [`file_refs`] reduces every plausible shape to this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRef {
    pub url: String,
    pub name: Option<String>,
}

impl FileRef {
    /// A name to give the downstream system when Pinpoint sent none: the last path segment of
    /// the URL (without query or fragment), else `fallback`.
    pub fn display_name(&self, fallback: &str) -> String {
        if let Some(name) = &self.name {
            return name.clone();
        }
        let without_suffix = self.url.split(['?', '#']).next().unwrap_or_default();
        let after_scheme = without_suffix
            .split_once("://")
            .map_or(without_suffix, |(_, rest)| rest);
        match after_scheme.split_once('/') {
            Some((_, path)) => path
                .rsplit('/')
                .find(|segment| !segment.is_empty())
                .map_or_else(|| fallback.to_owned(), str::to_owned),
            None => fallback.to_owned(),
        }
    }
}

const URL_KEYS: [&str; 7] = [
    "url",
    "fileUrl",
    "downloadUrl",
    "href",
    "file_url",
    "download_url",
    "downloadURL",
];
const NAME_KEYS: [&str; 5] = [
    "filename",
    "fileName",
    "name",
    "file_name",
    "originalFilename",
];

/// Accepts a URL string, an object carrying a URL (and maybe a name), an array of either, or any
/// of those serialised into a JSON string. Entries it cannot read are skipped rather than
/// failing the submit, so the caller decides whether a missing file matters.
pub fn file_refs(value: &Value) -> Vec<FileRef> {
    file_refs_at(value, true)
}

fn file_refs_at(value: &Value, may_unwrap_json_text: bool) -> Vec<FileRef> {
    match value {
        Value::String(text) => {
            let trimmed = text.trim();
            if trimmed.is_empty() {
                return Vec::new();
            }
            if trimmed.starts_with('[') || trimmed.starts_with('{') {
                // No URL starts like this, so it is JSON text or junk. It is unwrapped at most
                // once, so a hostile value cannot make us recurse deeply.
                if !may_unwrap_json_text {
                    return Vec::new();
                }
                return serde_json::from_str::<Value>(trimmed)
                    .map(|inner| file_refs_at(&inner, false))
                    .unwrap_or_default();
            }
            vec![FileRef {
                url: trimmed.to_owned(),
                name: None,
            }]
        }
        Value::Object(map) => file_ref_from_object(map).into_iter().collect(),
        Value::Array(items) => items
            .iter()
            .flat_map(|item| match item {
                Value::Array(_) => Vec::new(),
                other => file_refs_at(other, false),
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn file_ref_from_object(map: &Map<String, Value>) -> Option<FileRef> {
    let text_of = |keys: &[&str]| {
        keys.iter()
            .filter_map(|key| map.get(*key))
            .find_map(|value| match value {
                Value::String(text) if !text.trim().is_empty() => Some(text.trim().to_owned()),
                _ => None,
            })
    };
    Some(FileRef {
        url: text_of(&URL_KEYS)?,
        name: text_of(&NAME_KEYS),
    })
}
