#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rostree_fuzz::summary(data));
