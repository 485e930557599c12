//! Fuzz target `sim_request`: see `rollgate_fuzzing::sim_request`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rollgate_fuzzing::sim_request(data));
