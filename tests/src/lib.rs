//! Helpers for wharf's end-to-end tests: throwaway network namespaces that
//! clean up after themselves.

#![forbid(unsafe_code)]
