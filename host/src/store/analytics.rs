//! analytics: see API.md, "Traffic".
