//! webhooks: see API.md, "Traffic".
