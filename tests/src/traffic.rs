//! Test helpers for traffic (API.md, "Traffic").
