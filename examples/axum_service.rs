//! A small axum service on pottery: the state holds the `Redis` handle; accounts get ids from
//! a `NextId`, live in a `#[derive(RedisBacked)]` struct, are read through a `#[redis_cache]`
//! method, and change under a per-account `#[synchronize]` lock, each deposit a `Batch` (the
//! balance and the history in one round trip). pottery's errors become HTTP responses by
//! their `ErrorKind`: a busy lock is 409, an unreachable Redis 503.
//!
//! `cargo run -p pottery-examples --example axum_service` serves on `$PORT` (default 3000)
//! against `$REDIS_URL`; with `--self-test` it serves on a free port, sends a few requests
//! over HTTP to every endpoint (a 409 among them) and checks the answers (`make examples`
//! runs it so).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use pottery::aio::{Batch, NextId, RedisList, Redlock, RedlockGuard};
use pottery::{ErrorKind, Redis, RedisBacked, redis_cache, synchronize};
use serde::{Deserialize, Serialize};

/// A stored account: a Redis hash, field by field.
#[derive(RedisBacked, Debug, Serialize)]
#[redis(key = "example:account:{id}")]
struct Account {
    id: u64,
    owner: String,
    balance: i64,
}

/// The shared state: the handle and what is made from it (all cheap to clone).
#[derive(Clone)]
struct Bank {
    redis: Redis,
    ids: NextId,
    /// Locks an operator took by hand (`/freeze`), by account.
    frozen: Arc<Mutex<HashMap<u64, RedlockGuard>>>,
}

/// An account as the API shows it (cached).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Summary {
    id: u64,
    owner: String,
    balance: i64,
    deposits: usize,
}

impl Bank {
    fn history(&self, id: u64) -> RedisList<i64> {
        RedisList::new(&self.redis, format!("example:account:{id}:history"))
    }

    /// The account's summary, cached in Redis until a deposit invalidates it.
    #[redis_cache(redis = &self.redis, key = "example:account-summaries")]
    async fn summary(&self, id: u64) -> Result<Summary, AppError> {
        let account = Account::load_keyed_async(&self.redis, &id)
            .await?
            .ok_or(AppError::NotFound)?;
        let deposits = self.history(id).len().await?;
        Ok(Summary {
            id,
            owner: account.owner,
            balance: account.balance,
            deposits,
        })
    }

    /// A deposit, under the account's lock (one attempt: a busy account is a 409), in one
    /// batch: the new balance and the history entry.
    #[synchronize(key = format!("account:{id}"), masters = [self.redis.clone()], blocking = false)]
    async fn deposit(&self, id: u64, amount: i64) -> Result<i64, AppError> {
        if !Account::exists_keyed_async(&self.redis, &id).await? {
            return Err(AppError::NotFound);
        }
        let handle = Account::handle_keyed(&self.redis, &id);
        let history = self.history(id);
        let batch = Batch::new(&self.redis);
        let balance = batch.on(&handle).incr_balance(amount);
        let pushed = batch.on(&history).push(amount);
        batch.execute().await?;
        pushed.get()?;
        self.summary_invalidate(id).await?;
        Ok(balance.get()?)
    }
}

/// Errors as HTTP responses.
#[derive(Debug)]
enum AppError {
    Pottery(pottery::Error),
    NotFound,
    BadRequest(&'static str),
}

impl From<pottery::Error> for AppError {
    fn from(e: pottery::Error) -> Self {
        AppError::Pottery(e)
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            AppError::NotFound => (StatusCode::NOT_FOUND, "no such account".to_owned()),
            AppError::BadRequest(why) => (StatusCode::BAD_REQUEST, why.to_owned()),
            AppError::Pottery(e) => {
                let status = match e.kind() {
                    ErrorKind::LockBusy | ErrorKind::Conflict => StatusCode::CONFLICT,
                    ErrorKind::Unavailable | ErrorKind::MaybeApplied | ErrorKind::NotDurable => {
                        StatusCode::SERVICE_UNAVAILABLE
                    }
                    ErrorKind::Invalid => StatusCode::BAD_REQUEST,
                    _ => StatusCode::INTERNAL_SERVER_ERROR,
                };
                (status, e.to_string())
            }
        };
        (status, Json(serde_json::json!({ "error": message }))).into_response()
    }
}

#[derive(Deserialize)]
struct NewAccount {
    owner: String,
}

async fn open(
    State(bank): State<Bank>,
    Json(new): Json<NewAccount>,
) -> Result<(StatusCode, Json<Summary>), AppError> {
    let id = bank.ids.next_id().await?;
    let account = Account {
        id,
        owner: new.owner,
        balance: 0,
    };
    account.save_keyed_async(&bank.redis).await?;
    Ok((StatusCode::CREATED, Json(bank.summary(id).await?)))
}

async fn show(State(bank): State<Bank>, Path(id): Path<u64>) -> Result<Json<Summary>, AppError> {
    Ok(Json(bank.summary(id).await?))
}

async fn deposit(
    State(bank): State<Bank>,
    Path((id, amount)): Path<(u64, i64)>,
) -> Result<Json<serde_json::Value>, AppError> {
    if amount <= 0 {
        return Err(AppError::BadRequest("a deposit is more than zero"));
    }
    let balance = bank.deposit(id, amount).await?;
    Ok(Json(serde_json::json!({ "balance": balance })))
}

/// Takes the account's lock by hand (as an operator would to stop deposits).
async fn freeze(State(bank): State<Bank>, Path(id): Path<u64>) -> Result<StatusCode, AppError> {
    let guard = Redlock::new(&format!("account:{id}"), [bank.redis.clone()])
        .auto_release_time(std::time::Duration::from_secs(30))
        .lock()
        .await?;
    bank.frozen
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(id, guard);
    Ok(StatusCode::NO_CONTENT)
}

async fn unfreeze(State(bank): State<Bank>, Path(id): Path<u64>) -> Result<StatusCode, AppError> {
    let guard = bank
        .frozen
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&id);
    match guard {
        Some(guard) => {
            guard.release().await?;
            Ok(StatusCode::NO_CONTENT)
        }
        None => Err(AppError::NotFound),
    }
}

fn app(redis: Redis) -> Router {
    let bank = Bank {
        ids: NextId::new("example:account-ids", [redis.clone()]),
        redis,
        frozen: Arc::default(),
    };
    Router::new()
        .route("/accounts", post(open))
        .route("/accounts/{id}", get(show))
        .route("/accounts/{id}/deposit/{amount}", post(deposit))
        .route("/accounts/{id}/freeze", post(freeze))
        .route("/accounts/{id}/unfreeze", post(unfreeze))
        .with_state(bank)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let redis = Redis::from_env()?;
    let self_test = std::env::args().any(|a| a == "--self-test");
    let port = match (self_test, std::env::var("PORT")) {
        (true, _) => 0,
        (false, Ok(p)) => p.parse()?,
        (false, Err(_)) => 3000,
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    let server = axum::serve(listener, app(redis));
    if !self_test {
        println!("serving on http://{addr}");
        server.await?;
        return Ok(());
    }
    let serving = tokio::spawn(async move { server.await });
    client::exercise(addr).await?;
    serving.abort();
    println!("self-test: every endpoint answered as expected");
    Ok(())
}

/// The self-test's HTTP client: plain HTTP/1.1 over a TCP socket, a request per connection.
mod client {
    use std::net::SocketAddr;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

    /// Sends one request; the status and the body as JSON.
    async fn send(
        addr: SocketAddr,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<(u16, serde_json::Value)> {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await?;
        let status = response
            .split(' ')
            .nth(1)
            .ok_or("no status line")?
            .parse()?;
        let (_, text) = response.split_once("\r\n\r\n").ok_or("no body")?;
        let json = if text.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(text)?
        };
        println!("{method} {path} -> {status} {json}");
        Ok((status, json))
    }

    fn check(what: &str, ok: bool) -> Result<()> {
        if ok {
            Ok(())
        } else {
            Err(format!("self-test failed: {what}").into())
        }
    }

    pub async fn exercise(addr: SocketAddr) -> Result<()> {
        let owner = serde_json::json!({ "owner": "ada" });
        let (status, opened) = send(addr, "POST", "/accounts", Some(owner.clone())).await?;
        check("open: 201", status == 201 && opened["balance"] == 0)?;
        let id = opened["id"].as_u64().ok_or("no id")?;
        let (status, second) = send(addr, "POST", "/accounts", Some(owner)).await?;
        check(
            "ids increase",
            status == 201 && second["id"].as_u64() > Some(id),
        )?;

        let (status, shown) = send(addr, "GET", &format!("/accounts/{id}"), None).await?;
        check("show: 200", status == 200 && shown == opened)?;
        let (status, _) = send(addr, "GET", "/accounts/999999999", None).await?;
        check("an unknown account: 404", status == 404)?;

        for (amount, balance) in [(5, 5), (7, 12)] {
            let path = format!("/accounts/{id}/deposit/{amount}");
            let (status, reply) = send(addr, "POST", &path, None).await?;
            check("deposit: 200", status == 200 && reply["balance"] == balance)?;
        }
        let (status, _) = send(addr, "POST", &format!("/accounts/{id}/deposit/0"), None).await?;
        check("a zero deposit: 400", status == 400)?;
        let (_, shown) = send(addr, "GET", &format!("/accounts/{id}"), None).await?;
        check(
            "the summary after deposits (the cache invalidated)",
            shown["balance"] == 12 && shown["deposits"] == 2,
        )?;

        // A locked account: the deposit's lock is busy, which is a 409.
        let (status, _) = send(addr, "POST", &format!("/accounts/{id}/freeze"), None).await?;
        check("freeze: 204", status == 204)?;
        let path = format!("/accounts/{id}/deposit/1");
        let (status, reply) = send(addr, "POST", &path, None).await?;
        check(
            "a deposit to a frozen account: 409 (LockBusy)",
            status == 409,
        )?;
        check("the error says why", reply["error"].is_string())?;
        let (status, _) = send(addr, "POST", &format!("/accounts/{id}/unfreeze"), None).await?;
        check("unfreeze: 204", status == 204)?;
        let (status, reply) = send(addr, "POST", &path, None).await?;
        check(
            "a deposit after unfreezing: 200",
            status == 200 && reply["balance"] == 13,
        )?;
        Ok(())
    }
}
