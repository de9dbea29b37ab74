//! How an export's recorded steps read on its timeline: attempts numbered as they happened,
//! across retries, and the employee body each attempt built and sent, shown as JSON.

use serde_json::Value;

/// The number to show for each step's attempt. Steps record their attempt counted across retries
/// (`earlier_attempts + attempts`); steps recorded before that rule start again from 1 after a
/// retry, so a change of number is also counted as a new attempt and the higher of the two wins.
pub fn attempt_numbers(recorded: &[i64]) -> Vec<i64> {
    let mut shown = 0;
    let mut previous = None;
    recorded
        .iter()
        .map(|&attempt| {
            if previous != Some(attempt) {
                shown = (shown + 1).max(attempt);
                previous = Some(attempt);
            }
            shown
        })
        .collect()
}

/// The employee body a step built or sent, with what it is, pretty-printed: the body the mapping
/// built ("map", kept in its detail after `mapping vN: `) and the body of HiBob's create
/// (`POST /people`, from the recorded calls). Returns the detail to show beside it (the body cut
/// out of the map step's).
pub fn employee_body(
    step: &str,
    outcome: &str,
    detail: &str,
    exchanges: &str,
) -> Option<(String, String, String)> {
    match step {
        "map" if outcome == "ok" => {
            let (version, rest) = detail.split_once(": ")?;
            let mut values = serde_json::Deserializer::from_str(rest).into_iter::<Value>();
            let body = values.next()?.ok().filter(Value::is_object)?;
            let after = rest.get(values.byte_offset()..).unwrap_or_default().trim();
            let detail = format!(
                "{version}{}{after}",
                if after.is_empty() { "" } else { " " }
            );
            let pretty = serde_json::to_string_pretty(&body).ok()?;
            Some(("Employee built for HiBob".to_owned(), pretty, detail))
        }
        "create_employee" => {
            let calls = serde_json::from_str::<Value>(exchanges).ok()?;
            let body = calls.as_array()?.iter().find_map(|call| {
                let create = call.get("method")?.as_str()? == "POST"
                    && call
                        .get("path")?
                        .as_str()?
                        .trim_end_matches('/')
                        .ends_with("/people");
                create
                    .then(|| call.get("request_body").filter(|b| b.is_object()))
                    .flatten()
            })?;
            let pretty = serde_json::to_string_pretty(body).ok()?;
            Some(("Body sent to HiBob".to_owned(), pretty, detail.to_owned()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_are_numbered_across_retries() {
        // recorded across retries: shown as recorded
        assert_eq!(attempt_numbers(&[1, 1, 2, 2, 3]), [1, 1, 2, 2, 3]);
        // an attempt with no step (cut off before its first) keeps its number
        assert_eq!(attempt_numbers(&[1, 3]), [1, 3]);
        // recorded before the rule: each allowance started again from 1
        assert_eq!(attempt_numbers(&[1, 1, 2, 1, 1]), [1, 1, 2, 3, 3]);
    }

    #[test]
    fn the_body_each_attempt_built_and_sent_is_shown_as_json() {
        let (label, body, detail) = employee_body(
            "map",
            "ok",
            r#"mapping v2: {"firstName":"Noor","surname":"Noor"} (HiBob's field list was not available: 503; values sent as written)"#,
            "[]",
        )
        .unwrap();
        assert_eq!(label, "Employee built for HiBob");
        assert!(body.contains("\"surname\": \"Noor\""), "{body}");
        assert_eq!(
            detail,
            "mapping v2 (HiBob's field list was not available: 503; values sent as written)"
        );
        let calls = r#"[{"service":"hibob","method":"POST","path":"/people/search","request_body":{"q":1}},
                        {"service":"hibob","method":"POST","path":"/people","request_body":{"surname":"Noor"}}]"#;
        let (label, body, _) = employee_body("create_employee", "ok", "created 7", calls).unwrap();
        assert_eq!(label, "Body sent to HiBob");
        assert!(body.contains("\"surname\": \"Noor\""), "{body}");
        assert!(employee_body("map", "failed", "mapping v1 could not", "[]").is_none());
        assert!(employee_body("upload_cv", "ok", "", calls).is_none());
    }
}
