//! Test helpers for webhooks (API.md, "Traffic").
