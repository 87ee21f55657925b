//! Closed-loop loads on targets that are compared with each other: each target's load is
//! described once ([`Load`]), checked with one call (its gRPC status too, which h2load does
//! not read), then driven by wrk (HTTP) or h2load (gRPC) when they are installed, or by the
//! bench's own generator when they are not or when a target asks for it (to prove the
//! generator against wrk). Targets take turns, [`ROUNDS`] times, so that load from elsewhere
//! on a shared machine falls on all of them alike.

use tonic::transport::Channel;

use crate::{
    grpc::{GrpcCaller, GrpcRequest},
    http::{HttpConnection, HttpRequest},
    load::{self, ROUND, ROUNDS, Summary},
    tools::{self, Tools},
};

/// One target's load.
#[derive(Debug, Clone)]
pub enum Load {
    /// `connections` keep-alive HTTP/1.1 connections, one request in flight on each.
    Http {
        request: HttpRequest,
        connections: usize,
    },
    /// `connections` HTTP/2 connections with `streams` calls in flight on each.
    Grpc {
        request: GrpcRequest,
        connections: usize,
        streams: usize,
    },
}

impl Load {
    /// The same load, always from the bench's own generator.
    pub fn own(self) -> Target {
        Target {
            load: self,
            own: true,
        }
    }
}

impl From<Load> for Target {
    fn from(load: Load) -> Self {
        Target { load, own: false }
    }
}

#[derive(Debug, Clone)]
pub struct Target {
    pub load: Load,
    own: bool,
}

/// Checks each target with one call, then measures them in turns; their summaries, in order.
pub async fn in_turns(tools: &Tools, targets: &[Target]) -> Result<Vec<Summary>, String> {
    let mut body_lens = Vec::with_capacity(targets.len());
    for target in targets {
        body_lens.push(check(&target.load).await?);
    }
    let mut turns: Vec<Vec<Summary>> = vec![Vec::new(); targets.len()];
    for round in 0..ROUNDS {
        for ((target, body_len), turns) in targets.iter().zip(&body_lens).zip(&mut turns) {
            turns.push(turn(tools, target, *body_len, round).await?);
        }
    }
    Ok(turns.iter().map(|turns| Summary::combine(turns)).collect())
}

/// One call of `load`: an error unless it succeeds (a 2xx; an OK gRPC status); the HTTP
/// answer's length, which the bench's own generator then expects of every GET.
async fn check(load: &Load) -> Result<Option<usize>, String> {
    match load {
        Load::Http { request, .. } => {
            let (status, body) = request.send_once().await?;
            if !status.is_success() {
                return Err(format!(
                    "{} {} answered {status}: {}",
                    request.method,
                    request.url(),
                    String::from_utf8_lossy(&body)
                ));
            }
            Ok((request.method == "GET").then_some(body.len()))
        }
        Load::Grpc { request, .. } => {
            let channel = load::channels(&format!("http://{}", request.addr), 1)
                .await
                .remove(0);
            request
                .send(channel)
                .await
                .map_err(|status| format!("{}: {status}", request.url()))?;
            Ok(None)
        }
    }
}

/// One recorded turn of `target`, after its warm-up.
async fn turn(
    tools: &Tools,
    target: &Target,
    body_len: Option<usize>,
    round: usize,
) -> Result<Summary, String> {
    let warmup = load::warmup(round);
    let tool = match &target.load {
        _ if target.own => None,
        Load::Http { .. } => tools.wrk.clone(),
        Load::Grpc { .. } => tools.h2load.clone(),
    };
    if let Some(tool) = tool {
        let load = target.load.clone();
        return tokio::task::spawn_blocking(move || match load {
            Load::Http {
                request,
                connections,
            } => tools::wrk(&tool, &request, connections, warmup, ROUND),
            Load::Grpc {
                request,
                connections,
                streams,
            } => tools::h2load(&tool, &request, connections, streams, warmup, ROUND),
        })
        .await
        .map_err(|e| e.to_string())?;
    }
    Ok(match &target.load {
        Load::Http {
            request,
            connections,
        } => {
            let callers = (0..*connections)
                .map(|_| HttpConnection::new(request.clone(), body_len))
                .collect();
            load::closed(callers, warmup, ROUND).await.1.summary()
        }
        Load::Grpc {
            request,
            connections,
            streams,
        } => {
            let channels: Vec<Channel> =
                load::channels(&format!("http://{}", request.addr), *connections).await;
            let callers = channels
                .iter()
                .flat_map(|channel| {
                    (0..*streams).map(|_| GrpcCaller {
                        channel: channel.clone(),
                        request: request.clone(),
                    })
                })
                .collect();
            load::closed(callers, warmup, ROUND).await.1.summary()
        }
    })
}
