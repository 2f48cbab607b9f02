//! A SCAN-family iteration in progress (`HSCAN`, `SSCAN`): one page in memory.

use std::collections::VecDeque;

use serde::de::DeserializeOwned;

use futures_util::Stream;

use crate::client::Redis;
use crate::error::Result;
use crate::exec::plan::Op;
use crate::exec::reply::{decode, decode_value_of};

/// One SCAN-family reply: the next cursor and the page's items.
pub(crate) type Page = (u64, Vec<Vec<u8>>);

/// A blocking iteration: each page is `plan(cursor)` run on `redis`, each element what `next`
/// takes from the page (`width` items). The first error ends it.
pub(crate) fn iter<'a, T>(
    redis: &'a Redis,
    width: usize,
    plan: impl Fn(u64) -> Op<'a, Page> + 'a,
    mut next: impl FnMut(&mut Scan) -> Option<Result<T>> + 'a,
) -> impl Iterator<Item = Result<T>> + 'a {
    let mut scan = Scan::new(width);
    std::iter::from_fn(move || {
        while scan.needs_page() {
            if let Err(e) = scan.accept(redis.run(plan(scan.cursor))) {
                return Some(Err(e));
            }
        }
        next(&mut scan)
    })
}

/// The async twin of [`iter`]: a `Stream` over the same pages.
pub(crate) fn stream<'a, T: Send + 'a>(
    redis: &'a Redis,
    width: usize,
    plan: impl Fn(u64) -> Op<'a, Page> + Send + 'a,
    next: impl FnMut(&mut Scan) -> Option<Result<T>> + Send + 'a,
) -> impl Stream<Item = Result<T>> + Send + 'a {
    let start = (Scan::new(width), plan, next);
    futures_util::stream::unfold(start, move |(mut scan, plan, mut next)| async move {
        while scan.needs_page() {
            let page = redis.run_async(plan(scan.cursor)).await;
            if let Err(e) = scan.accept(page) {
                return Some((Err(e), (scan, plan, next)));
            }
        }
        let item = next(&mut scan)?;
        Some((item, (scan, plan, next)))
    })
}

/// A SCAN-family iteration in progress: the page being handed out and where the scan stands.
pub(crate) struct Scan {
    pub(crate) cursor: u64,
    started: bool,
    page: VecDeque<Vec<u8>>,
    failed: bool,
    /// Items per element: 2 for HSCAN (field, value), 1 for SSCAN.
    width: usize,
}

impl Scan {
    pub(crate) fn new(width: usize) -> Self {
        Scan {
            cursor: 0,
            started: false,
            page: VecDeque::new(),
            failed: false,
            width,
        }
    }

    /// Whether another SCAN call is needed before the next element.
    pub(crate) fn needs_page(&self) -> bool {
        !self.failed && self.page.len() < self.width && (!self.started || self.cursor != 0)
    }

    pub(crate) fn accept(&mut self, page: Result<(u64, Vec<Vec<u8>>)>) -> Result<()> {
        self.started = true;
        match page {
            Ok((cursor, items)) => {
                self.cursor = cursor;
                self.page.extend(items);
                Ok(())
            }
            Err(e) => {
                self.failed = true;
                Err(e)
            }
        }
    }

    pub(crate) fn next_one<T: DeserializeOwned>(&mut self, key: &str) -> Option<Result<T>> {
        let item = self.page.pop_front()?;
        Some(decode(key, &item))
    }

    pub(crate) fn next_pair<K: DeserializeOwned, V: DeserializeOwned>(
        &mut self,
        key: &str,
    ) -> Option<Result<(K, V)>> {
        let f = self.page.pop_front()?;
        let v = self.page.pop_front()?;
        Some(decode(key, &f).and_then(|k| Ok((k, decode_value_of(key, &f, &v)?))))
    }
}
