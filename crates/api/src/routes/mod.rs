pub mod convert;
pub mod docs;
pub mod files;
pub mod health;
pub mod status;
pub mod website;
