//! Every NFSv3 argument decoder (RFC 1813): the first byte picks the
//! procedure (modulo 22), the rest are its arguments.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&proc_, args)) = data.split_first() else {
        return;
    };
    volnfs::fuzzing::nfs3_decode(proc_ as u32, args);
});
