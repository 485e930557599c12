//! Fuzz target `analysis_template`: see `rollgate_fuzzing::analysis_template`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rollgate_fuzzing::analysis_template(data));
