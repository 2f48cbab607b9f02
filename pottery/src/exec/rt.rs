//! The runtime behind pottery's blocking distributed primitives.
//!
//! Quorum operations send one request to every master at once and finish as soon as a majority
//! has answered. That logic is written once, as async code; the blocking types run it on a
//! single-threaded Tokio runtime owned by the calling thread, so a blocking caller pays the
//! slowest *needed* master's latency, not the sum, and no hop to another thread. Background
//! work (an async guard's release on drop) goes to a small shared runtime.

use std::future::Future;
use std::sync::LazyLock;

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("pottery-io")
        .enable_all()
        .build()
        .expect("cannot start pottery's I/O runtime")
});

thread_local! {
    static LOCAL: std::cell::OnceCell<tokio::runtime::Runtime> = const { std::cell::OnceCell::new() };
    static IN_LOCAL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether this code runs inside [`block_on`] on the calling thread's own runtime: a blocking
/// call of a blocking shell, where a synchronous round trip costs nobody anything.
pub(crate) fn in_blocking_shell() -> bool {
    IN_LOCAL.with(std::cell::Cell::get)
}

/// Sets [`IN_LOCAL`] for the duration of a `block_on`, and restores it after (even on panic).
struct InLocal(bool);

impl InLocal {
    fn enter() -> InLocal {
        InLocal(IN_LOCAL.with(|c| c.replace(true)))
    }
}

impl Drop for InLocal {
    fn drop(&mut self) {
        IN_LOCAL.with(|c| c.set(self.0));
    }
}

/// A future of pottery's run with its type erased: the runtime's machinery (task harness,
/// `block_on`, the scoped helper thread) is compiled once per output type instead of once per
/// future type, about a tenth of what a user's build compiles of pottery.
type Erased<'a, T> = std::pin::Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Runs `future` to completion from blocking code, on this thread's own runtime. Inside an
/// async context (where blocking the thread on a runtime would panic) it runs on a scoped helper
/// thread and the shared runtime instead.
pub(crate) fn block_on<F>(future: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    let mut out = None;
    run_to_end(std::pin::pin!(async {
        out = Some(future.await);
    }));
    // `run_to_end` returns only once the future above has finished (a panic unwinds through).
    out.unwrap_or_else(|| unreachable!("block_on returned before its future finished"))
}

/// [`block_on`] of a future with its type erased (one copy of the runtime's code for all).
fn run_to_end(mut future: std::pin::Pin<&mut (dyn Future<Output = ()> + Send + '_)>) {
    if tokio::runtime::Handle::try_current().is_ok() {
        return std::thread::scope(|s| {
            s.spawn(|| RUNTIME.block_on(future))
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        });
    }
    let _inside = InLocal::enter();
    LOCAL.with(|local| {
        let runtime = local.get_or_init(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("cannot start a thread-local runtime")
        });
        // Most blocking calls finish in one poll (a single master answers synchronously):
        // poll once inside the runtime's context, and start the runtime only if that is
        // not enough. Futures take the new waker at their next poll.
        {
            let _context = runtime.enter();
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            if future.as_mut().poll(&mut cx).is_ready() {
                return;
            }
        }
        runtime.block_on(future)
    })
}

/// Runs `future` in the background: on the caller's runtime if there is one, else on ours.
pub(crate) fn spawn<F>(future: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    let future: Erased<'static, ()> = Box::pin(future);
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => drop(handle.spawn(future)),
        Err(_) => drop(RUNTIME.spawn(future)),
    }
}

/// Runs `future` on the caller's runtime (`tokio::spawn`), its type erased as [`spawn`]'s.
pub(crate) fn spawn_here<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let future: Erased<'static, F::Output> = Box::pin(future);
    tokio::spawn(future)
}

/// Runs `future` on pottery's own runtime, whatever the caller's: for tasks that must outlive
/// the caller's runtime (a shared pub/sub connection's driver, say).
pub(crate) fn spawn_global<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let future: Erased<'static, F::Output> = Box::pin(future);
    RUNTIME.spawn(future)
}
