//! Futures run side by side inside one task: [`Racing`] (outputs as they finish) and
//! [`join_all`] (every output, in order). Small and type-erased, so that each use compiles
//! one short loop rather than a task list per future type (`FuturesUnordered`, which
//! `futures_util::future::join_all` uses).

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

/// A few futures run at once, their outputs taken in the order they finish: a quorum's
/// requests to its masters, a batch's pipelines. Every still pending future is polled on each
/// wake-up, which for the handful of masters a quorum has costs less than keeping a ready
/// queue. The futures are
/// boxed with their types erased: one box per future (as `FuturesUnordered` has one task per
/// future), one copy of this code per output type, and a `Send` check that stops at the box
/// (a caller's future nests fan-outs deep inside locks and ids).
pub(crate) struct Racing<'a, T> {
    futures: Vec<Option<Pin<Box<dyn Future<Output = T> + Send + 'a>>>>,
}

impl<'a, T> Racing<'a, T> {
    /// Starts collecting futures.
    pub(crate) fn new() -> Self {
        Racing {
            futures: Vec::new(),
        }
    }

    /// How many futures were added.
    pub(crate) fn len(&self) -> usize {
        self.futures.len()
    }

    /// Adds `f` to the race.
    pub(crate) fn push(&mut self, f: impl Future<Output = T> + Send + 'a) {
        self.futures.push(Some(Box::pin(f)));
    }

    /// The output of the next future to finish, or `None` once all have. Cancel-safe: a
    /// dropped call loses no output (each future's output is taken in the poll it finished).
    pub(crate) async fn next(&mut self) -> Option<T> {
        std::future::poll_fn(|cx| {
            let mut any = false;
            for slot in &mut self.futures {
                if let Some(f) = slot {
                    any = true;
                    if let Poll::Ready(out) = f.as_mut().poll(cx) {
                        *slot = None;
                        return Poll::Ready(Some(out));
                    }
                }
            }
            if any {
                Poll::Pending
            } else {
                Poll::Ready(None)
            }
        })
        .await
    }
}

/// Every output of `futures`, run side by side, in the order given.
pub(crate) async fn join_all<'a, T, F>(futures: impl IntoIterator<Item = F>) -> Vec<T>
where
    T: 'a,
    F: Future<Output = T> + Send + 'a,
{
    let mut racing = Racing::new();
    for (i, f) in futures.into_iter().enumerate() {
        racing.push(async move { (i, f.await) });
    }
    let mut done: Vec<(usize, T)> = Vec::with_capacity(racing.len());
    while let Some(out) = racing.next().await {
        done.push(out);
    }
    done.sort_unstable_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, out)| out).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_come_as_they_finish_and_join_all_keeps_order() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut racing = Racing::new();
            for (i, ms) in [(0, 30u64), (1, 1), (2, 15)] {
                racing.push(async move {
                    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
                    i
                });
            }
            let mut order = Vec::new();
            while let Some(i) = racing.next().await {
                order.push(i);
            }
            assert_eq!(order, [1, 2, 0]);
            assert_eq!(racing.next().await, None);
            let joined = join_all([30u64, 1, 15].map(|ms| async move {
                tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
                ms
            }))
            .await;
            assert_eq!(joined, [30, 1, 15]);
            assert!(
                join_all(Vec::<std::future::Ready<u8>>::new())
                    .await
                    .is_empty()
            );
        });
    }
}
