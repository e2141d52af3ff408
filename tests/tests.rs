//! Every end-to-end test in one binary (ripgrep's habit): libtorch, wasmtime and the AWS
//! SDK are linked once instead of once per file. Each file below is a module; run one with
//! `cargo test --test e2e train::` (its module name as a filter).
//!
//! The CUDA tests stay in their own binary (`tests/cuda.rs`, ignored without a GPU): the GPU
//! checks script ships that binary alone to a machine with a GPU.

mod common;

mod cameras;
mod cli;
mod curriculum;
mod docker;
mod envset;
mod experiments;
mod fleet;
mod gymnasium;
mod languages;
mod monitor;
mod offpolicy;
mod physics;
mod registry;
mod reload;
mod robots;
mod sandbox;
mod store;
mod tracking;
mod train;
mod travel;
mod tui;
