//! SQLite store and member directory (in progress).
