//! Calls to a service that runs as several replicas. [`Targets`] are the endpoints `AUTH_URL` or
//! `INVENTORY_URL` list; each name among them is looked up again every `RESOLVE_INTERVAL_MS`,
//! so a replica that a scaled service gains or loses is found. Every address is watched over
//! `grpc.health.v1.Health`, by the service's name, and only those answering SERVING are in the
//! balanced tonic [`Channel`] ([`Upstream::channel`]); when none does, all are, so that calls fail
//! at once (as UNAVAILABLE) instead of waiting for a replica to come back.
//!
//! [`Upstream`] is the tower service clients call through: it sends a failed call a second time
//! when that cannot do a thing twice ([`Resend`]), after the balancer has dropped every address
//! that no longer answers its health check, so the second try goes to another replica.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    future::Future,
    net::SocketAddr,
    pin::Pin,
    str::FromStr,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use http_body::Frame;
use http_body_util::{BodyExt, Full, StreamBody};
use proto::idempotency;
use tokio::{
    sync::{mpsc, oneshot},
    task::JoinHandle,
    time::Instant,
};
use tonic::{
    body::Body,
    transport::{Channel, Endpoint, channel::Change},
};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tower::{Service, ServiceExt};

use crate::env::{self, ConfigError};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How long a health check may take, on the way to a retry.
const CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// How long a watcher waits before it asks a replica that stopped answering again.
const RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// How often the health connection is pinged, and how long a ping may go unanswered: a host that
/// vanished without closing the connection is noticed by this.
const HEALTH_KEEPALIVE: Duration = Duration::from_secs(2);

/// Changes queued for the balancer, which reads them when it next routes a call.
const BALANCER_QUEUE: usize = 1024;

/// `RESOLVE_INTERVAL_MS`: how often the names in the targets are looked up again.
pub fn resolve_interval_from_env() -> Result<Duration, ConfigError> {
    env::millis_or("RESOLVE_INTERVAL_MS", "5000")
}

/// One or more `http://host:port` endpoints, comma-separated. A host may be a name that resolves
/// to several addresses (a scaled docker-compose service): each address is a replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Targets(Vec<Target>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    /// A name or an IP literal (IPv6 without its brackets).
    host: String,
    port: u16,
}

impl FromStr for Targets {
    type Err = String;

    /// `https://` is refused: this build has no TLS, so every call would fail later, one by one,
    /// instead of at start-up.
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let targets = value
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(|part| {
                let uri: http::Uri = part.parse().map_err(|err| format!("{part}: {err}"))?;
                match (uri.scheme_str(), uri.host()) {
                    (Some("http"), Some(host)) => Ok(Target {
                        host: host
                            .trim_start_matches('[')
                            .trim_end_matches(']')
                            .to_owned(),
                        port: uri.port_u16().unwrap_or(80),
                    }),
                    (Some("https"), _) => Err("https is not supported (this build has no TLS): \
                         use http://host:port, with TLS terminated in front of the service if \
                         needed"
                        .to_owned()),
                    _ => Err(format!("{part}: expected http://host:port")),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        if targets.is_empty() {
            return Err("expected http://host:port, or several separated by commas".to_owned());
        }
        Ok(Self(targets))
    }
}

impl fmt::Display for Targets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, Target { host, port }) in self.0.iter().enumerate() {
            let comma = if i == 0 { "" } else { "," };
            if host.contains(':') {
                write!(f, "{comma}http://[{host}]:{port}")?;
            } else {
                write!(f, "{comma}http://{host}:{port}")?;
            }
        }
        Ok(())
    }
}

/// How an [`Upstream`] reaches its replicas.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// `RESOLVE_INTERVAL_MS`: how often names are looked up again.
    pub resolve_interval: Duration,
    /// How long a call may take, its second try included, when the caller asks no shorter.
    pub timeout: Duration,
    /// How long a connection attempt may take.
    pub connect_timeout: Duration,
}

/// Whether a failed call may be sent again, by what it is: a read (in
/// [`idempotency::READS`], or a health check), a write that carries an idempotency key, or
/// another write, which is sent again only when it never left (its connection could not be
/// made).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resend {
    Always,
    OnlyUnsent,
}

impl Resend {
    fn of<B>(request: &http::Request<B>) -> Self {
        let path = request.uri().path();
        let read = idempotency::READS.contains(&path) || path == HEALTH_CHECK;
        if read || request.headers().contains_key(idempotency::METADATA_KEY) {
            Self::Always
        } else {
            Self::OnlyUnsent
        }
    }

    /// Whether the first try's outcome calls for a second: UNAVAILABLE from a replica, or a
    /// transport failure (the replica died, or was never reached). Never after a timeout, which
    /// used up the caller's deadline.
    fn after(self, outcome: &Result<Answer, BoxError>) -> bool {
        match outcome {
            Ok(answer) => self == Self::Always && answer.unavailable,
            Err(error) if caused_by::<tonic::TimeoutExpired>(error.as_ref()) => false,
            // Nothing reached a replica that could not be connected to.
            Err(error) if caused_by::<tonic::ConnectError>(error.as_ref()) => true,
            Err(_) => self == Self::Always,
        }
    }
}

/// A replica's answer, and whether it says UNAVAILABLE (in its headers, or, for an answer read
/// whole, in its trailers).
struct Answer {
    response: http::Response<Body>,
    unavailable: bool,
}

fn says_unavailable(headers: &http::HeaderMap) -> bool {
    headers
        .get("grpc-status")
        .is_some_and(|status| status == "14")
}

/// Whether `error` or one of its sources is an `E`.
fn caused_by<E: std::error::Error + 'static>(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if error.is::<E>() {
            return true;
        }
        cause = error.source();
    }
    false
}

/// The replicas of one service, as one tower service for tonic's generated clients
/// (`AuthServiceClient::new(upstream)`). Cheap to clone. Unary and server-streaming calls only:
/// a request's body is read whole before it goes out, to be sent again if need be. A stream
/// that sends (WatchRevocations) goes on [`Upstream::channel`].
#[derive(Debug, Clone)]
pub struct Upstream {
    /// Behind one pointer: every call clones the client, and a channel's clone alone is several
    /// atomic counts (its buffer's sender, semaphore and handle).
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    channel: Channel,
    events: mpsc::UnboundedSender<Event>,
    timeout: Duration,
}

impl Upstream {
    /// Starts finding and watching the replicas of `service` (its gRPC name, as its health
    /// reports it) at `targets`. The task ends when the last clone of the channel is dropped.
    pub fn spawn(service: &'static str, targets: &Targets, settings: Settings) -> Self {
        let (channel, balancer) = Channel::balance_channel(BALANCER_QUEUE);
        let (events, inbox) = mpsc::unbounded_channel();
        let discovery = Discovery {
            service,
            targets: targets.clone(),
            settings,
            balancer,
            events: events.clone(),
            resolved: BTreeMap::new(),
            watchers: BTreeMap::new(),
            inserted: BTreeSet::new(),
        };
        tokio::spawn(discovery.run(inbox));
        Self {
            shared: Arc::new(Shared {
                channel,
                events,
                timeout: settings.timeout,
            }),
        }
    }

    /// The balanced channel itself, with no second tries: for streams, and for health checks.
    pub fn channel(&self) -> Channel {
        self.shared.channel.clone()
    }

    /// Resolves once the replicas in the balancer have been checked and those that do not
    /// answer taken out.
    async fn recheck(&self) {
        let (done, checked) = oneshot::channel();
        if self.shared.events.send(Event::Recheck(done)).is_ok() {
            let _ = checked.await;
        }
    }

    async fn send(self, request: http::Request<Body>) -> Result<http::Response<Body>, BoxError> {
        let timeout = self.shared.timeout;
        let budget = grpc_timeout(request.headers()).map_or(timeout, |t| t.min(timeout));
        let deadline = Instant::now() + budget;
        let resend = Resend::of(&request);
        let (parts, body) = request.into_parts();
        let body = match tokio::time::timeout_at(deadline, body.collect()).await {
            Ok(collected) => collected?.to_bytes(),
            Err(_elapsed) => return Err(tonic::TimeoutExpired(()).into()),
        };
        let attempt = |channel: Channel| {
            let mut request = http::Request::new(Body::new(Full::new(body.clone())));
            *request.method_mut() = parts.method.clone();
            *request.uri_mut() = parts.uri.clone();
            *request.version_mut() = parts.version;
            *request.headers_mut() = parts.headers.clone();
            if parts.headers.contains_key(GRPC_TIMEOUT) {
                let left = deadline.saturating_duration_since(Instant::now());
                set_grpc_timeout(request.headers_mut(), left);
            }
            async move {
                let response =
                    match tokio::time::timeout_at(deadline, channel.oneshot(request)).await {
                        Ok(answer) => answer.map_err(BoxError::from)?,
                        Err(_elapsed) => return Err(tonic::TimeoutExpired(()).into()),
                    };
                let unavailable = says_unavailable(response.headers());
                if resend == Resend::OnlyUnsent {
                    return Ok(Answer {
                        response,
                        unavailable,
                    });
                }
                // Read whole, so that a replica dying between the answer's head and its end
                // leaves a call that can be sent again, not a broken answer.
                let (head, body) = response.into_parts();
                let collected = match tokio::time::timeout_at(deadline, body.collect()).await {
                    Ok(collected) => collected.map_err(BoxError::from)?,
                    Err(_elapsed) => return Err(tonic::TimeoutExpired(()).into()),
                };
                let trailers = collected.trailers().cloned();
                let unavailable = unavailable || trailers.as_ref().is_some_and(says_unavailable);
                let mut frames = vec![Ok::<_, std::convert::Infallible>(Frame::data(
                    collected.to_bytes(),
                ))];
                frames.extend(trailers.map(|trailers| Ok(Frame::trailers(trailers))));
                let body = Body::new(StreamBody::new(tokio_stream::iter(frames)));
                Ok(Answer {
                    response: http::Response::from_parts(head, body),
                    unavailable,
                })
            }
        };
        let first = attempt(self.shared.channel.clone()).await;
        if !resend.after(&first) {
            return first.map(|answer| answer.response);
        }
        tracing::debug!(path = parts.uri.path(), "sending again, to another replica");
        if tokio::time::timeout_at(deadline, self.recheck())
            .await
            .is_err()
        {
            return first.map(|answer| answer.response);
        }
        attempt(self.shared.channel.clone())
            .await
            .map(|answer| answer.response)
    }
}

impl Service<http::Request<Body>> for Upstream {
    type Response = http::Response<Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    /// Always ready: each call waits for the balancer itself.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        Box::pin(self.clone().send(request))
    }
}

const GRPC_TIMEOUT: &str = "grpc-timeout";

/// A health check changes nothing either.
const HEALTH_CHECK: &str = "/grpc.health.v1.Health/Check";

/// The `grpc-timeout` a caller set: digits, then a unit (`H`, `M`, `S`, `m`, `u`, `n`).
fn grpc_timeout(headers: &http::HeaderMap) -> Option<Duration> {
    let value = headers.get(GRPC_TIMEOUT)?.to_str().ok()?;
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.saturating_mul(3600)),
        "M" => Duration::from_secs(amount.saturating_mul(60)),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

fn set_grpc_timeout(headers: &mut http::HeaderMap, left: Duration) {
    // At most 8 digits, as the protocol allows; a millisecond at least, so it is not "none".
    let millis = left.as_millis().clamp(1, 99_999_999);
    if let Ok(value) = http::HeaderValue::from_str(&format!("{millis}m")) {
        headers.insert(GRPC_TIMEOUT, value);
    }
}

/// What the discovery task hears.
enum Event {
    /// A watcher's news: whether the replica at this address answers SERVING.
    Health(SocketAddr, bool),
    /// A call failed: check the replicas in the balancer, then answer.
    Recheck(oneshot::Sender<()>),
}

/// The task that keeps the balancer's set of replicas: looks names up, watches each address's
/// health, and inserts or removes addresses as they come and go.
struct Discovery {
    service: &'static str,
    targets: Targets,
    settings: Settings,
    balancer: mpsc::Sender<Change<SocketAddr, Endpoint>>,
    events: mpsc::UnboundedSender<Event>,
    /// The addresses each target last resolved to (kept when a lookup fails).
    resolved: BTreeMap<usize, BTreeSet<SocketAddr>>,
    /// Every resolved address's watcher, and its last news (`None`: none yet).
    watchers: BTreeMap<SocketAddr, Watcher>,
    /// What the balancer holds.
    inserted: BTreeSet<SocketAddr>,
}

struct Watcher {
    task: JoinHandle<()>,
    serving: Option<bool>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Discovery {
    async fn run(mut self, mut inbox: mpsc::UnboundedReceiver<Event>) {
        let mut lookups = tokio::time::interval(self.settings.resolve_interval);
        lookups.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = lookups.tick() => self.resolve().await,
                Some(event) = inbox.recv() => match event {
                    Event::Health(address, serving) => {
                        if let Some(watcher) = self.watchers.get_mut(&address) {
                            watcher.serving = Some(serving);
                        }
                    }
                    Event::Recheck(done) => {
                        let mut waiting = vec![done];
                        // Calls that failed together wait for one check.
                        while let Ok(event) = inbox.try_recv() {
                            match event {
                                Event::Recheck(done) => waiting.push(done),
                                Event::Health(address, serving) => {
                                    if let Some(watcher) = self.watchers.get_mut(&address) {
                                        watcher.serving = Some(serving);
                                    }
                                }
                            }
                        }
                        self.recheck().await;
                        if self.apply().await.is_err() {
                            return;
                        }
                        for done in waiting {
                            let _ = done.send(());
                        }
                        continue;
                    }
                },
                () = self.balancer.closed() => return,
            }
            if self.apply().await.is_err() {
                return;
            }
        }
    }

    /// Looks every target up, and starts or stops watchers to match.
    async fn resolve(&mut self) {
        for (index, target) in self.targets.0.iter().enumerate() {
            match tokio::net::lookup_host((target.host.as_str(), target.port)).await {
                Ok(addresses) => {
                    self.resolved.insert(index, addresses.collect());
                }
                Err(err) => tracing::warn!(
                    service = self.service,
                    host = %target.host,
                    %err,
                    "cannot resolve; keeping its last addresses"
                ),
            }
        }
        let all: BTreeSet<SocketAddr> = self.resolved.values().flatten().copied().collect();
        self.watchers.retain(|address, _| all.contains(address));
        for address in all {
            if !self.watchers.contains_key(&address) {
                let watcher = self.watcher(address);
                self.watchers.insert(address, watcher);
            }
        }
    }

    fn watcher(&self, address: SocketAddr) -> Watcher {
        let task = tokio::spawn(watch(
            self.health_endpoint(address),
            self.service,
            address,
            self.events.clone(),
        ));
        Watcher {
            task,
            serving: None,
        }
    }

    /// A connection of its own for health, so that a replica's health is seen apart from the
    /// calls it serves.
    fn health_endpoint(&self, address: SocketAddr) -> Endpoint {
        endpoint(address)
            .connect_timeout(self.settings.connect_timeout)
            .http2_keep_alive_interval(HEALTH_KEEPALIVE)
            .keep_alive_timeout(HEALTH_KEEPALIVE)
            .keep_alive_while_idle(true)
    }

    /// Asks every known replica for its health at once, those outside the balancer too (one
    /// whose watcher has not reported yet may be the only one left). One that answers SERVING
    /// counts as such; one that does not is out until its watcher hears it is back (the watcher
    /// starts again, so it does not keep trusting a stream that outlived its replica).
    async fn recheck(&mut self) {
        let mut checks = tokio::task::JoinSet::new();
        for &address in self.watchers.keys() {
            let endpoint = endpoint(address).connect_timeout(CHECK_TIMEOUT);
            let service = self.service;
            checks.spawn(async move { (address, check(endpoint, service).await) });
        }
        let results = checks.join_all().await;
        for (address, serving) in results {
            match self.watchers.get_mut(&address) {
                Some(watcher) if serving => watcher.serving = Some(true),
                Some(_) => {
                    let mut watcher = self.watcher(address);
                    watcher.serving = Some(false);
                    self.watchers.insert(address, watcher);
                }
                None => {}
            }
        }
    }

    /// Brings the balancer to the replicas answering SERVING, or to every known one when none
    /// does. One already in that has not been heard of yet stays in (taking it out at start-up,
    /// when all are in and the first watcher reports, would only drop its connection); one newly
    /// found joins once it answers. Errs when the balancer is gone (the channel was dropped).
    async fn apply(&mut self) -> Result<(), ()> {
        let heard = |serving| {
            self.watchers
                .iter()
                .filter(move |(_, watcher)| watcher.serving == serving)
                .map(|(address, _)| *address)
        };
        let serving: BTreeSet<SocketAddr> = heard(Some(true)).collect();
        let wanted: BTreeSet<SocketAddr> = if serving.is_empty() {
            self.watchers.keys().copied().collect()
        } else {
            let unheard = heard(None).filter(|address| self.inserted.contains(address));
            serving.iter().copied().chain(unheard).collect()
        };
        for &address in self.inserted.difference(&wanted) {
            tracing::info!(service = self.service, %address, "replica out");
            self.balancer
                .send(Change::Remove(address))
                .await
                .map_err(drop)?;
        }
        for &address in wanted.difference(&self.inserted) {
            tracing::info!(service = self.service, %address, "replica in");
            let endpoint = endpoint(address)
                .connect_timeout(self.settings.connect_timeout)
                .timeout(self.settings.timeout)
                .tcp_nodelay(true);
            self.balancer
                .send(Change::Insert(address, endpoint))
                .await
                .map_err(drop)?;
        }
        self.inserted = wanted;
        Ok(())
    }
}

fn endpoint(address: SocketAddr) -> Endpoint {
    Endpoint::from_shared(format!("http://{address}")).expect("a socket address is a valid URI")
}

/// Whether the replica behind `endpoint` answers SERVING for `service` within
/// [`CHECK_TIMEOUT`].
async fn check(endpoint: Endpoint, service: &str) -> bool {
    let ask = async {
        let channel = endpoint.connect().await.ok()?;
        let request = HealthCheckRequest {
            service: service.to_owned(),
        };
        let response = HealthClient::new(channel).check(request).await.ok()?;
        Some(response.into_inner().status() == ServingStatus::Serving)
    };
    matches!(
        tokio::time::timeout(CHECK_TIMEOUT, ask).await,
        Ok(Some(true))
    )
}

/// Follows one replica's health over the Watch stream, which the replica pushes to at once when
/// it starts leaving (NOT_SERVING) and which breaks at once when it dies: either way the news is
/// sent on `events`. Reconnects after [`RECONNECT_DELAY`] for as long as the replica is listed.
async fn watch(
    endpoint: Endpoint,
    service: &'static str,
    address: SocketAddr,
    events: mpsc::UnboundedSender<Event>,
) {
    loop {
        if let Ok(channel) = endpoint.connect().await {
            let request = HealthCheckRequest {
                service: service.to_owned(),
            };
            if let Ok(response) = HealthClient::new(channel).watch(request).await {
                let mut stream = response.into_inner();
                while let Ok(Some(message)) = stream.message().await {
                    let serving = message.status() == ServingStatus::Serving;
                    if events.send(Event::Health(address, serving)).is_err() {
                        return;
                    }
                }
            }
        }
        if events.send(Event::Health(address, false)).is_err() {
            return;
        }
        tokio::time::sleep(RECONNECT_DELAY).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVICE: &str = "test.v1.Service";

    fn settings() -> Settings {
        Settings {
            resolve_interval: Duration::from_secs(5),
            // Long: a call that waited for a replica instead of failing would hang the test.
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(1),
        }
    }

    /// A replica that serves health alone, SERVING for [`SERVICE`], on a runtime of its own.
    struct Replica {
        url: String,
        kill: oneshot::Sender<()>,
        thread: std::thread::JoinHandle<()>,
    }

    impl Replica {
        fn start() -> Self {
            let (kill, killed) = oneshot::channel::<()>();
            let (bound, url) = std::sync::mpsc::channel();
            let thread = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.spawn(async move {
                    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                    let url = format!("http://{}", listener.local_addr().unwrap());
                    let (reporter, health) = tonic_health::server::health_reporter();
                    reporter
                        .set_service_status(SERVICE, tonic_health::ServingStatus::Serving)
                        .await;
                    bound.send(url).unwrap();
                    let incoming = tonic::transport::server::TcpIncoming::from(listener);
                    let served = tonic::transport::Server::builder()
                        .add_service(health)
                        .serve_with_incoming(incoming)
                        .await;
                    drop((served, reporter));
                });
                runtime.block_on(async {
                    let _ = killed.await;
                });
                // Dropping the runtime drops every task: the listener and each connection.
            });
            Self {
                url: url.recv().unwrap(),
                kill,
                thread,
            }
        }

        /// Gone with no goodbye: its sockets closed, as the kernel closes a killed process's.
        fn kill(self) {
            let _ = self.kill.send(());
            self.thread.join().unwrap();
        }
    }

    async fn check(upstream: &Upstream) -> Result<ServingStatus, tonic::Code> {
        let request = HealthCheckRequest {
            service: SERVICE.to_owned(),
        };
        match HealthClient::new(upstream.clone()).check(request).await {
            Ok(response) => Ok(response.into_inner().status()),
            Err(status) => Err(status.code()),
        }
    }

    #[tokio::test]
    async fn a_call_fails_at_once_when_no_replica_answers() {
        let replica = Replica::start();
        let targets = replica.url.parse().unwrap();
        replica.kill();
        let upstream = Upstream::spawn(SERVICE, &targets, settings());
        assert_eq!(check(&upstream).await, Err(tonic::Code::Unavailable));
    }

    #[tokio::test]
    async fn a_name_stands_for_the_addresses_it_resolves_to() {
        let replica = Replica::start();
        let port = replica.url.rsplit(':').next().unwrap();
        // `localhost` may resolve to ::1 too, where nothing listens: that address stays out.
        let targets = format!("http://localhost:{port}").parse().unwrap();
        let upstream = Upstream::spawn(SERVICE, &targets, settings());
        for _ in 0..10 {
            assert_eq!(check(&upstream).await, Ok(ServingStatus::Serving));
        }
        replica.kill();
    }

    #[tokio::test]
    async fn reads_spread_over_the_replicas_and_outlive_a_killed_one() {
        let (first, second) = (Replica::start(), Replica::start());
        let targets: Targets = format!("{},{}", first.url, second.url).parse().unwrap();
        let upstream = Upstream::spawn(SERVICE, &targets, settings());
        for _ in 0..20 {
            assert_eq!(check(&upstream).await, Ok(ServingStatus::Serving));
        }
        first.kill();
        for _ in 0..50 {
            assert_eq!(check(&upstream).await, Ok(ServingStatus::Serving));
        }
    }

    #[test]
    fn targets_are_http_endpoints_separated_by_commas() {
        let targets: Targets = "http://auth:50051, http://10.0.0.2:7,http://[::1]:9"
            .parse()
            .unwrap();
        assert_eq!(
            targets.to_string(),
            "http://auth:50051,http://10.0.0.2:7,http://[::1]:9"
        );
        assert_eq!(targets.0[2].host, "::1");
        for bad in ["", ",", "auth:50051", "ftp://auth", "http://a:1,b:2"] {
            assert!(bad.parse::<Targets>().is_err(), "{bad:?}");
        }
        let https = "https://auth:50051".parse::<Targets>().unwrap_err();
        assert!(https.contains("https is not supported"), "{https}");
    }

    #[test]
    fn reads_and_keyed_writes_are_sent_again_other_writes_only_when_unsent() {
        let request = |path: &str, key: bool| {
            let mut request = http::Request::builder().uri(path);
            if key {
                request = request.header(idempotency::METADATA_KEY, "k1");
            }
            request.body(()).unwrap()
        };
        assert_eq!(
            Resend::of(&request("/auth.v1.AuthService/ValidateToken", false)),
            Resend::Always
        );
        assert_eq!(
            Resend::of(&request("/inventory.v1.InventoryService/AdjustStock", true)),
            Resend::Always
        );
        assert_eq!(
            Resend::of(&request(
                "/inventory.v1.InventoryService/AdjustStock",
                false
            )),
            Resend::OnlyUnsent
        );

        let answer = |unavailable| {
            Ok(Answer {
                response: http::Response::new(Body::empty()),
                unavailable,
            })
        };
        let unavailable = || answer(true);
        let never_connected: BoxError = tonic::ConnectError("connection refused".into()).into();
        let lost: BoxError = "connection reset".into();
        let timed_out: BoxError = tonic::TimeoutExpired(()).into();
        assert!(Resend::Always.after(&unavailable()));
        assert!(!Resend::OnlyUnsent.after(&unavailable()));
        assert!(Resend::OnlyUnsent.after(&Err(never_connected)));
        assert!(!Resend::OnlyUnsent.after(&Err(lost)));
        assert!(!Resend::Always.after(&Err(timed_out)));
        assert!(!Resend::Always.after(&answer(false)));
    }

    #[test]
    fn reads_and_writes_grpc_timeouts() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(grpc_timeout(&headers), None);
        set_grpc_timeout(&mut headers, Duration::from_millis(1500));
        assert_eq!(grpc_timeout(&headers), Some(Duration::from_millis(1500)));
        headers.insert(GRPC_TIMEOUT, http::HeaderValue::from_static("2S"));
        assert_eq!(grpc_timeout(&headers), Some(Duration::from_secs(2)));
        headers.insert(GRPC_TIMEOUT, http::HeaderValue::from_static("x"));
        assert_eq!(grpc_timeout(&headers), None);
    }
}
