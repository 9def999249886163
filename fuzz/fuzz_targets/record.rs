//! Record marking and reassembly (RFC 5531 §11), then the call header of
//! every record: the bytes a TCP connection reads, as they arrive. The
//! first byte picks the record limit: the transports' own, or a small one
//! so refusals are reached with short inputs.
#![no_main]
use libfuzzer_sys::fuzz_target;
use volnfs::fuzzing;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, stream)) = data.split_first() else {
        return;
    };
    let max = if sel & 1 == 0 {
        fuzzing::max_record()
    } else {
        256 + sel as usize
    };
    for record in fuzzing::records(stream, max) {
        fuzzing::rpc_call(&record);
    }
});
