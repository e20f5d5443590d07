//! The runner against real components, and the cloud metadata lookup against a stand-in.

mod metadata;
