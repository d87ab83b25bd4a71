//! Rebuilds the crate when the built viewer (`ui/dist`, embedded by
//! `src/viewer.rs`) changes. rust-embed's `include_bytes!` already tracks
//! the files that exist; this also catches files added or removed, which
//! no `include_bytes!` names.

fn main() {
    println!("cargo:rerun-if-changed=../../ui/dist");
}
