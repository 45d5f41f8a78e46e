//! Intake's judgement of an uploaded file's first bytes, and the plain form's recipe
//! fields: whatever arrives is accepted or rejected with a reason — never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::collections::HashMap;

fuzz_target!(|data: &[u8]| {
    let limits = darkroom_core::Limits::default();
    let _ = darkroom_web::judge(data, true, &limits);
    let _ = darkroom_web::judge(data, false, &limits);
    // The same bytes as form fields: `name=value` lines.
    if let Ok(text) = std::str::from_utf8(data) {
        let fields: HashMap<String, String> = text
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect();
        let _ = darkroom_web::recipe_from_fields(&fields);
    }
});
