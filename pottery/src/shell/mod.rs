//! What every structure is made of, besides its own plans: the tables that make its blocking,
//! async and batch methods from one definition ([`ops`]), the basics both shells share
//! ([`basics`]), runners for multi-step operations ([`runner`]), made-up keys and atomic
//! creation ([`keys`]), and SCAN iteration ([`scan`]).

#[macro_use]
pub(crate) mod basics;
pub(crate) mod keys;
pub(crate) mod ops;
pub(crate) mod runner;
pub(crate) mod scan;

pub(crate) use self::basics::{clone_core, shell_basics, shell_impls};
pub(crate) use self::ops::ops;
