//! Fuzz target `lint`: see `rollgate_fuzzing::lint`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rollgate_fuzzing::lint(data));
