//! `import-django` and the accounts Django tells apart that this service does not: usernames
//! that differ only in case, an account made here before the import, an email already taken.
//! The import stops and names both records; no token ever reaches another account.

use std::path::Path;

use auth_service::import::{ImportReport, import_django_file};
use service_kit::testing::TestDatabase;
use tonic::Code;

use crate::helpers::*;

service_kit::on_both_backends!(
    case_variant_usernames_in_one_dump_stop_the_import,
    a_user_made_here_is_never_given_a_django_users_token,
    an_email_taken_here_stops_the_import,
    importing_again_skips_only_the_same_pk_and_keeps_tokens_with_it,
);

const BOSS_TOKEN: &str = "b0550000000000000000000000000000000000b1";
const CLERK_TOKEN: &str = "c1e2c000000000000000000000000000000000c2";

fn dump(records: &str) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), records).unwrap();
    file
}

/// `Boss` (superuser, pk 101) and `boss` (clerk, pk 102), each with a DRF token.
fn boss_and_clerk() -> tempfile::NamedTempFile {
    dump(&format!(
        r#"[
  {{"model": "auth.user", "pk": 101, "fields": {{"username": "Boss", "password": "!",
    "is_superuser": true, "is_staff": true, "email": "boss@example.com"}}}},
  {{"model": "auth.user", "pk": 102, "fields": {{"username": "boss", "password": "!",
    "email": "clerk@example.com"}}}},
  {{"model": "authtoken.token", "pk": "{BOSS_TOKEN}", "fields": {{"user": 101}}}},
  {{"model": "authtoken.token", "pk": "{CLERK_TOKEN}", "fields": {{"user": 102}}}}
]"#
    ))
}

async fn import(app: &TestApp, path: &Path) -> Result<ImportReport, String> {
    import_django_file(&app.config, path, false)
        .await
        .map(|(_, report)| report)
        .map_err(|err| err.to_string())
}

/// A dump of one user (no usable password) and a DRF token of theirs.
fn user_and_token(pk: u32, username: &str, token: &str) -> tempfile::NamedTempFile {
    dump(&format!(
        r#"[{{"model": "auth.user", "pk": {pk}, "fields": {{"username": "{username}", "password": "!"}}}},
            {{"model": "authtoken.token", "pk": "{token}", "fields": {{"user": {pk}}}}}]"#
    ))
}

/// Imports `path`, which must stop with `expected` in its message, writing nothing.
async fn assert_stops(app: &TestApp, path: &Path, expected: &str) {
    let err = import(app, path).await.unwrap_err();
    assert!(err.contains(expected), "{err}");
    assert!(err.contains("nothing was imported"), "{err}");
}

async fn assert_refused(app: &TestApp, key: &str) {
    let status = app.validate(key).await.expect_err("no such token here");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
}

/// Imports Django's user `pk`, `username`, with the token [`CLERK_TOKEN`]: the import must stop
/// because `username` is, but for case, that of the user here that `here` describes
/// (`"Dave" (id 3 here)`), and the token must stay refused.
async fn assert_username_taken(app: &TestApp, pk: u32, username: &str, here: &str) {
    let file = user_and_token(pk, username, CLERK_TOKEN);
    let expected = format!(
        "auth.user pk {pk}, field username: the same username (ignoring case) as user {here}"
    );
    assert_stops(app, file.path(), &expected).await;
    assert_refused(app, CLERK_TOKEN).await;
}

async fn case_variant_usernames_in_one_dump_stop_the_import(db: TestDatabase) {
    let app = spawn_app(&db).await;
    assert_stops(
        &app,
        boss_and_clerk().path(),
        "auth.user pk 102, field username: the same username (ignoring case) as auth.user pk \
         101 (Boss)",
    )
    .await;
    // Before the fix, `boss` was skipped as already there and its token answered as `Boss`.
    assert_refused(&app, CLERK_TOKEN).await;
    assert_refused(&app, BOSS_TOKEN).await;
    let status = app.login("Boss", PASSWORD).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "nothing was written");
    app.stop().await;
}

async fn a_user_made_here_is_never_given_a_django_users_token(db: TestDatabase) {
    let app = spawn_app(&db).await;
    let dave = app.register("Dave").await;
    let dave_here = format!("\"Dave\" (id {} here)", dave.id);
    assert_username_taken(&app, 7, "dave", &dave_here).await;
    app.login("Dave", PASSWORD)
        .await
        .expect("Dave's own account is untouched");

    // A token naming its user by natural key is held to the same rule.
    let natural = dump(&format!(
        r#"[{{"model": "authtoken.token", "pk": "{CLERK_TOKEN}", "fields": {{"user": ["Dave"]}}}}]"#
    ));
    assert_stops(
        &app,
        natural.path(),
        "field user: no user imported from that Django user",
    )
    .await;
    assert_refused(&app, CLERK_TOKEN).await;
    app.stop().await;
}

async fn an_email_taken_here_stops_the_import(db: TestDatabase) {
    let app = spawn_app(&db).await;
    let file = dump(
        r#"[{"model": "auth.user", "pk": 1, "fields": {"username": "first", "password": "!", "email": "Shared@Example.com"}},
            {"model": "auth.user", "pk": 2, "fields": {"username": "second", "password": "!", "email": "shared@example.com"}}]"#,
    );
    assert_stops(
        &app,
        file.path(),
        "auth.user pk 2, field email: the same email (ignoring case) as auth.user pk 1 (first)",
    )
    .await;
    app.stop().await;
}

async fn importing_again_skips_only_the_same_pk_and_keeps_tokens_with_it(db: TestDatabase) {
    let app = spawn_app(&db).await;
    let first = user_and_token(101, "Boss", BOSS_TOKEN);
    let report = import(&app, first.path()).await.unwrap();
    assert_eq!((report.users_imported, report.tokens_imported), (1, 1));
    let again = import(&app, first.path()).await.unwrap();
    assert_eq!((again.users_skipped, again.tokens_skipped), (1, 1));
    let boss = app.validate(BOSS_TOKEN).await.unwrap().user.unwrap();
    assert_eq!(boss.username.as_deref(), Some("Boss"));

    // A later dump of the other Django user, `boss` (pk 102), collides with the imported `Boss`.
    let boss_here = format!(
        "\"Boss\" (id {} here, imported from Django pk 101)",
        boss.id
    );
    assert_username_taken(&app, 102, "boss", &boss_here).await;
    // Tokens alone, after their users: found by the Django pk they name.
    let tokens_alone = dump(&format!(
        r#"[{{"model": "authtoken.token", "pk": "{CLERK_TOKEN}", "fields": {{"user": 101}}}}]"#
    ));
    import(&app, tokens_alone.path()).await.unwrap();
    let holder = app.validate(CLERK_TOKEN).await.unwrap().user.unwrap();
    assert_eq!(holder.id, boss.id);
    app.stop().await;
}
