//! The lock manager (NLM v4) and its status monitor (NSM v1) through the
//! real dispatcher on a temporary export: a valid call header, then the
//! fuzzer's arguments (handle tokens replaced, see `volnfs::fuzzing`).
//! Byte 0: the procedure; byte 1: bit 0 UDP, bits 1-2 the caller, bit 3
//! NSM instead of NLM; byte 2: the program version. The caller's locks are
//! released after every input.
#![no_main]
use libfuzzer_sys::fuzz_target;
use volnfs::fuzzing::{transport_and_caller, Server};

fuzz_target!(|data: &[u8]| {
    let [proc_, flags, vers, args @ ..] = data else {
        return;
    };
    let (transport, who) = transport_and_caller(*flags);
    let prog = if flags & 8 == 0 {
        volnfs::nlm::PROGRAM
    } else {
        volnfs::nlm::nsm::PROGRAM
    };
    Server::get().lock_manager(transport, prog, *vers as u32, *proc_ as u32, who, args);
});
