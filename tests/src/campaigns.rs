//! Test helpers for campaigns (API.md, "Traffic").
