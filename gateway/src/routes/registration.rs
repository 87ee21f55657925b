//! The four sign-up routes (seeds 000, 001, 003 and 004). One handler; what the documents
//! differ in (required fields, the password field's name, a confirmation field, a role, the
//! answer's shape) is declared per route. The values themselves (password rules, username
//! characters, duplicates) are judged by the auth service.

use axum::{Json, extract::State};
use http::{Method, StatusCode};
use proto::auth::v1::{RegisterRequest, RegisterResponse};
use serde_json::{Value, json};
use service_kit::validation::{BLANK, FieldErrors, REQUIRED};

use super::Endpoint;
use crate::{
    clients::Upstreams,
    error::{ApiError, present},
    extract::{Anyone, Fields},
    openapi::{Field, Operation, Schema},
    shapes::{
        self, USER_ACCOUNT_AND_ROLE, USER_NAMES_AND_EMAIL, USER_PROFILE, USER_PROFILE_AND_FLAGS,
        UserShape,
    },
};

/// What one sign-up route asks for and answers.
struct SignUp {
    /// Fields the document's serializer requires (absent or blank is an error here).
    required: &'static [&'static str],
    /// The body field holding the password (seed 003 calls it `password1`).
    password: &'static str,
    /// The field that must repeat the password (seed 003's `password2`).
    confirmation: Option<&'static str>,
    /// Whether the body may name a role (seed 004; the service refuses all but CLERK).
    takes_role: bool,
    answer: SignUpAnswer,
}

/// The body of a successful sign-up.
enum SignUpAnswer {
    /// The new user.
    User(&'static UserShape),
    /// `{"user": ..., "token": key}`: the user is logged in at once.
    UserAndToken(&'static UserShape),
}

const API_REGISTER: SignUp = SignUp {
    required: &["username", "password"],
    password: "password",
    confirmation: None,
    takes_role: false,
    answer: SignUpAnswer::User(&USER_PROFILE),
};

const REGISTER: SignUp = SignUp {
    required: &["email", "password"],
    password: "password",
    confirmation: None,
    takes_role: false,
    answer: SignUpAnswer::User(&USER_PROFILE_AND_FLAGS),
};

const API_USERS_REGISTRATION: SignUp = SignUp {
    required: &["first_name", "last_name", "email", "password1", "password2"],
    password: "password1",
    confirmation: Some("password2"),
    takes_role: false,
    answer: SignUpAnswer::User(&USER_NAMES_AND_EMAIL),
};

const API_SIGNUP: SignUp = SignUp {
    required: &["username", "email", "password"],
    password: "password",
    confirmation: None,
    takes_role: true,
    answer: SignUpAnswer::UserAndToken(&USER_ACCOUNT_AND_ROLE),
};

const PASSWORDS_DIFFER: &str = "The two password fields did not match.";

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::new(
            API_REGISTER.operation("/api/register/", "Register (seed 000)"),
            |s, c, f| sign_up(&API_REGISTER, s, c, f),
        ),
        Endpoint::new(
            REGISTER.operation("/register/", "Register (seed 001)"),
            |s, c, f| sign_up(&REGISTER, s, c, f),
        ),
        Endpoint::new(
            API_USERS_REGISTRATION
                .operation("/api/users/registration/", "Register with email (seed 003)"),
            |s, c, f| sign_up(&API_USERS_REGISTRATION, s, c, f),
        ),
        Endpoint::new(
            API_SIGNUP.operation(
                "/api/signup/",
                "Sign up with a role and get a token (seed 004)",
            ),
            |s, c, f| sign_up(&API_SIGNUP, s, c, f),
        ),
    ]
}

async fn sign_up(
    route: &'static SignUp,
    State(upstreams): State<Upstreams>,
    Anyone(caller): Anyone,
    fields: Fields,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let mut errors = FieldErrors::new();
    let request = route.read(&fields, &mut errors);
    if !errors.is_empty() {
        // DRF reports every field's errors at once: add auth's verdict on the values (password
        // rules, duplicates) from a dry run that creates nothing.
        let dry_run = RegisterRequest {
            validate_only: true,
            ..request
        };
        if let Err(status) = upstreams.auth().register(caller.request(dry_run)).await {
            route.merge_service_errors(&mut errors, &status);
        }
        return Err(errors.into());
    }
    let response = upstreams
        .auth()
        .register(caller.request(request))
        .await
        .map_err(|status| ApiError::auth(status).renaming_field("password", route.password))?
        .into_inner();
    Ok((StatusCode::CREATED, Json(route.answer.body(&response)?)))
}

impl SignUp {
    /// The route at `path`, as the document shows it: the fields [`Self::read`] reads, those
    /// the route requires, and what [`SignUpAnswer::body`] answers.
    fn operation(&self, path: &'static str, summary: &'static str) -> Operation {
        let texts = [
            "username",
            "email",
            "first_name",
            "last_name",
            self.password,
        ]
        .into_iter()
        .chain(self.confirmation)
        .map(Field::text);
        let role = self.takes_role.then_some(Field::role("role"));
        let fields = texts.chain(role).map(|field| {
            if self.required.contains(&field.name) {
                field.required()
            } else {
                field
            }
        });
        Operation::new(Method::POST, path, summary, 201, self.answer.schema()).body(fields)
    }

    /// Adds the service's field errors to the route's own, under the route's field names. The
    /// route alone decides what is required, so the service's "required" messages are left out.
    fn merge_service_errors(&self, errors: &mut FieldErrors, status: &tonic::Status) {
        let Some(theirs) = FieldErrors::from_status(status) else {
            return;
        };
        for (field, message) in theirs.iter() {
            let field = if field == "password" {
                self.password
            } else {
                field
            };
            let known = errors.iter().any(|(f, m)| f == field && m == message);
            if message != REQUIRED && !known {
                errors.add(field, message);
            }
        }
    }

    /// The RPC this body asks for; what is wrong with it goes to `errors`.
    fn read(&self, fields: &Fields, errors: &mut FieldErrors) -> RegisterRequest {
        for &name in self.required {
            if !fields.contains(name) {
                errors.add(name, REQUIRED);
            }
        }
        let mut text = |name: &str| {
            let value = fields.text(name, errors);
            if self.required.contains(&name)
                && value.as_deref().is_some_and(|v| v.trim().is_empty())
            {
                errors.add(name, BLANK);
            }
            value
        };
        let username = text("username");
        let email = text("email");
        let first_name = text("first_name");
        let last_name = text("last_name");
        let password = text(self.password);
        if let Some(confirmation) = self.confirmation {
            let repeated = text(confirmation);
            if password.is_some() && repeated.is_some() && password != repeated {
                errors.add(confirmation, PASSWORDS_DIFFER);
            }
        }
        let chosen_role = if self.takes_role {
            fields.text("role", errors)
        } else {
            None
        };
        let role = shapes::read_role(chosen_role, errors);
        RegisterRequest {
            username,
            email,
            password,
            first_name,
            last_name,
            role: role.into(),
            issue_token: matches!(self.answer, SignUpAnswer::UserAndToken(_)),
            validate_only: false,
        }
    }
}

impl SignUpAnswer {
    /// The schema of [`Self::body`].
    fn schema(&self) -> Schema {
        match self {
            Self::User(shape) => shape.schema(),
            Self::UserAndToken(shape) => {
                Schema::object([("user", shape.schema()), ("token", Schema::string())])
            }
        }
    }

    fn body(&self, response: &RegisterResponse) -> Result<Value, ApiError> {
        let user = present(response.user.as_ref(), "Register's user")?;
        Ok(match self {
            Self::User(shape) => Value::Object(shapes::user(user, shape)),
            Self::UserAndToken(shape) => {
                let token = present(response.token.as_ref(), "Register's token")?;
                json!({ "user": shapes::user(user, shape), "token": token.key })
            }
        })
    }
}
