//! Zone metadata: parsed, mapped to a config and a first-boot plan as
//! `zone-config` and `zone-setup` do; a config `zone-config` would write
//! must load back.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        volnfs::fuzzing::zone_metadata(text);
    }
});
