//! A fake of the auth and inventory services, for the route tests: one in-process tonic server
//! on port 0 that serves both gRPC services and their health (SERVING), with state a test
//! scripts: users by token, a product table, and for any method a fixed answer, a reply or a
//! `tonic::Status` with its details. It records every call, message and metadata, so a test can
//! check what the gateway sent. Unscripted, `ValidateToken` and `GetCurrentUser` answer from the
//! users, `ListProducts` and `GetProduct` from the products, and every other method
//! UNIMPLEMENTED. [`spawn_fake`] starts it and a real gateway in front of it
//! ([`crate::helpers::spawn_gateway`]). The trait implementations are in `services`.

mod services;

use std::{
    any::Any,
    collections::HashMap,
    marker::PhantomData,
    ops::Deref,
    sync::{Arc, Mutex, MutexGuard},
};

use proto::{
    auth::v1::{Role, User, auth_service_server::AuthServiceServer},
    inventory::v1::{Product, inventory_service_server::InventoryServiceServer},
};
use service_kit::testing::Running;
use tonic::{Status, metadata::MetadataMap};

use crate::helpers::{Http, spawn_gateway};
pub use services::*;

/// A method of either service, typed by its request and its reply (the constants are in
/// `services`).
pub struct Method<Request, Reply> {
    name: &'static str,
    types: PhantomData<fn(Request) -> Reply>,
}

impl<Request, Reply> Method<Request, Reply> {
    const fn new(name: &'static str) -> Self {
        Self {
            name,
            types: PhantomData,
        }
    }
}

/// A call the fake received: its metadata and its message.
#[derive(Debug, Clone)]
pub struct Received<T> {
    pub metadata: MetadataMap,
    pub message: T,
}

impl<T> Received<T> {
    /// The value of metadata `key`, if it is text.
    pub fn header(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).and_then(|value| value.to_str().ok())
    }
}

/// One call, its message kept as the method's request type.
struct Call {
    method: &'static str,
    metadata: MetadataMap,
    message: Box<dyn Any + Send>,
}

#[derive(Default)]
struct State {
    /// The users the auth fake knows, by the key of their token.
    users: HashMap<String, User>,
    /// The inventory fake's products, in id order.
    products: Vec<Product>,
    /// Scripted answers by method name, each a `Result<Reply, Status>` of its method.
    answers: HashMap<&'static str, Box<dyn Any + Send>>,
    calls: Vec<Call>,
}

/// The fake's state, shared by its server and the test. Cheap to clone.
#[derive(Clone, Default)]
pub struct Fake {
    state: Arc<Mutex<State>>,
}

impl Fake {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .expect("no test panicked holding the fake")
    }

    /// Lets the token `key` stand for `user`.
    pub fn add_user(&self, key: &str, user: User) {
        self.state().users.insert(key.to_owned(), user);
    }

    /// The product table `ListProducts` and `GetProduct` answer from.
    pub fn set_products(&self, products: Vec<Product>) {
        self.state().products = products;
    }

    /// From now on, `method` answers `answer` to every call.
    pub fn answer<Request, Reply: Send + 'static>(
        &self,
        method: Method<Request, Reply>,
        answer: Result<Reply, Status>,
    ) {
        self.state().answers.insert(method.name, Box::new(answer));
    }

    /// The calls of `method` received so far, oldest first.
    pub fn requests<Request: Clone + 'static, Reply>(
        &self,
        method: Method<Request, Reply>,
    ) -> Vec<Received<Request>> {
        let state = self.state();
        let calls = state.calls.iter().filter(|call| call.method == method.name);
        calls
            .map(|call| Received {
                metadata: call.metadata.clone(),
                message: call.message.downcast_ref::<Request>().unwrap().clone(),
            })
            .collect()
    }

    /// Records the call, then answers it: as scripted, else as `unscripted` says (given the
    /// state and the call).
    fn call<Request, Reply>(
        &self,
        method: Method<Request, Reply>,
        request: tonic::Request<Request>,
        unscripted: impl FnOnce(&State, &Received<Request>) -> Result<Reply, Status>,
    ) -> Result<tonic::Response<Reply>, Status>
    where
        Request: Clone + Send + 'static,
        Reply: Clone + 'static,
    {
        let (metadata, _, message) = request.into_parts();
        let received = Received { metadata, message };
        let mut state = self.state();
        state.calls.push(Call {
            method: method.name,
            metadata: received.metadata.clone(),
            message: Box::new(received.message.clone()),
        });
        let answer = match state.answers.get(method.name) {
            Some(answer) => answer
                .downcast_ref::<Result<Reply, Status>>()
                .expect("an answer of the method's reply type")
                .clone(),
            None => unscripted(&state, &received),
        };
        answer.map(tonic::Response::new)
    }
}

/// Auth's refusal of a wrong password, for `LOGIN` to answer.
pub fn wrong_password() -> Status {
    service_kit::grpc::with_reason(
        tonic::Code::Unauthenticated,
        "wrong password",
        proto::reasons::INVALID_CREDENTIALS,
        proto::reasons::DOMAIN,
    )
}

/// A user the fake can answer with: active, with an email of its name's.
pub fn user(id: i64, username: &str, role: Role) -> User {
    User {
        id,
        username: Some(username.to_owned()),
        email: Some(format!("{username}@example.com")),
        role: role.into(),
        is_active: true,
        date_joined: Some(timestamp(1_700_000_000)),
        ..User::default()
    }
}

/// A product the fake can answer with: "9.99" each, one in stock.
pub fn product(id: i64, name: &str) -> Product {
    Product {
        id,
        name: name.to_owned(),
        description: format!("The {name}"),
        price: "9.99".to_owned(),
        quantity: 1,
        created_at: Some(timestamp(1_700_000_000)),
        updated_at: Some(timestamp(1_700_000_100)),
    }
}

/// The time `seconds` after the epoch.
pub fn timestamp(seconds: i64) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds, nanos: 0 }
}

/// A gateway in front of a [`Fake`]: [`Http`] to it, the fake, and where the fake listens.
pub struct FakeStack {
    http: Http,
    pub fake: Fake,
    /// The fake's `http://127.0.0.1:PORT`, both services' URL.
    pub url: http::Uri,
    /// Dropping these stops the servers.
    servers: Vec<Running>,
}

impl Deref for FakeStack {
    type Target = Http;

    fn deref(&self) -> &Http {
        &self.http
    }
}

/// A gateway with the test configuration in front of a new fake.
pub async fn spawn_fake() -> FakeStack {
    spawn_fake_with(|_| {}).await
}

/// A gateway in front of a new fake, its configuration adjusted by `configure`.
pub async fn spawn_fake_with(configure: impl FnOnce(&mut gateway::Config)) -> FakeStack {
    service_kit::testing::init_logs();
    let fake = Fake::default();
    let (url, server) = serve(fake.clone()).await;
    let (base, gateway, _verdicts) = spawn_gateway(&url, &url, configure).await;
    FakeStack {
        http: Http::ready(base).await,
        fake,
        url,
        servers: vec![server, gateway],
    }
}

impl FakeStack {
    /// Another gateway in front of the fake, its configuration adjusted by `configure` (which
    /// may point it elsewhere); its base URL. It stops with the stack, and is not waited for.
    pub async fn extra_gateway(&mut self, configure: impl FnOnce(&mut gateway::Config)) -> String {
        let (base, gateway, _verdicts) = spawn_gateway(&self.url, &self.url, configure).await;
        self.servers.push(gateway);
        base
    }
}

/// Serves both services of `fake`, and their health, on a free loopback port: its URL.
async fn serve(fake: Fake) -> (http::Uri, Running) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_serving::<AuthServiceServer<services::Api>>()
        .await;
    reporter
        .set_serving::<InventoryServiceServer<services::Api>>()
        .await;
    let api = services::Api(fake);
    let server = Running::spawn(|shutdown| async move {
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        tonic::transport::Server::builder()
            .add_service(health)
            .add_service(AuthServiceServer::new(api.clone()))
            .add_service(InventoryServiceServer::new(api))
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await
            .expect("the fake serves");
        drop(reporter);
    });
    (url.parse().unwrap(), server)
}
