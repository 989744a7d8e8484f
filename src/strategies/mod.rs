//! [`proptest`] strategies for the crate's types (feature `proptest`).
//!
//! Services that embed `afiliado` use them in their own property tests; the crate's tests use
//! the same ones.
//!
//! ```
//! use afiliado::strategies::{identity::valid_cedula, policy::policy};
//! use proptest::prelude::*;
//!
//! proptest!(|(cedula in valid_cedula(), policy in policy())| {
//!     prop_assert_eq!(cedula.as_str().parse::<afiliado::Cedula>().ok(), Some(cedula.clone()));
//!     prop_assert!(policy.validate().is_ok());
//! });
//! ```

pub mod flow;
pub mod identity;
pub mod password;
pub mod policy;
