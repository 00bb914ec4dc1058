//! The host's HTTP endpoints for the kubelet and Prometheus: `/healthz` (liveness), `/readyz`
//! (readiness) and `/metrics`.
//!
//! [`serve`] answers all three on one listener. The host calls it once per configured
//! address (metrics and health have separate flags, as in controller-runtime), so each port
//! can be exposed, or firewalled, on its own; on a shared address it is called once.
//!
//! | path       | `200`                                        | otherwise                          |
//! |------------|----------------------------------------------|------------------------------------|
//! | `/healthz` | while no check fails liveness                | `503` and a line per failing check |
//! | `/readyz`  | while no check fails readiness               | `503` and a line per failing check |
//! | `/metrics` | the metrics text, [`METRICS_CONTENT_TYPE`]   |                                    |
//!
//! A `200` from `/readyz` still lists the failing checks that do not hold readiness back (a
//! suspended plugin, say) after its `ok` line.
//!
//! Other paths get `404`; methods other than `GET` and `HEAD` on these paths get `405`.
//! Nothing here needs credentials or touches the API server, so a probe never fails because
//! the API server is slow.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::status::{Report, Severity};

/// Renders the metrics text on each scrape.
pub(crate) type MetricsText = Arc<dyn Fn() -> String + Send + Sync>;

/// The content type of `/metrics`: the OpenMetrics text format, which is what
/// `prometheus_client::encoding::text::encode` writes and what Prometheus asks for first.
pub(crate) const METRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

const TEXT: &str = "text/plain; charset=utf-8";
/// The first line of `/readyz` while not ready; a line per failing check follows.
const NOT_READY: &str = "not ready\n";
/// The first line of `/healthz` while not live.
const NOT_LIVE: &str = "not live\n";
/// A client must send its request head within this time, so that idle or slow connections
/// cannot pile up.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long open connections may finish their requests once `shutdown` has completed.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// Pause after a failed `accept` (e.g. out of file descriptors) before the next one.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `/healthz`, `/readyz` and `/metrics` on `listener` until `shutdown` completes, then
/// stops accepting and gives open connections [`SHUTDOWN_GRACE`] to finish.
///
/// `/readyz` and `/healthz` answer from the latest `report`. `metrics` is called once per
/// scrape of `/metrics`.
///
/// Failures to accept a connection are logged and retried; serving ends only with
/// `shutdown`.
///
/// # Shutdown
///
/// Kubernetes keeps probing a terminating pod. Let `shutdown` complete when the host has
/// finished draining (not on SIGTERM itself), and fail a readiness check on SIGTERM: the pod
/// then reports not ready, but stays live, while it drains.
pub(crate) async fn serve(
    listener: TcpListener,
    readiness: watch::Receiver<Report>,
    metrics: MetricsText,
    shutdown: impl Future<Output = ()>,
) {
    let address = listener
        .local_addr()
        .map_or_else(|_| "<unknown>".to_owned(), |a| a.to_string());
    tracing::info!(%address, "serving /healthz, /readyz and /metrics");
    let endpoints = Arc::new(Endpoints { readiness, metrics });
    let graceful = GracefulShutdown::new();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(error) => {
                    tracing::warn!(%address, %error, "failed to accept a connection");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let endpoints = endpoints.clone();
        let service = service_fn(move |request| {
            let response = endpoints.respond(&request);
            std::future::ready(Ok::<_, Infallible>(response))
        });
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                // A client that goes away mid-request is not the host's problem.
                tracing::debug!(%error, "health connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::debug!(%address, "health connections still open after the grace period");
    }
    tracing::debug!(%address, "stopped serving health and metrics");
}

/// What the three paths answer.
struct Endpoints {
    readiness: watch::Receiver<Report>,
    metrics: MetricsText,
}

impl Endpoints {
    fn respond(&self, request: &Request<Incoming>) -> Response<Full<Bytes>> {
        let path = request.uri().path();
        if !matches!(path, "/healthz" | "/readyz" | "/metrics") {
            return text(StatusCode::NOT_FOUND, "not found\n");
        }
        // hyper leaves the body out of a HEAD response by itself.
        if !matches!(*request.method(), Method::GET | Method::HEAD) {
            let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return response;
        }
        let report = self.readiness.borrow().clone();
        match path {
            "/healthz" if report.live() => text(StatusCode::OK, "ok\n"),
            "/healthz" => response(
                StatusCode::SERVICE_UNAVAILABLE,
                TEXT,
                format!("{NOT_LIVE}{}", report.render(&[Severity::Dead])),
            ),
            "/readyz" if report.ready() => response(
                StatusCode::OK,
                TEXT,
                format!("ok\n{}", report.render(&[Severity::Info])),
            ),
            "/readyz" => response(
                StatusCode::SERVICE_UNAVAILABLE,
                TEXT,
                format!(
                    "{NOT_READY}{}",
                    report.render(&[Severity::Unready, Severity::Dead, Severity::Info])
                ),
            ),
            _ => response(StatusCode::OK, METRICS_CONTENT_TYPE, (self.metrics)()),
        }
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    response(status, TEXT, body)
}

fn response(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Probes and scrapes must see the current state, never a cached one.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicU32, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    use tokio::sync::oneshot;
    use tokio::task::JoinHandle;

    use super::*;

    /// A server on a free loopback port, its readiness flag, and a way to stop it.
    struct Running {
        address: SocketAddr,
        ready: crate::status::HostStatus,
        stop: oneshot::Sender<()>,
        task: JoinHandle<()>,
    }

    async fn start(metrics: MetricsText) -> Running {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let ready = crate::status::HostStatus::new();
        let readiness = ready.subscribe();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, readiness, metrics, async move {
            let _ = stopped.await;
        }));
        Running {
            address,
            ready,
            stop,
            task,
        }
    }

    fn no_metrics() -> MetricsText {
        Arc::new(String::new)
    }

    /// What the server answered: status code, headers (lowercase names) and body.
    #[derive(Debug)]
    struct Answer {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    }

    impl Answer {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        }
    }

    /// Sends one HTTP/1.1 request, as a probe would, and reads the whole answer.
    async fn request(address: SocketAddr, method: &str, path: &str) -> Answer {
        let mut stream = TcpStream::connect(address).await.unwrap();
        let head =
            format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut raw = String::new();
        stream.read_to_string(&mut raw).await.unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").expect("a complete answer");
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|code| code.parse().ok())
            .expect("a status line");
        let headers = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.to_ascii_lowercase(), value.trim().to_owned()))
            .collect();
        Answer {
            status,
            headers,
            body: body.to_owned(),
        }
    }

    #[tokio::test]
    async fn healthz_is_ok_whether_or_not_ready() {
        let server = start(no_metrics()).await;
        let answer = request(server.address, "GET", "/healthz").await;
        assert_eq!((answer.status, answer.body.as_str()), (200, "ok\n"));
        assert_eq!(answer.header("content-type"), Some(TEXT));
        server.ready.pass("host");
        assert_eq!(request(server.address, "GET", "/healthz").await.status, 200);
    }

    #[tokio::test]
    async fn readyz_follows_the_readiness_flag() {
        let server = start(no_metrics()).await;
        let answer = request(server.address, "GET", "/readyz").await;
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (503, "not ready\n[-]host: plugins are loading\n")
        );

        server.ready.pass("host");
        let answer = request(server.address, "GET", "/readyz").await;
        assert_eq!((answer.status, answer.body.as_str()), (200, "ok\n"));

        // A check that does not hold readiness back is listed after `ok`.
        server
            .ready
            .fail("plugin/p/breaker", Severity::Info, "suspended");
        let answer = request(server.address, "GET", "/readyz").await;
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (200, "ok\n[-]plugin/p/breaker: suspended\n")
        );

        // Shutting down: not ready again, while still live.
        server
            .ready
            .fail("host", Severity::Unready, "shutting down");
        assert_eq!(request(server.address, "GET", "/readyz").await.status, 503);
        assert_eq!(request(server.address, "GET", "/healthz").await.status, 200);
    }

    #[tokio::test]
    async fn healthz_fails_when_a_check_fails_liveness() {
        let server = start(no_metrics()).await;
        server.ready.fail(
            "plugin/p/controller",
            Severity::Dead,
            "the controller ended",
        );
        let answer = request(server.address, "GET", "/healthz").await;
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (
                503,
                "not live\n[-]plugin/p/controller: the controller ended\n"
            )
        );
    }

    #[tokio::test]
    async fn metrics_are_rendered_on_every_scrape() {
        let scrapes = Arc::new(AtomicU32::new(0));
        let counter = scrapes.clone();
        let server = start(Arc::new(move || {
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            format!("# TYPE scrapes counter\nscrapes_total {n}\n# EOF\n")
        }))
        .await;

        let first = request(server.address, "GET", "/metrics").await;
        assert_eq!(first.status, 200);
        assert_eq!(first.header("content-type"), Some(METRICS_CONTENT_TYPE));
        assert!(first.body.contains("scrapes_total 1\n"), "{}", first.body);
        let second = request(server.address, "GET", "/metrics").await;
        assert!(second.body.contains("scrapes_total 2\n"), "{}", second.body);
    }

    #[tokio::test]
    async fn unknown_paths_are_not_found() {
        let server = start(no_metrics()).await;
        for path in ["/", "/healthz/", "/metrics/extra", "/livez"] {
            assert_eq!(
                request(server.address, "GET", path).await.status,
                404,
                "{path}"
            );
        }
        assert_eq!(request(server.address, "POST", "/nope").await.status, 404);
    }

    #[tokio::test]
    async fn only_get_and_head_are_allowed() {
        let server = start(no_metrics()).await;
        for method in ["POST", "PUT", "DELETE", "PATCH"] {
            let answer = request(server.address, method, "/healthz").await;
            assert_eq!(answer.status, 405, "{method}");
            assert_eq!(answer.header("allow"), Some("GET, HEAD"));
        }
        let head = request(server.address, "HEAD", "/healthz").await;
        assert_eq!((head.status, head.body.as_str()), (200, ""));
    }

    #[tokio::test]
    async fn a_query_string_does_not_change_the_path() {
        let server = start(no_metrics()).await;
        server.ready.pass("host");
        assert_eq!(
            request(server.address, "GET", "/readyz?verbose")
                .await
                .status,
            200
        );
    }

    #[tokio::test]
    async fn serving_ends_with_shutdown_and_the_port_is_released() {
        let server = start(no_metrics()).await;
        assert_eq!(request(server.address, "GET", "/healthz").await.status, 200);

        server.stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), server.task)
            .await
            .expect("serve returns after shutdown")
            .expect("serve did not panic");
        assert!(TcpStream::connect(server.address).await.is_err());
    }

    #[tokio::test]
    async fn an_idle_keep_alive_connection_does_not_hold_up_shutdown() {
        let server = start(no_metrics()).await;
        // Opened and left idle, as a scraper's kept-alive connection would be.
        let idle = TcpStream::connect(server.address).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;

        server.stop.send(()).unwrap();
        tokio::time::timeout(SHUTDOWN_GRACE + Duration::from_secs(3), server.task)
            .await
            .expect("serve returns within the grace period")
            .expect("serve did not panic");
        drop(idle);
    }
}
