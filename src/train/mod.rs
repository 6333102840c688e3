//! Training: models built around a compiled cell, and (later) optimisers, schedules and the loop.

pub mod lm;
