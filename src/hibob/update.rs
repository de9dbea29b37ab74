//! Reading one employee back and changing their fields after the export: what keeping HiBob in
//! step with Pinpoint uses (see `watch`). Each is an operation of HiBob's published API:
//! `POST /people/{identifier}` (read), `PUT /people/{identifier}` (update, applied like a PATCH),
//! `POST /employees/{employeeId}/start-date`, and the work-history table's
//! `GET /people/{id}/work` and `PUT /people/{id}/work/{entry_id}`.

use reqwest::Method;
use serde_json::{json, Value};

use super::{endpoint, parse_json, CallLog, Client, HibobError, Payload};
use crate::outbound;

impl Client {
    /// The employee's `fields` as HiBob holds them now; `None` when HiBob has nobody with this
    /// id (deleted in HiBob). HiBob documents a single employee object and its schema an
    /// `employees` list; both are read.
    pub async fn read_employee(
        &self,
        employee_id: &str,
        fields: &[String],
        log: &mut CallLog,
    ) -> Result<Option<Value>, HibobError> {
        let path = format!("/people/{}", outbound::encode_segment(employee_id.trim()));
        let body = json!({ "fields": fields });
        let read = self
            .send(
                Method::POST,
                &path,
                endpoint::READ_ONE,
                &[],
                Payload::Json(&body),
                Some(body.clone()),
                log,
                |reply| parse_json(reply, "the employee").map(one_employee),
            )
            .await;
        match read {
            Err(e) if e.is_not_found() => Ok(None),
            other => other,
        }
    }

    /// Sets employee fields; `body` nests them as a create does (`{"work": {"title": …}}`).
    /// HiBob's 304 ("nothing was modified") means the record already holds these values.
    pub async fn update_employee(
        &self,
        employee_id: &str,
        body: &Value,
        log: &mut CallLog,
    ) -> Result<(), HibobError> {
        let path = format!("/people/{}", outbound::encode_segment(employee_id.trim()));
        let sent = self
            .send(
                Method::PUT,
                &path,
                endpoint::UPDATE,
                &[],
                Payload::Json(body),
                Some(body.clone()),
                log,
                |_| Ok(()),
            )
            .await;
        match sent {
            Err(HibobError::Rejected { status: 304, .. }) => Ok(()),
            other => other,
        }
    }

    /// Moves the employee's start date (`YYYY-MM-DD`), with the reason HiBob keeps beside it.
    pub async fn set_start_date(
        &self,
        employee_id: &str,
        date: &str,
        reason: &str,
        log: &mut CallLog,
    ) -> Result<(), HibobError> {
        let path = format!(
            "/employees/{}/start-date",
            outbound::encode_segment(employee_id.trim())
        );
        let body = json!({ "startDate": date, "reason": reason });
        self.send(
            Method::POST,
            &path,
            endpoint::START_DATE,
            &[],
            Payload::Json(&body),
            Some(body.clone()),
            log,
            |_| Ok(()),
        )
        .await
    }
}

impl Client {
    /// The employee's work-history entries (`GET /people/{id}/work`), as HiBob returns them.
    pub async fn work_entries(
        &self,
        employee_id: &str,
        log: &mut CallLog,
    ) -> Result<Vec<Value>, HibobError> {
        let path = format!(
            "/people/{}/work",
            outbound::encode_segment(employee_id.trim())
        );
        self.send(
            Method::GET,
            &path,
            endpoint::WORK,
            &[],
            Payload::Empty,
            None,
            log,
            |reply| {
                let answer = parse_json(reply, "the work history")?;
                Ok(answer
                    .get("values")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default())
            },
        )
        .await
    }

    /// Replaces one work-history entry (`PUT /people/{id}/work/{entry_id}`). HiBob overwrites the
    /// whole entry: `body` must carry every column the entry keeps.
    pub async fn update_work_entry(
        &self,
        employee_id: &str,
        entry_id: i64,
        body: &Value,
        log: &mut CallLog,
    ) -> Result<(), HibobError> {
        let path = format!(
            "/people/{}/work/{entry_id}",
            outbound::encode_segment(employee_id.trim())
        );
        self.send(
            Method::PUT,
            &path,
            endpoint::WORK_ENTRY,
            &[],
            Payload::Json(body),
            Some(body.clone()),
            log,
            |_| Ok(()),
        )
        .await
    }
}

/// The employee object of a read answer, whichever of the two documented shapes it has.
fn one_employee(answer: Value) -> Option<Value> {
    match answer {
        Value::Object(mut map) => match map.remove("employees") {
            Some(Value::Array(mut list)) => (!list.is_empty()).then(|| list.swap_remove(0)),
            Some(other) => {
                map.insert("employees".into(), other);
                Some(Value::Object(map))
            }
            None => Some(Value::Object(map)),
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::one_employee;
    use serde_json::json;

    #[test]
    fn both_documented_answer_shapes_give_the_employee() {
        let bare = json!({"id": "1", "work": {"startDate": "2027-01-04"}});
        assert_eq!(one_employee(bare.clone()), Some(bare.clone()));
        assert_eq!(
            one_employee(json!({"employees": [bare.clone()]})),
            Some(bare)
        );
        assert_eq!(one_employee(json!({"employees": []})), None);
        assert_eq!(one_employee(json!([1, 2])), None);
    }
}
