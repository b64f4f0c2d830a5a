//! One module per data source. Each parser turns the exact bytes a real
//! source emits into the slim typed state of [`crate::model::state`].

pub(crate) mod agent;
pub mod bundle;
pub mod cloudtrail;
pub(crate) mod ec2;
pub mod ipamd;
pub mod kube;
pub(crate) mod time;
