//! The portmapper: PMAP v2, RPCBIND v3 and v4 (RFC 1833) through the real dispatcher on a temporary
//! export: a valid call header, then the fuzzer's arguments (handle tokens
//! replaced, see `volnfs::fuzzing`). Byte 0: the procedure; byte 1: bit 0
//! UDP, bits 1-2 the caller; byte 2: the program version.
#![no_main]
use libfuzzer_sys::fuzz_target;
use volnfs::fuzzing::{transport_and_caller, Server};

fuzz_target!(|data: &[u8]| {
    let [proc_, flags, vers, args @ ..] = data else {
        return;
    };
    let (transport, who) = transport_and_caller(*flags);
    Server::get().call_program(
        transport,
        volnfs::portmap::PROGRAM,
        *vers as u32,
        *proc_ as u32,
        who,
        args,
    );
});
