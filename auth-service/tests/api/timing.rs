//! A wrong password costs the same whatever hash the account has: before the fix, one for an
//! account imported from Django with PBKDF2 took several times as long as one for an unknown
//! or a native account, which told which accounts came from Django.
//!
//! This is a security property, not a speed figure: the check is that the fast answers are not
//! much faster than the slow ones (at least half as long, where before the fix they took a
//! small fraction), which load can only bring closer.

use std::{path::PathBuf, time::Instant};

use auth_service::import::import_django_file;
use service_kit::testing::TestDatabase;
use tonic::Code;

use crate::helpers::*;

service_kit::on_both_backends!(a_wrong_password_costs_the_same_for_every_kind_of_account);

/// The shortest of three wrong-password logins of `username`, in seconds.
async fn shortest_failure(app: &TestApp, username: &str) -> f64 {
    let mut shortest = f64::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        let status = app.login(username, "Wrong-guess-1").await.unwrap_err();
        shortest = shortest.min(started.elapsed().as_secs_f64());
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    }
    shortest
}

async fn a_wrong_password_costs_the_same_for_every_kind_of_account(db: TestDatabase) {
    let app = spawn_app(&db).await;
    let fixture =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/django/auth_users.json");
    import_django_file(&app.config, &fixture, true)
        .await
        .expect("the fixture imports");
    app.register("native").await;

    let imported = shortest_failure(&app, "alice").await;
    let native = shortest_failure(&app, "native").await;
    let unknown = shortest_failure(&app, "nobody-here").await;
    assert!(
        native >= imported / 2.0 && unknown >= imported / 2.0,
        "a wrong password took {imported:.3} s for a PBKDF2 account, {native:.3} s for a \
         native one, {unknown:.3} s for an unknown name"
    );
}
