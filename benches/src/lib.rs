//! wharf's benchmarks. The criterion benches live in `benches/`; frames they
//! share are built here.

#![forbid(unsafe_code)]
