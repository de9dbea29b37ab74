//! The plugin as Pinpoint first sees it: its root document (name, logo, the action, the token
//! field, the lists), whose field mappings follow the mapping in force.

use base64::Engine as _;

use super::{form::Plan, request::TOKEN_CONFIG_KEY};
use crate::{
    hibob::schema::Schema,
    pinpoint::plugin_contract::{
        ActionDescriptor, ActionKey, ConfigurationFormField, MetaResponse,
    },
};

pub const PLUGIN_NAME: &str = "HiBob";
pub const ACTION_LABEL: &str = "Send to HiBob";
pub const ACTION_DESCRIPTION: &str = "Create the new hire as an employee in HiBob";
pub const ACTION_META_PATH: &str = "/export-candidate/meta";
pub const SUBMIT_PATH: &str = "/export-candidate/submit";
/// Hyphenated on purpose: proxies commonly drop header names with underscores.
pub const TOKEN_HEADER: &str = "X-Plugin-Token";

/// The usual lists, declared whatever the mapping: Stage Actions are set up before any
/// candidate, from the lists the meta declares.
pub(crate) const USUAL_LISTS: [&str; 4] = ["sites", "departments", "titles", "employmentTypes"];

pub(crate) const EXPORT: ActionKey = ActionKey::ExportCandidate;

// ---------------------------------------------------------------------------------------------
// Meta
// ---------------------------------------------------------------------------------------------

/// A person card with an arrow coming in: "a new hire arrives". Drawn for this project.
const LOGO_SVG: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64" width="64" height="64"><rect width="64" height="64" rx="14" fill="#134E4A"/><circle cx="40" cy="24" r="8" fill="#ECFDF5"/><path d="M26 50c0-8.3 6.3-14 14-14s14 5.7 14 14z" fill="#ECFDF5"/><path d="M9 31h14m-5.5-6 6 6-6 6" fill="none" stroke="#FBBF24" stroke-width="4" stroke-linecap="round" stroke-linejoin="round"/></svg>"##;

/// The same idea as a line icon, sized for a button.
const ICON_SVG: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="24" height="24" fill="none" stroke="#1F2937" stroke-width="2" stroke-linecap="round" stroke-linejoin="round"><circle cx="15" cy="8" r="3.5"/><path d="M8.5 20a6.5 6.5 0 0 1 13 0"/><path d="M2 12h7m-2.5-2.5L9 12l-2.5 2.5"/></svg>"##;

fn svg_data_uri(svg: &str) -> String {
    format!(
        "data:image/svg+xml;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(svg)
    )
}

fn list_path(list_key: &str) -> String {
    format!("/lists/{list_key}")
}

/// The plugin's root document. It is public (Pinpoint reads it at registration, before any
/// token exists), so it carries nothing secret; its field mappings follow the mapping in force.
pub fn meta() -> MetaResponse {
    meta_for(&Plan::new(
        &crate::mapping::default_document(),
        &Schema::builtin(),
    ))
}

pub fn meta_for(plan: &Plan) -> MetaResponse {
    let mut action = ActionDescriptor::new(
        EXPORT,
        ACTION_LABEL,
        svg_data_uri(ICON_SVG),
        ACTION_META_PATH,
    );
    for mapping in plan.mappings() {
        action = action.mapping(mapping);
    }
    let mut meta = MetaResponse::new(PLUGIN_NAME, svg_data_uri(LOGO_SVG))
        .action(action)
        .configuration_field(
            ConfigurationFormField::string(TOKEN_CONFIG_KEY, "Plugin token")
                .required()
                .sensitive()
                .http_header(TOKEN_HEADER)
                .placeholder("paste the plugin token from the console")
                .description(
                    "The shared secret shown as \"Plugin token\" in the Pinpoint → HiBob \
                     console's Settings. Pinpoint sends it with every call so the console knows \
                     the call is yours.",
                ),
        );
    for (key, path) in list_endpoints(plan) {
        meta = meta.list_endpoint(key, path);
    }
    meta
}

/// The usual lists, then any other list field of the mapping.
pub(crate) fn list_endpoints(plan: &Plan) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = USUAL_LISTS
        .iter()
        .map(|k| ((*k).to_owned(), list_path(k)))
        .collect();
    for (key, path) in plan.list_endpoints() {
        if !out.iter().any(|(k, _)| *k == key) {
            out.push((key, path));
        }
    }
    out
}
