pub mod convert;
pub mod files;
pub mod health;
pub mod status;
