//! The README's dependency line and its Rust example, as a program of
//! someone else's builds them: a crate of its own that depends on this one
//! by path, client alone (`default-features = false`), built offline from
//! the local registry cache. And a booking dropped on the spot warns.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const README: &str = include_str!("../README.md");

/// The README's Rust example: the first `rust` block after "## From Rust".
fn readme_example() -> &'static str {
    let section = &README[README.find("## From Rust").expect("a From Rust section")..];
    let start = section.find("```rust").expect("a Rust block");
    let body = &section[start..];
    let body = &body[body.find('\n').unwrap() + 1..];
    &body[..body.find("```").expect("the block ends")]
}

/// The README's dependency line, pointed at this checkout.
fn readme_dependency() -> String {
    let line = README
        .lines()
        .find(|line| line.starts_with("namaste = { path = "))
        .expect("a path dependency line in the README");
    let here = env!("CARGO_MANIFEST_DIR");
    line.replace("\"../namaste\"", &format!("{here:?}"))
}

/// A scratch crate under `target/tmp` with `main` as its program.
fn scratch_crate(name: &str, main: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/tmp")
        .join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("src")).unwrap();
    let manifest = format!(
        "[package]\nname = \"{name}\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n\
         [dependencies]\n{}\n\n# Not part of the crate it sits in.\n[workspace]\n",
        readme_dependency()
    );
    fs::write(dir.join("Cargo.toml"), manifest).unwrap();
    fs::write(dir.join("src/main.rs"), main).unwrap();
    // The versions this crate is tested with, all in the local cache.
    fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.lock"),
        dir.join("Cargo.lock"),
    )
    .unwrap();
    dir
}

fn cargo() -> Option<PathBuf> {
    let cargo = std::env::var_os("CARGO").map_or_else(|| PathBuf::from("cargo"), PathBuf::from);
    let works = Command::new(&cargo)
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success());
    works.then_some(cargo)
}

/// `cargo build --offline` of the crate in `dir`, in a target directory of
/// its own (the outer build holds a lock on ours).
fn build(cargo: &Path, dir: &Path) -> Output {
    Command::new(cargo)
        .args(["build", "--offline", "--quiet"])
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .env_remove("RUSTFLAGS")
        .output()
        .unwrap()
}

#[test]
fn the_readme_example_builds_with_the_readme_dependency_line() {
    let Some(cargo) = cargo() else {
        return common::skip("cargo is not on PATH");
    };
    let dir = scratch_crate("readme-example", readme_example());
    let output = build(&cargo, &dir);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");
    // The client alone: none of the server's crates was built.
    let built = fs::read_dir(dir.join("target/debug/deps")).unwrap();
    let names: Vec<String> = built
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().any(|name| name.starts_with("libnamaste-")));
    for server_only in ["libsignal_hook", "libnetlink", "libsimplelog", "libsocket2"] {
        assert!(
            !names.iter().any(|name| name.starts_with(server_only)),
            "{server_only} built for the client alone"
        );
    }
}

#[test]
fn a_booking_dropped_on_the_spot_warns() {
    let Some(cargo) = cargo() else {
        return common::skip("cargo is not on PATH");
    };
    let main = r#"
use namaste::Uid;
use namaste::client::{Client, Error};

fn main() -> Result<(), Error> {
    let client = Client::new();
    let id = Uid::from_name("dropped");
    client.book(id)?;
    Ok(())
}
"#;
    let dir = scratch_crate("readme-dropped-booking", main);
    let output = build(&cargo, &dir);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("unused `Booking` that must be used")
            && stderr.contains("client.book(id)?;")
            && stderr.contains("checks out at once"),
        "{stderr}"
    );
}
