//! Anytime-valid sequential judge on event counts (see the module documentation of `judge`).
