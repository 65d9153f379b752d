//! The hostile plugin's attacks: each is refused or stopped with a clear error, and the server
//! goes on serving the Tessie plugin.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::*;

async fn attack(harness: &Harness, name: &str) -> String {
    let result = harness.call(&format!("hostile_{name}"), json!({})).await;
    let text = text_of(&result);
    assert!(is_error(&result), "attack {name} was not stopped: {text}");
    text
}

async fn tessie_still_works(harness: &Harness) {
    let result = harness.call("tessie_tesla_command", command("flash")).await;
    assert!(
        !is_error(&result),
        "tessie broken after an attack: {}",
        text_of(&result)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn egress_outside_the_allowlist_is_refused() {
    let harness = Harness::start().await;
    let text = attack(&harness, "exfiltrate").await;
    assert!(
        text.contains("plugin `hostile` may not reach http://203.0.113.7/steal"),
        "{text}"
    );
    assert!(
        text.contains("add \"http://203.0.113.7\" to `allow` under [plugins.hostile]"),
        "{text}"
    );
    tessie_still_works(&harness).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_that_were_not_granted_stay_out_of_reach() {
    let harness = Harness::start().await;
    let text = attack(&harness, "steal_secret").await;
    assert!(
        text.contains("secret `someone_elses_token`, which plugins.toml does not grant it"),
        "{text}"
    );
    assert!(
        text.contains("[plugins.hostile.secrets.someone_elses_token]"),
        "{text}"
    );

    let text = attack(&harness, "borrow_credential").await;
    assert!(text.contains("does not grant it"), "{text}");

    // Granted for attachment, so the plugin may use it in requests but never read it.
    let text = attack(&harness, "reveal_attach_only").await;
    assert!(text.contains("may not read secret `token`"), "{text}");
    assert!(text.contains("readable = true"), "{text}");
    assert!(!text.contains("sim-tessie-token"), "{text}");
    tessie_still_works(&harness).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn state_keys_cannot_leave_the_plugin_directory() {
    let harness = Harness::start().await;
    let text = attack(&harness, "escape_state").await;
    assert!(text.contains("state key \"../../outside\""), "{text}");
    assert!(!harness.dir.path().join("outside").exists());
    tessie_still_works(&harness).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_endless_loop_is_stopped_at_the_deadline() {
    let harness = Harness::start().await;
    let started = Instant::now();
    let text = attack(&harness, "spin").await;
    let took = started.elapsed();
    assert!(text.contains("ran past its 2 s time limit"), "{text}");
    assert!(
        text.contains("timeout_seconds under [plugins.hostile]"),
        "{text}"
    );
    assert!(
        took >= Duration::from_secs(2),
        "stopped before its deadline: {took:?}"
    );
    tessie_still_works(&harness).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_memory_bomb_hits_the_memory_cap() {
    let harness = Harness::start().await;
    let text = attack(&harness, "memory_bomb").await;
    assert!(text.contains("more than its 16 MiB memory limit"), "{text}");
    tessie_still_works(&harness).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trap_becomes_a_tool_error() {
    let harness = Harness::start().await;
    let text = attack(&harness, "crash").await;
    assert!(text.contains("plugin `hostile` crashed"), "{text}");
    assert!(text.contains("wasm trap"), "{text}");
    assert!(
        text.contains("hostile plugin panicked on purpose"),
        "{text}"
    );
    tessie_still_works(&harness).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_spinning_plugin_does_not_hold_up_other_calls() {
    let harness = Harness::start_with(Options {
        hostile_timeout_seconds: 4,
        ..Options::default()
    })
    .await;
    let spin = harness.call("hostile_spin", json!({}));
    let other = async {
        // Let the spin start first.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let started = Instant::now();
        let result = harness.call("tessie_tesla_state", json!({})).await;
        (result, started.elapsed())
    };
    let (spun, (state, took)) = tokio::join!(spin, other);
    assert!(is_error(&spun));
    assert!(!is_error(&state), "{}", text_of(&state));
    assert!(
        took < Duration::from_secs(3),
        "a tessie call waited {took:?} behind a spinning plugin"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn redirects_to_hosts_outside_the_allowlist_are_not_followed() {
    let harness = Harness::start().await;
    // A loopback server that is not on any allowlist counts the connections it receives.
    let outside = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let outside_url = format!("http://{}/collect", outside.local_addr().unwrap());
    let reached = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = reached.clone();
    tokio::spawn(async move {
        while let Ok((_socket, _)) = outside.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    harness.simulator.script(carport::simulator::Script {
        vendor: carport::simulator::Vendor::Tessie,
        method: Some("GET".into()),
        path_prefix: format!("/{RED_ARROW}/state"),
        status: 302,
        headers: vec![("location".into(), outside_url)],
        body: json!({}),
        times: 1,
    });
    let result = harness.call("tessie_tesla_state", json!({})).await;
    assert!(is_error(&result));
    assert!(
        text_of(&result).contains("HTTP 302"),
        "{}",
        text_of(&result)
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        reached.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the redirect was followed"
    );
    tessie_still_works(&harness).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_answers_are_refused() {
    let harness = Harness::start_with(Options {
        tessie_max_response_bytes: 1000,
        ..Options::default()
    })
    .await;
    let result = harness.call("tessie_tesla_state", json!({})).await;
    assert!(is_error(&result));
    assert!(
        text_of(&result).contains("larger than the 1000-byte limit"),
        "{}",
        text_of(&result)
    );
}
