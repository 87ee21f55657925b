//! Scenario 5 (PostgreSQL only): ValidateToken of random live keys with 1,000,000 users holding
//! 2,000,000 tokens, against the same on an almost empty database. Both are bulk-loaded
//! straight into the tables, after the service has created its schema, by one statement per
//! table: the users share one precomputed argon2id hash, and token `i`'s key is `i` as 40 hex
//! digits, stored as the service stores every key (the hex SHA-256 of the key). The keys
//! differ from call to call, which h2load cannot do: the bench's own generator drives it, and
//! compares two loads it makes alike (its p99s), not a rate with a limit.

use std::{
    path::Path,
    time::{Instant, SystemTime, UNIX_EPOCH},
};

use proto::auth::v1::{
    CredentialKind, ValidateTokenRequest, auth_service_client::AuthServiceClient,
};
use sqlx::{Connection, PgConnection};

use crate::{
    database::{self, Backend, Database},
    load::{self, GRPC_CONNECTIONS, Rng, Rpc},
    process::{AUTH, Binaries, Service},
    report::Report,
    stack::auth_env,
    storm::default_argon2,
};

/// Calls in flight at once, spread over [`GRPC_CONNECTIONS`] connections.
const STREAMS: usize = 32;

const TOKENS_PER_USER: i64 = 2;
const USERS: i64 = 1_000_000;
const FEW_USERS: i64 = 10;
/// How long the loaded tokens stay live, in microseconds (a day, the default TTL).
const TOKEN_LIFETIME_US: i64 = 86_400_000_000;

const LOAD_USERS: &str = "INSERT INTO users (id, username, username_key, email, email_key, \
     password_hash, role, date_joined) \
     SELECT i, 'user' || i, 'user' || i, 'user' || i || '@example.com', \
     'user' || i || '@example.com', $2, 'CLERK', $3 FROM generate_series(1, $1::bigint) AS i";
/// New users after the bulk load get the next ids.
const ADVANCE_USER_IDS: &str = "SELECT setval(pg_get_serial_sequence('users', 'id'), $1)";
const LOAD_TOKENS: &str = "INSERT INTO credentials (digest, user_id, kind, family, created_at, \
     expires_at) \
     SELECT digest, (i - 1) / $2 + 1, 'token', digest, $3, $4 FROM \
     (SELECT i, encode(sha256(convert_to(lpad(to_hex(i), 40, '0'), 'UTF8')), 'hex') AS digest \
     FROM generate_series(1, $1::bigint) AS i) AS keys";
const ANALYZE: &str = "ANALYZE users, credentials";

/// An auth service on a bulk-loaded database.
struct Loaded {
    service: Service,
    tokens: u64,
    _database: Database,
}

pub async fn run(
    binaries: &Binaries,
    backend: &Backend,
    dir: &Path,
    report: &mut Report,
) -> Result<(), String> {
    report.heading(&format!(
        "5. ValidateToken of random live keys, {USERS} users with {} tokens vs {FEW_USERS} users, \
         {STREAMS} streams over {GRPC_CONNECTIONS} HTTP/2 connections",
        USERS * TOKENS_PER_USER
    ));
    let few = load(binaries, backend, dir, "auth-10-users", FEW_USERS).await?;
    let many = load(binaries, backend, dir, "auth-1m-users", USERS).await?;
    let turns = [
        random_validations(&few, 1).await,
        random_validations(&many, 2).await,
    ];
    few.service.reset_peak();
    many.service.reset_peak();
    let [few_summary, many_summary] = load::in_turns(turns).await;
    let (few_row, many_row) = (
        format!("{FEW_USERS} users, {} tokens", few.tokens),
        format!("{USERS} users, {} tokens", many.tokens),
    );
    report.table(&[
        (few_row.as_str(), few_summary),
        (many_row.as_str(), many_summary),
    ]);
    report.p99(
        "5 scale",
        ("p99 with 1,000,000 users", many_summary.p99),
        ("with 10", few_summary.p99),
        1.5,
    );
    report.memory(&[&few.service, &many.service]);
    Ok(())
}

/// [`STREAMS`] callers validating keys drawn at random from every live one.
async fn random_validations(loaded: &Loaded, seed: u64) -> Vec<Rpc> {
    let channels = load::channels(&loaded.service.url(), GRPC_CONNECTIONS).await;
    let tokens = loaded.tokens;
    (0..STREAMS)
        .map(|i| {
            let channel = channels[i % channels.len()].clone();
            let mut rng = Rng::new(seed * 1000 + i as u64);
            Rpc::new(move || {
                let mut client = AuthServiceClient::new(channel.clone());
                let request = ValidateTokenRequest {
                    key: key(rng.one_to(tokens)),
                    kind: CredentialKind::Token.into(),
                };
                async move { client.validate_token(request).await.is_ok() }
            })
        })
        .collect()
}

/// A fresh database with `users` users and [`TOKENS_PER_USER`] live tokens each, and an auth
/// service started on it afterwards with its cache off, so every check reads the database.
async fn load(
    binaries: &Binaries,
    backend: &Backend,
    dir: &Path,
    name: &'static str,
    users: i64,
) -> Result<Loaded, String> {
    let database = database::create(backend, name.replace('-', "_").as_str()).await?;
    // The service creates its schema at start; it is stopped again before the load.
    drop(Service::start(
        binaries,
        AUTH,
        name,
        auth_env(database.url()),
        dir,
    )?);

    let started = Instant::now();
    let now_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_micros()).unwrap_or(i64::MAX)
        });
    let (_, hash) = default_argon2();
    let tokens = users * TOKENS_PER_USER;
    let mut db = PgConnection::connect(database.url())
        .await
        .map_err(failed("a connection"))?;
    sqlx::query(LOAD_USERS)
        .bind(users)
        .bind(&hash)
        .bind(now_us)
        .execute(&mut db)
        .await
        .map_err(failed("users"))?;
    sqlx::query(ADVANCE_USER_IDS)
        .bind(users)
        .execute(&mut db)
        .await
        .map_err(failed("user ids"))?;
    sqlx::query(LOAD_TOKENS)
        .bind(tokens)
        .bind(TOKENS_PER_USER)
        .bind(now_us)
        .bind(now_us + TOKEN_LIFETIME_US)
        .execute(&mut db)
        .await
        .map_err(failed("tokens"))?;
    sqlx::query(ANALYZE)
        .execute(&mut db)
        .await
        .map_err(failed("statistics"))?;
    println!(
        "   {name}: loaded {users} users and {tokens} tokens in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // Every check takes the database path, as with a cache too small for the live keys:
    // auth's own cache would otherwise hold all 20 keys of the small database and none of the
    // large one's, and the figure would compare a cache with a database.
    let mut env = auth_env(database.url());
    env.push(("VERDICT_CACHE_LEASE_MS", "0".to_owned()));
    let service = Service::start(binaries, AUTH, name, env, dir)?;
    Ok(Loaded {
        service,
        tokens: u64::try_from(tokens).unwrap_or(0),
        _database: database,
    })
}

fn failed(what: &'static str) -> impl Fn(sqlx::Error) -> String {
    move |e| format!("bulk load of {what}: {e}")
}

/// `i` as the service hands out keys: 40 lowercase hex digits.
fn key(i: u64) -> String {
    format!("{i:040x}")
}
