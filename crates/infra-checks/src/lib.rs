//! Static checks of the Terraform stacks under `terraform/`, run by `cargo test -p
//! infra-checks` without any provider plugin or cloud account.
//!
//! Every check is a function from parsed HCL to a list of problems (empty when the check
//! passes), so that the tests can feed it both the real stacks and bad snippets.

pub mod checks;
pub mod counts;
pub mod functions;
pub mod stack;
pub mod templates;
pub mod user_data;

pub use stack::{Stack, terraform_root};
