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

/// `diagnose` in a terminal of `cols` columns (the pty's size set with
/// `stty`, as a real terminal reports it through TIOCGWINSZ), COLUMNS unset.
fn in_a_sized_pty(bundle: &str, cols: u32, extra: &str) -> String {
    let bundle = repo(bundle);
    let cmd = format!(
        "stty cols {cols} rows 50; {} diagnose --bundle {} --color never {extra}",
        bin(),
        bundle.display()
    );
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env_remove("COLUMNS")
        .output()
        .expect("util-linux `script` runs the command in a pty");
    // The pty turns \n into \r\n.
    String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n")
}

/// Issue 16 item 3: an 80-column terminal gets a table and prose that fit,
/// a wide one every column, and `--wide` every column anywhere.
#[test]
fn the_table_fits_the_terminal() {
    for bundle in [
        "tests/bundles/karpenter-overcommit",
        "tests/bundles/min-ip-target-stall",
        "bundles/demo",
    ] {
        let narrow = in_a_sized_pty(bundle, 80, "");
        assert!(narrow.contains("NODES ("), "{narrow}");
        let long: Vec<&str> = narrow.lines().filter(|l| l.chars().count() > 80).collect();
        assert!(
            long.is_empty(),
            "{bundle}: lines over 80 columns: {long:#?}"
        );
        assert!(narrow.contains("--wide shows every column"), "{narrow}");
        let header = narrow.lines().find(|l| l.starts_with("NODE ")).unwrap();
        for must in ["NODE", "MAX-PODS", "CNI-MAX", "WAITING", "AT-ZERO-FREE"] {
            assert!(
                header.contains(must),
                "{bundle}: {must} dropped at 80: {header}"
            );
        }
        let wide = in_a_sized_pty(bundle, 200, "");
        let header = wide.lines().find(|l| l.starts_with("NODE ")).unwrap();
        let forced = in_a_sized_pty(bundle, 80, "--wide");
        let forced_header = forced.lines().find(|l| l.starts_with("NODE ")).unwrap();
        for col in ["TYPE", "OVERCOMMIT", "ENIS", "ALLOC-SILENCE"] {
            assert!(
                forced_header.contains(col),
                "--wide lacks {col}: {forced_header}"
            );
        }
        // 200 columns fit more than 80 do.
        assert!(
            header.split_whitespace().count()
                > narrow
                    .lines()
                    .find(|l| l.starts_with("NODE "))
                    .unwrap()
                    .split_whitespace()
                    .count()
        );
    }
    // The stalled node's silence is the finding's: one definition.
    let stall = in_a_sized_pty("tests/bundles/min-ip-target-stall", 200, "");
    assert!(stall.contains("for 2h30m"), "{stall}");
    let row = stall
        .lines()
        .find(|l| l.starts_with("ip-10-0-36-41"))
        .unwrap();
    assert!(row.trim_end().ends_with("2h30m"), "{row}");
    // A pipe without COLUMNS gets every column (scripts); COLUMNS narrows it.
    let b = repo("tests/bundles/karpenter-overcommit");
    let piped = run_env(
        &["diagnose", "--bundle", b.to_str().unwrap()],
        &[("COLUMNS", "")],
    );
    assert!(piped.stdout.contains("ALLOC-SILENCE"), "{}", piped.stdout);
    let narrowed = run_env(
        &["diagnose", "--bundle", b.to_str().unwrap()],
        &[("COLUMNS", "80")],
    );
    assert!(
        narrowed.stdout.lines().all(|l| l.chars().count() <= 80),
        "{}",
        narrowed.stdout
    );
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
