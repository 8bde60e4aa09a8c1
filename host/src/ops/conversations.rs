//! conversations: see API.md, "Traffic".
