//! The portmapper: PMAP v2, RPCBIND v3 and v4 (RFC 1833) through the real dispatcher on a temporary
//! export: a valid call header, then the fuzzer's arguments (handle tokens
//! replaced, see `volnfs::fuzzing`). Byte 0: the procedure; byte 1: bit 0
//! UDP, bits 1-2 the caller; byte 2: the program version.
#![no_main]
use libfuzzer_sys::fuzz_target;
use volnfs::fuzzing::{Caller, Server};
use volnfs::rpc::Transport;

fuzz_target!(|data: &[u8]| {
    let [proc_, flags, vers, args @ ..] = data else {
        return;
    };
    let transport = if flags & 1 == 0 {
        Transport::Tcp
    } else {
        Transport::Udp
    };
    let who = Caller::from_bits(flags >> 1);
    Server::get().call_program(
        transport,
        volnfs::portmap::PROGRAM,
        *vers as u32,
        *proc_ as u32,
        who,
        args,
    );
});
