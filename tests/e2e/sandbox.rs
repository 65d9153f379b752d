//! The hostile plugin's attacks: each is refused or stopped with a clear error, and the server
//! goes on serving the Tessie plugin.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use rmcp::model::CallToolResult;
use serde_json::{Value, json};

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

/// Gap 8: a compiled component changed on disk used to be mapped and run as native code (a
/// segmentation fault on the next call); now its checksum and ownership are checked first.
#[tokio::test(flavor = "multi_thread")]
async fn a_changed_compiled_component_is_recompiled_not_run() {
    let cache = tempfile::tempdir().unwrap();
    let options = || Options {
        cache_dir: Some(cache.path().to_path_buf()),
        ..Options::default()
    };
    let cold = Harness::start_with(options()).await;
    tessie_still_works(&cold).await;
    drop(cold);

    let compiled: Vec<_> = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(compiled.len(), 2, "one compiled file per component");
    for path in &compiled {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{} is readable by others", path.display());
        // Overwrite the middle of the native code with breakpoint instructions.
        let mut bytes = std::fs::read(path).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle - 2048..middle + 2048].fill(0xcc);
        std::fs::write(path, bytes).unwrap();
    }
    let tampered = Harness::start_with(options()).await;
    // Both components were described (run) at start-up, the tessie one is called again.
    tessie_still_works(&tampered).await;
    let log = tampered.stderr.lock().unwrap().clone();
    assert_eq!(
        log.matches("do not match their checksum").count(),
        2,
        "{log}"
    );
    assert!(log.contains("recompiling"), "{log}");
    drop(tampered);

    // A cache file that another user could have written is not trusted either.
    for path in &compiled {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666)).unwrap();
    }
    let shared = Harness::start_with(options()).await;
    tessie_still_works(&shared).await;
    let log = shared.stderr.lock().unwrap().clone();
    assert!(log.contains("may be written by other users"), "{log}");
}

/// A loopback server for the attacks: `/echo` answers with the credentials it received (in the
/// body and in an `x-echo` header), `/redirect` sends the client to `target`, `/redirect-here`
/// to its own `/echo`. It records the headers of every request.
struct Echo {
    origin: String,
    requests: Arc<Mutex<Vec<HeaderMap>>>,
}

impl Echo {
    async fn start(target: Option<String>) -> Echo {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        let requests: Arc<Mutex<Vec<HeaderMap>>> = Arc::default();
        let recorded = requests.clone();
        let router = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
            let recorded = recorded.clone();
            let target = target.clone();
            async move {
                recorded.lock().unwrap().push(headers.clone());
                let seen = |name: &str| {
                    headers
                        .get(name)
                        .and_then(|value| value.to_str().ok())
                        .unwrap_or_default()
                        .to_string()
                };
                let redirect = |location: String| {
                    (StatusCode::FOUND, [("location", location)], String::new()).into_response()
                };
                match (uri.path(), target) {
                    ("/redirect", Some(target)) => redirect(target),
                    ("/redirect-here", _) => redirect("/echo".into()),
                    _ => (
                        StatusCode::OK,
                        [("x-echo", seen("authorization"))],
                        json!({
                            "authorization": seen("authorization"),
                            "x-api-key": seen("x-api-key"),
                        })
                        .to_string(),
                    )
                        .into_response(),
                }
            }
        });
        tokio::spawn(async move { axum::serve(listener, router).await });
        Echo { origin, requests }
    }

    fn received(&self) -> Vec<HeaderMap> {
        self.requests.lock().unwrap().clone()
    }
}

/// A loopback server that accepts connections and never answers.
async fn silent_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    origin
}

async fn fetch(harness: &Harness, request: Value) -> CallToolResult {
    harness.call("hostile_fetch", request).await
}

/// Gap 3: a credential goes only to the origins it is bound to, in a header meant for
/// credentials, never across a redirect that leaves its origin, and an echo of it comes back
/// blanked out.
#[tokio::test(flavor = "multi_thread")]
async fn credentials_stay_bound_to_their_origins_and_out_of_the_plugins_reach() {
    let elsewhere = Echo::start(None).await;
    let echo = Echo::start(Some(format!("{}/echo", elsewhere.origin))).await;
    let token_file_name = "tessie-token";
    let harness = Harness::start_with(Options {
        hostile_allow: vec![echo.origin.clone(), elsewhere.origin.clone()],
        hostile_keys: format!(
            "[plugins.hostile.secrets.tessie_only]\nfile = {token_file_name:?}\n\
             origins = [\"{}\"]\n\
             [plugins.hostile.secrets.echo_key]\nfile = {token_file_name:?}\n\
             origins = [\"{}\"]\nheader = \"X-Echo-Key\"\n",
            "http://127.0.0.1:1", echo.origin
        ),
        ..Options::default()
    })
    .await;
    let token = Options::default().tessie_token;

    // Bound to another origin: refused before anything is sent.
    let refused = fetch(
        &harness,
        json!({"url": format!("{}/echo", echo.origin), "bearer": "tessie_only"}),
    )
    .await;
    assert!(is_error(&refused));
    let text = text_of(&refused);
    assert!(
        text.contains("may not send secret `tessie_only` to"),
        "{text}"
    );
    assert!(
        text.contains("to `origins` under [plugins.hostile.secrets.tessie_only]"),
        "{text}"
    );
    assert!(echo.received().is_empty(), "the request was sent");

    // Headers that are not for credentials, or that the server would use for itself.
    for header in [
        "Cookie",
        "Host",
        "Proxy-Authorization",
        "Content-Length",
        "X-Echo",
    ] {
        let refused = fetch(
            &harness,
            json!({"url": format!("{}/echo", echo.origin), "header_secret": [header, "echo_key"]}),
        )
        .await;
        let text = text_of(&refused);
        assert!(is_error(&refused), "{header}: {text}");
        assert!(
            text.contains(&format!(
                "may not put secret `echo_key` in the {} header",
                header.to_ascii_lowercase()
            )),
            "{text}"
        );
    }
    assert!(echo.received().is_empty(), "a request was sent");

    // The header the grant names is accepted; the echo of the value comes back blanked out.
    let answered = fetch(
        &harness,
        json!({"url": format!("{}/echo", echo.origin), "header_secret": ["Authorization", "echo_key"]}),
    )
    .await;
    let text = text_of(&answered);
    assert!(!is_error(&answered), "{text}");
    assert_eq!(echo.received().len(), 1);
    assert_eq!(echo.received()[0]["authorization"], token.as_str());
    assert!(
        !text.contains(&token),
        "the plugin read the secret back: {text}"
    );
    assert!(text.contains("[redacted by carport]"), "{text}");

    let answered = fetch(
        &harness,
        json!({"url": format!("{}/echo", echo.origin), "bearer": "echo_key"}),
    )
    .await;
    let text = text_of(&answered);
    assert!(
        !text.contains(&token),
        "the plugin read the secret back: {text}"
    );

    // A redirect within the origin keeps the credential; one that leaves it is not followed.
    let same_origin = fetch(
        &harness,
        json!({"url": format!("{}/redirect-here", echo.origin), "header_secret": ["X-Api-Key", "echo_key"]}),
    )
    .await;
    assert!(
        text_of(&same_origin).contains("\"status\":200"),
        "{}",
        text_of(&same_origin)
    );
    let leaving = fetch(
        &harness,
        json!({"url": format!("{}/redirect", echo.origin), "header_secret": ["X-Api-Key", "echo_key"]}),
    )
    .await;
    assert!(
        text_of(&leaving).contains("\"status\":302"),
        "{}",
        text_of(&leaving)
    );
    assert!(
        elsewhere.received().is_empty(),
        "the credential followed the redirect to {}: {:?}",
        elsewhere.origin,
        elsewhere.received()
    );
    // Without a credential the same redirect, within the allowlist, is followed.
    let plain = fetch(
        &harness,
        json!({"url": format!("{}/redirect", echo.origin)}),
    )
    .await;
    assert!(
        text_of(&plain).contains("\"status\":200"),
        "{}",
        text_of(&plain)
    );
    assert_eq!(elsewhere.received().len(), 1);
    tessie_still_works(&harness).await;
}

/// Gap 2: a name that resolves to loopback is refused before any connection, unless an
/// `allow` entry names the address itself; proxy settings from the environment are ignored.
#[tokio::test(flavor = "multi_thread")]
async fn names_resolving_to_loopback_are_refused_and_proxies_ignored() {
    let behind_name = Echo::start(None).await;
    let named_literally = Echo::start(None).await;
    let proxy = Echo::start(None).await;
    let port = behind_name.origin.rsplit(':').next().unwrap().to_string();
    let by_name = format!("http://localhost:{port}");
    let harness = Harness::start_with(Options {
        hostile_allow: vec![by_name.clone(), named_literally.origin.clone()],
        server_env: [
            "HTTP_PROXY",
            "http_proxy",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "all_proxy",
        ]
        .into_iter()
        .map(|name| (name.to_string(), proxy.origin.clone()))
        .collect(),
        ..Options::default()
    })
    .await;
    let refused = fetch(&harness, json!({"url": format!("{by_name}/echo")})).await;
    let text = text_of(&refused);
    assert!(is_error(&refused), "{text}");
    assert!(
        text.contains("plugin `hostile` may not reach localhost: it resolves to"),
        "{text}"
    );
    assert!(
        text.contains("a loopback, private or link-local address"),
        "{text}"
    );
    assert!(
        behind_name.received().is_empty(),
        "connected to a refused address"
    );

    // Named literally, a loopback server is reached, directly and not through the proxy.
    let reached = fetch(
        &harness,
        json!({"url": format!("{}/echo", named_literally.origin)}),
    )
    .await;
    assert!(!is_error(&reached), "{}", text_of(&reached));
    assert_eq!(named_literally.received().len(), 1);
    tessie_still_works(&harness).await;
    assert!(
        proxy.received().is_empty(),
        "the environment's proxy was used"
    );
}

/// Runs the calling test again inside new user, network and mount namespaces whose only
/// network is loopback and whose /etc/hosts maps the test's names. Returns true in the
/// original process (the test ran in the namespace), false in the namespace (run the test).
async fn rerun_in_loopback_namespace(test: &str, hosts: &str) -> bool {
    if std::env::var_os("CARPORT_TEST_IN_NAMESPACE").is_some() {
        return false;
    }
    let usable = std::process::Command::new("unshare")
        .args(["-rnm", "ip", "link", "set", "lo", "up"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !usable {
        eprintln!(
            "SKIPPED {test}: needs `unshare -rnm` (util-linux) and `ip` to run in a loopback-only \
             network namespace, unavailable here"
        );
        return true;
    }
    let folder = tempfile::tempdir().unwrap();
    let hosts_file = folder.path().join("hosts");
    std::fs::write(
        &hosts_file,
        format!("127.0.0.1 localhost\n::1 localhost\n{hosts}"),
    )
    .unwrap();
    let status = tokio::process::Command::new("unshare")
        .args(["-rnm", "sh", "-c"])
        .arg("mount --bind \"$0\" /etc/hosts && ip link set lo up && exec \"$1\" --exact \"$2\" --nocapture --test-threads=1")
        .arg(&hosts_file)
        .arg(std::env::current_exe().unwrap())
        .arg(format!("sandbox::{test}"))
        .env("CARPORT_TEST_IN_NAMESPACE", "1")
        .status()
        .await
        .unwrap();
    assert!(status.success(), "{test} failed in its namespace");
    true
}

/// Gap 2, for addresses no test may send traffic to: private and link-local addresses behind
/// allowed names are refused before any connection. Runs in a loopback-only network namespace.
#[tokio::test(flavor = "multi_thread")]
async fn private_and_link_local_addresses_are_refused_in_a_loopback_only_namespace() {
    let hosts = "10.0.0.7 private.carport.test\n169.254.169.254 metadata.carport.test\n\
                 fe80::1 linklocal.carport.test\n";
    if rerun_in_loopback_namespace(
        "private_and_link_local_addresses_are_refused_in_a_loopback_only_namespace",
        hosts,
    )
    .await
    {
        return;
    }
    let harness = Harness::start_with(Options {
        hostile_allow: vec![
            "http://private.carport.test".into(),
            "http://metadata.carport.test".into(),
            "http://linklocal.carport.test".into(),
        ],
        ..Options::default()
    })
    .await;
    for (name, address) in [
        ("private.carport.test", "10.0.0.7"),
        ("metadata.carport.test", "169.254.169.254"),
        ("linklocal.carport.test", "fe80::1"),
    ] {
        let refused = fetch(&harness, json!({"url": format!("http://{name}/latest")})).await;
        let text = text_of(&refused);
        assert!(
            text.contains(&format!("may not reach {name}: it resolves to {address}")),
            "{text}"
        );
    }
    tessie_still_works(&harness).await;
}

/// Gap 3: a credential whose grant has the default origins travels over https or to
/// loopback only.
#[tokio::test(flavor = "multi_thread")]
async fn credentials_are_not_sent_over_plain_http_beyond_loopback() {
    if rerun_in_loopback_namespace(
        "credentials_are_not_sent_over_plain_http_beyond_loopback",
        "10.0.0.8 lan.carport.test\n",
    )
    .await
    {
        return;
    }
    // A plugin of its own, whose only allow entry is a plain-http LAN address.
    let harness = Harness::start_with(Options {
        extra_toml: format!(
            "[plugins.lan]\ncomponent = {:?}\nallow = [\"http://10.0.0.8\"]\n\
             [plugins.lan.secrets.token]\nfile = \"tessie-token\"\n",
            components_dir().join("hostile.wasm").display().to_string()
        ),
        ..Options::default()
    })
    .await;
    let refused = harness
        .call(
            "lan_fetch",
            json!({"url": "http://10.0.0.8/x", "bearer": "token"}),
        )
        .await;
    let text = text_of(&refused);
    assert!(is_error(&refused), "{text}");
    assert!(
        text.contains("may not send secret `token` over plain http to http://10.0.0.8"),
        "{text}"
    );
}
