//! Seed 001's admin user management, `/users/` and `/users/{id}/` (DRF's `ModelViewSet`).
//! Who may manage users is the auth service's decision (PERMISSION_DENIED → 403).

use axum::{Json, extract::State, http::StatusCode};
use proto::auth::v1::{
    CreateUserRequest, DeleteUserRequest, DeleteUserResponse, GetUserRequest, ListUsersRequest,
    UpdateUserRequest, User,
};
use serde_json::Value;
use service_kit::validation::FieldErrors;

use super::objects::{self, prelude::*};
use crate::{
    openapi::{Field, Schema},
    shapes::{self, PageBody, USER_PROFILE_AND_FLAGS},
};

/// What `read_user!` reads. A new user needs a password (the auth service says so, and
/// that a username or an email is needed); an update changes only the fields sent.
const NEW_USER: &[Field] = &[
    Field::text("username"),
    Field::text("email"),
    Field::text("password").required(),
    Field::text("first_name"),
    Field::text("last_name"),
    Field::role("role"),
    Field::boolean("is_staff"),
    Field::boolean("is_active"),
];

const USER_CHANGES: &[Field] = &[
    Field::text("username"),
    Field::text("email"),
    Field::text("password"),
    Field::text("first_name"),
    Field::text("last_name"),
    Field::role("role"),
    Field::boolean("is_staff"),
    Field::boolean("is_active"),
];

const BODIES: Bodies = Bodies {
    create: NEW_USER,
    replace: USER_CHANGES,
    update: USER_CHANGES,
};

const SUMMARIES: Summaries = Summaries {
    list: "List users (admins; ?limit=&offset= pages)",
    create: "Create a user (admins)",
    retrieve: "One user (admins)",
    replace: "Update a user (admins; only the fields sent change)",
    update: "Update some fields of a user (admins)",
    destroy: "Delete a user and its tokens (admins)",
};

pub fn endpoints() -> Vec<Endpoint> {
    objects::model_view_set(
        Users,
        ["/users/", "/users/{id}/"],
        &BODIES,
        &SUMMARIES,
        (list, create, update),
    )
    .into()
}

/// `$message` with the user fields of the body `$fields`, and `$rest` as given: the create and
/// the update message name their user fields alike, and this reads them once for both (a field
/// a message has and neither list names is refused by the compiler).
macro_rules! read_user {
    ($fields:expr, $message:ident { $($rest:tt)* }) => {{
        let fields: &Fields = $fields;
        let mut errors = FieldErrors::new();
        let role = shapes::read_role(fields.text("role", &mut errors), &mut errors);
        let message = $message {
            username: fields.text("username", &mut errors),
            email: fields.text("email", &mut errors),
            password: fields.text("password", &mut errors),
            first_name: fields.text("first_name", &mut errors),
            last_name: fields.text("last_name", &mut errors),
            role: role.into(),
            is_staff: fields.boolean("is_staff", &mut errors),
            // Never set through this API: only `createsuperuser` makes superusers.
            is_superuser: None,
            is_active: fields.boolean("is_active", &mut errors),
            $($rest)*
        };
        errors.into_result().map(|()| message)
    }};
}

fn one(user: &User) -> Json<Value> {
    Json(Value::Object(shapes::user(user, &USER_PROFILE_AND_FLAGS)))
}

async fn list(
    State(upstreams): State<Upstreams>,
    Authenticated(caller): Authenticated,
    paging: Paging,
) -> Result<Json<PageBody<Value>>, ApiError> {
    let page = pages::read_all(&paging, |offset, limit| {
        let request = caller.request(ListUsersRequest {
            limit: Some(limit),
            offset,
        });
        let mut auth = upstreams.auth();
        async move {
            let response = auth
                .list_users(request)
                .await
                .map_err(ApiError::auth)?
                .into_inner();
            let count = response.users.len() as u64;
            Ok(pages::Batch {
                count,
                total: response.total_count,
                more: offset + count < response.total_count,
                items: response.users,
            })
        }
    })
    .await?;
    let users = page
        .items
        .iter()
        .map(|user| Value::Object(shapes::user(user, &USER_PROFILE_AND_FLAGS)))
        .collect();
    Ok(Json(PageBody::new(users, page.total, &paging)))
}

async fn create(
    State(upstreams): State<Upstreams>,
    Authenticated(caller): Authenticated,
    fields: Fields,
) -> Result<(StatusCode, Written<Json<Value>>), ApiError> {
    let request = read_user!(&fields, CreateUserRequest {})?;
    let created = upstreams
        .auth()
        .create_user(caller.write_request(request))
        .await
        .map_err(ApiError::auth)?;
    Ok((StatusCode::CREATED, Written::of(created, |user| one(&user))))
}

/// PUT and PATCH alike: only the fields sent change.
async fn update(
    State(upstreams): State<Upstreams>,
    Authenticated(caller): Authenticated,
    ObjectId(id): ObjectId,
    fields: Fields,
) -> Result<Written<Json<Value>>, ApiError> {
    let request = read_user!(
        &fields,
        UpdateUserRequest {
            id,
            clear_username: false,
            clear_email: false,
        }
    )?;
    let updated = upstreams
        .auth()
        .update_user(caller.write_request(request))
        .await
        .map_err(ApiError::auth)?;
    Ok(Written::of(updated, |user| one(&user)))
}

/// Users, as the detail routes shared with products reach them.
struct Users;

impl Kept for Users {
    type Object = User;
    type Body = Json<Value>;
    type Deleted = DeleteUserResponse;
    const BACKEND: Backend = Backend::Auth;

    fn show(user: User) -> Json<Value> {
        one(&user)
    }

    fn schema() -> Schema {
        USER_PROFILE_AND_FLAGS.schema()
    }

    async fn get(upstreams: &Upstreams, request: tonic::Request<i64>) -> Reply<User> {
        let request = request.map(|id| GetUserRequest { id });
        upstreams.auth().get_user(request).await
    }

    async fn delete(upstreams: &Upstreams, request: tonic::Request<i64>) -> Reply<Self::Deleted> {
        let request = request.map(|id| DeleteUserRequest { id });
        upstreams.auth().delete_user(request).await
    }
}
