//! HTTP/1.1 requests as the bench makes them: a request described by its method, path, headers
//! and body (what wrk is given), one-off sends, keep-alive connections making one request
//! again and again (the bench's own generator, as wrk's connections), and a small pool of
//! connections for calls made at a fixed rate.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use axum::{
    body::{Body, Bytes},
    http::{Request, StatusCode, header},
};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::load::Call;

/// One request: where, how, with which headers and body.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub addr: SocketAddr,
    pub method: &'static str,
    pub path: String,
    /// Besides `Host`, which every request carries.
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

impl HttpRequest {
    /// `GET path`, with `Authorization: Token <key>` when a key is given.
    pub fn get(addr: SocketAddr, path: &str, key: Option<&str>) -> Self {
        let headers = key
            .map(|key| vec![("authorization", format!("Token {key}"))])
            .unwrap_or_default();
        Self {
            addr,
            method: "GET",
            path: path.to_owned(),
            headers,
            body: String::new(),
        }
    }

    /// `POST path` of a JSON body, with `Authorization: Token <key>` when a key is given.
    pub fn post_json(addr: SocketAddr, path: &str, key: Option<&str>, body: String) -> Self {
        let mut request = Self::get(addr, path, key);
        request.method = "POST";
        request
            .headers
            .push(("content-type", "application/json".to_owned()));
        request.body = body;
        request
    }

    pub fn url(&self) -> String {
        format!("http://{}{}", self.addr, self.path)
    }

    fn build(&self) -> Request<Body> {
        let mut request = Request::builder()
            .method(self.method)
            .uri(self.path.as_str())
            .header(header::HOST, self.addr.to_string());
        for (name, value) in &self.headers {
            request = request.header(*name, value.as_str());
        }
        request
            .body(Body::from(self.body.clone()))
            .expect("a valid request")
    }

    /// Sends it once on a connection of its own: the status and the body.
    pub async fn send_once(&self) -> Result<(StatusCode, Bytes), String> {
        let mut sender = connect(self.addr).await.map_err(|e| e.to_string())?;
        send(&mut sender, self.build()).await
    }
}

/// One keep-alive connection (opened on first use, again after it broke). A call succeeds on a
/// 2xx whose body, when a length is expected, has it.
pub struct HttpConnection {
    request: HttpRequest,
    body_len: Option<usize>,
    sender: Option<SendRequest<Body>>,
}

impl HttpConnection {
    pub fn new(request: HttpRequest, body_len: Option<usize>) -> Self {
        Self {
            request,
            body_len,
            sender: None,
        }
    }

    /// Sends `request` on this connection instead of its own: whether it succeeded.
    pub async fn send(&mut self, request: &HttpRequest) -> bool {
        let mut sender = match self.sender.take() {
            Some(sender) => sender,
            None => match connect(request.addr).await {
                Ok(sender) => sender,
                Err(_) => return false,
            },
        };
        let answer = send(&mut sender, request.build()).await;
        if answer.is_ok() {
            self.sender = Some(sender);
        }
        matches!(answer, Ok((status, body)) if status.is_success()
            && self.body_len.is_none_or(|len| body.len() == len))
    }
}

impl Call for HttpConnection {
    async fn call(&mut self) -> bool {
        let request = self.request.clone();
        self.send(&request).await
    }
}

/// Idle keep-alive connections for calls that start on a clock: a call takes one (or opens
/// one) and puts it back when answered.
#[derive(Clone)]
pub struct HttpPool {
    request: Arc<HttpRequest>,
    idle: Arc<Mutex<Vec<HttpConnection>>>,
}

impl HttpPool {
    pub fn new(request: HttpRequest) -> Self {
        Self {
            request: Arc::new(request),
            idle: Arc::default(),
        }
    }

    /// One call of the pool's request: whether it succeeded.
    pub async fn call(self) -> bool {
        let taken = self.idle.lock().expect("a pool lock").pop();
        let mut connection =
            taken.unwrap_or_else(|| HttpConnection::new(HttpRequest::clone(&self.request), None));
        let ok = connection.call().await;
        self.idle.lock().expect("a pool lock").push(connection);
        ok
    }
}

async fn send(
    sender: &mut SendRequest<Body>,
    request: Request<Body>,
) -> Result<(StatusCode, Bytes), String> {
    sender.ready().await.map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let body = axum::body::to_bytes(Body::new(response.into_body()), usize::MAX)
        .await
        .map_err(|e| e.to_string())?;
    Ok((status, body))
}

async fn connect(
    addr: SocketAddr,
) -> Result<SendRequest<Body>, Box<dyn std::error::Error + Send + Sync>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}
