//! Pure domain code: no I/O, no async. Everything here is a function of its
//! inputs, so it is tested with tables of real cases.

pub mod analysis;
pub mod capacity;
pub mod cni;
pub(crate) mod discovery;
pub mod env;
pub mod findings;
#[cfg(test)]
pub(crate) mod fixtures;
pub(crate) mod growth;
pub(crate) mod holders;
pub mod limits;
pub(crate) mod paging;
pub(crate) mod plan;
pub mod state;
pub(crate) mod steady_state;
pub mod view;
