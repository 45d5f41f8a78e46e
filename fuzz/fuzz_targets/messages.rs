//! The queue message decoders: any body is a request or response, or a clear error that
//! says whether a newer version may read it — never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(body) = std::str::from_utf8(data) {
        if let Ok(request) = darkroom_core::PhotoRequest::decode(body) {
            let _ = request.current_ops();
            let _ = request.remaining_ops();
            let _ = request.forwarded(None, Vec::new(), request.work_ms);
            let _ = request.encode();
        }
        if let Ok(response) = darkroom_core::PhotoResponse::decode(body) {
            let _ = response.event();
        }
    }
});
