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

async fn assert_refused(app: &TestApp, key: &str) {
    let status = app.validate(key).await.expect_err("no such token here");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
}

async fn case_variant_usernames_in_one_dump_stop_the_import(db: TestDatabase) {
    let app = spawn_app(&db).await;
    let err = import(&app, boss_and_clerk().path()).await.unwrap_err();
    assert!(
        err.contains(
            "auth.user pk 102, field username: the same username (ignoring case) as \
             auth.user pk 101 (Boss)"
        ),
        "{err}"
    );
    assert!(err.contains("nothing was imported"), "{err}");
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
    let file = dump(&format!(
        r#"[{{"model": "auth.user", "pk": 7, "fields": {{"username": "dave", "password": "!"}}}},
            {{"model": "authtoken.token", "pk": "{CLERK_TOKEN}", "fields": {{"user": 7}}}}]"#
    ));
    let err = import(&app, file.path()).await.unwrap_err();
    assert!(
        err.contains(&format!(
            "auth.user pk 7, field username: the same username (ignoring case) as user \
             \"Dave\" (id {} here)",
            dave.id
        )),
        "{err}"
    );
    assert_refused(&app, CLERK_TOKEN).await;
    app.login("Dave", PASSWORD)
        .await
        .expect("Dave's own account is untouched");

    // A token naming its user by natural key is held to the same rule.
    let natural = dump(&format!(
        r#"[{{"model": "authtoken.token", "pk": "{CLERK_TOKEN}", "fields": {{"user": ["Dave"]}}}}]"#
    ));
    let err = import(&app, natural.path()).await.unwrap_err();
    assert!(
        err.contains("field user: no user imported from that Django user"),
        "{err}"
    );
    assert_refused(&app, CLERK_TOKEN).await;
    app.stop().await;
}

async fn an_email_taken_here_stops_the_import(db: TestDatabase) {
    let app = spawn_app(&db).await;
    let file = dump(
        r#"[{"model": "auth.user", "pk": 1, "fields": {"username": "first", "password": "!", "email": "Shared@Example.com"}},
            {"model": "auth.user", "pk": 2, "fields": {"username": "second", "password": "!", "email": "shared@example.com"}}]"#,
    );
    let err = import(&app, file.path()).await.unwrap_err();
    assert!(
        err.contains(
            "auth.user pk 2, field email: the same email (ignoring case) as auth.user pk 1 \
             (first)"
        ),
        "{err}"
    );
    app.stop().await;
}

async fn importing_again_skips_only_the_same_pk_and_keeps_tokens_with_it(db: TestDatabase) {
    let app = spawn_app(&db).await;
    let first = dump(&format!(
        r#"[{{"model": "auth.user", "pk": 101, "fields": {{"username": "Boss", "password": "!"}}}},
            {{"model": "authtoken.token", "pk": "{BOSS_TOKEN}", "fields": {{"user": 101}}}}]"#
    ));
    let report = import(&app, first.path()).await.unwrap();
    assert_eq!((report.users_imported, report.tokens_imported), (1, 1));
    let again = import(&app, first.path()).await.unwrap();
    assert_eq!((again.users_skipped, again.tokens_skipped), (1, 1));
    let boss = app.validate(BOSS_TOKEN).await.unwrap().user.unwrap();
    assert_eq!(boss.username.as_deref(), Some("Boss"));

    // A later dump of the other Django user, `boss` (pk 102), collides with the imported `Boss`.
    let later = dump(&format!(
        r#"[{{"model": "auth.user", "pk": 102, "fields": {{"username": "boss", "password": "!"}}}},
            {{"model": "authtoken.token", "pk": "{CLERK_TOKEN}", "fields": {{"user": 102}}}}]"#
    ));
    let err = import(&app, later.path()).await.unwrap_err();
    assert!(
        err.contains(&format!(
            "auth.user pk 102, field username: the same username (ignoring case) as user \
             \"Boss\" (id {} here, imported from Django pk 101)",
            boss.id
        )),
        "{err}"
    );
    assert_refused(&app, CLERK_TOKEN).await;
    // Tokens alone, after their users: found by the Django pk they name.
    let tokens_alone = dump(&format!(
        r#"[{{"model": "authtoken.token", "pk": "{CLERK_TOKEN}", "fields": {{"user": 101}}}}]"#
    ));
    import(&app, tokens_alone.path()).await.unwrap();
    let holder = app.validate(CLERK_TOKEN).await.unwrap().user.unwrap();
    assert_eq!(holder.id, boss.id);
    app.stop().await;
}
