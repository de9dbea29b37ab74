//! Wire types of Pinpoint's Integration Plugins framework (meta, action meta, submit, list and
//! webhook-process calls), kept free of HiBob specifics so another provider can reuse them.
//!
//! Pinpoint's documentation is cut off in places (see `docs/pinpoint-contract.md`), so two rules
//! run through this module:
//!
//! * What we *send* is strict and clean: optional keys are omitted rather than sent as `null`,
//!   because the documented examples never show `null` and we cannot test how Pinpoint reacts.
//! * What we *receive* is lenient: unknown keys are ignored, ids may be numbers or strings, and
//!   enums keep values they do not recognise, so a harmless change on Pinpoint's side cannot turn
//!   every call into a 400.

pub use super::plugin_request::{file_refs, ConfigurationValue, FileRef, FormValue, PluginRequest};
pub use super::plugin_vocabulary::{ActionKey, ConfigFieldType, FormFieldType, Intent};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The version sent in `version`, `actionVersion` and `resultVersion`. The official samples send
/// `"1.0.0"` (their schema allows nothing else) while one docs page shows `'2.0.0'`; we follow
/// the samples until Pinpoint says otherwise.
pub const CONTRACT_VERSION: &str = "1.0.0";

// ---------------------------------------------------------------------------------------------
// Meta endpoint
// ---------------------------------------------------------------------------------------------

/// Response of the root Meta Endpoint, the document Pinpoint reads when it registers or refreshes
/// the plugin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetaResponse {
    pub version: String,
    pub name: String,
    pub logo_base64: String,
    #[serde(default)]
    pub actions: Vec<ActionDescriptor>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub configuration_form_fields: Vec<ConfigurationFormField>,
    /// Declared list endpoints for Stage Actions. The docs require them "in your main meta and
    /// action meta responses" but the key name is past the stored cut-off, so the name
    /// `listEndpoints` and the item shape `{ "key", "endpoint" }` are our decision, chosen to
    /// match the framework's other camelCase `...Endpoint` keys. Confirm with Pinpoint at
    /// registration; omitted when empty so an unknown key is never sent without need.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub list_endpoints: Vec<ListEndpoint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_process_endpoint: Option<String>,
    /// Seen only in the assessment samples; its effect is undocumented.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_authentication_header: Option<String>,
    /// Present in the samples' schema; its effect is undocumented.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_endpoint: Option<String>,
}

impl MetaResponse {
    pub fn new(name: impl Into<String>, logo_base64: impl Into<String>) -> Self {
        Self {
            version: CONTRACT_VERSION.to_owned(),
            name: name.into(),
            logo_base64: logo_base64.into(),
            actions: Vec::new(),
            configuration_form_fields: Vec::new(),
            list_endpoints: Vec::new(),
            webhook_process_endpoint: None,
            webhook_authentication_header: None,
            error_endpoint: None,
        }
    }

    pub fn action(mut self, action: ActionDescriptor) -> Self {
        self.actions.push(action);
        self
    }

    pub fn configuration_field(mut self, field: ConfigurationFormField) -> Self {
        self.configuration_form_fields.push(field);
        self
    }

    pub fn list_endpoint(mut self, key: impl Into<String>, endpoint: impl Into<String>) -> Self {
        self.list_endpoints.push(ListEndpoint::new(key, endpoint));
        self
    }
}

/// One button/action the plugin offers, as listed in the meta response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionDescriptor {
    pub key: ActionKey,
    pub label: String,
    pub icon_svg_base64: String,
    /// Relative to the plugin's base URL, as in every sample.
    pub meta_endpoint: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mappings: Vec<FieldMapping>,
}

impl ActionDescriptor {
    pub fn new(
        key: ActionKey,
        label: impl Into<String>,
        icon_svg_base64: impl Into<String>,
        meta_endpoint: impl Into<String>,
    ) -> Self {
        Self {
            key,
            label: label.into(),
            icon_svg_base64: icon_svg_base64.into(),
            meta_endpoint: meta_endpoint.into(),
            mappings: Vec::new(),
        }
    }

    pub fn mapping(mut self, mapping: FieldMapping) -> Self {
        self.mappings.push(mapping);
        self
    }
}

/// A default mapping: Pinpoint resolves the template in `value` and pre-fills the form field
/// with the same `key`; in Stage Actions the customer edits these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldMapping {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiline: Option<bool>,
}

impl FieldMapping {
    pub fn new(key: impl Into<String>, label: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            label: Some(label.into()),
            value: value.into(),
            multiline: None,
        }
    }

    /// The samples leave out `label` for mappings whose field label says it all (e.g. the CV).
    pub fn unlabelled(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            label: None,
            value: value.into(),
            multiline: None,
        }
    }

    pub fn multiline(mut self) -> Self {
        self.multiline = Some(true);
        self
    }
}

/// A field of the admin configuration form; Pinpoint stores the answers (encrypting sensitive
/// ones) and sends them back on every call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigurationFormField {
    pub key: String,
    pub label: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(rename = "type", default = "default_config_type")]
    pub field_type: ConfigFieldType,
    /// Always sent: the samples' schema makes `required` and `sensitive` mandatory.
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub sensitive: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placeholder: Option<String>,
    /// Name of the HTTP header Pinpoint puts the value in instead of the body. Prefer hyphens:
    /// many proxies drop headers with underscores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_as_http_header: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_key: Option<ActionKey>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readonly: Option<bool>,
}

fn default_config_type() -> ConfigFieldType {
    ConfigFieldType::String
}

impl ConfigurationFormField {
    pub fn string(key: impl Into<String>, label: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            label: label.into(),
            description: None,
            field_type: ConfigFieldType::String,
            required: false,
            sensitive: false,
            placeholder: None,
            use_as_http_header: None,
            action_key: None,
            default_value: None,
            readonly: None,
        }
    }

    pub fn persisted(mut self) -> Self {
        self.field_type = ConfigFieldType::PersistedString;
        self
    }

    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    pub fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }

    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    pub fn placeholder(mut self, placeholder: impl Into<String>) -> Self {
        self.placeholder = Some(placeholder.into());
        self
    }

    pub fn http_header(mut self, header_name: impl Into<String>) -> Self {
        self.use_as_http_header = Some(header_name.into());
        self
    }

    pub fn for_action(mut self, action: ActionKey) -> Self {
        self.action_key = Some(action);
        self
    }

    pub fn default_value(mut self, value: impl Into<String>) -> Self {
        self.default_value = Some(value.into());
        self
    }

    pub fn readonly(mut self) -> Self {
        self.readonly = Some(true);
        self
    }
}

/// Where Pinpoint fetches the options of a `...OptionsListKey` dropdown. See
/// [`MetaResponse::list_endpoints`] for why this shape is our own choice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListEndpoint {
    /// The list key referenced by `singleSelectOptionsListKey` / `multiSelectOptionsListKey`.
    pub key: String,
    /// Relative path, like every other endpoint the plugin declares.
    pub endpoint: String,
}

impl ListEndpoint {
    pub fn new(key: impl Into<String>, endpoint: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            endpoint: endpoint.into(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Action meta endpoint
// ---------------------------------------------------------------------------------------------

/// Response of an Action Meta Endpoint: the form Pinpoint renders before submit (and again on a
/// refetch).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionMetaResponse {
    pub action_version: String,
    pub key: ActionKey,
    pub label: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub form_fields: Vec<FormField>,
    /// Relative path of the Action Submit Endpoint.
    pub submit_endpoint: String,
    /// Same key and shape as [`MetaResponse::list_endpoints`]; the docs ask for the declaration
    /// in both responses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub list_endpoints: Vec<ListEndpoint>,
}

impl ActionMetaResponse {
    pub fn new(
        key: ActionKey,
        label: impl Into<String>,
        description: impl Into<String>,
        submit_endpoint: impl Into<String>,
    ) -> Self {
        Self {
            action_version: CONTRACT_VERSION.to_owned(),
            key,
            label: label.into(),
            description: description.into(),
            form_fields: Vec::new(),
            submit_endpoint: submit_endpoint.into(),
            list_endpoints: Vec::new(),
        }
    }

    pub fn field(mut self, field: FormField) -> Self {
        self.form_fields.push(field);
        self
    }

    pub fn fields(mut self, fields: impl IntoIterator<Item = FormField>) -> Self {
        self.form_fields.extend(fields);
        self
    }

    pub fn list_endpoint(mut self, key: impl Into<String>, endpoint: impl Into<String>) -> Self {
        self.list_endpoints.push(ListEndpoint::new(key, endpoint));
        self
    }
}

/// One form field of any type. Every attribute but `key`, `label` and `type` is optional and
/// left out of the JSON when unset, so the output reads like the documented examples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FormField {
    pub key: String,
    #[serde(default)]
    pub label: String,
    #[serde(rename = "type", default = "default_form_type")]
    pub field_type: FormFieldType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placeholder: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readonly: Option<bool>,
    /// The message of a callout; help text on other fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<Intent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub single_select_options: Option<Vec<SelectOption>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multi_select_options: Option<Vec<SelectOption>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub single_select_options_list_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multi_select_options_list_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub perform_refetch_on_change: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_value_in_refetch: Option<bool>,
}

fn default_form_type() -> FormFieldType {
    FormFieldType::String
}

impl FormField {
    pub fn new(
        key: impl Into<String>,
        label: impl Into<String>,
        field_type: FormFieldType,
    ) -> Self {
        Self {
            key: key.into(),
            label: label.into(),
            field_type,
            required: None,
            value: None,
            placeholder: None,
            readonly: None,
            description: None,
            intent: None,
            single_select_options: None,
            multi_select_options: None,
            single_select_options_list_key: None,
            multi_select_options_list_key: None,
            perform_refetch_on_change: None,
            include_value_in_refetch: None,
        }
    }

    pub fn string(key: impl Into<String>, label: impl Into<String>) -> Self {
        Self::new(key, label, FormFieldType::String)
    }

    pub fn date(key: impl Into<String>, label: impl Into<String>) -> Self {
        Self::new(key, label, FormFieldType::Date)
    }

    pub fn file(key: impl Into<String>, label: impl Into<String>) -> Self {
        Self::new(key, label, FormFieldType::File)
    }

    pub fn files(key: impl Into<String>, label: impl Into<String>) -> Self {
        Self::new(key, label, FormFieldType::Files)
    }

    /// Labelled "Divider" like the documented example; Pinpoint does not display the label.
    pub fn divider(key: impl Into<String>) -> Self {
        Self::new(key, "Divider", FormFieldType::Divider)
    }

    pub fn heading(key: impl Into<String>, label: impl Into<String>) -> Self {
        Self::new(key, label, FormFieldType::Heading)
    }

    pub fn callout(
        key: impl Into<String>,
        label: impl Into<String>,
        intent: Intent,
        description: impl Into<String>,
    ) -> Self {
        let mut field = Self::new(key, label, FormFieldType::Callout);
        field.intent = Some(intent);
        field.description = Some(description.into());
        field
    }

    pub fn required(mut self) -> Self {
        self.required = Some(true);
        self
    }

    /// Sends an explicit `"required": false`, for forms that want to say so rather than omit it.
    pub fn optional(mut self) -> Self {
        self.required = Some(false);
        self
    }

    pub fn value(mut self, value: impl Into<Value>) -> Self {
        self.value = Some(value.into());
        self
    }

    pub fn placeholder(mut self, placeholder: impl Into<String>) -> Self {
        self.placeholder = Some(placeholder.into());
        self
    }

    pub fn readonly(mut self) -> Self {
        self.readonly = Some(true);
        self
    }

    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    pub fn intent(mut self, intent: Intent) -> Self {
        self.intent = Some(intent);
        self
    }

    pub fn single_select(mut self, options: impl IntoIterator<Item = SelectOption>) -> Self {
        self.single_select_options = Some(options.into_iter().collect());
        self
    }

    pub fn multi_select(mut self, options: impl IntoIterator<Item = SelectOption>) -> Self {
        self.multi_select_options = Some(options.into_iter().collect());
        self
    }

    pub fn single_select_list(mut self, list_key: impl Into<String>) -> Self {
        self.single_select_options_list_key = Some(list_key.into());
        self
    }

    pub fn multi_select_list(mut self, list_key: impl Into<String>) -> Self {
        self.multi_select_options_list_key = Some(list_key.into());
        self
    }

    pub fn refetch_on_change(mut self) -> Self {
        self.perform_refetch_on_change = Some(true);
        self
    }

    pub fn include_in_refetch(mut self) -> Self {
        self.include_value_in_refetch = Some(true);
        self
    }
}

/// A dropdown choice, used both inline in a form field and in list-endpoint responses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SelectOption {
    pub label: String,
    pub value: String,
}

impl SelectOption {
    pub fn new(label: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            value: value.into(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------------------------

/// Response of an Action Submit Endpoint. The samples always answer HTTP 200 and signal failure
/// with `success: false`, so the HTTP layer should do the same.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionResult {
    pub result_version: String,
    pub key: ActionKey,
    pub success: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Shown next to the form fields they name, so the user can correct and resubmit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub toast: Option<Toast>,
    /// Documented for assessments; whether `exportCandidate` reads it is unknown, but sending it
    /// is expected to be harmless.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_identifier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_record_url: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub external_links: Vec<ExternalLink>,
}

impl ActionResult {
    pub fn success(key: ActionKey, message: impl Into<String>) -> Self {
        Self {
            result_version: CONTRACT_VERSION.to_owned(),
            key,
            success: true,
            message: Some(message.into()),
            errors: Vec::new(),
            toast: None,
            external_identifier: None,
            external_record_url: None,
            external_links: Vec::new(),
        }
    }

    pub fn failure(key: ActionKey, errors: Vec<FieldError>, toast: Option<Toast>) -> Self {
        Self {
            result_version: CONTRACT_VERSION.to_owned(),
            key,
            success: false,
            message: None,
            errors,
            toast,
            external_identifier: None,
            external_record_url: None,
            external_links: Vec::new(),
        }
    }

    pub fn with_external_record(
        mut self,
        identifier: impl Into<String>,
        url: Option<String>,
    ) -> Self {
        self.external_identifier = Some(identifier.into());
        self.external_record_url = url;
        self
    }

    pub fn with_toast(mut self, toast: Toast) -> Self {
        self.toast = Some(toast);
        self
    }

    pub fn with_link(mut self, link: ExternalLink) -> Self {
        self.external_links.push(link);
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// A form field key; the error is drawn under that field.
    pub key: String,
    pub error: String,
}

impl FieldError {
    pub fn new(key: impl Into<String>, error: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            error: error.into(),
        }
    }
}

/// Only `error` is documented; `success` and `info` are modelled so callers can try them, with
/// the caveat that Pinpoint may ignore them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Toast {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<String>,
}

impl Toast {
    pub fn error(message: impl Into<String>) -> Self {
        Self {
            error: Some(message.into()),
            ..Self::default()
        }
    }

    pub fn success(message: impl Into<String>) -> Self {
        Self {
            success: Some(message.into()),
            ..Self::default()
        }
    }

    pub fn info(message: impl Into<String>) -> Self {
        Self {
            info: Some(message.into()),
            ..Self::default()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalLink {
    pub key: String,
    pub label: String,
    pub url: String,
}

/// Response of a list endpoint. The real shape is past the docs' cut-off; we answer
/// `{ "key": <list key>, "options": [{ "label", "value" }] }`, reusing the inline option shape
/// so Pinpoint can treat both sources alike, and echoing the key so one endpoint could serve
/// several lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListResponse {
    pub key: String,
    #[serde(default)]
    pub options: Vec<SelectOption>,
}

impl ListResponse {
    pub fn new(key: impl Into<String>, options: impl IntoIterator<Item = SelectOption>) -> Self {
        Self {
            key: key.into(),
            options: options.into_iter().collect(),
        }
    }
}

/// Response of a Webhook Process Endpoint (assessments). Not used by exportCandidate, modelled
/// so another provider can reuse this module.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookProcessResult {
    pub result_version: String,
    pub success: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub update_assessments: Vec<AssessmentUpdate>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssessmentUpdate {
    pub external_identifier: String,
    /// Statuses are undocumented; the samples pass the provider's through (`completed`, …).
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<serde_json::Number>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub should_notify: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub external_links: Vec<ExternalLink>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn to_json<T: Serialize>(value: &T) -> Value {
        serde_json::to_value(value).unwrap()
    }

    // --- §4 examples -----------------------------------------------------------------------

    const META_RESPONSE: &str = r#"{
  "version": "1.0.0",
  "name": "HiBob",
  "logoBase64": "data:image/png;base64,iVBORw0KGgo...",
  "actions": [
    {
      "key": "exportCandidate",
      "label": "Send to HiBob",
      "iconSvgBase64": "data:image/svg+xml;base64,PHN2Zy...",
      "metaEndpoint": "/actions/export-candidate/meta",
      "mappings": [
        { "key": "firstName", "label": "First Name", "value": "{{candidate_first_name}}" },
        { "key": "lastName",  "label": "Last Name",  "value": "{{candidate_last_name}}" },
        { "key": "email",     "label": "Email",      "value": "{{candidate_email}}" },
        { "key": "startDate", "label": "Start Date", "value": "{{candidate_start_date}}" },
        { "key": "cvDocument", "value": "{{candidate_cv}}" }
      ]
    }
  ],
  "configurationFormFields": [
    { "key": "hibobServiceUserId", "label": "HiBob service user ID", "type": "string",
      "required": true, "sensitive": false },
    { "key": "hibobServiceUserToken", "label": "HiBob service user token", "type": "string",
      "required": true, "sensitive": true, "placeholder": "paste token" },
    { "key": "pluginToken", "label": "Plugin shared secret", "type": "string",
      "required": true, "sensitive": true, "useAsHttpHeader": "X-Plugin-Token",
      "description": "Shared secret the plugin uses to authenticate Pinpoint" }
  ]
}"#;

    const ACTION_META_RESPONSE: &str = r#"{
  "actionVersion": "1.0.0",
  "key": "exportCandidate",
  "label": "Send to HiBob",
  "description": "Create the new hire as an employee in HiBob",
  "formFields": [
    { "key": "heading", "label": "Employee", "type": "heading" },
    { "key": "firstName", "label": "First Name", "type": "string", "required": true, "readonly": false },
    { "key": "lastName",  "label": "Last Name",  "type": "string", "required": true },
    { "key": "email",     "label": "Work email", "type": "string", "required": true },
    { "key": "startDate", "label": "Start date", "type": "date",   "required": true },
    { "key": "site", "label": "Site", "type": "string", "required": true,
      "placeholder": "Select site...", "value": "",
      "performRefetchOnChange": true, "includeValueInRefetch": true,
      "singleSelectOptions": [ { "label": "London", "value": "london" },
                               { "label": "New York", "value": "ny" } ] },
    { "key": "divider", "label": "Divider", "type": "divider" },
    { "key": "cvDocument", "label": "CV", "type": "file", "required": false }
  ],
  "submitEndpoint": "/actions/export-candidate/submit"
}"#;

    const MISCONFIGURED_RESPONSE: &str = r#"{ "actionVersion": "1.0.0", "key": "exportCandidate", "label": "Send to HiBob",
  "description": "Create the new hire as an employee in HiBob",
  "formFields": [ { "key": "configCallout", "type": "callout", "label": "HiBob not configured",
                    "intent": "danger", "description": "Ask an admin to add HiBob credentials." } ],
  "submitEndpoint": "/actions/export-candidate/submit" }"#;

    const META_REQUEST: &str =
        r#"{ "configurationValues": [ { "key": "hibobServiceUserId", "value": "SERVICE-123" } ] }"#;

    const REFETCH_REQUEST: &str = r#"{ "formFields": [ { "key": "site", "value": "london" } ] }"#;

    const SUBMIT_REQUEST: &str = r#"{
  "formFields": [
    { "key": "firstName", "value": "Jane" },
    { "key": "lastName",  "value": "Doe" },
    { "key": "email",     "value": "jane.doe@example.com" },
    { "key": "startDate", "value": "2025-03-01" },
    { "key": "site",      "value": "london" },
    { "key": "cvDocument", "value": "https://…/cv.pdf" }
  ],
  "configurationValues": [ { "key": "hibobServiceUserId", "value": "SERVICE-123" } ]
}"#;

    const SUCCESS_RESULT: &str = r#"{ "resultVersion": "1.0.0", "key": "exportCandidate", "success": true,
  "message": "Jane Doe was successfully sent to HiBob." }"#;

    const FAILURE_RESULT: &str = r#"{ "resultVersion": "1.0.0", "key": "exportCandidate", "success": false,
  "errors": [ { "key": "firstName", "error": "First name is required by HiBob" } ],
  "toast": { "error": "HiBob rejected the employee" } }"#;

    const WEBHOOK_PROCESS_REQUEST: &str =
        r#"{ "body": "{\"id\":\"abc\",\"status\":\"completed\",\"score\":\"85\"}" }"#;

    const WEBHOOK_PROCESS_RESULT: &str = r#"{ "resultVersion": "1.0.0", "success": true,
  "updateAssessments": [ { "externalIdentifier": "abc", "status": "completed", "score": 85,
    "shouldNotify": true,
    "externalLinks": [ { "key": "report", "label": "Report", "url": "https://provider/reports/abc" } ] } ] }"#;

    #[test]
    fn meta_response_example_parses() {
        let meta: MetaResponse = serde_json::from_str(META_RESPONSE).unwrap();
        assert_eq!(meta.version, "1.0.0");
        assert_eq!(meta.name, "HiBob");
        assert_eq!(meta.actions.len(), 1);
        let action = &meta.actions[0];
        assert_eq!(action.key, ActionKey::ExportCandidate);
        assert_eq!(action.meta_endpoint, "/actions/export-candidate/meta");
        assert_eq!(action.mappings.len(), 5);
        assert_eq!(action.mappings[4].label, None);
        assert_eq!(action.mappings[4].value, "{{candidate_cv}}");
        let token = &meta.configuration_form_fields[2];
        assert_eq!(token.use_as_http_header.as_deref(), Some("X-Plugin-Token"));
        assert!(token.sensitive && token.required);
        assert_eq!(token.field_type, ConfigFieldType::String);
        assert!(meta.list_endpoints.is_empty());
        assert_eq!(meta.webhook_process_endpoint, None);
    }

    #[test]
    fn meta_response_example_round_trips_exactly() {
        let meta: MetaResponse = serde_json::from_str(META_RESPONSE).unwrap();
        let expected: Value = serde_json::from_str(META_RESPONSE).unwrap();
        assert_eq!(to_json(&meta), expected);
    }

    #[test]
    fn action_meta_example_parses() {
        let meta: ActionMetaResponse = serde_json::from_str(ACTION_META_RESPONSE).unwrap();
        assert_eq!(meta.key, ActionKey::ExportCandidate);
        assert_eq!(meta.submit_endpoint, "/actions/export-candidate/submit");
        let types: Vec<&str> = meta
            .form_fields
            .iter()
            .map(|f| f.field_type.as_str())
            .collect();
        assert_eq!(
            types,
            ["heading", "string", "string", "string", "date", "string", "divider", "file"]
        );
        let site = &meta.form_fields[5];
        assert_eq!(site.value, Some(json!("")));
        assert_eq!(site.perform_refetch_on_change, Some(true));
        assert_eq!(site.include_value_in_refetch, Some(true));
        assert_eq!(
            site.single_select_options.as_deref(),
            Some(
                &[
                    SelectOption::new("London", "london"),
                    SelectOption::new("New York", "ny")
                ][..]
            )
        );
        assert_eq!(meta.form_fields[1].readonly, Some(false));
        assert_eq!(meta.form_fields[7].required, Some(false));
    }

    #[test]
    fn action_meta_example_round_trips_exactly() {
        for text in [ACTION_META_RESPONSE, MISCONFIGURED_RESPONSE] {
            let meta: ActionMetaResponse = serde_json::from_str(text).unwrap();
            let expected: Value = serde_json::from_str(text).unwrap();
            assert_eq!(to_json(&meta), expected);
        }
    }

    #[test]
    fn misconfiguration_callout_parses() {
        let meta: ActionMetaResponse = serde_json::from_str(MISCONFIGURED_RESPONSE).unwrap();
        let callout = &meta.form_fields[0];
        assert_eq!(callout.field_type, FormFieldType::Callout);
        assert_eq!(callout.intent, Some(Intent::Danger));
        assert_eq!(
            callout.description.as_deref(),
            Some("Ask an admin to add HiBob credentials.")
        );
    }

    #[test]
    fn meta_request_example_parses() {
        let req = PluginRequest::from_slice(META_REQUEST.as_bytes()).unwrap();
        assert_eq!(req.config_value("hibobServiceUserId"), Some("SERVICE-123"));
        assert_eq!(req.config_value("missing"), None);
        assert!(req.form_fields.is_empty());
    }

    #[test]
    fn refetch_request_example_parses() {
        let req: PluginRequest = serde_json::from_str(REFETCH_REQUEST).unwrap();
        assert_eq!(req.form_str("site").as_deref(), Some("london"));
        assert!(req.configuration_values.is_empty());
    }

    #[test]
    fn submit_request_example_parses() {
        let req = PluginRequest::from_slice(SUBMIT_REQUEST.as_bytes()).unwrap();
        assert_eq!(req.form_str("firstName").as_deref(), Some("Jane"));
        assert_eq!(req.form_str("startDate").as_deref(), Some("2025-03-01"));
        assert_eq!(req.config_value("hibobServiceUserId"), Some("SERVICE-123"));
        assert_eq!(
            req.form_file_refs("cvDocument"),
            vec![FileRef {
                url: "https://…/cv.pdf".into(),
                name: None
            }]
        );
    }

    #[test]
    fn submit_results_match_the_examples() {
        let success = ActionResult::success(
            ActionKey::ExportCandidate,
            "Jane Doe was successfully sent to HiBob.",
        );
        assert_eq!(
            to_json(&success),
            serde_json::from_str::<Value>(SUCCESS_RESULT).unwrap()
        );

        let failure = ActionResult::failure(
            ActionKey::ExportCandidate,
            vec![FieldError::new(
                "firstName",
                "First name is required by HiBob",
            )],
            Some(Toast::error("HiBob rejected the employee")),
        );
        assert_eq!(
            to_json(&failure),
            serde_json::from_str::<Value>(FAILURE_RESULT).unwrap()
        );
        let parsed: ActionResult = serde_json::from_str(FAILURE_RESULT).unwrap();
        assert_eq!(parsed, failure);
    }

    #[test]
    fn toast_only_failure_and_external_record() {
        let failure = ActionResult::failure(
            ActionKey::ExportCandidate,
            Vec::new(),
            Some(Toast::error("HiBob is down")),
        );
        assert_eq!(
            to_json(&failure),
            json!({"resultVersion": "1.0.0", "key": "exportCandidate", "success": false,
                   "toast": {"error": "HiBob is down"}})
        );
        let success = ActionResult::success(ActionKey::ExportCandidate, "done")
            .with_external_record("42", Some("https://app.hibob.com/employee/42".into()))
            .with_toast(Toast::info("queued"));
        let json = to_json(&success);
        assert_eq!(json["externalIdentifier"], "42");
        assert_eq!(
            json["externalRecordUrl"],
            "https://app.hibob.com/employee/42"
        );
        assert_eq!(json["toast"], json!({"info": "queued"}));
        assert!(json.get("errors").is_none());
    }

    #[test]
    fn webhook_process_examples() {
        let req = PluginRequest::from_slice(WEBHOOK_PROCESS_REQUEST.as_bytes()).unwrap();
        let inner: Value = serde_json::from_str(req.body.as_deref().unwrap()).unwrap();
        assert_eq!(inner["status"], "completed");

        let result: WebhookProcessResult = serde_json::from_str(WEBHOOK_PROCESS_RESULT).unwrap();
        assert_eq!(result.update_assessments[0].score, Some(85.into()));
        assert_eq!(
            to_json(&result),
            serde_json::from_str::<Value>(WEBHOOK_PROCESS_RESULT).unwrap()
        );

        let object_body = PluginRequest::from_value(json!({"body": {"id": "abc"}}));
        assert_eq!(object_body.body.as_deref(), Some(r#"{"id":"abc"}"#));
    }

    // --- leniency of requests ----------------------------------------------------------------

    #[test]
    fn configuration_values_as_object_map() {
        let req = PluginRequest::from_value(json!({
            "configurationValues": {
                "hibobServiceUserId": "SERVICE-123",
                "pluginToken": "  tok\n",
                "blank": "   ",
                "port": 8080,
                "enabled": true,
                "nothing": null,
                "nested": {"a": 1}
            }
        }));
        assert_eq!(req.config_value("hibobServiceUserId"), Some("SERVICE-123"));
        assert_eq!(req.config_value("pluginToken"), Some("tok"));
        assert_eq!(req.config_value("blank"), None);
        assert_eq!(req.config_value("port"), Some("8080"));
        assert_eq!(req.config_value("enabled"), Some("true"));
        assert_eq!(req.config_value("nothing"), None);
        assert_eq!(req.config_value("nested"), None);
    }

    #[test]
    fn configuration_values_array_edge_cases() {
        let req = PluginRequest::from_value(json!({
            "configurationValues": [
                { "key": "a", "value": "first" },
                { "key": "a", "value": "second" },
                { "value": "no key" },
                "not an object",
                { "key": "n", "value": 12.5 },
                { "key": "missingValue" }
            ]
        }));
        assert_eq!(req.config_value("a"), Some("first"));
        assert_eq!(req.config_value("n"), Some("12.5"));
        assert_eq!(req.config_value("missingValue"), None);
        assert_eq!(req.configuration_values.len(), 3);
    }

    #[test]
    fn ids_as_number_or_string() {
        let numbers = PluginRequest::from_value(json!({
            "generatedUuid": 123,
            "applicationId": 7,
            "job": { "id": 9 }
        }));
        assert_eq!(numbers.generated_uuid.as_deref(), Some("123"));
        assert_eq!(numbers.entity_id("application").as_deref(), Some("7"));
        assert_eq!(numbers.entity_id("job").as_deref(), Some("9"));
        assert_eq!(numbers.entity_id("candidate"), None);

        let strings = PluginRequest::from_value(json!({
            "generatedUuid": "3f2a-uuid",
            "application_id": "7",
            "candidate": { "id": " 11 " },
            "webhookUrl": "https://pinpoint/hooks/1",
            "generatedUuidRedirectUrl": "https://pinpoint/r/1"
        }));
        assert_eq!(strings.generated_uuid.as_deref(), Some("3f2a-uuid"));
        assert_eq!(strings.entity_id("application").as_deref(), Some("7"));
        assert_eq!(strings.entity_id("candidate").as_deref(), Some("11"));
        assert_eq!(
            strings.top_level_id("generatedUuid").as_deref(),
            Some("3f2a-uuid")
        );
        assert_eq!(
            strings.webhook_url.as_deref(),
            Some("https://pinpoint/hooks/1")
        );
        assert_eq!(
            strings.generated_uuid_redirect_url.as_deref(),
            Some("https://pinpoint/r/1")
        );
    }

    #[test]
    fn unknown_keys_and_odd_bodies_are_tolerated() {
        let req: PluginRequest = serde_json::from_value(json!({
            "configurationValues": [ { "key": "k", "value": "v", "extra": 1 } ],
            "formFields": [ { "key": "site", "value": "ny", "type": "string" } ],
            "candidate": { "firstName": "Jane" },
            "apiVersion": "2024-01",
            "somethingNew": [1, 2, 3]
        }))
        .unwrap();
        assert_eq!(req.config_value("k"), Some("v"));
        assert_eq!(req.form_str("site").as_deref(), Some("ny"));
        assert_eq!(req.raw["candidate"]["firstName"], "Jane");

        assert_eq!(
            PluginRequest::from_slice(b"").unwrap(),
            PluginRequest::default()
        );
        assert_eq!(
            PluginRequest::from_slice(b" \n ").unwrap(),
            PluginRequest::default()
        );
        assert!(PluginRequest::from_slice(b"{not json").is_err());
        let array = PluginRequest::from_slice(b"[1,2]").unwrap();
        assert!(array.configuration_values.is_empty());
        assert_eq!(array.raw, json!([1, 2]));
        let wrong_types = PluginRequest::from_value(json!({
            "configurationValues": "oops", "formFields": 5, "generatedUuid": [1]
        }));
        assert!(wrong_types.configuration_values.is_empty());
        assert!(wrong_types.form_fields.is_empty());
        assert_eq!(wrong_types.generated_uuid, None);
    }

    #[test]
    fn form_values_and_strings() {
        let req = PluginRequest::from_value(json!({
            "formFields": [
                { "key": "name", "value": "  Jane  " },
                { "key": "blank", "value": "  " },
                { "key": "salary", "value": 55000 },
                { "key": "ratio", "value": 0.5 },
                { "key": "flag", "value": false },
                { "key": "nothing", "value": null },
                { "key": "noValue" },
                { "key": "tags", "value": ["a", "b"] },
                { "key": "name", "value": "Second" }
            ]
        }));
        assert_eq!(req.form_str("name").as_deref(), Some("Jane"));
        assert_eq!(req.form_str("blank"), None);
        assert_eq!(req.form_value("blank"), Some(&json!("  ")));
        assert_eq!(req.form_str("salary").as_deref(), Some("55000"));
        assert_eq!(req.form_str("ratio").as_deref(), Some("0.5"));
        assert_eq!(req.form_str("flag").as_deref(), Some("false"));
        assert_eq!(req.form_value("nothing"), None);
        assert_eq!(req.form_value("noValue"), None);
        assert_eq!(req.form_value("tags"), Some(&json!(["a", "b"])));
        assert_eq!(req.form_str("tags"), None);
        assert_eq!(req.form_value("absent"), None);

        let map = PluginRequest::from_value(json!({ "formFields": { "site": "ny" } }));
        assert_eq!(map.form_str("site").as_deref(), Some("ny"));
    }

    // --- file values -------------------------------------------------------------------------

    fn file(url: &str, name: Option<&str>) -> FileRef {
        FileRef {
            url: url.to_owned(),
            name: name.map(str::to_owned),
        }
    }

    #[test]
    fn file_value_plain_url() {
        assert_eq!(
            file_refs(&json!(" https://x/cv.pdf ")),
            vec![file("https://x/cv.pdf", None)]
        );
        assert!(file_refs(&json!("")).is_empty());
        assert!(file_refs(&json!("   ")).is_empty());
    }

    #[test]
    fn file_value_objects_with_every_key_spelling() {
        let cases = [
            (
                json!({"url": "u1", "filename": "a.pdf"}),
                file("u1", Some("a.pdf")),
            ),
            (
                json!({"fileUrl": "u2", "fileName": "b.pdf"}),
                file("u2", Some("b.pdf")),
            ),
            (
                json!({"downloadUrl": "u3", "name": "c.pdf"}),
                file("u3", Some("c.pdf")),
            ),
            (json!({"href": "u4"}), file("u4", None)),
            (
                json!({"file_url": "u5", "file_name": "e.pdf"}),
                file("u5", Some("e.pdf")),
            ),
            (
                json!({"download_url": "u6", "filename": ""}),
                file("u6", None),
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(file_refs(&value), vec![expected], "{value}");
        }
        // The first URL key in preference order wins when several are present.
        assert_eq!(
            file_refs(&json!({"href": "later", "url": "first", "name": 5})),
            vec![file("first", None)]
        );
        // A blank preferred key falls through to the next one.
        assert_eq!(
            file_refs(&json!({"url": " ", "fileUrl": "real"})),
            vec![file("real", None)]
        );
    }

    #[test]
    fn file_value_arrays_for_files_fields() {
        let value = json!([
            "https://x/1.pdf",
            {"url": "https://x/2.pdf", "filename": "two.pdf"},
            {"nothing": "here"},
            42,
            null,
            ["nested", "ignored"],
            {"downloadUrl": "https://x/3.pdf"}
        ]);
        assert_eq!(
            file_refs(&value),
            vec![
                file("https://x/1.pdf", None),
                file("https://x/2.pdf", Some("two.pdf")),
                file("https://x/3.pdf", None),
            ]
        );
        assert!(file_refs(&json!([])).is_empty());
    }

    #[test]
    fn file_value_unreadable_shapes_are_ignored() {
        for value in [
            json!(null),
            json!(12),
            json!(true),
            json!({}),
            json!({"url": 12}),
            json!({"name": "only-a-name.pdf"}),
        ] {
            assert!(file_refs(&value).is_empty(), "{value}");
        }
    }

    #[test]
    fn file_value_serialised_into_a_string() {
        assert_eq!(
            file_refs(&json!(r#"[{"url":"https://x/a.pdf","name":"a.pdf"}]"#)),
            vec![file("https://x/a.pdf", Some("a.pdf"))]
        );
        assert_eq!(
            file_refs(&json!(r#"{"fileUrl":"https://x/b.pdf"}"#)),
            vec![file("https://x/b.pdf", None)]
        );
        assert!(file_refs(&json!("{not json")).is_empty());
        // Only one level of unwrapping, and JSON-looking text is never taken for a URL.
        assert!(file_refs(&json!(r#"["{\"url\":\"u\"}"]"#)).is_empty());
        assert!(file_refs(&json!([r#"{"url":"u"}"#])).is_empty());
    }

    #[test]
    fn file_display_name() {
        assert_eq!(
            file("https://x/docs/cv%20final.pdf?sig=1#p", None).display_name("cv"),
            "cv%20final.pdf"
        );
        assert_eq!(
            file("https://x/a.pdf", Some("Jane CV.pdf")).display_name("cv"),
            "Jane CV.pdf"
        );
        assert_eq!(file("https://host", None).display_name("cv"), "cv");
        assert_eq!(file("https://host/", None).display_name("cv"), "cv");
    }

    // --- enums -------------------------------------------------------------------------------

    #[test]
    fn action_keys_parse_and_keep_unknown_values() {
        for (wire, key) in [
            ("exportCandidate", ActionKey::ExportCandidate),
            ("createAssessment", ActionKey::CreateAssessment),
            ("createBackgroundCheck", ActionKey::CreateBackgroundCheck),
            (
                "scheduleInterview",
                ActionKey::Other("scheduleInterview".into()),
            ),
        ] {
            assert_eq!(
                serde_json::from_value::<ActionKey>(json!(wire)).unwrap(),
                key
            );
            assert_eq!(to_json(&key), json!(wire));
            assert_eq!(key.to_string(), wire);
        }
        let action: ActionMetaResponse = serde_json::from_value(json!({
            "actionVersion": "1.0.0", "key": "somethingNew", "label": "X",
            "formFields": [ { "key": "c", "type": "richText", "intent": "critical" } ],
            "submitEndpoint": "/s"
        }))
        .unwrap();
        assert_eq!(action.key, ActionKey::Other("somethingNew".into()));
        assert_eq!(
            action.form_fields[0].field_type,
            FormFieldType::Other("richText".into())
        );
        assert_eq!(
            action.form_fields[0].intent,
            Some(Intent::Other("critical".into()))
        );
        assert_eq!(to_json(&action)["formFields"][0]["type"], "richText");
    }

    #[test]
    fn intents_and_config_types_use_documented_spellings() {
        for (intent, wire) in [
            (Intent::Danger, "danger"),
            (Intent::Warning, "warning"),
            (Intent::Info, "info"),
            (Intent::Success, "success"),
        ] {
            assert_eq!(to_json(&intent), json!(wire));
        }
        assert_eq!(
            to_json(&ConfigFieldType::PersistedString),
            json!("persisted_string")
        );
        assert_eq!(
            ConfigFieldType::from("persisted_string"),
            ConfigFieldType::PersistedString
        );
    }

    // --- builders and serialisation -----------------------------------------------------------

    #[test]
    fn meta_response_built_with_helpers_serialises_cleanly() {
        let meta = MetaResponse::new("HiBob", "data:image/png;base64,AAA")
            .action(
                ActionDescriptor::new(
                    ActionKey::ExportCandidate,
                    "Send to HiBob",
                    "data:image/svg+xml;base64,PHN2Zy",
                    "/actions/export-candidate/meta",
                )
                .mapping(FieldMapping::new(
                    "firstName",
                    "First Name",
                    "{{candidate_first_name}}",
                ))
                .mapping(FieldMapping::unlabelled("notes", "{{candidate_cv}}").multiline()),
            )
            .configuration_field(
                ConfigurationFormField::string("pluginToken", "Plugin shared secret")
                    .required()
                    .sensitive()
                    .http_header("X-Plugin-Token")
                    .placeholder("paste token")
                    .description("Shared secret")
                    .for_action(ActionKey::ExportCandidate),
            )
            .configuration_field(
                ConfigurationFormField::string("lastSync", "Last sync")
                    .persisted()
                    .readonly()
                    .default_value("never"),
            )
            .list_endpoint("sites", "/lists/sites");

        let json = to_json(&meta);
        assert_eq!(
            json,
            json!({
                "version": "1.0.0",
                "name": "HiBob",
                "logoBase64": "data:image/png;base64,AAA",
                "actions": [{
                    "key": "exportCandidate",
                    "label": "Send to HiBob",
                    "iconSvgBase64": "data:image/svg+xml;base64,PHN2Zy",
                    "metaEndpoint": "/actions/export-candidate/meta",
                    "mappings": [
                        {"key": "firstName", "label": "First Name",
                         "value": "{{candidate_first_name}}"},
                        {"key": "notes", "value": "{{candidate_cv}}", "multiline": true}
                    ]
                }],
                "configurationFormFields": [
                    {"key": "pluginToken", "label": "Plugin shared secret",
                     "description": "Shared secret", "type": "string", "required": true,
                     "sensitive": true, "placeholder": "paste token",
                     "useAsHttpHeader": "X-Plugin-Token", "actionKey": "exportCandidate"},
                    {"key": "lastSync", "label": "Last sync", "type": "persisted_string",
                     "required": false, "sensitive": false, "defaultValue": "never",
                     "readonly": true}
                ],
                "listEndpoints": [{"key": "sites", "endpoint": "/lists/sites"}]
            })
        );
        let back: MetaResponse = serde_json::from_value(json).unwrap();
        assert_eq!(back, meta);

        let bare = to_json(&MetaResponse::new("X", "logo"));
        let keys: Vec<&String> = bare.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 4, "{bare}");
    }

    #[test]
    fn action_meta_built_with_helpers_matches_the_example() {
        let built = ActionMetaResponse::new(
            ActionKey::ExportCandidate,
            "Send to HiBob",
            "Create the new hire as an employee in HiBob",
            "/actions/export-candidate/submit",
        )
        .field(FormField::heading("heading", "Employee"))
        .fields([
            FormField::string("firstName", "First Name")
                .required()
                .value("x")
                .readonly(),
            FormField::string("site", "Site")
                .required()
                .placeholder("Select site...")
                .value("")
                .refetch_on_change()
                .include_in_refetch()
                .single_select([
                    SelectOption::new("London", "london"),
                    SelectOption::new("New York", "ny"),
                ]),
            FormField::divider("divider"),
            FormField::date("startDate", "Start date").required(),
            FormField::file("cvDocument", "CV").optional(),
            FormField::files("extra", "Other documents").description("Anything else"),
            FormField::string("teams", "Teams")
                .multi_select([SelectOption::new("A", "a")])
                .multi_select_list("teams"),
            FormField::string("dept", "Department").single_select_list("departments"),
            FormField::callout("warn", "Heads up", Intent::Warning, "Check the start date"),
        ])
        .list_endpoint("departments", "/lists/departments");

        let json = to_json(&built);
        assert_eq!(json["actionVersion"], "1.0.0");
        assert_eq!(json["submitEndpoint"], "/actions/export-candidate/submit");
        assert_eq!(
            json["listEndpoints"],
            json!([{"key": "departments", "endpoint": "/lists/departments"}])
        );
        let fields = json["formFields"].as_array().unwrap();
        assert_eq!(
            fields[0],
            json!({"key": "heading", "label": "Employee", "type": "heading"})
        );
        assert_eq!(
            fields[1],
            json!({"key": "firstName", "label": "First Name", "type": "string",
                   "required": true, "value": "x", "readonly": true})
        );
        let expected_site: Value =
            serde_json::from_str::<Value>(ACTION_META_RESPONSE).unwrap()["formFields"][5].clone();
        assert_eq!(fields[2], expected_site);
        assert_eq!(
            fields[3],
            json!({"key": "divider", "label": "Divider", "type": "divider"})
        );
        assert_eq!(fields[4]["type"], "date");
        assert_eq!(
            fields[5],
            json!({"key": "cvDocument", "label": "CV", "type": "file", "required": false})
        );
        assert_eq!(fields[6]["type"], "files");
        assert_eq!(fields[6]["description"], "Anything else");
        assert_eq!(
            fields[7]["multiSelectOptions"],
            json!([{"label": "A", "value": "a"}])
        );
        assert_eq!(fields[7]["multiSelectOptionsListKey"], "teams");
        assert_eq!(fields[8]["singleSelectOptionsListKey"], "departments");
        assert_eq!(
            fields[9],
            json!({"key": "warn", "label": "Heads up", "type": "callout",
                   "description": "Check the start date", "intent": "warning"})
        );

        let back: ActionMetaResponse = serde_json::from_value(json).unwrap();
        assert_eq!(back, built);
    }

    #[test]
    fn callout_only_form_built_with_helpers_equals_the_example() {
        let built = ActionMetaResponse::new(
            ActionKey::ExportCandidate,
            "Send to HiBob",
            "Create the new hire as an employee in HiBob",
            "/actions/export-candidate/submit",
        )
        .field(FormField::callout(
            "configCallout",
            "HiBob not configured",
            Intent::Danger,
            "Ask an admin to add HiBob credentials.",
        ));
        assert_eq!(
            to_json(&built),
            serde_json::from_str::<Value>(MISCONFIGURED_RESPONSE).unwrap()
        );
    }

    #[test]
    fn list_response_shape() {
        let list = ListResponse::new(
            "sites",
            [
                SelectOption::new("London", "london"),
                SelectOption::new("New York", "ny"),
            ],
        );
        assert_eq!(
            to_json(&list),
            json!({"key": "sites", "options": [
                {"label": "London", "value": "london"},
                {"label": "New York", "value": "ny"}
            ]})
        );
        let back: ListResponse = serde_json::from_value(json!({"key": "sites"})).unwrap();
        assert!(back.options.is_empty());
    }
}
