//! The RPC call header and its AUTH_SYS credential (RFC 5531 §9, appendix A):
//! one whole message as a transport hands it to the dispatcher.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    volnfs::fuzzing::rpc_call(data);
});
