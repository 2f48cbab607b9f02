//! Runners: multi-step operations are written once, as `async` code generic over a runner,
//! and the blocking shell drives them with [`block_on_ready`].

use std::future::Future;

use crate::client::Redis;
use crate::error::Result;
use crate::exec::Op;

/// Runs plans, blocking or async: multi-step algorithms are written once, as `async` code
/// generic over the runner, and the blocking shell drives them with [`block_on_ready`].
pub(crate) trait Runner: Sync {
    /// Whether waiting must block the thread (its futures are polled without a runtime).
    const BLOCKING: bool;

    /// The async runner's future is boxed: an `impl Future` capturing the plan's lifetime
    /// here makes the callers' futures fail to prove `Send` when they are spawned (rustc issue
    /// #100013), and one allocation per round trip costs nothing measurable. The blocking
    /// runner's is its result, ready (no allocation).
    fn run<'a, 'k: 'a, T: Send + 'k>(&'a self, redis: &'a Redis, op: Op<'k, T>)
    -> RunFuture<'a, T>;
}

/// What a [`Runner`] returns: a result already there (a blocking run), or a boxed future.
pub(crate) enum RunFuture<'a, T> {
    /// The result (taken by the first poll).
    Ready(Option<Result<T>>),
    /// An async run.
    Boxed(std::pin::Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>),
}

// Neither variant is pinned structurally: the boxed future is pinned in its box.
impl<T> Unpin for RunFuture<'_, T> {}

impl<T> Future for RunFuture<'_, T> {
    type Output = Result<T>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<T>> {
        match self.get_mut() {
            RunFuture::Ready(out) => std::task::Poll::Ready(
                out.take()
                    .expect("a ready RunFuture is not polled after it completed"),
            ),
            RunFuture::Boxed(f) => f.as_mut().poll(cx),
        }
    }
}

/// Runs plans on blocking connections; its futures are ready when first polled.
pub(crate) struct Blocking;

impl Runner for Blocking {
    const BLOCKING: bool = true;

    fn run<'a, 'k: 'a, T: Send + 'k>(
        &'a self,
        redis: &'a Redis,
        op: Op<'k, T>,
    ) -> RunFuture<'a, T> {
        RunFuture::Ready(Some(redis.run(op)))
    }
}

/// Runs plans on the async connection.
pub(crate) struct Async;

impl Runner for Async {
    const BLOCKING: bool = false;

    fn run<'a, 'k: 'a, T: Send + 'k>(
        &'a self,
        redis: &'a Redis,
        op: Op<'k, T>,
    ) -> RunFuture<'a, T> {
        // A near-cache hit is answered here: no future to box.
        let op = match redis.near() {
            Some(near) => match crate::near::hit(near, op) {
                Ok(result) => return RunFuture::Ready(Some(result)),
                Err(op) => op,
            },
            None => op,
        };
        RunFuture::Boxed(Box::pin(redis.run_async_missed(op)))
    }
}

/// Drives a future whose every await is on a [`Blocking`] runner, so it is ready at its first
/// poll. Should it ever not be, the thread sleeps until the future wakes it (it never spins).
pub(crate) fn block_on_ready<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    if let std::task::Poll::Ready(out) = future.as_mut().poll(&mut cx) {
        return out;
    }
    let waker = std::task::Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    loop {
        if let std::task::Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}

/// Wakes a thread parked in [`block_on_ready`].
struct Unpark(std::thread::Thread);

impl std::task::Wake for Unpark {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.unpark();
    }
}

/// Waits `pause`: blocks the thread under a blocking runner (its futures are polled with no
/// runtime to wake them), else sleeps on the runtime.
pub(crate) async fn pause<R: Runner>(pause: std::time::Duration) {
    if R::BLOCKING {
        std::thread::sleep(pause);
    } else {
        tokio::time::sleep(pause).await;
    }
}
