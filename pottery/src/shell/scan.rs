//! A SCAN-family iteration in progress (`HSCAN`, `SSCAN`): one page in memory.

use std::collections::VecDeque;

use serde::de::DeserializeOwned;

use crate::error::Result;
use crate::exec::reply::{decode, decode_value_of};

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
