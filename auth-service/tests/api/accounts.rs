//! Sign-up, validation, user management and `createsuperuser`.

use proto::{auth::v1 as pb, reasons};
use service_kit::testing::{TestDatabase, output_with_input};
use tonic::Code;

use crate::helpers::*;

/// DRF's errors, in its field order, for the username `no spaces allowed`, the email
/// `not-an-email`, the password `short` and a first name of 151 characters.
fn invalid_account_errors() -> Vec<(String, String)> {
    vec![
        pair(
            "username",
            "Enter a valid username. This value may contain only letters, numbers, and \
             @/./+/-/_ characters.",
        ),
        pair("email", "Enter a valid email address."),
        pair("password", "Password must be at least 8 characters long."),
        pair("password", "Password must contain at least one numeral."),
        pair(
            "first_name",
            "Ensure this field has no more than 150 characters.",
        ),
    ]
}

async fn register_validates_every_field_with_drf_messages(db: TestDatabase) {
    let app = spawn_app(&db).await;
    let mut client = app.client();

    let nothing = client.register(pb::RegisterRequest::default()).await;
    assert_eq!(
        field_errors(nothing),
        [
            pair("username", "This field is required."),
            pair("email", "This field is required."),
            pair("password", "This field is required."),
        ]
    );

    let bad = client
        .register(pb::RegisterRequest {
            username: Some("no spaces allowed".into()),
            email: Some("not-an-email".into()),
            password: Some("short".into()),
            first_name: Some("x".repeat(151)),
            role: pb::Role::Admin.into(),
            ..Default::default()
        })
        .await;
    let mut expected = vec![pair("role", "This role cannot be self-assigned.")];
    expected.extend(invalid_account_errors());
    assert_eq!(field_errors(bad), expected);

    let blank = client
        .register(pb::RegisterRequest {
            username: Some(" ".into()),
            password: Some(String::new()),
            ..Default::default()
        })
        .await;
    assert_eq!(
        field_errors(blank),
        [
            pair("username", "This field may not be blank."),
            pair("password", "This field may not be blank."),
        ]
    );

    // Nothing of the above was stored.
    let admin = app.admin_token().await;
    let listed = client
        .list_users(authed(&admin, pb::ListUsersRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.total_count, 1);
}

async fn register_returns_the_user_and_optionally_a_token(db: TestDatabase) {
    let app = spawn_app(&db).await;
    let response = app
        .client()
        .register(pb::RegisterRequest {
            username: Some("newuser".into()),
            email: Some("newuser@example.com".into()),
            password: Some("password123".into()),
            first_name: Some("New".into()),
            role: pb::Role::Clerk.into(),
            issue_token: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let user = response.user.unwrap();
    assert_eq!(user.username.as_deref(), Some("newuser"));
    assert_eq!(user.email.as_deref(), Some("newuser@example.com"));
    assert_eq!(user.role(), pb::Role::Clerk);
    assert!(user.is_active && !user.is_staff && !user.is_superuser);
    assert!(user.last_login.is_some());
    let token = response.token.unwrap();
    assert_eq!(token.key.len(), 40);
    let validated = app.validate(&token.key).await.unwrap();
    assert_eq!(validated.user.unwrap().id, user.id);

    // An email alone is enough; the username is then absent.
    let by_email = app
        .client()
        .register(pb::RegisterRequest {
            email: Some("john.doe@example.com".into()),
            password: Some(PASSWORD.into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_email.user.unwrap().username, None);
    assert!(by_email.token.is_none());
}

async fn usernames_and_emails_are_unique_ignoring_case(db: TestDatabase) {
    let app = spawn_app(&db).await;
    let mut client = app.client();
    client
        .register(pb::RegisterRequest {
            username: Some("Alice".into()),
            email: Some("alice@example.com".into()),
            password: Some(PASSWORD.into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        field_errors(client.register(registration("aLICE")).await),
        [pair(
            "username",
            "A user with that username already exists."
        )]
    );
    let same_email = client
        .register(pb::RegisterRequest {
            email: Some("ALICE@example.COM".into()),
            password: Some(PASSWORD.into()),
            ..Default::default()
        })
        .await;
    assert_eq!(
        field_errors(same_email),
        [pair("email", "A user with this email already exists.")]
    );
}

async fn racing_duplicate_registrations_give_one_user_and_field_errors(db: TestDatabase) {
    let app = spawn_app(&db).await;
    let results = app
        .race(8, |mut client, _| async move {
            client.register(registration("racer")).await
        })
        .await;
    let successes = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(successes, 1, "{results:?}");
    for failure in results.into_iter().filter(Result::is_err) {
        assert_eq!(
            field_errors(failure),
            [pair(
                "username",
                "A user with that username already exists."
            )]
        );
    }
}

async fn a_dry_run_reports_every_error_and_creates_nothing(db: TestDatabase) {
    let app = spawn_app(&db).await;
    app.register("taken").await;
    let mut client = app.client();
    let dry_run = |username: &str, password: &str| pb::RegisterRequest {
        username: Some(username.into()),
        email: Some("new@example.com".into()),
        password: Some(password.into()),
        validate_only: true,
        ..Default::default()
    };
    // A weak password does not hide the taken username.
    assert_eq!(
        field_errors(client.register(dry_run("TAKEN", "weak")).await),
        [
            pair("password", "Password must be at least 8 characters long."),
            pair("password", "Password must contain at least one numeral."),
            pair("username", "A user with that username already exists."),
        ]
    );
    let clean = client
        .register(dry_run("fresh", PASSWORD))
        .await
        .unwrap()
        .into_inner();
    assert!(clean.user.is_none() && clean.token.is_none());
    // Nothing was created: the same registration, for real, still succeeds.
    let real = pb::RegisterRequest {
        validate_only: false,
        ..dry_run("fresh", PASSWORD)
    };
    let user = client
        .register(real)
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap();
    assert_eq!(user.id, 2);
}

async fn admins_manage_users_and_others_may_not(db: TestDatabase) {
    let app = spawn_app(&db).await;
    let admin = app.admin_token().await;
    let (clerk, clerk_token) = app.user_with_token("clerk").await;
    let mut client = app.client();

    let created = client
        .create_user(authed(
            &admin,
            pb::CreateUserRequest {
                username: Some("manager".into()),
                email: Some("m@example.com".into()),
                password: Some(PASSWORD.into()),
                role: pb::Role::Manager.into(),
                is_staff: Some(true),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.role(), pb::Role::Manager);
    assert!(created.is_staff && created.is_active && !created.is_superuser);

    let page = client
        .list_users(authed(
            &admin,
            pb::ListUsersRequest {
                limit: Some(2),
                offset: 1,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.total_count, 3);
    let ids: Vec<_> = page.users.iter().map(|u| u.id).collect();
    assert_eq!(ids, [clerk.id, created.id]);

    let fetched = client
        .get_user(authed(&admin, pb::GetUserRequest { id: clerk.id }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fetched.username.as_deref(), Some("clerk"));

    let updated = client
        .update_user(authed(
            &admin,
            pb::UpdateUserRequest {
                id: clerk.id,
                first_name: Some("Clara".into()),
                role: pb::Role::Manager.into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.first_name, "Clara");
    assert_eq!(updated.role(), pb::Role::Manager);
    assert_eq!(
        updated.username.as_deref(),
        Some("clerk"),
        "untouched fields stay"
    );

    // Every error of an update at once, in the fields' order as DRF lists them; nothing changes.
    let refused = client
        .update_user(authed(
            &admin,
            pb::UpdateUserRequest {
                id: clerk.id,
                username: Some("no spaces allowed".into()),
                email: Some("not-an-email".into()),
                password: Some("short".into()),
                first_name: Some("x".repeat(151)),
                ..Default::default()
            },
        ))
        .await;
    assert_eq!(field_errors(refused), invalid_account_errors());
    let unchanged = client
        .get_user(authed(&admin, pb::GetUserRequest { id: clerk.id }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(unchanged, updated);

    let unknown = client
        .get_user(authed(&admin, pb::GetUserRequest { id: 9999 }))
        .await;
    assert_eq!(unknown.unwrap_err().code(), Code::NotFound);

    // The (now manager, not staff) user cannot manage users; nobody unauthenticated can.
    let denied = client
        .list_users(authed(&clerk_token, pb::ListUsersRequest::default()))
        .await;
    assert_rejected(denied, Code::PermissionDenied, reasons::PERMISSION_DENIED);
    let anonymous = client.list_users(pb::ListUsersRequest::default()).await;
    assert_rejected(
        anonymous,
        Code::Unauthenticated,
        reasons::CREDENTIALS_MISSING,
    );

    client
        .delete_user(authed(&admin, pb::DeleteUserRequest { id: created.id }))
        .await
        .unwrap();
    let gone = client
        .get_user(authed(&admin, pb::GetUserRequest { id: created.id }))
        .await;
    assert_eq!(gone.unwrap_err().code(), Code::NotFound);
}

async fn only_superusers_grant_superuser(db: TestDatabase) {
    let app = spawn_app(&db).await;
    let admin = app.admin_token().await;
    let staff = app.staff_token(&admin, "staffer").await;
    let escalation = app
        .client()
        .create_user(authed(
            &staff,
            pb::CreateUserRequest {
                username: Some("root2".into()),
                password: Some(PASSWORD.into()),
                is_superuser: Some(true),
                ..Default::default()
            },
        ))
        .await;
    assert_rejected(
        escalation,
        Code::PermissionDenied,
        reasons::PERMISSION_DENIED,
    );
}

async fn createsuperuser_refuses_an_existing_username(db: TestDatabase) {
    let app = spawn_app(&db).await;
    app.admin_token().await;
    let again = auth_service::create_superuser(&app.config, "ADMIN", None, PASSWORD).await;
    let message = again.unwrap_err().to_string();
    assert_eq!(
        message,
        "username: A user with that username already exists."
    );
    let weak = auth_service::create_superuser(&app.config, "root", None, "weak").await;
    assert!(
        weak.unwrap_err()
            .to_string()
            .contains("Password must be at least 8 characters long.")
    );
}

/// `docker compose exec … createsuperuser` with `AUTH_SUPERUSER_PASSWORD` set but empty reads
/// the password from standard input, as without the variable.
#[test]
fn createsuperuser_reads_standard_input_when_the_password_variable_is_empty() {
    let db = TestDatabase::sqlite();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_auth-service"));
    command
        .args(["createsuperuser", "--username", "admin"])
        .env("AUTH_SUPERUSER_PASSWORD", "")
        .env("AUTH_DATABASE_URL", db.url())
        .env("RUST_LOG", "off");
    let output = output_with_input(&mut command, &format!("{PASSWORD}\n"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("Superuser \"admin\" created"),
        "{}\n{stdout}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

service_kit::on_both_backends!(
    register_validates_every_field_with_drf_messages,
    register_returns_the_user_and_optionally_a_token,
    usernames_and_emails_are_unique_ignoring_case,
    racing_duplicate_registrations_give_one_user_and_field_errors,
    a_dry_run_reports_every_error_and_creates_nothing,
    admins_manage_users_and_others_may_not,
    only_superusers_grant_superuser,
    createsuperuser_refuses_an_existing_username,
    null_characters_are_invalid_arguments,
);

/// A NUL in any name or address is INVALID_ARGUMENT with DRF's message on that field, on
/// PostgreSQL (which cannot store one) as on SQLite (which would).
async fn null_characters_are_invalid_arguments(db: TestDatabase) {
    let app = spawn_app(&db).await;
    let mut client = app.client();
    let nul = "Null characters are not allowed.";
    let refused = client
        .register(pb::RegisterRequest {
            username: Some("al\0ice".into()),
            email: Some("a\0@example.com".into()),
            first_name: Some("A\0".into()),
            last_name: Some("\0".into()),
            ..registration("alice")
        })
        .await;
    assert_eq!(
        field_errors(refused),
        [
            pair("username", nul),
            pair("email", nul),
            pair("first_name", nul),
            pair("last_name", nul),
        ]
    );
    let login = client
        .login(pb::LoginRequest {
            username: Some("al\0ice".into()),
            password: Some(PASSWORD.into()),
            ..Default::default()
        })
        .await;
    assert_eq!(field_errors(login), [pair("username", nul)]);
}
