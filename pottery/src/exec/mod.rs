//! Execution, before any I/O: how an operation is written ([`plan`]: a request plus a
//! decoder, and `script!` for the Lua scripts under `src/scripts/`), how its reply is read
//! ([`reply`]), which failures may be retried ([`retry`]), cluster slots ([`slot`]) and the
//! runtimes blocking calls run on ([`rt`]). The client (`crate::client`) runs plans on
//! connections: see `client/run.rs` for `Redis::run` and `Redis::run_async`.
//!
//! Dependencies run one way: error → codec → exec → client → structures → batch → macros.

pub(crate) mod jitter;
pub(crate) mod plan;
pub(crate) mod race;
pub(crate) mod reply;
pub(crate) mod retry;
pub(crate) mod rt;
pub(crate) mod slot;

pub(crate) use self::plan::Op;
