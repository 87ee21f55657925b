//! The JSON bodies the routes answer with, declared in one place: which user fields each
//! document shows, the product, and DRF's list envelope.

use proto::{
    auth::v1::{Role as UserRole, User},
    inventory::v1::Product,
};
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
pub const SEED_000_USER: &[UserField] = &[Id, Username, Email, FirstName, LastName, Role];
/// Seed 001's `UserSerializer`: `/register/`, `/login/` and `/users/`.
pub const SEED_001_USER: &[UserField] = &[
    Id, Username, Email, FirstName, LastName, Role, IsStaff, IsActive,
];
/// Seed 003's `POST /api/users/registration/`.
pub const SEED_003_USER: &[UserField] = &[Id, FirstName, LastName, Email];
/// Seed 004's `POST /api/signup/` (inside `"user"`).
pub const SEED_004_USER: &[UserField] = &[Id, Username, Email, Role];
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

/// A product, with `price` as the exact decimal string.
pub fn product(product: &Product) -> Value {
    json!({
        "id": product.id,
        "name": product.name,
        "description": product.description,
        "price": product.price,
        "quantity": product.quantity,
        "created_at": timestamp(product.created_at.as_ref()),
        "updated_at": timestamp(product.updated_at.as_ref()),
    })
}

/// A list: a plain array, or with `?limit=` DRF's `{"count", "next", "previous", "results"}`.
pub fn list(items: Vec<Value>, count: u64, paging: &Paging) -> Value {
    match paging.limit {
        None => Value::Array(items),
        Some(limit) => json!({
            "count": count,
            "next": paging.next(limit, count),
            "previous": paging.previous(limit),
            "results": items,
        }),
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
            Value::Object(user(&alice, SEED_004_USER)),
            json!({"id": 1, "username": null, "email": "a@example.com", "role": "MANAGER"})
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
