//! Fuzz target `scenario`: see `rollgate_fuzzing::scenario`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rollgate_fuzzing::scenario(data));
