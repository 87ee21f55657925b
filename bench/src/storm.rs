//! Scenario 4: a login storm (each clerk logging in again and again, all at once) while
//! validations arrive at a fixed, moderate rate. Logins per second are measured against raw
//! argon2id verifies per second with the same parameters on as many threads as the service
//! hashes with, in this run; the validations' p99 during the storm against their p99 alone.

use std::time::{Duration, Instant};

use argon2::{
    Algorithm, Argon2, Block, Params, PasswordHash, PasswordHasher as _, Version,
    password_hash::SaltString,
};
use proto::auth::v1::{
    CredentialKind, LoginRequest, ValidateTokenRequest, auth_service_client::AuthServiceClient,
};

use crate::{
    load::{self, GRPC_CONNECTIONS, ROUND, ROUNDS, Record, Rpc},
    report::{Report, ms, ratio},
    stack::{PASSWORD, Stack},
};

/// The service's argon2id parameters when `ARGON2_*` are unset, as the bench leaves them.
const ARGON2_MEMORY_KIB: u32 = 19456;
const ARGON2_ITERATIONS: u32 = 2;
const ARGON2_PARALLELISM: u32 = 1;

const VALIDATIONS_PER_SECOND: u32 = 500;

pub async fn run(stack: &Stack, report: &mut Report) {
    let threads: usize = stack
        .auth
        .env("HASHING_CONCURRENCY")
        .and_then(|value| value.parse().ok())
        .expect("the bench sets HASHING_CONCURRENCY");

    let channels = load::channels(&stack.auth.url(), GRPC_CONNECTIONS).await;
    let key = stack.admin_key.clone();
    let mut next = 0;
    let validate = move || {
        next += 1;
        let mut client = AuthServiceClient::new(channels[next % channels.len()].clone());
        let request = ValidateTokenRequest {
            key: key.clone(),
            kind: CredentialKind::Token.into(),
        };
        async move { client.validate_token(request).await.is_ok() }
    };
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

    // Raw verifies, validations alone and the storm take turns, as in `load::in_turns`.
    stack.auth.reset_peak();
    let (mut verified, mut verifying) = (0, Duration::ZERO);
    let (mut alone, mut storm, mut during) =
        (Record::default(), Record::default(), Record::default());
    for round in 0..ROUNDS {
        let (count, took) = raw_verifies(threads, ROUND).await;
        verified += count;
        verifying += took;
        let warmup = load::warmup(round);
        alone.extend(
            load::fixed_rate(VALIDATIONS_PER_SECOND, warmup, ROUND, validate.clone()).await,
        );
        let ((back, logged_in), validated) = tokio::join!(
            load::closed(logins, warmup, ROUND),
            load::fixed_rate(VALIDATIONS_PER_SECOND, warmup, ROUND, validate.clone()),
        );
        logins = back;
        storm.extend(logged_in);
        during.extend(validated);
    }
    let verifies = verified as f64 / verifying.as_secs_f64();
    let (logins, alone, during) = (storm.summary(), alone.summary(), during.summary());

    report.heading(&format!(
        "4. Login storm ({} clerks, {} at once) with {VALIDATIONS_PER_SECOND} ValidateToken/s",
        stack.clerks.len(),
        stack.clerks.len()
    ));
    report.table(&[
        ("Login during the storm", logins),
        ("ValidateToken alone (fixed rate)", alone),
        ("ValidateToken during the storm (fixed rate)", during),
    ]);
    report.note(&format!(
        "raw argon2id verifies (m={ARGON2_MEMORY_KIB} KiB, t={ARGON2_ITERATIONS}, \
         p={ARGON2_PARALLELISM}) on {threads} thread(s) = HASHING_CONCURRENCY: {verifies:.1}/s"
    ));
    let share = ratio(logins.per_second, verifies);
    report.check(
        "4 login storm",
        ">= 90% of raw argon2 verifies/s on the hashing threads",
        format!(
            "{:.1}/s of {verifies:.1}/s = {:.1}%",
            logins.per_second,
            100.0 * share
        ),
        share >= 0.90,
    );
    report.check(
        "4 login storm",
        "validation p99 during the storm <= 2x alone",
        format!(
            "{} vs {} = {:.2}x",
            ms(during.p99),
            ms(alone.p99),
            ratio(during.p99.as_secs_f64(), alone.p99.as_secs_f64())
        ),
        during.p99 <= alone.p99 * 2,
    );
    report.memory(&[&stack.auth]);
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
