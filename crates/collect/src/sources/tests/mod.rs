//! Tests of the flow sources.
