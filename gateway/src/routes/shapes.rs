//! The JSON bodies the routes answer with, declared in one place: which user fields each
//! document shows, the product, and DRF's list envelope.

use proto::{
    auth::v1::{Role as UserRole, User},
    inventory::v1::Product,
};
use serde::{Serialize, Serializer, ser::SerializeStruct};
use serde_json::{Map, Value, json};

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

/// RFC 3339 in UTC, or `null`; written into the output as it is formatted.
struct Rfc3339<'a>(Option<&'a prost_types::Timestamp>);

impl Serialize for Rfc3339<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(timestamp) => serializer.collect_str(timestamp),
            None => serializer.serialize_none(),
        }
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
    fn role_names_round_trip() {
        for name in ["CLERK", "MANAGER", "ADMIN"] {
            assert_eq!(parse_role(name).map(role_name), Some(name));
        }
        assert_eq!(parse_role("clerk"), None);
    }
}
