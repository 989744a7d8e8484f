//! PostgreSQL store and member directory (in progress).
