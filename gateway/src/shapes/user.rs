//! A user as each document shows it: which fields, in which order, and a role's spelling; and
//! the schema of each such shape, written from the same table ([`UserShape`]).

use proto::auth::v1::{Role as UserRole, User};
use serde_json::{Map, Value, json};
use service_kit::validation::FieldErrors;

use super::rfc3339;
use crate::openapi::Schema;

/// Declares [`UserField`] and [`FULL_USER`] from one list, so that `/api/me/` shows every field.
macro_rules! user_fields {
    ($($field:ident),+ $(,)?) => {
        /// A field of a user's representation.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum UserField {
            $($field),+
        }

        /// `GET /api/me/`: every field, in the order declared.
        pub const FULL_USER: UserShape = UserShape {
            name: "User",
            fields: &[$(UserField::$field),+],
        };
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

/// The fields of a user one document shows, in order, and the name of that shape in the
/// OpenAPI document.
#[derive(Debug, PartialEq, Eq)]
pub struct UserShape {
    pub name: &'static str,
    pub fields: &'static [UserField],
}

/// Seed 000's `POST /api/register/`.
pub const USER_PROFILE: UserShape = UserShape {
    name: "UserProfile",
    fields: &[Id, Username, Email, FirstName, LastName, Role],
};
/// Seed 001's `UserSerializer`: `/register/`, `/login/` and `/users/`.
pub const USER_PROFILE_AND_FLAGS: UserShape = UserShape {
    name: "UserProfileAndFlags",
    fields: &[
        Id, Username, Email, FirstName, LastName, Role, IsStaff, IsActive,
    ],
};
/// Seed 003's `POST /api/users/registration/`.
pub const USER_NAMES_AND_EMAIL: UserShape = UserShape {
    name: "UserNamesAndEmail",
    fields: &[Id, FirstName, LastName, Email],
};
/// Seed 004's `POST /api/signup/` (inside `"user"`).
pub const USER_ACCOUNT_AND_ROLE: UserShape = UserShape {
    name: "UserAccountAndRole",
    fields: &[Id, Username, Email, Role],
};

impl UserField {
    /// The field's name in a body.
    pub fn name(self) -> &'static str {
        match self {
            Id => "id",
            Username => "username",
            Email => "email",
            FirstName => "first_name",
            LastName => "last_name",
            Role => "role",
            IsStaff => "is_staff",
            IsSuperuser => "is_superuser",
            IsActive => "is_active",
            DateJoined => "date_joined",
            LastLogin => "last_login",
        }
    }

    /// The field's value in `user`.
    fn value(self, user: &User) -> Value {
        match self {
            Id => json!(user.id),
            Username => json!(user.username),
            Email => json!(user.email),
            FirstName => json!(user.first_name),
            LastName => json!(user.last_name),
            Role => json!(user.role().name()),
            IsStaff => json!(user.is_staff),
            IsSuperuser => json!(user.is_superuser),
            IsActive => json!(user.is_active),
            DateJoined => json!(rfc3339(user.date_joined.as_ref())),
            LastLogin => json!(rfc3339(user.last_login.as_ref())),
        }
    }

    /// The schema of [`Self::value`]: an `Option` in the message is nullable.
    fn schema(self) -> Schema {
        match self {
            Id => Schema::integer(),
            Username | Email => Schema::string().nullable(),
            FirstName | LastName => Schema::string(),
            Role => Schema::one_of_strings(UserRole::ASSIGNABLE.map(UserRole::name)),
            IsStaff | IsSuperuser | IsActive => Schema::boolean(),
            DateJoined | LastLogin => Schema::date_time().nullable(),
        }
    }
}

impl UserShape {
    /// The shape's fields and their schemas, in order (for a body that adds its own).
    pub fn properties(&self) -> Vec<(&'static str, Schema)> {
        self.fields
            .iter()
            .map(|field| (field.name(), field.schema()))
            .collect()
    }

    /// The schema of [`user`] in this shape, a component of the document.
    pub fn schema(&self) -> Schema {
        Schema::named(self.name, Schema::object(self.properties()))
    }
}

/// `user` as a JSON object in `shape`: its fields, in order.
pub fn user(user: &User, shape: &UserShape) -> Map<String, Value> {
    shape
        .fields
        .iter()
        .map(|field| (field.name().to_owned(), field.value(user)))
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
            Value::Object(user(&alice, &USER_ACCOUNT_AND_ROLE)),
            json!({"id": 1, "username": null, "email": "a@example.com", "role": "MANAGER"})
        );
    }

    /// Each shape's schema admits what [`user`] writes, for a user with every optional field
    /// set and one with none.
    #[test]
    fn every_shape_is_written_as_its_schema_says() {
        let full = User {
            id: 2,
            username: Some("bob".to_owned()),
            email: Some("b@example.com".to_owned()),
            first_name: "Bob".to_owned(),
            last_name: "B".to_owned(),
            role: UserRole::Admin.into(),
            is_staff: true,
            is_superuser: true,
            is_active: true,
            date_joined: Some(prost_types::Timestamp::default()),
            last_login: Some(prost_types::Timestamp::default()),
        };
        for shape in [
            &FULL_USER,
            &USER_PROFILE,
            &USER_PROFILE_AND_FLAGS,
            &USER_NAMES_AND_EMAIL,
            &USER_ACCOUNT_AND_ROLE,
        ] {
            for one in [&full, &User::default()] {
                let written = Value::Object(user(one, shape));
                assert_eq!(shape.schema().admits(&written), Ok(()), "{}", shape.name);
            }
        }
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
