//! campaigns: see API.md, "Traffic".
