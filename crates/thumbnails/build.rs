//! Builds `csrc/jpeg.c`, the small C face of libjpeg(-turbo) that `src/jpeg.rs` calls, and links
//! the system's libjpeg (Debian and Ubuntu: `apt-get install libjpeg62-turbo-dev` or
//! `libjpeg-turbo8-dev`; Fedora: `libjpeg-turbo-devel`).

fn main() {
    println!("cargo:rerun-if-changed=csrc/jpeg.c");
    cc::Build::new()
        .file("csrc/jpeg.c")
        .warnings(true)
        .extra_warnings(true)
        .opt_level(2)
        .compile("thumbnails_jpeg");
    println!("cargo:rustc-link-lib=jpeg");
}
