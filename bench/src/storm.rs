//! Scenario 4: a login storm (each clerk logging in again and again over gRPC, all at once)
//! while `GET /api/me/` arrives at the gateway at a fixed, moderate rate. Logins per second
//! are measured against raw argon2id verifies per second with the same parameters on every
//! core, in this run; the `GET /api/me/` p99 during the storm against its p99 alone. The bench's
//! own generator drives both (wrk has no fixed rate): a few hundred calls a second are far
//! below its ceiling, which scenario 1 prints.

use std::time::{Duration, Instant};

use argon2::{
    Algorithm, Argon2, Block, Params, PasswordHash, PasswordHasher as _, Version,
    password_hash::SaltString,
};
use proto::auth::v1::{LoginRequest, auth_service_client::AuthServiceClient};

use crate::{
    http::{HttpPool, HttpRequest},
    load::{self, GRPC_CONNECTIONS, ROUND, ROUNDS, Record, Rpc, Summary},
    report::Report,
    stack::{PASSWORD, Stack},
};

/// The service's argon2id parameters when `ARGON2_*` are unset, as the bench leaves them.
const ARGON2_MEMORY_KIB: u32 = 19456;
const ARGON2_ITERATIONS: u32 = 2;
const ARGON2_PARALLELISM: u32 = 1;

const PROBES_PER_SECOND: u32 = 500;
const PROBE_PATH: &str = "/api/me/";

pub async fn run(stack: &Stack, report: &mut Report) {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let pool = HttpPool::new(HttpRequest::get(
        stack.gateway.addr(),
        PROBE_PATH,
        Some(&stack.admin_key),
    ));
    let probe = move || pool.clone().call();
    let login_channels = load::channels(&stack.auth.url(), GRPC_CONNECTIONS).await;
    let mut logins: Vec<Rpc> = stack
        .clerks
        .iter()
        .enumerate()
        .map(|(i, username)| {
            let channel = login_channels[i % login_channels.len()].clone();
            let username = username.clone();
            Rpc::new(move || {
                let mut client = AuthServiceClient::new(channel.clone());
                let request = LoginRequest {
                    username: Some(username.clone()),
                    password: Some(PASSWORD.to_owned()),
                    ..Default::default()
                };
                async move { client.login(request).await.is_ok() }
            })
        })
        .collect();

    // Raw verifies, probes alone and the storm take turns, as in `load::in_turns`.
    for service in stack.services() {
        service.reset_peak();
    }
    let (mut verified, mut verifying) = (0, Duration::ZERO);
    let (mut alone, mut storm, mut during) =
        (Record::default(), Record::default(), Record::default());
    for round in 0..ROUNDS {
        let (count, took) = raw_verifies(threads, ROUND).await;
        verified += count;
        verifying += took;
        let warmup = load::warmup(round);
        alone.extend(load::fixed_rate(PROBES_PER_SECOND, warmup, ROUND, probe.clone()).await);
        let ((back, logged_in), validated) = tokio::join!(
            load::closed(logins, warmup, ROUND),
            load::fixed_rate(PROBES_PER_SECOND, warmup, ROUND, probe.clone()),
        );
        logins = back;
        storm.extend(logged_in);
        during.extend(validated);
    }
    let verifies = verified as f64 / verifying.as_secs_f64();
    let (logins, alone, during) = (storm.summary(), alone.summary(), during.summary());

    report.heading(&format!(
        "4. Login storm ({} clerks, {} at once), GET {PROBE_PATH} {PROBES_PER_SECOND} times a second",
        stack.clerks.len(),
        stack.clerks.len()
    ));
    report.table(&[
        ("Login during the storm", logins),
        ("GET /api/me/ alone (fixed rate)", alone),
        ("GET /api/me/ during the storm (fixed rate)", during),
    ]);
    let hashing = stack
        .auth
        .env("HASHING_CONCURRENCY")
        .unwrap_or("its default");
    report.note(&format!(
        "raw argon2id verifies (m={ARGON2_MEMORY_KIB} KiB, t={ARGON2_ITERATIONS}, \
         p={ARGON2_PARALLELISM}) on {threads} thread(s), every core: {verifies:.1}/s; \
         the service hashes on HASHING_CONCURRENCY={hashing}"
    ));
    let raw = Summary {
        per_second: verifies,
        ..logins
    };
    report.rate(
        "4 storm",
        ("logins", logins),
        ("raw argon2id on every core", raw),
        0.90,
    );
    report.p99(
        "4 storm",
        ("GET /api/me/ p99 in the storm", during.p99),
        ("alone", alone.p99),
        2.0,
    );
    report.memory(&stack.services());
}

/// The service's default argon2id, and a hash of [`PASSWORD`] made with it (a fixed salt: every
/// bulk-loaded user may share it).
pub fn default_argon2() -> (Argon2<'static>, String) {
    let params = Params::new(
        ARGON2_MEMORY_KIB,
        ARGON2_ITERATIONS,
        ARGON2_PARALLELISM,
        None,
    )
    .expect("valid argon2 parameters");
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let salt = SaltString::encode_b64(b"bench-fixed-salt").expect("a salt");
    let hash = argon2
        .hash_password(PASSWORD.as_bytes(), &salt)
        .expect("a hash")
        .to_string();
    (argon2, hash)
}

/// Verifies of [`PASSWORD`] on `threads` threads at once for `duration`, and the time they took.
/// Each thread keeps its working memory from one verify to the next, as the service's hashing
/// slots do: a fresh 19 MiB per verify would measure the allocator's page faults too.
async fn raw_verifies(threads: usize, duration: Duration) -> (u64, Duration) {
    tokio::task::spawn_blocking(move || {
        let (argon2, hash) = default_argon2();
        let hash = PasswordHash::new(&hash).expect("a PHC string");
        let mut salt = [0u8; 64];
        let salt = hash
            .salt
            .expect("a salt")
            .decode_b64(&mut salt)
            .expect("a base64 salt");
        let expected = hash.hash.expect("a hash");
        let started = Instant::now();
        let verified: u64 = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    scope.spawn(|| {
                        let mut blocks = vec![Block::default(); argon2.params().block_count()];
                        let mut output = vec![0u8; expected.len()];
                        let mut verified = 0;
                        while started.elapsed() < duration {
                            argon2
                                .hash_password_into_with_memory(
                                    PASSWORD.as_bytes(),
                                    salt,
                                    &mut output,
                                    &mut blocks,
                                )
                                .expect("a hash");
                            assert_eq!(output, expected.as_bytes(), "the password verifies");
                            verified += 1;
                        }
                        verified
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|worker| worker.join().expect("a verifier ends"))
                .sum()
        });
        (verified, started.elapsed())
    })
    .await
    .expect("the verifiers end")
}
