//! [`Bound`]: a gRPC server between its build and its end, the part of every service's
//! `Application` that is not its own (the socket, the routes, the limits, TLS, the metrics
//! listener, and how it leaves).

use std::{future::Future, net::SocketAddr};

use tokio::net::TcpListener;
use tonic::service::Routes;
use tonic_health::server::HealthReporter;

use super::{HandOver, Limits, serve};
use crate::tls::ServerTls;

/// A gRPC server bound and built, ready to [`serve`](Bound::serve).
pub struct Bound {
    pub listener: TcpListener,
    /// The address bound (the real port when port 0 was asked for).
    pub local_addr: SocketAddr,
    /// The service, health and reflection.
    pub routes: Routes,
    pub limits: Limits,
    /// TLS, when the server was given a certificate (`TLS_CERT_FILE`): then it speaks no
    /// plaintext.
    pub tls: Option<ServerTls>,
    /// Where `GET /metrics` is served (`METRICS_LISTEN`), bound; none when unset.
    pub metrics: Option<TcpListener>,
    /// Reports the service's health; told NOT_SERVING when the replica starts leaving.
    pub health: HealthReporter,
    pub hand_over: HandOver,
}

impl Bound {
    /// The address `GET /metrics` is served on (the real port when port 0 was asked for).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics
            .as_ref()
            .and_then(|listener| listener.local_addr().ok())
    }

    /// Serves until `leaving` resolves, then hands over ([`HandOver::leave`]): `service`
    /// NOT_SERVING through the grace; then runs `left` (what would hold the drain, such as
    /// streams that never end by themselves, ends there) and lets the calls in flight finish,
    /// within the drain deadline, before this returns.
    pub async fn serve(
        self,
        service: &str,
        leaving: impl Future<Output = ()>,
        left: impl FnOnce(),
    ) -> Result<(), tonic::transport::Error> {
        let (mut health, hand_over) = (self.health, self.hand_over);
        let shutdown = async move {
            leaving.await;
            hand_over.leave(&mut health, &[service]).await;
            left();
        };
        let drain_timeout = hand_over.drain_timeout;
        // Scraped until the server has stopped.
        let metrics = self
            .metrics
            .map(|listener| tokio::spawn(crate::metrics::serve(listener, std::future::pending())));
        let served = serve(
            self.listener,
            self.routes,
            self.limits,
            self.tls.as_ref(),
            metrics.is_some(),
            drain_timeout,
            shutdown,
        )
        .await;
        if let Some(metrics) = metrics {
            metrics.abort();
        }
        served
    }
}
