//! The JSON bodies the routes answer with, declared in one place: which user fields each
//! document shows, the product, and DRF's list envelope.

use axum::response::{IntoResponse, Response};
use http::header;
use proto::{
    auth::v1::{Role as UserRole, User},
    inventory::v1::Product,
};
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::listings::ProductList;
use crate::extract::Paging;

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

/// A product as the API shows it, `price` as the exact decimal string, as a response.
#[derive(Debug)]
pub struct ProductBody(pub Product);

impl IntoResponse for ProductBody {
    fn into_response(self) -> Response {
        let mut json = ProductJson::with_room_for(std::slice::from_ref(&self.0));
        json.product(&self.0);
        json.into_response()
    }
}

/// A list (`items`): a plain array, or with `?limit=` DRF's `{"count", "next", "previous",
/// "results"}`.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum ListBody<C> {
    Plain(C),
    Page {
        count: u64,
        next: Option<String>,
        previous: Option<String>,
        results: C,
    },
}

/// A list of products as a response.
pub struct ProductPage(pub ListBody<ProductList>);

impl IntoResponse for ProductPage {
    fn into_response(self) -> Response {
        let (envelope, products) = match &self.0 {
            ListBody::Plain(products) => (None, products),
            ListBody::Page {
                count,
                next,
                previous,
                results,
            } => (
                Some((*count, next.as_deref(), previous.as_deref())),
                results,
            ),
        };
        let envelope_room = envelope.map_or(0, |(_, next, previous)| {
            next.map_or(0, str::len) + previous.map_or(0, str::len) + 128
        });
        let mut json = ProductJson(Vec::with_capacity(
            products.json_len() + products.part_count() + envelope_room,
        ));
        if let Some((count, next, previous)) = envelope {
            json.raw("{\"count\":");
            json.integer(count);
            json.raw(",\"next\":");
            json.optional_string(next);
            json.raw(",\"previous\":");
            json.optional_string(previous);
            json.raw(",\"results\":");
        }
        json.raw("[");
        json.comma_separated(products.json_parts(), |json, part| {
            json.0.extend_from_slice(part)
        });
        json.raw("]");
        if envelope.is_some() {
            json.raw("}");
        }
        json.into_response()
    }
}

/// The products' JSON, written straight from the messages into one buffer sized for it (for a
/// list, once per distinct reply: `listings`). Through serde_json it was nearly a third of the
/// gateway's instructions per listed page (its escaping looks at every byte of every text, and a
/// timestamp went through `serialize_str` as any text); here a text is copied whole unless it
/// has something to escape, and then serde_json writes it, so the bytes are serde_json's
/// either way (tested).
struct ProductJson(Vec<u8>);

impl ProductJson {
    /// A product's JSON, less its three texts: field names, numbers, timestamps, escapes' room.
    const PER_PRODUCT: usize = 192;

    fn with_room_for(products: &[Product]) -> Self {
        let texts: usize = products
            .iter()
            .map(|product| product.name.len() + product.description.len() + product.price.len())
            .sum();
        Self(Vec::with_capacity(
            products.len() * Self::PER_PRODUCT + texts + 256,
        ))
    }

    /// The fields in DRF's order, taken apart so that a field added to the message must be
    /// placed here.
    fn product(&mut self, product: &Product) {
        let Product {
            id,
            name,
            description,
            price,
            quantity,
            created_at,
            updated_at,
        } = product;
        self.raw("{\"id\":");
        self.integer(*id);
        self.raw(",\"name\":");
        self.string(name);
        self.raw(",\"description\":");
        self.string(description);
        self.raw(",\"price\":");
        self.string(price);
        self.raw(",\"quantity\":");
        self.integer(*quantity);
        self.raw(",\"created_at\":");
        self.timestamp(created_at.as_ref());
        self.raw(",\"updated_at\":");
        self.timestamp(updated_at.as_ref());
        self.raw("}");
    }

    /// Each item written by `write`, with commas between.
    fn comma_separated<T>(
        &mut self,
        items: impl IntoIterator<Item = T>,
        mut write: impl FnMut(&mut Self, T),
    ) {
        for (i, item) in items.into_iter().enumerate() {
            if i > 0 {
                self.raw(",");
            }
            write(self, item);
        }
    }

    fn raw(&mut self, json: &str) {
        self.0.extend_from_slice(json.as_bytes());
    }

    fn integer(&mut self, value: impl itoa::Integer) {
        self.raw(itoa::Buffer::new().format(value));
    }

    fn string(&mut self, text: &str) {
        // No early exit, so that the compiler checks many bytes at once.
        let plain = !text.bytes().fold(false, |escaped, byte| {
            escaped | (byte < 0x20) | (byte == b'"') | (byte == b'\\')
        });
        if plain {
            self.0.reserve(text.len() + 2);
            self.raw("\"");
            self.raw(text);
            self.raw("\"");
        } else {
            serde_json::to_writer(&mut self.0, text).expect("a string always serializes");
        }
    }

    fn optional_string(&mut self, text: Option<&str>) {
        match text {
            Some(text) => self.string(text),
            None => self.raw("null"),
        }
    }

    /// RFC 3339 in UTC, or `null`.
    fn timestamp(&mut self, timestamp: Option<&prost_types::Timestamp>) {
        match timestamp {
            None => self.raw("null"),
            Some(timestamp) => match Rfc3339Text::of(timestamp) {
                Some(text) => {
                    self.raw("\"");
                    self.0.extend_from_slice(text.as_bytes());
                    self.raw("\"");
                }
                None => self.string(&timestamp.to_string()),
            },
        }
    }
}

/// `products`' objects, joined by commas: one part of a list's `[...]`.
pub fn joined_products(products: &[Product]) -> Vec<u8> {
    let mut json = ProductJson::with_room_for(products);
    json.comma_separated(products, ProductJson::product);
    json.0
}

impl IntoResponse for ProductJson {
    fn into_response(self) -> Response {
        ([(header::CONTENT_TYPE, "application/json")], self.0).into_response()
    }
}

pub fn list<C>(items: C, count: u64, paging: &Paging) -> ListBody<C> {
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
        // Every part fits a u32, whose division by ten is cheaper than an i64's.
        let digits = |bytes: &mut [u8], value: i64| {
            let mut value = value as u32;
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

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).expect("ASCII digits and separators")
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
    use prost::Message;
    use proto::inventory::v1::ListProductsResponse;

    use super::*;
    use crate::routes::{listings::Listings, pages::Items};

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

    fn written(product: &Product) -> String {
        let mut json = ProductJson::with_room_for(std::slice::from_ref(product));
        json.product(product);
        String::from_utf8(json.0).unwrap()
    }

    /// The same product as serde_json writes it from a tree (`preserve_order`: in the order
    /// built), which is what the writer is held to.
    fn through_serde(product: &Product) -> String {
        let json = json!({
            "id": product.id,
            "name": product.name,
            "description": product.description,
            "price": product.price,
            "quantity": product.quantity,
            "created_at": timestamp(product.created_at.as_ref()),
            "updated_at": timestamp(product.updated_at.as_ref()),
        });
        serde_json::to_string(&json).unwrap()
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
            written(&widget),
            r#"{"id":7,"name":"Widget","description":"A \"small\" one","price":"19.99","quantity":3,"created_at":"2023-11-14T22:13:20.000005Z","updated_at":null}"#
        );
    }

    /// `products` as the list route gathers them: one listing per reply of at most two.
    fn gathered(products: &[Product]) -> ProductList {
        let listings = Listings::default();
        let mut list = ProductList::default();
        for chunk in products.chunks(2) {
            let reply = ListProductsResponse {
                products: chunk.to_vec(),
                ..ListProductsResponse::default()
            };
            list.push_chunk(listings.of(&reply.encode_to_vec()).unwrap().into());
        }
        list
    }

    async fn page_text(page: ListBody<Vec<Product>>) -> String {
        let page = match page {
            ListBody::Plain(products) => ListBody::Plain(gathered(&products)),
            ListBody::Page {
                count,
                next,
                previous,
                results,
            } => ListBody::Page {
                count,
                next,
                previous,
                results: gathered(&results),
            },
        };
        let body = ProductPage(page).into_response().into_body();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn a_page_is_a_plain_list_or_drfs_envelope() {
        let products: Vec<Product> = (1..=3)
            .map(|id| Product {
                id,
                name: format!("P{id}"),
                ..Product::default()
            })
            .collect();
        let each: Vec<Value> = products
            .iter()
            .map(|product| serde_json::from_str(&through_serde(product)).unwrap())
            .collect();
        assert_eq!(
            page_text(ListBody::Plain(products.clone())).await,
            serde_json::to_string(&each).unwrap()
        );
        assert_eq!(page_text(ListBody::Plain(Vec::new())).await, "[]");
        let envelope = ListBody::Page {
            count: 5,
            next: Some("http://testserver/api/products/?limit=3&offset=3".to_owned()),
            previous: None,
            results: products,
        };
        let expected = json!({
            "count": 5,
            "next": "http://testserver/api/products/?limit=3&offset=3",
            "previous": null,
            "results": each,
        });
        assert_eq!(
            page_text(envelope).await,
            serde_json::to_string(&expected).unwrap()
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
            let body = written(&Product {
                created_at: Some(timestamp),
                ..Product::default()
            });
            let json: Value = serde_json::from_str(&body).unwrap();
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

        /// Byte for byte serde_json's: any text (quotes, backslashes, control characters,
        /// any Unicode), any number, timestamps in range and out of it.
        #[test]
        fn any_product_is_written_as_serde_json_writes_it(
            id: i64,
            quantity: i64,
            name: String,
            description: String,
            price in "[0-9.]{0,12}|\\PC{0,4}",
            created in proptest::option::of((-10i64..Rfc3339Text::MAX_SECONDS + 10, 0..1_000_000_000i32)),
            updated in proptest::option::of((0..=Rfc3339Text::MAX_SECONDS, 0..1_000_000_000i32)),
        ) {
            let timestamp = |(seconds, nanos)| prost_types::Timestamp { seconds, nanos };
            let product = Product {
                id,
                name,
                description,
                price,
                quantity,
                created_at: created.map(timestamp),
                updated_at: updated.map(timestamp),
            };
            proptest::prop_assert_eq!(written(&product), through_serde(&product));
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
