//! tenant-operator imports contact-center tenant archives into a cluster's
//! configuration database.
//!
//! The archive reader ([`archive`]), the tenant model ([`model`]), the configuration
//! database ([`db`]) and the import engine ([`engine`]) are plain library code that
//! does not depend on Kubernetes or HTTP. The front ends call into them: the command
//! line ([`cli`]), the HTTP shim ([`shim`]) and the Kubernetes operator ([`operator`]).

pub mod archive;
pub mod cli;
pub mod db;
pub mod deploy;
pub mod engine;
pub mod export;
pub mod generator;
pub mod lock;
pub mod model;
pub mod operator;
pub mod shim;
