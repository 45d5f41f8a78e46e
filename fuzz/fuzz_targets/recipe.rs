//! The recipe parser and validator: any text either parses into a valid recipe or is
//! refused with an error naming a field — never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(recipe) = darkroom_core::Recipe::from_json(text) {
            // What parsed must validate, plan and survive a round trip.
            assert!(recipe.validate().is_ok());
            let _ = darkroom_core::StageMap::default().plan(&recipe);
            let again = serde_json::to_string(&recipe).map(|json| darkroom_core::Recipe::from_json(&json));
            assert!(matches!(again, Ok(Ok(_))), "a valid recipe did not round-trip");
        }
    }
});
