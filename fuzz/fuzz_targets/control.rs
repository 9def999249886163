//! The control socket: the bytes a client writes, framed into lines by the
//! socket's own bounded line reader, each line parsed and run against the
//! real server state (a directory-backed volume on a temporary export).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    volnfs::fuzzing::control_parse(data);
    volnfs::fuzzing::Server::get().control(data);
});
