//! NFSv3 through the real dispatcher on a temporary export: a valid call
//! header, then the fuzzer's arguments (handle tokens replaced by real
//! handles, see `volnfs::fuzzing`). Byte 0: the procedure (0..=23: the 22,
//! and two that do not exist); byte 1: bit 0 UDP, bits 1-2 the caller.
#![no_main]
use libfuzzer_sys::fuzz_target;
use volnfs::fuzzing::{transport_and_caller, Server};

fuzz_target!(|data: &[u8]| {
    let [proc_, flags, args @ ..] = data else {
        return;
    };
    let (transport, who) = transport_and_caller(*flags);
    Server::get().nfs3(transport, *proc_ as u32 % 24, who, args);
});
