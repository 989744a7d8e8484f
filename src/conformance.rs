//! The storage conformance suite every [`AccountStore`](crate::ports::AccountStore) backend passes (in progress).
