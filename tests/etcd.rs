//! `hold --etcd` against a real etcd on loopback: the same promises as the
//! local lock. Each test starts an etcd of its own (skipped, with a reason,
//! when etcd is not installed).

mod common;

use std::fs;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::Duration;

use common::etcd::{
    Etcd, args, assert_lost, fragile, held, keeper_of, started, until_released, wait_for,
};
use common::{Scratch, exited, signal, wait_until_exited};

#[test]
fn a_second_hold_is_refused_while_the_first_holds() {
    let Some(etcd) = Etcd::start("etcd-exclusion") else {
        return;
    };
    let scratch = Scratch::new("etcd-exclusion-work");
    let first = started(etcd.hold("job", &args(&until_released(&scratch))), &scratch);
    let second = etcd.hold("job", &["--", "true"]).output().unwrap();
    assert_eq!(second.status.code(), Some(75));
    assert!(common::stderr(&second).contains("\"job\" is held"));
    // A try does not queue: nobody is left waiting.
    assert!(etcd.status_line("job").starts_with("state=held waiters=0 "));
    let quiet = etcd
        .hold("job", &["-q", "-E", "9", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(quiet.status.code(), Some(9));
    assert!(quiet.stderr.is_empty());
    fs::write(scratch.path("release"), "").unwrap();
    assert!(first.wait_with_output().unwrap().status.success());
    assert!(etcd.status_line("job").starts_with("state=free"));
}

#[test]
fn three_waiters_are_served_in_the_order_they_came() {
    let Some(etcd) = Etcd::start("etcd-order") else {
        return;
    };
    let scratch = Scratch::new("etcd-order-work");
    let holder = started(
        etcd.hold("queue", &args(&until_released(&scratch))),
        &scratch,
    );
    let order = scratch.path("order");
    let waiters: Vec<Child> = (1..=3)
        .map(|n| {
            let script = format!("echo {n} >> {}", order.display());
            let waiter = etcd
                .hold("queue", &["--wait", "30", "--", "sh", "-c", &script])
                .spawn()
                .unwrap();
            let queued = format!("state=held waiters={n} ");
            wait_for(Duration::from_secs(10), "the waiter to queue", || {
                etcd.status_line("queue").starts_with(&queued)
            });
            waiter
        })
        .collect();
    let status = etcd.status_line("queue");
    let tokens: Vec<i64> = status
        .lines()
        .skip(1)
        .map(|line| {
            assert!(line.starts_with("waiter "), "{status}");
            let token = line
                .split_whitespace()
                .find_map(|f| f.strip_prefix("token="));
            token.and_then(|token| token.parse().ok()).expect("a token")
        })
        .collect();
    assert!(tokens.len() == 3 && tokens.is_sorted(), "{status}");
    fs::write(scratch.path("release"), "").unwrap();
    assert!(holder.wait_with_output().unwrap().status.success());
    for waiter in waiters {
        assert!(waiter.wait_with_output().unwrap().status.success());
    }
    assert_eq!(fs::read_to_string(order).unwrap(), "1\n2\n3\n");
}

#[test]
fn a_hold_killed_with_sigkill_keeps_the_lock_while_the_command_runs_and_frees_it_at_once_after() {
    let Some(etcd) = Etcd::start("etcd-sigkill") else {
        return;
    };
    let scratch = Scratch::new("etcd-sigkill-work");
    let mut words = vec!["--ttl".to_string(), "4".into()];
    words.extend(until_released(&scratch));
    let mut hold = started(etcd.hold("kept", &args(&words)), &scratch);
    signal(hold.id(), "-KILL");
    let _ = hold.wait();
    // Past the TTL: the keeper renews the lease for the command.
    thread::sleep(Duration::from_secs(5));
    assert!(
        held(&etcd, "kept"),
        "the lock ended with hold, not with the command"
    );
    fs::write(scratch.path("release"), "").unwrap();
    // Revoked as the command exits, not left to the lease's last seconds
    // (over 2.6 s after the last renewal, which comes every 1.3 s).
    let freed = wait_for(Duration::from_secs(10), "the lock to free", || {
        !held(&etcd, "kept")
    });
    assert!(freed < Duration::from_secs(1), "freed after {freed:?}");
}

#[test]
fn with_the_keeper_killed_too_the_lock_frees_after_the_ttl() {
    let Some(etcd) = Etcd::start("etcd-keeper") else {
        return;
    };
    let scratch = Scratch::new("etcd-keeper-work");
    let mut words = vec!["--ttl".to_string(), "3".into()];
    words.extend(until_released(&scratch));
    let mut hold = started(etcd.hold("orphan", &args(&words)), &scratch);
    let keeper = keeper_of(hold.id());
    signal(keeper, "-KILL");
    signal(hold.id(), "-KILL");
    let _ = hold.wait();
    wait_until_exited(keeper);
    assert!(held(&etcd, "orphan"));
    let freed = wait_for(Duration::from_secs(10), "the lease to run out", || {
        !held(&etcd, "orphan")
    });
    assert!(freed > Duration::from_secs(1), "freed after {freed:?}");
    fs::write(scratch.path("release"), "").unwrap();
}

#[test]
fn etcd_killed_and_restarted_within_the_ttl_keeps_the_lock() {
    let Some(mut etcd) = Etcd::start("etcd-restart") else {
        return;
    };
    let scratch = Scratch::new("etcd-restart-work");
    let hold = started(
        etcd.hold("survivor", &args(&until_released(&scratch))),
        &scratch,
    );
    let before = etcd.status_line("survivor");
    etcd.kill();
    thread::sleep(Duration::from_secs(1));
    etcd.restart();
    // Past a renewal or two after the restart.
    thread::sleep(Duration::from_secs(4));
    assert_eq!(etcd.status_line("survivor"), before);
    assert!(!exited(hold.id()), "hold stopped though its lock was kept");
    fs::write(scratch.path("release"), "").unwrap();
    let output = hold.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", common::stderr(&output));
}

#[test]
fn a_waiter_keeps_its_place_across_an_etcd_restart_within_its_wait() {
    let Some(mut etcd) = Etcd::start("etcd-restart-waiter") else {
        return;
    };
    let scratch = Scratch::new("etcd-restart-waiter-work");
    let holder = started(
        etcd.hold("queue", &args(&until_released(&scratch))),
        &scratch,
    );
    let waiter = etcd
        .hold("queue", &["--wait", "30", "--", "true"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(Duration::from_secs(10), "the waiter to queue", || {
        etcd.status_line("queue")
            .starts_with("state=held waiters=1 ")
    });
    etcd.kill();
    thread::sleep(Duration::from_secs(1));
    etcd.restart();
    assert!(!exited(waiter.id()), "the waiter gave up its place");
    assert!(
        etcd.status_line("queue")
            .starts_with("state=held waiters=1 ")
    );
    fs::write(scratch.path("release"), "").unwrap();
    assert!(holder.wait_with_output().unwrap().status.success());
    let output = waiter.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", common::stderr(&output));
}

#[test]
fn a_lost_lock_is_said_signalled_to_the_command_and_exits_non_zero() {
    let Some(etcd) = Etcd::start("etcd-lost") else {
        return;
    };
    let Some(mut etcdctl) = etcd.etcdctl() else {
        return;
    };
    let scratch = Scratch::new("etcd-lost-work");
    let hold = fragile(&etcd, &scratch);
    let line = etcd.status_line("fragile");
    let lease = line
        .split_whitespace()
        .find_map(|field| field.strip_prefix("lease="))
        .expect("the lease in status")
        .to_string();
    let revoked = etcdctl.args(["lease", "revoke", &lease]).output().unwrap();
    assert!(revoked.status.success(), "{revoked:?}");
    assert_lost(hold, &scratch, "etcd has ended its lease");
}

#[test]
fn etcd_out_of_reach_for_the_whole_ttl_loses_the_lock() {
    let Some(mut etcd) = Etcd::start("etcd-unreachable") else {
        return;
    };
    let scratch = Scratch::new("etcd-unreachable-work");
    let hold = fragile(&etcd, &scratch);
    etcd.kill();
    assert_lost(hold, &scratch, "out of reach for its whole TTL");
}

#[test]
fn no_etcd_at_the_address_exits_68_with_one_line_naming_it() {
    let port = common::dead_port();
    let url = format!("http://127.0.0.1:{port}");
    let output = Command::new(env!("CARGO_BIN_EXE_namaste"))
        .args(["hold", "nothing", "--etcd", &url, "--", "true"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(68));
    let stderr = common::stderr(&output);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(&url), "{stderr}");
}

#[test]
fn a_url_with_no_port_a_port_past_65535_or_a_path_is_a_usage_error() {
    for url in [
        "http://127.0.0.1:99999",
        "http://127.0.0.1",
        "http://127.0.0.1:2379/some/path",
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_namaste"))
            .args(["hold", "x", "--etcd", url, "--", "true"])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{url}");
        let stderr = common::stderr(&output);
        assert!(stderr.contains(url), "{stderr}");
    }
}

#[test]
fn a_name_with_a_slash_is_a_usage_error_as_its_keys_would_nest() {
    for command in [
        &["hold", "a/b", "--etcd", "http://127.0.0.1:1", "--", "true"][..],
        &["status", "a/b", "--etcd", "http://127.0.0.1:1"],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_namaste"))
            .args(command)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{command:?}");
        let stderr = common::stderr(&output);
        assert!(stderr.contains("without /"), "{stderr}");
    }
}

#[test]
fn each_hold_gets_a_greater_token() {
    let Some(etcd) = Etcd::start("etcd-tokens") else {
        return;
    };
    let token = || {
        let output = etcd
            .hold("counted", &["--", "sh", "-c", "echo $NAMASTE_TOKEN"])
            .output()
            .unwrap();
        assert!(output.status.success());
        String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse::<i64>()
            .expect("a token")
    };
    let first = token();
    let second = token();
    assert!(0 < first && first < second, "{first} then {second}");
}

#[test]
fn hold_and_etcdctl_lock_take_turns_on_the_same_keys() {
    let Some(etcd) = Etcd::start("etcd-etcdctl") else {
        return;
    };
    let scratch = Scratch::new("etcd-etcdctl-work");
    let mut etcdctl = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args([
            "--endpoints",
            &etcd.url(),
            "lock",
            "namaste/shared",
            "--",
            "sh",
            "-c",
        ])
        .arg(format!(
            "touch {}; {}",
            scratch.path("started").display(),
            scratch.wait_for_file("release")
        ))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(Duration::from_secs(20), "etcdctl to lock", || {
        scratch.path("started").exists()
    });
    let refused = etcd.hold("shared", &["--", "true"]).output().unwrap();
    assert_eq!(refused.status.code(), Some(75));
    let waiter = etcd
        .hold("shared", &["--wait", "30", "--", "true"])
        .spawn()
        .unwrap();
    wait_for(Duration::from_secs(10), "hold to queue", || {
        etcd.status_line("shared")
            .starts_with("state=held waiters=1 ")
    });
    fs::write(scratch.path("release"), "").unwrap();
    assert!(etcdctl.wait().unwrap().success());
    assert!(waiter.wait_with_output().unwrap().status.success());
}

#[test]
fn the_local_servers_options_are_refused_with_etcd_in_one_line() {
    for option in [
        &["--per-user"][..],
        &["--port", "64009"],
        &["--pass-messages"],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_namaste"))
            .args(["hold", "x", "--etcd", "http://127.0.0.1:1"])
            .args(option)
            .args(["--", "true"])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{option:?}");
        let stderr = common::stderr(&output);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains("--etcd takes none of"), "{stderr}");
    }
}
