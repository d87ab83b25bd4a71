//! Puts the commit the binary was built from into `logtap --version`
//! (`LOGTAP_GIT_COMMIT`): `$LOGTAP_GIT_COMMIT` when the build is given one
//! (the container image, whose build context holds no `.git`), else
//! `git rev-parse --short HEAD`, else `unknown` (a source tarball, no git).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=LOGTAP_GIT_COMMIT");
    let given = std::env::var("LOGTAP_GIT_COMMIT")
        .ok()
        .filter(|commit| !commit.trim().is_empty() && commit.trim() != "unknown");
    let commit = given
        .or_else(|| git(&["rev-parse", "--short", "HEAD"]))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=LOGTAP_GIT_COMMIT={commit}");
    // Rebuilt when HEAD moves: HEAD itself (a checkout), the branch it
    // names (a commit) and packed-refs (a gc). A worktree keeps HEAD in its
    // own git directory and the branches in the common one.
    // Only files that exist: cargo reruns a script whose watched file is
    // missing every time.
    let mut watched = Vec::new();
    if let Some(git_dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        watched.push(PathBuf::from(git_dir).join("HEAD"));
    }
    if let Some(common) = git(&["rev-parse", "--path-format=absolute", "--git-common-dir"]) {
        let common = PathBuf::from(common);
        watched.push(common.join("packed-refs"));
        if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
            watched.push(common.join(branch));
        }
    }
    for path in watched.iter().filter(|path| path.exists()) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

/// The trimmed output of a successful git command.
fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    (output.status.success() && !text.trim().is_empty()).then(|| text.trim().to_string())
}
