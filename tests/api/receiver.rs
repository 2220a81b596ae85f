//! A real HTTP endpoint for notification tests: records every request it gets, and can be told
//! to fail (500) for a while.

use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::Value;

#[derive(Debug, Clone)]
pub struct Received {
    pub notification_id: String,
    pub body: Value,
    pub answered: u16,
    pub headers: Vec<(String, String)>,
}

#[derive(Default)]
struct Log {
    requests: Mutex<Vec<Received>>,
    failures_left: AtomicUsize,
}

pub struct Receiver {
    pub url: String,
    log: Arc<Log>,
    handle: actix_web::dev::ServerHandle,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        std::mem::drop(self.handle.stop(false));
    }
}

async fn record(req: HttpRequest, body: web::Bytes, log: web::Data<Log>) -> HttpResponse {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let failing = log
        .failures_left
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    let answered = if failing { 500 } else { 200 };
    log.requests.lock().unwrap().push(Received {
        notification_id: header("X-CPIS-Notification-Id"),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        answered,
        headers: req
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
            .collect(),
    });
    HttpResponse::build(actix_web::http::StatusCode::from_u16(answered).unwrap()).finish()
}

impl Receiver {
    pub fn start() -> Receiver {
        Self::start_on(TcpListener::bind("127.0.0.1:0").unwrap())
    }

    /// Listens on an already bound socket (to come up on a port chosen in advance).
    pub fn start_on(listener: TcpListener) -> Receiver {
        let port = listener.local_addr().unwrap().port();
        let log = web::Data::new(Log::default());
        let data = log.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .default_service(web::to(record))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Receiver {
            url: format!("http://127.0.0.1:{port}/notify"),
            log: log.into_inner(),
            handle,
        }
    }

    /// The next `n` requests are answered 500.
    pub fn fail_next(&self, n: usize) {
        self.log.failures_left.store(n, Ordering::SeqCst);
    }

    /// Every request so far, failed ones included.
    pub fn attempts(&self) -> Vec<Received> {
        self.log.requests.lock().unwrap().clone()
    }

    /// The notifications accepted (answered 200).
    pub fn delivered(&self) -> Vec<Received> {
        self.attempts()
            .into_iter()
            .filter(|r| r.answered == 200)
            .collect()
    }

    /// Waits until `n` notifications were accepted, or `limit` passes (then returns fewer).
    pub async fn wait_for(&self, n: usize, limit: Duration) -> Vec<Received> {
        let start = Instant::now();
        loop {
            let delivered = self.delivered();
            if delivered.len() >= n || start.elapsed() > limit {
                return delivered;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
