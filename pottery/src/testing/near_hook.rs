//! A hook into the near cache's fills, to force the race between a read's reply and its
//! insertion in tests (yours and ours).

use std::sync::{Arc, Mutex};

/// A fill hook: called with the key being filled.
pub type FillHook = Arc<dyn Fn(&[u8]) + Send + Sync>;

static HOOK: Mutex<Option<FillHook>> = Mutex::new(None);

/// Calls `hook` with the key of every near-cache fill, after the server's reply arrived and
/// before it is inserted (process-wide; `None` removes it). A write made from the hook (by
/// another client) lands exactly in the window the freshness rule must close.
///
/// ```
/// pottery::testing::near_hook::set_fill_hook(Some(std::sync::Arc::new(|key: &[u8]| {
///     let _ = key;
/// })));
/// pottery::testing::near_hook::set_fill_hook(None);
/// ```
pub fn set_fill_hook(hook: Option<FillHook>) {
    *crate::sync::lock(&HOOK) = hook;
}

pub(crate) fn before_insert(key: &[u8]) {
    let hook = crate::sync::lock(&HOOK).clone();
    if let Some(hook) = hook {
        hook(key);
    }
}
