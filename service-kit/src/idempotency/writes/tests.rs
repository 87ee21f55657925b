//! [`Writes`] on a SQLite file of its own: a keyed write refused after it wrote keeps the key
//! and the refusal and nothing it wrote; a failure of the service keeps nothing.

use std::time::Duration;

use proto::idempotency::METADATA_KEY;
use sqlx::{AnyConnection, AnyPool};
use tonic::{Code, Request, Status};

use crate::{
    database::{SharedMigration, TestSqlite},
    idempotency::{CREATE_TABLE, Keyed, Write, Writes},
};

/// The service's error, as each service maps it: a database error is INTERNAL.
struct Refused(Status);

impl From<sqlx::Error> for Refused {
    fn from(err: sqlx::Error) -> Self {
        Self(Status::internal(err.to_string()))
    }
}

impl From<Refused> for Status {
    fn from(Refused(status): Refused) -> Self {
        status
    }
}

/// A SQLite file with `idempotency_keys` and a table of rows.
async fn database(name: &str) -> TestSqlite {
    static SHARED: [(i64, SharedMigration); 1] = [(1, CREATE_TABLE)];
    let db = TestSqlite::new(&format!("writes-{name}"), &SHARED).await;
    sqlx::query("CREATE TABLE rows (id INTEGER PRIMARY KEY)")
        .execute(&db.pool)
        .await
        .unwrap();
    db
}

/// The key `k-1`, for the caller 7 asking the same thing each time.
fn keyed() -> Keyed {
    let mut request = Request::new(prost_types::Duration::default());
    request
        .metadata_mut()
        .insert(METADATA_KEY, "k-1".parse().unwrap());
    Keyed::of(&request, 7, "Insert").unwrap().unwrap()
}

/// A write inserting row `id`, then ending as `ends` says.
fn insert_then(
    id: i64,
    ends: Result<(), Code>,
) -> impl for<'c> FnOnce(&'c mut AnyConnection) -> Write<'c, prost_types::Duration, Refused>
+ Send
+ 'static {
    move |connection| {
        Box::pin(async move {
            sqlx::query("INSERT INTO rows (id) VALUES ($1)")
                .bind(id)
                .execute(&mut *connection)
                .await?;
            match ends {
                Ok(()) => Ok(prost_types::Duration::default()),
                Err(code) => Err(Refused(Status::new(code, "No."))),
            }
        })
    }
}

async fn rows(pool: &AnyPool) -> Vec<i64> {
    sqlx::query_scalar("SELECT id FROM rows ORDER BY id")
        .fetch_all(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_refused_write_keeps_its_refusal_and_nothing_it_wrote() {
    let db = database("refused").await;
    let pool = db.pool.clone();
    let writes = Writes::new(pool.clone(), "test", Duration::from_secs(60));
    let refused = writes
        .run(Some(keyed()), insert_then(1, Err(Code::FailedPrecondition)))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert_eq!(
        rows(&pool).await,
        Vec::<i64>::new(),
        "the refused write's row"
    );
    // The repeat is refused again, without running: its write would have succeeded.
    let again = writes
        .run(Some(keyed()), insert_then(2, Ok(())))
        .await
        .unwrap_err();
    assert_eq!(
        (again.code(), again.message()),
        (Code::FailedPrecondition, "No.")
    );
    assert_eq!(rows(&pool).await, Vec::<i64>::new());
    pool.close().await;
}

#[tokio::test]
async fn a_failure_of_the_service_keeps_nothing_and_the_retry_runs() {
    let db = database("failed").await;
    let pool = db.pool.clone();
    let writes = Writes::new(pool.clone(), "test", Duration::from_secs(60));
    let failed = writes
        .run(Some(keyed()), insert_then(1, Err(Code::Unavailable)))
        .await
        .unwrap_err();
    assert_eq!(failed.code(), Code::Unavailable);
    assert_eq!(rows(&pool).await, Vec::<i64>::new());
    writes
        .run(Some(keyed()), insert_then(2, Ok(())))
        .await
        .expect("the retry runs afresh");
    let replayed = writes
        .run(Some(keyed()), insert_then(3, Ok(())))
        .await
        .expect("the repeat gets the answer");
    assert!(replayed.metadata().get("idempotent-replayed").is_some());
    assert_eq!(rows(&pool).await, [2]);
    pool.close().await;
}
