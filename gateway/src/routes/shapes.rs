//! The JSON bodies the routes answer with, declared in one place: which user fields each
//! document shows, the product, and DRF's list envelope.

use axum::response::{IntoResponse, Response};
use http::header;
use proto::{
    auth::v1::{Role as UserRole, User},
    inventory::v1::Product,
};
use serde::{Serialize, Serializer, ser::SerializeStruct};
use serde_json::{Map, Value, json};

use crate::{error::ApiError, extract::Paging};

/// A field of a user's representation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserField {
    Id,
    Username,
    Email,
    FirstName,
    LastName,
    Role,
    IsStaff,
    IsSuperuser,
    IsActive,
    DateJoined,
    LastLogin,
}

use UserField::*;

/// Seed 000's `POST /api/register/`.
pub const USER_PROFILE: &[UserField] = &[Id, Username, Email, FirstName, LastName, Role];
/// Seed 001's `UserSerializer`: `/register/`, `/login/` and `/users/`.
pub const USER_PROFILE_AND_FLAGS: &[UserField] = &[
    Id, Username, Email, FirstName, LastName, Role, IsStaff, IsActive,
];
/// Seed 003's `POST /api/users/registration/`.
pub const USER_NAMES_AND_EMAIL: &[UserField] = &[Id, FirstName, LastName, Email];
/// Seed 004's `POST /api/signup/` (inside `"user"`).
pub const USER_ACCOUNT_AND_ROLE: &[UserField] = &[Id, Username, Email, Role];
/// `GET /api/me/`: every field.
pub const FULL_USER: &[UserField] = &[
    Id,
    Username,
    Email,
    FirstName,
    LastName,
    Role,
    IsStaff,
    IsSuperuser,
    IsActive,
    DateJoined,
    LastLogin,
];

/// `user` as a JSON object with `fields`, in that order.
pub fn user(user: &User, fields: &[UserField]) -> Map<String, Value> {
    fields
        .iter()
        .map(|field| {
            let (name, value) = match field {
                Id => ("id", json!(user.id)),
                Username => ("username", json!(user.username)),
                Email => ("email", json!(user.email)),
                FirstName => ("first_name", json!(user.first_name)),
                LastName => ("last_name", json!(user.last_name)),
                Role => ("role", json!(role_name(user.role()))),
                IsStaff => ("is_staff", json!(user.is_staff)),
                IsSuperuser => ("is_superuser", json!(user.is_superuser)),
                IsActive => ("is_active", json!(user.is_active)),
                DateJoined => ("date_joined", timestamp(user.date_joined.as_ref())),
                LastLogin => ("last_login", timestamp(user.last_login.as_ref())),
            };
            (name.to_owned(), value)
        })
        .collect()
}

/// A role as the API spells it.
pub fn role_name(role: UserRole) -> &'static str {
    match role {
        UserRole::Manager => "MANAGER",
        UserRole::Admin => "ADMIN",
        UserRole::Clerk | UserRole::Unspecified => "CLERK",
    }
}

/// The role the API spelling names (DRF's choice field is case-sensitive).
pub fn parse_role(name: &str) -> Option<UserRole> {
    [UserRole::Clerk, UserRole::Manager, UserRole::Admin]
        .into_iter()
        .find(|role| role_name(*role) == name)
}

/// DRF's message for a value outside a choice field's choices.
pub fn invalid_choice(value: &str) -> String {
    format!("\"{value}\" is not a valid choice.")
}

/// A product as the API shows it, `price` as the exact decimal string. Serialized straight
/// from the message: the list route's hot path builds no JSON tree in between.
#[derive(Debug)]
pub struct ProductBody(pub Product);

impl Serialize for ProductBody {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Product {
            id,
            name,
            description,
            price,
            quantity,
            created_at,
            updated_at,
        } = &self.0;
        let mut body = serializer.serialize_struct("Product", 7)?;
        body.serialize_field("id", id)?;
        body.serialize_field("name", name)?;
        body.serialize_field("description", description)?;
        body.serialize_field("price", price)?;
        body.serialize_field("quantity", quantity)?;
        body.serialize_field("created_at", &Rfc3339(created_at.as_ref()))?;
        body.serialize_field("updated_at", &Rfc3339(updated_at.as_ref()))?;
        body.end()
    }
}

/// A list: a plain array, or with `?limit=` DRF's `{"count", "next", "previous", "results"}`.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum ListBody<T> {
    Plain(Vec<T>),
    Page {
        count: u64,
        next: Option<String>,
        previous: Option<String>,
        results: Vec<T>,
    },
}

/// A page of products as a response: written into a buffer sized for it at once, where axum's
/// `Json` starts at 128 bytes and doubles its way up through a page of products.
pub struct ProductPage(pub ListBody<ProductBody>);

impl ProductPage {
    /// A product's JSON, less its three texts: field names, numbers, timestamps, escapes' room.
    const PER_PRODUCT: usize = 192;
}

impl IntoResponse for ProductPage {
    fn into_response(self) -> Response {
        let products = match &self.0 {
            ListBody::Plain(products)
            | ListBody::Page {
                results: products, ..
            } => products,
        };
        let size = products
            .iter()
            .map(|ProductBody(product)| {
                Self::PER_PRODUCT
                    + product.name.len()
                    + product.description.len()
                    + product.price.len()
            })
            .sum::<usize>()
            + 256;
        let mut body = Vec::with_capacity(size);
        match serde_json::to_writer(&mut body, &self.0) {
            Ok(()) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
            Err(err) => {
                ApiError::Internal(format!("cannot write a product list: {err}")).into_response()
            }
        }
    }
}

pub fn list<T>(items: Vec<T>, count: u64, paging: &Paging) -> ListBody<T> {
    match paging.limit {
        None => ListBody::Plain(items),
        Some(limit) => ListBody::Page {
            count,
            next: paging.next(limit, count),
            previous: paging.previous(limit),
            results: items,
        },
    }
}

/// RFC 3339 in UTC, or `null`; formatted on the stack and written into the output.
struct Rfc3339<'a>(Option<&'a prost_types::Timestamp>);

impl Serialize for Rfc3339<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Some(timestamp) = self.0 else {
            return serializer.serialize_none();
        };
        match Rfc3339Text::of(timestamp) {
            Some(text) => serializer.serialize_str(text.as_str()),
            None => serializer.collect_str(timestamp),
        }
    }
}

/// RFC 3339 in UTC, or `null`.
fn timestamp(timestamp: Option<&prost_types::Timestamp>) -> Value {
    timestamp.map_or(Value::Null, |timestamp| {
        Value::String(
            Rfc3339Text::of(timestamp)
                .map_or_else(|| timestamp.to_string(), |text| text.as_str().to_owned()),
        )
    })
}

/// A timestamp as prost's `Display` writes it (`2023-11-14T22:13:20.000005Z`: the fraction
/// as milli-, micro- or nanoseconds, whichever is exact, and none when zero), made without
/// `core::fmt`: formatting two timestamps per product was an eighth of the gateway's CPU on a
/// listed page. Years 1970 to 9999 only; `Display` does the rest.
struct Rfc3339Text {
    bytes: [u8; 30],
    len: usize,
}

impl Rfc3339Text {
    /// The last second of 9999.
    const MAX_SECONDS: i64 = 253_402_300_799;

    fn of(timestamp: &prost_types::Timestamp) -> Option<Self> {
        let (seconds, nanos) = (timestamp.seconds, timestamp.nanos);
        if !(0..=Self::MAX_SECONDS).contains(&seconds) || !(0..1_000_000_000).contains(&nanos) {
            return None;
        }
        let (days, second_of_day) = (seconds / 86_400, seconds % 86_400);
        let (year, month, day) = civil_from_days(days);
        let mut text = Self {
            bytes: *b"0000-00-00T00:00:00.000000000Z",
            len: 0,
        };
        let digits = |bytes: &mut [u8], mut value: i64| {
            for byte in bytes.iter_mut().rev() {
                *byte = b'0' + (value % 10) as u8;
                value /= 10;
            }
        };
        digits(&mut text.bytes[0..4], year);
        digits(&mut text.bytes[5..7], month);
        digits(&mut text.bytes[8..10], day);
        digits(&mut text.bytes[11..13], second_of_day / 3600);
        digits(&mut text.bytes[14..16], second_of_day / 60 % 60);
        digits(&mut text.bytes[17..19], second_of_day % 60);
        let nanos = i64::from(nanos);
        let fraction = if nanos == 0 {
            0
        } else if nanos % 1_000_000 == 0 {
            digits(&mut text.bytes[20..23], nanos / 1_000_000);
            4
        } else if nanos % 1_000 == 0 {
            digits(&mut text.bytes[20..26], nanos / 1_000);
            7
        } else {
            digits(&mut text.bytes[20..29], nanos);
            10
        };
        text.len = 19 + fraction;
        text.bytes[text.len] = b'Z';
        text.len += 1;
        Some(text)
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len]).expect("ASCII digits and separators")
    }
}

/// The proleptic Gregorian date of a day counted from 1970-01-01 (Howard Hinnant's
/// `civil_from_days`), for days from 0 on.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let shifted = days + 719_468;
    let era = shifted / 146_097;
    let day_of_era = shifted - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_only_the_declared_fields() {
        let alice = User {
            id: 1,
            username: None,
            email: Some("a@example.com".to_owned()),
            role: UserRole::Manager.into(),
            ..User::default()
        };
        assert_eq!(
            Value::Object(user(&alice, USER_ACCOUNT_AND_ROLE)),
            json!({"id": 1, "username": null, "email": "a@example.com", "role": "MANAGER"})
        );
    }

    /// The fields in DRF's order, `price` as sent, timestamps in RFC 3339 or `null`.
    #[test]
    fn a_product_is_written_in_its_declared_order() {
        let widget = Product {
            id: 7,
            name: "Widget".to_owned(),
            description: "A \"small\" one".to_owned(),
            price: "19.99".to_owned(),
            quantity: 3,
            created_at: Some(prost_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 5_000,
            }),
            updated_at: None,
        };
        assert_eq!(
            serde_json::to_string(&ProductBody(widget)).unwrap(),
            r#"{"id":7,"name":"Widget","description":"A \"small\" one","price":"19.99","quantity":3,"created_at":"2023-11-14T22:13:20.000005Z","updated_at":null}"#
        );
    }

    #[test]
    fn timestamps_read_as_prosts_own() {
        let edges = [
            (0, 0),
            (0, 1),
            (59, 999_999_999),
            (951_782_400, 1_000_000), // 2000-02-29
            (1_700_000_000, 5_000),
            (4_107_542_400, 120_000), // 2100-03-01
            (Rfc3339Text::MAX_SECONDS, 999_999_000),
        ];
        for (seconds, nanos) in edges {
            let timestamp = prost_types::Timestamp { seconds, nanos };
            let text = Rfc3339Text::of(&timestamp).expect("in range");
            assert_eq!(text.as_str(), timestamp.to_string(), "{timestamp:?}");
        }
        for (seconds, nanos) in [
            (-1, 0),
            (Rfc3339Text::MAX_SECONDS + 1, 0),
            (0, -1),
            (0, 1_000_000_000),
        ] {
            let timestamp = prost_types::Timestamp { seconds, nanos };
            assert!(Rfc3339Text::of(&timestamp).is_none(), "{timestamp:?}");
            let body = ProductBody(Product {
                created_at: Some(timestamp),
                ..Product::default()
            });
            let json = serde_json::to_value(&body).unwrap();
            assert_eq!(
                json["created_at"],
                timestamp.to_string(),
                "prost's own, out of range"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn any_timestamp_in_range_reads_as_prosts_own(
            seconds in 0..=Rfc3339Text::MAX_SECONDS,
            nanos in 0..1_000_000_000i32,
            unit in 0..4u32,
        ) {
            // Whole seconds, milli- and microseconds as often as nanoseconds.
            let nanos = nanos - nanos % [1_000_000_000, 1_000_000, 1_000, 1][unit as usize];
            let timestamp = prost_types::Timestamp { seconds, nanos };
            let text = Rfc3339Text::of(&timestamp).expect("in range");
            proptest::prop_assert_eq!(text.as_str(), timestamp.to_string());
        }
    }

    #[test]
    fn role_names_round_trip() {
        for name in ["CLERK", "MANAGER", "ADMIN"] {
            assert_eq!(parse_role(name).map(role_name), Some(name));
        }
        assert_eq!(parse_role("clerk"), None);
    }
}
