//! Kayenta-style fixed-horizon judge (see the module documentation of `judge`).
