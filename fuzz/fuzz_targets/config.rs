//! The config file: parsed (strict JSON) and validated, as `volnfs
//! check-config` and `volnfs serve --config` do.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        volnfs::fuzzing::config_file(text);
    }
});
