//! `partnerkit --version` (also `-V`, `version`): one line, `partnerkit <version>`, exit 0 —
//! what the image test (tests/image) runs from the image's filesystem.

use std::process::Command;

fn partnerkit(arg: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_partnerkit"))
        .arg(arg)
        .env_clear()
        .output()
        .expect("running partnerkit")
}

#[test]
fn version_prints_the_crate_version_and_exits_0() {
    for arg in ["--version", "-V", "version"] {
        let out = partnerkit(arg);
        assert_eq!(out.status.code(), Some(0), "{arg}: {out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("partnerkit {}\n", env!("CARGO_PKG_VERSION")),
            "{arg}"
        );
        assert!(out.stderr.is_empty(), "{arg}: {out:?}");
    }
}

#[test]
fn an_unknown_command_prints_the_usage_with_version_and_exits_2() {
    let out = partnerkit("--versions");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    let usage = String::from_utf8_lossy(&out.stderr);
    assert!(usage.starts_with("usage: partnerkit run"), "{usage}");
    assert!(usage.contains("| --version"), "{usage}");
}
