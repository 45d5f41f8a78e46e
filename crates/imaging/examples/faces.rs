//! Prints the faces, eye and mouth areas darkroom finds in photos: `cargo run -p
//! darkroom-imaging --example faces -- photo.jpg ...` (useful to annotate fixtures).

fn main() {
    for path in std::env::args().skip(1) {
        let Ok(bytes) = std::fs::read(&path) else {
            eprintln!("{path}: cannot read");
            continue;
        };
        match darkroom_imaging::decode(&bytes, darkroom_core::Limits::default().into()) {
            Ok(photo) => {
                for face in darkroom_imaging::faces::detect_faces(&photo.image) {
                    println!("{path}: face {face:?}");
                    for eye in darkroom_imaging::faces::eye_areas(&face) {
                        println!("{path}:   eye {eye:?}");
                    }
                    println!("{path}:   mouth {:?}", darkroom_imaging::faces::mouth_area(&face));
                }
            }
            Err(error) => eprintln!("{path}: {error}"),
        }
    }
}
