//! `hold --etcd` when etcd or the machine misbehaves, as an attacker did
//! it: a member that takes requests and never answers, an endpoint that
//! drips its reply, the lock's key deleted by hand, the keeper killed
//! alone, a TTL past etcd's longest. Each test starts what it needs on
//! loopback (an etcd of its own is skipped, with a reason, when etcd is not
//! installed).

mod common;

use std::fs;
use std::process::{Command, Output};
use std::thread;
use std::time::{Duration, Instant};

use common::etcd::{
    Etcd, Member, args, assert_lost, dripping_endpoint, fragile, held, keeper_of, until_released,
    wait_for,
};
use common::{Scratch, exited, signal, silent_port};

/// `namaste hold NAME --etcd URLS ARGS`, run to its end.
fn hold(name: &str, urls: &str, words: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_namaste"))
        .args(["hold", name, "--etcd", urls])
        .args(words)
        .output()
        .expect("run namaste hold")
}

#[test]
fn a_member_that_takes_requests_and_never_answers_is_passed_over_for_the_next() {
    let Some(etcd) = Etcd::start("etcd-silent-member") else {
        return;
    };
    let (_silent, port) = silent_port();
    let urls = format!("http://127.0.0.1:{port},{}", etcd.url());
    let output = hold("job", &urls, &["--", "true"]);
    assert!(output.status.success(), "{}", common::stderr(&output));
}

#[test]
fn the_keeper_renews_through_another_member_when_the_one_it_used_freezes() {
    let Some(etcd) = Etcd::start("etcd-frozen-member") else {
        return;
    };
    let scratch = Scratch::new("etcd-frozen-member-work");
    let member = Member::before(&etcd);
    let script = format!(
        "trap 'touch {}; exit 0' TERM; touch {}; {}",
        scratch.path("terminated").display(),
        scratch.path("started").display(),
        scratch.wait_for_file("release")
    );
    let urls = format!("{},{}", member.url(), etcd.url());
    let hold = common::etcd::started(
        {
            let mut command = Command::new(env!("CARGO_BIN_EXE_namaste"));
            command
                .args(["hold", "kept", "--etcd", &urls, "--ttl", "3"])
                .args(["--", "sh", "-c", &script]);
            command
        },
        &scratch,
    );
    member.freeze();
    // Past the TTL: renewals sent to the frozen member alone would lose it.
    thread::sleep(Duration::from_secs(5));
    assert!(!scratch.path("terminated").exists(), "the lock was lost");
    assert!(held(&etcd, "kept"));
    assert!(!exited(hold.id()));
    fs::write(scratch.path("release"), "").unwrap();
    let output = hold.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", common::stderr(&output));
}

#[test]
fn a_waiter_whose_member_freezes_while_it_watches_is_served_through_another() {
    let Some(etcd) = Etcd::start("etcd-frozen-watch") else {
        return;
    };
    let scratch = Scratch::new("etcd-frozen-watch-work");
    let member = Member::before(&etcd);
    let holder = common::etcd::started(
        etcd.hold("queue", &args(&until_released(&scratch))),
        &scratch,
    );
    let urls = format!("{},{}", member.url(), etcd.url());
    let waiter = Command::new(env!("CARGO_BIN_EXE_namaste"))
        .args([
            "hold", "queue", "--etcd", &urls, "--wait", "30", "--", "true",
        ])
        .spawn()
        .unwrap();
    wait_for(Duration::from_secs(10), "the waiter to queue", || {
        etcd.status_line("queue")
            .starts_with("state=held waiters=1 ")
    });
    member.freeze();
    fs::write(scratch.path("release"), "").unwrap();
    assert!(holder.wait_with_output().unwrap().status.success());
    let served = wait_for(Duration::from_secs(20), "the waiter to be served", || {
        exited(waiter.id())
    });
    assert!(served < Duration::from_secs(10), "served after {served:?}");
    assert!(waiter.wait_with_output().unwrap().status.success());
}

#[test]
fn an_endpoint_that_drips_its_reply_is_given_up_on_within_the_requests_time() {
    let urls = dripping_endpoint(Duration::from_secs(15));
    let start = Instant::now();
    let output = hold("job", &urls, &["--ttl", "2", "--", "true"]);
    let took = start.elapsed();
    assert_eq!(output.status.code(), Some(1));
    assert!(took < Duration::from_secs(3), "gave up after {took:?}");
    let stderr = common::stderr(&output);
    assert!(stderr.contains("did not answer in time"), "{stderr}");
}

#[test]
fn a_key_deleted_by_hand_loses_the_lock() {
    let Some(etcd) = Etcd::start("etcd-deleted-key") else {
        return;
    };
    let Some(mut etcdctl) = etcd.etcdctl() else {
        return;
    };
    let scratch = Scratch::new("etcd-deleted-key-work");
    let hold = fragile(&etcd, &scratch);
    let deleted = etcdctl
        .args(["del", "--prefix", "namaste/fragile/"])
        .output()
        .unwrap();
    assert!(deleted.status.success(), "{deleted:?}");
    assert_lost(hold, &scratch, "its key was deleted");
}

#[test]
fn a_keeper_killed_alone_is_said_signalled_to_the_command_and_exits_non_zero() {
    let Some(etcd) = Etcd::start("etcd-keeper-alone") else {
        return;
    };
    let scratch = Scratch::new("etcd-keeper-alone-work");
    let hold = fragile(&etcd, &scratch);
    signal(keeper_of(hold.id()), "-KILL");
    assert_lost(hold, &scratch, "its keeper died");
}

#[test]
fn a_ttl_past_etcds_longest_is_refused_with_a_usage_error() {
    let port = common::dead_port();
    let url = format!("http://127.0.0.1:{port}");
    for ttl in ["9223372036854775808", "9000000001"] {
        let output = hold("job", &url, &["--ttl", ttl, "--", "true"]);
        assert_eq!(output.status.code(), Some(2), "--ttl {ttl}");
        let stderr = common::stderr(&output);
        assert!(stderr.contains("--ttl takes at most"), "{stderr}");
    }
}
