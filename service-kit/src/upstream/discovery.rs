//! Finding and watching the replicas: the task that looks the targets' names up again and again,
//! follows each address's health over `grpc.health.v1.Health`, and keeps the balancer's set of
//! addresses to those answering SERVING (or to all, when none does).

use std::{
    collections::{BTreeMap, BTreeSet},
    net::SocketAddr,
    time::Duration,
};

use tokio::{
    sync::{mpsc, oneshot},
    task::JoinHandle,
};
use tonic::transport::{Endpoint, channel::Change};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use super::{Settings, Targets};

/// How long a health check may take, on the way to a retry.
const CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// How long a watcher waits before it asks a replica that stopped answering again.
const RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// How often the health connection is pinged, and how long a ping may go unanswered: a host that
/// vanished without closing the connection is noticed by this.
const HEALTH_KEEPALIVE: Duration = Duration::from_secs(2);

/// What the discovery task hears.
pub(super) enum Event {
    /// A watcher's news: whether the replica at this address answers SERVING.
    Health(SocketAddr, bool),
    /// A call failed: check the replicas in the balancer, then answer.
    Recheck(oneshot::Sender<()>),
}

/// The task that keeps the balancer's set of replicas: looks names up, watches each address's
/// health, and inserts or removes addresses as they come and go.
pub(super) struct Discovery {
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
    /// The task for `service` at `targets`, adding to and taking from `balancer`. `events` sends
    /// to the inbox [`Discovery::run`] reads: its watchers send their news there, as
    /// [`Upstream`](super::Upstream) sends the rechecks of failed calls.
    pub(super) fn new(
        service: &'static str,
        targets: Targets,
        settings: Settings,
        balancer: mpsc::Sender<Change<SocketAddr, Endpoint>>,
        events: &mpsc::UnboundedSender<Event>,
    ) -> Self {
        Self {
            service,
            targets,
            settings,
            balancer,
            events: events.clone(),
            resolved: BTreeMap::new(),
            watchers: BTreeMap::new(),
            inserted: BTreeSet::new(),
        }
    }

    /// Looks up, watches and applies until the balancer is gone (the channel was dropped).
    pub(super) async fn run(mut self, mut inbox: mpsc::UnboundedReceiver<Event>) {
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
        for (index, (host, port)) in self.targets.endpoints().enumerate() {
            match tokio::net::lookup_host((host, port)).await {
                Ok(addresses) => {
                    self.resolved.insert(index, addresses.collect());
                }
                Err(err) => tracing::warn!(
                    service = self.service,
                    host,
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
        self.endpoint(address)
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
            let endpoint = self.endpoint(address).connect_timeout(CHECK_TIMEOUT);
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
            let endpoint = self
                .endpoint(address)
                .connect_timeout(self.settings.connect_timeout)
                .timeout(self.settings.timeout)
                .tcp_nodelay(true);
            self.balancer
                .send(Change::Insert(address, endpoint))
                .await
                .map_err(drop)?;
        }
        self.inserted = wanted;
        #[expect(clippy::cast_precision_loss, reason = "a handful of replicas")]
        metrics::gauge!(crate::metrics::grpc::REPLICAS, "grpc_service" => self.service)
            .set(self.inserted.len() as f64);
        Ok(())
    }
}

impl Discovery {
    /// The endpoint of the replica at `address`: over TLS for `https://` targets, the server
    /// verified for the host its target names (the address is what that host resolved to).
    fn endpoint(&self, address: SocketAddr) -> Endpoint {
        let tls = self.settings.tls.as_ref().filter(|_| self.targets.tls());
        let scheme = if tls.is_some() { "https" } else { "http" };
        let endpoint = Endpoint::from_shared(format!("{scheme}://{address}"))
            .expect("a socket address is a valid URI");
        match tls {
            Some(tls) => endpoint
                .tls_config(tls.config(&self.host_of(address)))
                .expect("the CA and the client certificate were checked at start-up"),
            None => endpoint,
        }
    }

    /// The host of the target that resolved to `address` (its own IP when none did).
    fn host_of(&self, address: SocketAddr) -> String {
        let index = self
            .resolved
            .iter()
            .find(|(_, addresses)| addresses.contains(&address))
            .map(|(index, _)| *index);
        let host = index.and_then(|index| self.targets.endpoints().nth(index));
        host.map_or_else(|| address.ip().to_string(), |(host, _)| host.to_owned())
    }
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
