//! Serving connections: the accept loop with its bounds ([`listener`]) and TLS with reload
//! ([`tls`]).

pub mod listener;
pub mod tls;
