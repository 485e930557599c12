//! Fuzz target `rollout`: see `rollgate_fuzzing::rollout`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rollgate_fuzzing::rollout(data));
