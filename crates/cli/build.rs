//! Builds `libleakscope_preload.so` (crates/preload) with a nested `cargo build` into OUT_DIR, so the `leakscope`
//! binary can embed it (`include_bytes!`) and `leakscope native` works after a plain `cargo install --path
//! crates/cli`. Set LEAKSCOPE_PRELOAD_LIB to a prebuilt library to skip the nested build.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=../preload/src");
    println!("cargo:rerun-if-changed=../preload/Cargo.toml");
    println!("cargo:rerun-if-env-changed=LEAKSCOPE_PRELOAD_LIB");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let dest = out.join("libleakscope_preload.so");
    if let Some(prebuilt) = std::env::var_os("LEAKSCOPE_PRELOAD_LIB") {
        std::fs::copy(&prebuilt, &dest).expect("copy LEAKSCOPE_PRELOAD_LIB");
    } else if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
        let preload = manifest.join("../preload/Cargo.toml");
        let target_dir = out.join("preload-target");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--release", "--lib", "-j1", "--manifest-path"])
            .arg(&preload)
            .arg("--target-dir")
            .arg(&target_dir)
            // Outer-build settings that must not leak into the nested build (clippy's wrapper, target flags).
            .env_remove("RUSTC_WORKSPACE_WRAPPER")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("CARGO_BUILD_TARGET_DIR")
            .env_remove("CARGO_MAKEFLAGS")
            .env_remove("MAKEFLAGS")
            .env_remove("MFLAGS")
            .status()
            .expect("run cargo to build crates/preload");
        assert!(status.success(), "building crates/preload (libleakscope_preload.so) failed");
        std::fs::copy(target_dir.join("release/libleakscope_preload.so"), &dest).expect("copy the preload library");
    } else {
        // Not Linux: `leakscope native` reports that it is unsupported; embed an empty file.
        std::fs::write(&dest, b"").expect("write placeholder");
    }
    println!("cargo:rustc-env=LEAKSCOPE_PRELOAD_SO={}", dest.display());
}
