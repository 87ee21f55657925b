//! The system under test: the three release binaries on one backend, seeded as a small shop is
//! (an admin made with `createsuperuser`, clerks who log in, 20 products), with the credentials
//! and ids the scenarios use.

use std::path::Path;

use axum::body::Bytes;
use proto::{
    auth::v1::{
        CredentialKind, LoginRequest, RegisterRequest, User, ValidateTokenRequest,
        auth_service_client::AuthServiceClient,
    },
    inventory::v1::{CreateProductRequest, inventory_service_client::InventoryServiceClient},
};
use serde_json::Value;

use crate::{
    database::{self, Backend, Database},
    http::HttpRequest,
    load,
    process::{AUTH, Binaries, GATEWAY, INVENTORY, Service},
};

/// The gateway's product list, which the read scenarios and the HTTP baseline answer.
pub const INVENTORY_PATH: &str = "/api/inventory/";
/// Every account's password (it passes the Django-style validators).
pub const PASSWORD: &str = "Bench12345";
/// The accounts of the login storm, one per concurrent login.
pub const STORM_USERS: usize = 16;
pub const PRODUCTS: usize = 20;
const ADMIN: &str = "bench";

/// The running services and what they were seeded with. Dropping it stops the services, then
/// drops the databases.
pub struct Stack {
    pub gateway: Service,
    pub inventory: Service,
    pub auth: Service,
    /// The admin's token: valid for the whole run, as no scenario logs the admin in again.
    pub admin_key: String,
    /// The storm's clerks' usernames.
    pub clerks: Vec<String>,
    /// A product to read with GetProduct.
    pub product_id: i64,
    /// The gateway's answer to the admin's `GET /api/inventory/`, as it came.
    pub inventory_page: Bytes,
    /// The admin as auth validates them: the caller the auth layer would pin.
    pub admin: User,
    // After the services, so they are stopped first.
    pub inventory_database: Database,
    _auth_database: Database,
}

/// `HASHING_CONCURRENCY` as the service defaults it (the CPUs, on threads of the lowest
/// priority), passed explicitly so that the login storm knows how many threads it is measured
/// against.
pub fn hashing_concurrency() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// The auth service's environment on `database_url`: the defaults, argon2's included, with
/// the hashing threads stated.
pub fn auth_env(database_url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AUTH_DATABASE_URL", database_url.to_owned()),
        ("HASHING_CONCURRENCY", hashing_concurrency().to_string()),
    ]
}

impl Stack {
    /// The stack as shipped, on fresh databases of `backend`, the services' logs in `dir`.
    pub async fn start(binaries: &Binaries, backend: &Backend, dir: &Path) -> Result<Self, String> {
        Self::start_with(binaries, backend, dir, &[]).await
    }

    /// As [`Stack::start`], with `extra` settings given to all three services.
    pub async fn start_with(
        binaries: &Binaries,
        backend: &Backend,
        dir: &Path,
        extra: &[(&'static str, String)],
    ) -> Result<Self, String> {
        let auth_db = database::create(backend, "auth").await?;
        let inventory_db = database::create(backend, "inventory").await?;
        let with_extra = |mut env: Vec<(&'static str, String)>| {
            env.extend_from_slice(extra);
            env
        };

        let env = auth_env(auth_db.url());
        let mut superuser = env.clone();
        superuser.push(("AUTH_SUPERUSER_PASSWORD", PASSWORD.to_owned()));
        binaries.run(
            AUTH,
            &[
                "createsuperuser",
                "--username",
                ADMIN,
                "--email",
                "bench@example.com",
            ],
            &superuser,
        )?;
        let auth = Service::start(binaries, AUTH, "auth", with_extra(env), dir)?;
        let inventory = Service::start(
            binaries,
            INVENTORY,
            "inventory",
            with_extra(vec![
                ("INVENTORY_DATABASE_URL", inventory_db.url().to_owned()),
                ("AUTH_URL", auth.url()),
            ]),
            dir,
        )?;
        let gateway = Service::start(
            binaries,
            GATEWAY,
            "gateway",
            with_extra(vec![
                ("AUTH_URL", auth.url()),
                ("INVENTORY_URL", inventory.url()),
                // The mixed workload's logins all come from one address: a login route
                // limited to 20 a minute per address would measure the limit.
                ("THROTTLE_AUTH_RATE", "off".to_owned()),
            ]),
            dir,
        )?;

        let mut auth_client =
            AuthServiceClient::new(load::channels(&auth.url(), 1).await.remove(0));
        let admin_key = login(&mut auth_client, ADMIN).await?;
        let admin = auth_client
            .validate_token(ValidateTokenRequest {
                key: admin_key.clone(),
                kind: CredentialKind::Token.into(),
            })
            .await
            .map_err(|status| format!("ValidateToken: {status}"))?
            .into_inner()
            .user
            .ok_or("ValidateToken: no user")?;
        let mut clerks = Vec::with_capacity(STORM_USERS);
        for i in 1..=STORM_USERS {
            let username = format!("clerk{i:02}");
            auth_client
                .register(RegisterRequest {
                    username: Some(username.clone()),
                    email: Some(format!("{username}@example.com")),
                    password: Some(PASSWORD.to_owned()),
                    ..Default::default()
                })
                .await
                .map_err(|status| format!("Register {username}: {status}"))?;
            clerks.push(username);
        }

        let mut inventory_client =
            InventoryServiceClient::new(load::channels(&inventory.url(), 1).await.remove(0));
        let mut product_id = 0;
        for i in 1..=PRODUCTS {
            let request = CreateProductRequest {
                name: Some(format!("Widget {i}")),
                description: Some(format!("A widget of size {i}, for the benchmark")),
                price: Some(format!("{i}.99")),
                quantity: Some(i64::try_from(i * 10).unwrap_or(0)),
            };
            product_id = inventory_client
                .create_product(load::authorized(&admin_key, request))
                .await
                .map_err(|status| format!("CreateProduct: {status}"))?
                .into_inner()
                .id;
        }

        let inventory_page = inventory_page(&gateway, &admin_key).await?;
        Ok(Self {
            gateway,
            inventory,
            auth,
            admin_key,
            clerks,
            product_id,
            inventory_page,
            admin,
            inventory_database: inventory_db,
            _auth_database: auth_db,
        })
    }

    /// The three services, for memory figures.
    pub fn services(&self) -> [&Service; 3] {
        [&self.gateway, &self.inventory, &self.auth]
    }
}

/// Logs `username` in over gRPC: its new token.
pub async fn login(
    client: &mut AuthServiceClient<tonic::transport::Channel>,
    username: &str,
) -> Result<String, String> {
    let response = client
        .login(LoginRequest {
            username: Some(username.to_owned()),
            password: Some(PASSWORD.to_owned()),
            ..Default::default()
        })
        .await
        .map_err(|status| format!("Login {username}: {status}"))?;
    response
        .into_inner()
        .token
        .map(|token| token.key)
        .ok_or_else(|| format!("Login {username}: no token"))
}

/// Waits until the gateway reaches both services (inventory reports auth's health on a timer),
/// then reads the product list the baseline will answer with.
async fn inventory_page(gateway: &Service, key: &str) -> Result<Bytes, String> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        match HttpRequest::get(gateway.addr(), "/readyz/", None)
            .send_once()
            .await
        {
            Ok((status, _)) if status.is_success() => break,
            _ if tokio::time::Instant::now() > deadline => {
                return Err("the gateway never became ready".to_owned());
            }
            _ => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
    let (status, body) = HttpRequest::get(gateway.addr(), INVENTORY_PATH, Some(key))
        .send_once()
        .await?;
    let document: Value = serde_json::from_slice(&body)
        .map_err(|e| format!("GET {INVENTORY_PATH} answered {status} and no JSON: {e}"))?;
    match document.as_array() {
        Some(products) if status.is_success() && products.len() == PRODUCTS => Ok(body),
        _ => Err(format!(
            "GET {INVENTORY_PATH} answered {status}, not {PRODUCTS} products: {document}"
        )),
    }
}
