//! The device command line as a real process.

/// `bilan-device status | head -0`: the reader is gone before the first line
/// is written; the command ends with success and says nothing on stderr
/// (before, `println!` panicked with "failed printing to stdout").
#[test]
fn device_cli_exits_quietly_when_its_reader_closes_the_pipe() {
    let tmp = tempfile::tempdir().unwrap();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_e2e-device"))
        .arg("--data")
        .arg(tmp.path())
        .arg("status")
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}: {stderr}", out.status);
    assert!(stderr.is_empty(), "nothing on stderr, got: {stderr}");
}
