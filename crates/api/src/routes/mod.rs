pub mod convert;
pub mod deliveries;
pub mod docs;
pub mod files;
pub mod health;
pub mod project;
pub mod status;
pub mod website;
