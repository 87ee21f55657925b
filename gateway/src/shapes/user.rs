//! A user as each document shows it: which fields, in which order, and a role's spelling.

use proto::auth::v1::{Role as UserRole, User};
use serde_json::{Map, Value, json};
use service_kit::validation::FieldErrors;

use super::rfc3339;

/// Declares [`UserField`] and [`FULL_USER`] from one list, so that `/api/me/` shows every field.
macro_rules! user_fields {
    ($($field:ident),+ $(,)?) => {
        /// A field of a user's representation.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum UserField {
            $($field),+
        }

        /// `GET /api/me/`: every field, in the order declared.
        pub const FULL_USER: &[UserField] = &[$(UserField::$field),+];
    };
}

user_fields!(
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
);

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
                Role => ("role", json!(user.role().name())),
                IsStaff => ("is_staff", json!(user.is_staff)),
                IsSuperuser => ("is_superuser", json!(user.is_superuser)),
                IsActive => ("is_active", json!(user.is_active)),
                DateJoined => ("date_joined", json!(rfc3339(user.date_joined.as_ref()))),
                LastLogin => ("last_login", json!(rfc3339(user.last_login.as_ref()))),
            };
            (name.to_owned(), value)
        })
        .collect()
}

/// The role a body's `role` field names, if it names one; an unknown name is DRF's error for a
/// value outside a choice field's choices.
pub fn read_role(name: Option<String>, errors: &mut FieldErrors) -> UserRole {
    match name {
        None => UserRole::Unspecified,
        Some(name) => UserRole::from_name(&name).unwrap_or_else(|| {
            errors.add("role", format!("\"{name}\" is not a valid choice."));
            UserRole::Unspecified
        }),
    }
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

    #[test]
    fn an_unknown_role_is_a_choice_error() {
        let mut errors = FieldErrors::new();
        assert_eq!(
            read_role(Some("clerk".to_owned()), &mut errors),
            UserRole::Unspecified
        );
        assert_eq!(read_role(None, &mut errors), UserRole::Unspecified);
        assert_eq!(
            errors.iter().collect::<Vec<_>>(),
            [("role", "\"clerk\" is not a valid choice.")]
        );
    }
}
