//! `GET /api/audit/`: the auth service's audit trail for superusers (PERMISSION_DENIED → 403),
//! filtered by `?user=`, `?type=`, `?since=`, `?until=` and paged as the other lists are.

use axum::{Json, extract::State};
use http::{Method, Uri};
use proto::auth::v1::{AuditEvent, ListAuditEventsRequest};
use serde_json::{Map, Value, json};
use service_kit::validation::FieldErrors;

use super::{
    Endpoint,
    objects::prelude::{ApiError, Authenticated, Paging, Upstreams, pages},
};
use crate::{
    openapi::{Operation, Schema},
    shapes::{self, PageBody},
};

pub fn endpoints() -> Vec<Endpoint> {
    let nullable_integer = || Schema::integer().nullable();
    let nullable_text = || Schema::string().nullable();
    let event = Schema::named(
        "AuditEvent",
        Schema::object([
            ("id", Schema::integer()),
            ("time", Schema::date_time()),
            ("type", Schema::string()),
            ("actor_id", nullable_integer()),
            ("target_id", nullable_integer()),
            ("client_address", nullable_text()),
            ("request_id", nullable_text()),
            ("outcome", Schema::one_of_strings(["success", "failure"])),
            (
                "detail",
                Schema::Object {
                    properties: Vec::new(),
                    required: Vec::new(),
                    open: true,
                },
            ),
        ]),
    );
    vec![Endpoint::new(
        Operation::new(
            Method::GET,
            "/api/audit/",
            "The audit trail, newest first (superusers; ?user=&type=&since=&until=, \
             ?limit=&offset= pages)",
            200,
            shapes::page_schema(event),
        )
        .authenticated(),
        list,
    )]
}

/// The filters of the query string, as the service takes them.
#[derive(Debug, Default, Clone)]
struct Filters {
    user_id: Option<i64>,
    kind: Option<String>,
    since: Option<prost_types::Timestamp>,
    until: Option<prost_types::Timestamp>,
}

const NOT_A_NUMBER: &str = "Enter a whole number.";
const NOT_A_TIME: &str = "Enter a valid date/time.";

/// `?user=<id>&type=<name>&since=<ISO 8601>&until=<ISO 8601>`; every malformed one a field
/// error of its name, all at once.
fn filters(uri: &Uri) -> Result<Filters, ApiError> {
    let mut filters = Filters::default();
    let mut errors = FieldErrors::new();
    let query = uri.query().unwrap_or_default();
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        let value = value.trim();
        match name.as_ref() {
            "user" => match value.parse() {
                Ok(id) => filters.user_id = Some(id),
                Err(_) => errors.add("user", NOT_A_NUMBER),
            },
            "type" => filters.kind = Some(value.to_owned()),
            "since" | "until" => match value.parse::<prost_types::Timestamp>() {
                Ok(time) if name == "since" => filters.since = Some(time),
                Ok(time) => filters.until = Some(time),
                Err(_) => errors.add(name.as_ref(), NOT_A_TIME),
            },
            _ => {}
        }
    }
    errors.into_result()?;
    Ok(filters)
}

fn event_json(event: &AuditEvent) -> Value {
    // The service writes a JSON object; anything else would be its fault, shown as empty.
    let detail = serde_json::from_str::<Map<String, Value>>(&event.detail).unwrap_or_default();
    json!({
        "id": event.id,
        "time": event.time.as_ref().map(ToString::to_string),
        "type": event.r#type,
        "actor_id": event.actor_id,
        "target_id": event.target_id,
        "client_address": event.client_address,
        "request_id": event.request_id,
        "outcome": event.outcome,
        "detail": detail,
    })
}

async fn list(
    State(upstreams): State<Upstreams>,
    Authenticated(caller): Authenticated,
    paging: Paging,
    uri: Uri,
) -> Result<Json<PageBody<Value>>, ApiError> {
    let filters = filters(&uri)?;
    let page = pages::read_all(&paging, |offset, limit| {
        let Filters {
            user_id,
            kind,
            since,
            until,
        } = filters.clone();
        let request = caller.request(ListAuditEventsRequest {
            limit: Some(limit),
            offset,
            user_id,
            r#type: kind,
            since,
            until,
        });
        let mut auth = upstreams.auth();
        async move {
            let response = auth
                .list_audit_events(request)
                .await
                .map_err(ApiError::auth)?
                .into_inner();
            let count = response.events.len() as u64;
            Ok(pages::Batch {
                count,
                total: response.total_count,
                more: offset + count < response.total_count,
                items: response.events,
            })
        }
    })
    .await?;
    let events = page.items.iter().map(event_json).collect();
    Ok(Json(PageBody::new(events, page.total, &paging)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_filters_and_names_each_malformed_one() {
        let uri: Uri = "/api/audit/?user=7&type=login.failed&since=2026-01-02T03:04:05Z\
                        &until=2026-01-03T00:00:00%2B01:00"
            .parse()
            .unwrap();
        let read = filters(&uri).unwrap();
        assert_eq!(read.user_id, Some(7));
        assert_eq!(read.kind.as_deref(), Some("login.failed"));
        assert_eq!(read.since.unwrap().to_string(), "2026-01-02T03:04:05Z");
        assert_eq!(read.until.unwrap().to_string(), "2026-01-02T23:00:00Z");

        let uri: Uri = "/api/audit/?user=me&since=yesterday".parse().unwrap();
        let ApiError::Invalid(errors) = filters(&uri).unwrap_err() else {
            panic!("not a field error");
        };
        let fields: Vec<&str> = errors.iter().map(|(field, _)| field).collect();
        assert_eq!(fields, ["user", "since"]);
    }
}
