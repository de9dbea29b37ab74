//! What the exporter reads back from HiBob, parsed leniently: HiBob mixes id types, omits
//! fields the service user may not see, and has more than one response layout per endpoint.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::outbound::{id_string, text_value};

/// Enough of an employee to tell an operator who already holds an e-mail address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmployeeSummary {
    pub id: String,
    pub email: Option<String>,
    pub display_name: Option<String>,
}

/// One entry of HiBob's field catalogue: a mapping target for the operator UI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldMeta {
    /// Dotted field id (`root.email`, `work.custom.field_1680187492413`). Stable even when the
    /// field moves to another category.
    pub id: String,
    pub name: String,
    /// Backend category id (`categoryId`, or the older `category`); what permissions refer to.
    pub category: String,
    /// The category label Bob shows (`categoryDisplayName`), when HiBob sends it.
    pub category_name: Option<String>,
    /// `text`, `date`, `list`, `multi-list`, `hierarchy-list`, … as HiBob spells it.
    pub field_type: String,
    /// Where the value sits in an employee JSON read back from HiBob (writes nest by `id`).
    pub json_path: String,
    /// Whether values are items of a named list (sent as the item id).
    pub is_list: bool,
    /// The named list behind the field (`typeData.listId`), to fetch its items.
    pub list_name: Option<String>,
    /// Table-backed fields with dated history.
    pub historical: bool,
    pub description: Option<String>,
}

impl FieldMeta {
    pub(crate) fn from_json(value: &Value) -> Option<Self> {
        let id = text_value(value.get("id"))?;
        let field_type = text_value(value.get("type")).unwrap_or_else(|| "unknown".to_owned());
        let list_name = value
            .get("typeData")
            .and_then(|t| t.get("listId"))
            .and_then(id_string);
        let is_list = list_name.is_some()
            || matches!(
                field_type.as_str(),
                "list" | "multi-list" | "hierarchy-list"
            );
        let json_path = text_value(value.get("jsonPath"))
            .unwrap_or_else(|| id.strip_prefix("root.").unwrap_or(&id).to_owned());
        Some(Self {
            name: text_value(value.get("name")).unwrap_or_else(|| id.clone()),
            category: text_value(value.get("categoryId"))
                .or_else(|| text_value(value.get("category")))
                .unwrap_or_default(),
            category_name: text_value(value.get("categoryDisplayName")),
            field_type,
            json_path,
            is_list,
            list_name,
            historical: value
                .get("historical")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            description: text_value(value.get("description")),
            id,
        })
    }
}

/// A company list (sites, departments, …) with its items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedList {
    pub name: String,
    pub items: Vec<ListItem>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListItem {
    /// Always text: HiBob sends numbers for some lists and strings for others.
    pub id: String,
    pub name: String,
    /// Archived items are listed so existing mappings can be shown, but cannot be chosen.
    pub archived: bool,
    /// Sub-items of hierarchical lists.
    pub children: Vec<ListItem>,
}

impl ListItem {
    /// An active item without children.
    pub fn new(id: &str, name: &str) -> Self {
        Self {
            id: id.to_owned(),
            name: name.to_owned(),
            archived: false,
            children: Vec::new(),
        }
    }
}

impl NamedList {
    pub(crate) fn from_json(value: &Value) -> Option<Self> {
        let name = text_value(value.get("name"))?;
        let items = value
            .get("items")
            .and_then(Value::as_array)
            .map(|items| items.iter().filter_map(ListItem::from_json).collect())
            .unwrap_or_default();
        Some(Self { name, items })
    }

    /// Finds an item anywhere in the tree by id, or else by name (case-insensitive).
    pub fn find(&self, id_or_name: &str) -> Option<&ListItem> {
        fn walk<'a>(
            items: &'a [ListItem],
            test: &dyn Fn(&ListItem) -> bool,
        ) -> Option<&'a ListItem> {
            items.iter().find_map(|i| {
                if test(i) {
                    Some(i)
                } else {
                    walk(&i.children, test)
                }
            })
        }
        let wanted = id_or_name.trim();
        walk(&self.items, &|i| i.id == wanted)
            .or_else(|| walk(&self.items, &|i| i.name.eq_ignore_ascii_case(wanted)))
    }
}

impl ListItem {
    fn from_json(value: &Value) -> Option<Self> {
        let id = value.get("id").and_then(id_string);
        let name = text_value(value.get("name")).or_else(|| text_value(value.get("value")));
        let (id, name) = match (id, name) {
            (Some(id), Some(name)) => (id, name),
            (Some(id), None) => (id.clone(), id),
            (None, Some(name)) => (name.clone(), name),
            (None, None) => return None,
        };
        Some(Self {
            id,
            name,
            archived: value
                .get("archived")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            children: value
                .get("children")
                .and_then(Value::as_array)
                .map(|c| c.iter().filter_map(Self::from_json).collect())
                .unwrap_or_default(),
        })
    }
}

/// Reads one employee of a search answer, which may use plain keys (`id`), slash-path keys
/// wrapping a value (`"/root/id": {"value": …}`), or both.
pub(crate) fn summary_from_json(value: &Value) -> Option<EmployeeSummary> {
    let wrapped = |path: &str| value.get(path).and_then(|w| w.get("value"));
    let id = value
        .get("id")
        .and_then(id_string)
        .or_else(|| wrapped("/root/id").and_then(id_string))?;
    let email = text_value(value.get("email")).or_else(|| text_value(wrapped("/root/email")));
    let display_name = text_value(value.get("displayName"))
        .or_else(|| text_value(wrapped("/root/displayName")))
        .or_else(|| text_value(value.get("fullName")));
    Some(EmployeeSummary {
        id,
        email,
        display_name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn field_metadata_is_read() {
        let f = FieldMeta::from_json(&json!({
            "id": "work.site", "categoryId": "work", "categoryDisplayName": "Work",
            "category": "work", "name": "Site", "description": null, "jsonPath": "work.site",
            "type": "list", "typeData": {"listId": "site"}, "historical": true
        }))
        .unwrap();
        assert_eq!(f.list_name.as_deref(), Some("site"));
        assert!(f.is_list && f.historical);
        assert_eq!(f.category_name.as_deref(), Some("Work"));
        let f = FieldMeta::from_json(&json!({"id": "root.firstName", "category": "root"})).unwrap();
        assert_eq!(f.json_path, "firstName");
        assert_eq!(f.name, "root.firstName");
        assert_eq!(f.category, "root");
        assert!(!f.is_list);
        assert!(FieldMeta::from_json(&json!({"name": "no id"})).is_none());
    }

    #[test]
    fn list_items_take_any_id_type() {
        let list = NamedList::from_json(&json!({
            "name": "department",
            "items": [
                {"id": 2510068, "value": "Eng", "name": "Engineering", "archived": false,
                 "children": [{"id": "abc", "value": "Platform", "archived": true}]},
                {"value": "Orphan"}
            ]
        }))
        .unwrap();
        assert_eq!(list.items[0].id, "2510068");
        assert_eq!(list.items[0].children[0].name, "Platform");
        assert!(list.items[0].children[0].archived);
        assert_eq!(list.items[1].id, "Orphan");
        assert_eq!(list.find("abc").map(|i| i.name.as_str()), Some("Platform"));
        assert_eq!(
            list.find("engineering").map(|i| i.id.as_str()),
            Some("2510068")
        );
        assert!(list.find("nope").is_none());
    }

    #[test]
    fn summaries_accept_wrapped_values() {
        let s = summary_from_json(&json!({
            "/root/id": {"value": "3391735226064306262"},
            "/root/email": {"value": "g@example.com"}
        }))
        .unwrap();
        assert_eq!(s.id, "3391735226064306262");
        assert_eq!(s.email.as_deref(), Some("g@example.com"));
        assert!(summary_from_json(&json!({"email": "x@example.com"})).is_none());
    }
}
