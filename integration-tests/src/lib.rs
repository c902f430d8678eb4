//! Test harness for end-to-end builds against a real engine.
