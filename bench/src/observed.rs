//! Scenario 8: what watching the services costs on the list path. Scenario 1's list through
//! two more stacks, driven in turns with the one as shipped: one exporting metrics (auth and
//! inventory with `METRICS_LISTEN`; the gateway's `/metrics` is always on), and one exporting
//! every span too, over OTLP, to a receiver in this process that keeps only a count (the SDK's
//! default sampler: every request traced; a batch queue large enough to drop none).

use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
    trace_service_server::{TraceService, TraceServiceServer},
};

use crate::{
    database::Backend,
    drive::{self, Load},
    http::HttpRequest,
    process::Binaries,
    report::Report,
    stack::{INVENTORY_PATH, Stack},
    tools::Tools,
};

const CONNECTIONS: usize = 32;

/// An OTLP receiver that counts the spans it is sent.
#[derive(Clone, Default)]
struct Sink {
    spans: Arc<AtomicU64>,
}

#[tonic::async_trait]
impl TraceService for Sink {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans = request
            .get_ref()
            .resource_spans
            .iter()
            .flat_map(|resource| &resource.scope_spans)
            .map(|scope| scope.spans.len() as u64)
            .sum::<u64>();
        self.spans.fetch_add(spans, Ordering::Relaxed);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// Serves a [`Sink`] on a free port: its endpoint and its count.
async fn sink() -> Result<(String, Arc<AtomicU64>), String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("no port for the OTLP sink: {e}"))?;
    let endpoint = format!(
        "http://{}",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    let sink = Sink::default();
    let spans = sink.spans.clone();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(sink))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    Ok((endpoint, spans))
}

pub async fn run(
    binaries: &Binaries,
    backend: &Backend,
    dir: &Path,
    shipped: &Stack,
    tools: &Tools,
    report: &mut Report,
) -> Result<(), String> {
    let metrics = vec![("METRICS_LISTEN", "127.0.0.1:0".to_owned())];
    let (endpoint, spans) = sink().await?;
    let mut traced = metrics.clone();
    traced.extend([
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
        // A queue that holds a second of this load's spans, sent every second: the SDK's
        // default (2,048 spans, every 5 s) would drop most of them, and measure less work.
        ("OTEL_BSP_MAX_QUEUE_SIZE", "131072".to_owned()),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "8192".to_owned()),
        ("OTEL_BSP_SCHEDULE_DELAY", "1000".to_owned()),
    ]);
    let stacks = [("metrics", metrics), ("traced", traced)];
    let mut started = Vec::new();
    for (name, env) in stacks {
        let logs = dir.join(name);
        std::fs::create_dir_all(&logs).map_err(|e| format!("{}: {e}", logs.display()))?;
        started.push(Stack::start_with(binaries, backend, &logs, &env).await?);
    }
    let list = |stack: &Stack| Load::Http {
        request: HttpRequest::get(stack.gateway.addr(), INVENTORY_PATH, Some(&stack.admin_key)),
        connections: CONNECTIONS,
    };
    let targets = [
        list(shipped).into(),
        list(&started[0]).into(),
        list(&started[1]).into(),
    ];
    let summaries = drive::in_turns(tools, &targets).await?;
    let (plain, measured, traced) = (summaries[0], summaries[1], summaries[2]);
    report.heading(&format!(
        "8. GET {INVENTORY_PATH} as in 1, with metrics exported, then spans too ({CONNECTIONS} connections)"
    ));
    report.table(&[
        ("as shipped (no METRICS_LISTEN, no OTLP)", plain),
        (
            "metrics on (METRICS_LISTEN on auth and inventory)",
            measured,
        ),
        ("metrics on, every span exported over OTLP", traced),
    ]);
    // The last batch goes out within a second of the load's end.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let received = spans.load(Ordering::Relaxed);
    if received == 0 {
        return Err("the traced stack exported no span: its figure is no measure".to_owned());
    }
    report.note(&format!("spans the OTLP sink received: {received}"));
    report.share("8 observed", "metrics on / as shipped", measured, plain);
    report.share(
        "8 observed",
        "metrics and traces on / as shipped",
        traced,
        plain,
    );
    report.share("8 observed", "traces on / metrics on", traced, measured);
    Ok(())
}
