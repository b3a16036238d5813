#![doc = include_str!("../README.md")]

pub mod address;
pub mod discovery;
pub mod events;
pub mod naming;
pub mod notify;
pub mod plan;
pub mod request;
pub mod status;
pub mod webhook;

pub use address::{AllowList, SourceUrl, UrlError};
pub use plan::{Discovery, Plan};
pub use status::{BatchStatus, ItemStatus, JobStatus, OutputMode};
