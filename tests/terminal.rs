//! `diagnose` as a person sees it in a terminal: run through a pty
//! (util-linux `script`), colour follows `--color` and NO_COLOR (issue 16).

mod common;
use common::*;
use std::process::Command;

/// Runs `diagnose` on a bundle with a pty as its stdout; returns what the
/// terminal received.
fn in_a_pty(extra: &str, no_color: Option<&str>) -> String {
    let bundle = repo("tests/bundles/min-ip-target-stall");
    let cmd = format!("{} diagnose --bundle {} {extra}", bin(), bundle.display());
    let mut c = Command::new("script");
    c.args(["-qec", &cmd, "/dev/null"]).env_remove("NO_COLOR");
    if let Some(v) = no_color {
        c.env("NO_COLOR", v);
    }
    let out = c
        .output()
        .expect("util-linux `script` runs the command in a pty");
    // 1: a finding of severity warning or worse, as without a pty.
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn colour_follows_the_terminal_no_color_and_the_flag() {
    let esc = "\x1b[";
    let tty = in_a_pty("", None);
    assert!(tty.contains("IpamdAllocationStalled"), "{tty}");
    assert!(tty.contains(esc), "a terminal gets colour by default");
    assert!(
        !in_a_pty("", Some("1")).contains(esc),
        "NO_COLOR=1 turns it off"
    );
    // no-color.org: an empty NO_COLOR does not count.
    assert!(in_a_pty("", Some("")).contains(esc));
    assert!(!in_a_pty("--color never", None).contains(esc));
    assert!(
        in_a_pty("--color always", Some("1")).contains(esc),
        "always wins"
    );
    // Without a pty, auto means no colour; always still colours.
    let bundle = repo("tests/bundles/min-ip-target-stall");
    let piped = run(&["diagnose", "--bundle", bundle.to_str().unwrap()]);
    assert!(!piped.stdout.contains(esc));
    let forced = run(&[
        "diagnose",
        "--bundle",
        bundle.to_str().unwrap(),
        "--color",
        "always",
    ]);
    assert!(forced.stdout.contains(esc));
}

/// The first-run path (issue 16 item 5): `demo` says where to look, with
/// the address it really bound, and those URLs answer.
#[test]
fn demo_says_where_to_look() {
    use std::io::BufRead;
    let mut child = Command::new(bin())
        .args(["demo", "--listen", "127.0.0.1:0", "--log-format", "json"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn demo");
    let stderr = child.stderr.take().unwrap();
    let mut urls = Vec::new();
    for line in std::io::BufReader::new(stderr).lines() {
        let Ok(line) = line else { break };
        if let Some(i) = line.find("http://") {
            urls.push(line[i..].trim().to_string());
        }
        if urls.len() == 3 {
            break;
        }
    }
    let result = std::panic::catch_unwind(|| {
        assert_eq!(urls.len(), 3, "{urls:?}");
        for (url, suffix) in urls.iter().zip(["/", "/metrics", "/api/v1/diagnosis"]) {
            assert!(url.ends_with(suffix), "{url}");
            let rest = url.trim_start_matches("http://");
            let (addr, path) = rest.split_at(rest.find('/').unwrap());
            assert_eq!(http_get(addr, path).0, 200, "{url}");
        }
    });
    let _ = child.kill();
    let _ = child.wait();
    result.unwrap();
}
