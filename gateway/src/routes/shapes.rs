//! The JSON bodies the routes answer with, declared in one place: which user fields each
//! document shows, the product, and DRF's list envelope.

use axum::{
    Json,
    response::{IntoResponse, Response},
};
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
        Json(ProductFields::of(&self.0)).into_response()
    }
}

/// A product's fields in DRF's order (serde writes a struct's fields as declared).
#[derive(Serialize)]
struct ProductFields<'a> {
    id: i64,
    name: &'a str,
    description: &'a str,
    price: &'a str,
    quantity: i64,
    created_at: Option<String>,
    updated_at: Option<String>,
}

impl<'a> ProductFields<'a> {
    /// Taken apart, so that a field added to the message must be placed here.
    fn of(product: &'a Product) -> Self {
        let Product {
            id,
            name,
            description,
            price,
            quantity,
            created_at,
            updated_at,
        } = product;
        Self {
            id: *id,
            name,
            description,
            price,
            quantity: *quantity,
            created_at: created_at.as_ref().map(ToString::to_string),
            updated_at: updated_at.as_ref().map(ToString::to_string),
        }
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
        let (envelope, products) = match self.0 {
            ListBody::Plain(products) => (None, products),
            ListBody::Page {
                count,
                next,
                previous,
                results,
            } => (
                Some(json!({ "count": count, "next": next, "previous": previous })),
                results,
            ),
        };
        let mut json = Vec::with_capacity(products.json_len() + products.part_count() + 256);
        if let Some(envelope) = &envelope {
            serde_json::to_writer(&mut json, envelope).expect("a JSON value always serializes");
            // Opened again to add the results last, where DRF puts them.
            json.pop();
            json.extend_from_slice(b",\"results\":");
        }
        json.push(b'[');
        for (i, part) in products.json_parts().enumerate() {
            if i > 0 {
                json.push(b',');
            }
            json.extend_from_slice(part);
        }
        json.push(b']');
        if envelope.is_some() {
            json.push(b'}');
        }
        ([(header::CONTENT_TYPE, "application/json")], json).into_response()
    }
}

/// `products`' objects, joined by commas: one part of a list's `[...]`.
pub fn joined_products(products: &[Product]) -> Vec<u8> {
    let mut json = Vec::new();
    for (i, product) in products.iter().enumerate() {
        if i > 0 {
            json.push(b',');
        }
        serde_json::to_writer(&mut json, &ProductFields::of(product))
            .expect("a product always serializes");
    }
    json
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
        Value::String(timestamp.to_string())
    })
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
        String::from_utf8(joined_products(std::slice::from_ref(product))).unwrap()
    }

    /// The same product as serde_json writes it from a tree (`preserve_order`: in the order
    /// built).
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
    fn role_names_round_trip() {
        for name in ["CLERK", "MANAGER", "ADMIN"] {
            assert_eq!(parse_role(name).map(role_name), Some(name));
        }
        assert_eq!(parse_role("clerk"), None);
    }
}
