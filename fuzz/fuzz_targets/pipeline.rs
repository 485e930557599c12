//! Fuzz target `pipeline`: see `rollgate_fuzzing::pipeline`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rollgate_fuzzing::pipeline(data));
