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
async fn a_signing_key_signs_but_is_never_revealed() {
    let key = "7e57ab1e7e57ab1e7e57ab1e7e57ab1e7e57ab1e7e57ab1e7e57ab1e7e57ab1e";
    let harness = Harness::start_with(Options {
        hostile_keys: "ethereum_keys = [\"signing_key\"]".into(),
        extra_toml: "[plugins.hostile.secrets.signing_key]\nenv = \"HOSTILE_SIGNING_KEY\"\n\
                     origins = []\n"
            .into(),
        server_env: vec![("HOSTILE_SIGNING_KEY".into(), key.into())],
        ..Options::default()
    })
    .await;
    let text = attack(&harness, "reveal_signing_key").await;
    assert!(text.contains("may not read secret `signing_key`"), "{text}");
    assert!(!text.contains(key), "{text}");
    // A secret granted for requests is not a signing key either.
    let text = attack(&harness, "sign_with_token").await;
    assert!(
        text.contains("asked to sign with `token`, which plugins.toml does not let it sign with"),
        "{text}"
    );
    assert!(text.contains("ethereum_keys"), "{text}");
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
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "cwasm")
        })
        .collect();
    assert_eq!(compiled.len(), 2, "one compiled file per component");
    for path in &compiled {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{} is readable by others", path.display());
        // Overwrite parts of the native code with breakpoint instructions: before the check,
        // the server died of SIGTRAP on the next call.
        let mut bytes = std::fs::read(path).unwrap();
        for fifths in [1, 3] {
            let at = bytes.len() * fifths / 5;
            bytes[at - 2048..at + 2048].fill(0xcc);
        }
        std::fs::write(path, bytes).unwrap();
    }
    let tampered = Harness::start_with(options()).await;
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
    assert!(!text.contains("  "), "{text}");
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
    // Nor can it ask for a compressed echo, which redaction could not see into.
    let compressed = fetch(
        &harness,
        json!({"url": format!("{}/echo", echo.origin), "bearer": "echo_key",
               "headers": [["Accept-Encoding", "gzip"]]}),
    )
    .await;
    assert!(
        text_of(&compressed)
            .contains("may not set Accept-Encoding on a request that carries a credential"),
        "{}",
        text_of(&compressed)
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

/// Gap 1: an allowed path prefix ends on a segment boundary.
#[tokio::test(flavor = "multi_thread")]
async fn a_path_prefix_admits_its_segment_only() {
    let echo = Echo::start(None).await;
    let harness = Harness::start_with(Options {
        hostile_allow: vec![format!("{}/api", echo.origin)],
        ..Options::default()
    })
    .await;
    for path in ["/apix", "/api-admin/x", "/api/../admin"] {
        let refused = fetch(&harness, json!({"url": format!("{}{path}", echo.origin)})).await;
        let text = text_of(&refused);
        assert!(is_error(&refused), "{path}: {text}");
        assert!(text.contains("is not in its egress allowlist"), "{text}");
    }
    assert!(echo.received().is_empty(), "a refused path was requested");
    for path in ["/api", "/api/v1"] {
        let reached = fetch(&harness, json!({"url": format!("{}{path}", echo.origin)})).await;
        assert!(!is_error(&reached), "{path}: {}", text_of(&reached));
    }
    assert_eq!(echo.received().len(), 2);
}

/// Gap 1: `*.wildcard.carport.test` admits its own subdomains, not the rest of
/// `carport.test`. In a loopback-only namespace: before the fix the name was looked up.
#[tokio::test(flavor = "multi_thread")]
async fn a_wildcard_keeps_its_whole_domain() {
    if rerun_in_loopback_namespace(
        "a_wildcard_keeps_its_whole_domain",
        "10.0.0.9 a.wildcard.carport.test evil.carport.test\n",
    )
    .await
    {
        return;
    }
    let harness = Harness::start_with(Options {
        hostile_allow: vec!["http://*.wildcard.carport.test".into()],
        ..Options::default()
    })
    .await;
    let refused = fetch(&harness, json!({"url": "http://evil.carport.test/"})).await;
    let text = text_of(&refused);
    assert!(
        text.contains("http://evil.carport.test is not in its egress allowlist"),
        "{text}"
    );
    // Its own subdomain passes the allowlist (and is then refused for its private address).
    let admitted = fetch(&harness, json!({"url": "http://a.wildcard.carport.test/"})).await;
    let text = text_of(&admitted);
    assert!(text.contains("it resolves to 10.0.0.9"), "{text}");
}

/// Gap 5: a log flood is cut to a budget, each line stays one line, and what was dropped is
/// counted in the log.
#[tokio::test(flavor = "multi_thread")]
async fn a_log_flood_is_limited_and_cannot_forge_lines() {
    let harness = Harness::start_with(Options {
        hostile_timeout_seconds: 30,
        ..Options::default()
    })
    .await;
    let flooded = harness
        .call("hostile_log_flood", json!({"lines": 20000}))
        .await;
    assert!(!is_error(&flooded), "{}", text_of(&flooded));
    // After a pause the budget has refilled: the next line reports what was dropped.
    tokio::time::sleep(Duration::from_millis(300)).await;
    harness.call("hostile_log_flood", json!({"lines": 1})).await;
    tessie_still_works(&harness).await;
    let log = harness.stderr.lock().unwrap().clone();
    let logged = log.matches("forged by hostile").count();
    assert!(
        (1..=200).contains(&logged),
        "{logged} of 20001 lines logged"
    );
    assert!(
        !log.lines()
            .any(|line| line.starts_with("2026-01-01T00:00:00Z")),
        "a plugin forged a log line"
    );
    assert!(
        log.contains("\\n2026-01-01T00:00:00Z  INFO carport: forged"),
        "{log}"
    );
    assert!(
        log.contains("log lines of this plugin were dropped"),
        "{log}"
    );
}

/// Gap 5: a progress flood neither grows the server nor holds up the answer: reports beyond a
/// small budget are dropped.
#[tokio::test(flavor = "multi_thread")]
async fn a_progress_flood_is_dropped_not_queued() {
    let harness = Harness::start_with(Options {
        hostile_timeout_seconds: 60,
        ..Options::default()
    })
    .await;
    let started = Instant::now();
    let flooded = harness
        .call_with_progress("hostile_progress_flood", json!({"reports": 300000}))
        .await;
    let took = started.elapsed();
    assert!(!is_error(&flooded), "{}", text_of(&flooded));
    assert!(
        text_of(&flooded).contains("reported progress 300000 times"),
        "{}",
        text_of(&flooded)
    );
    let forwarded = harness.recorder.progress.lock().unwrap().len();
    let budget = 10 + 5 * took.as_secs() as usize + 5;
    assert!(
        (1..=budget).contains(&forwarded),
        "{forwarded} of 300000 reports forwarded in {took:?}"
    );
    tessie_still_works(&harness).await;
}

/// Gap 5: a tool's result has a size cap, per plugin.
#[tokio::test(flavor = "multi_thread")]
async fn an_oversized_result_is_refused() {
    let harness = Harness::start_with(Options {
        hostile_keys: "max_result_bytes = 100000".into(),
        ..Options::default()
    })
    .await;
    let small = harness
        .call("hostile_big_result", json!({"bytes": 1000}))
        .await;
    assert!(!is_error(&small), "{}", text_of(&small));
    let text = attack_with(&harness, "big_result", json!({"bytes": 200000})).await;
    assert!(
        text.contains("returned a result larger than its 100000-byte limit"),
        "{text}"
    );
    assert!(
        text.contains("max_result_bytes under [plugins.hostile]"),
        "{text}"
    );
    tessie_still_works(&harness).await;
}

/// Gap 4: buffers the host fills for a plugin are bounded: request headers here (before, tens
/// of thousands of headers went into the host's request, and past 32768 its header map panics).
#[tokio::test(flavor = "multi_thread")]
async fn request_headers_are_bounded() {
    let harness = Harness::start_with(Options {
        hostile_timeout_seconds: 30,
        ..Options::default()
    })
    .await;
    let tessie = harness.simulator.url(carport::simulator::Vendor::Tessie);
    let headers: Vec<Value> = (0..40000)
        .map(|index| json!([format!("x-h{index}"), "v"]))
        .collect();
    let refused = fetch(
        &harness,
        json!({"url": format!("{tessie}/x"), "headers": headers}),
    )
    .await;
    let text = text_of(&refused);
    assert!(is_error(&refused), "{text}");
    assert!(
        text.contains("tried to send 40000 headers") && text.contains("the limit is 100 headers"),
        "{text}"
    );
    tessie_still_works(&harness).await;
}

async fn attack_with(harness: &Harness, name: &str, arguments: Value) -> String {
    let result = harness.call(&format!("hostile_{name}"), arguments).await;
    let text = text_of(&result);
    assert!(is_error(&result), "attack {name} was not stopped: {text}");
    text
}

/// Gap 9: a plugin runs at most `max_concurrent_calls` calls; one more is refused at once.
#[tokio::test(flavor = "multi_thread")]
async fn calls_beyond_the_concurrency_limit_are_refused() {
    let harness = Harness::start_with(Options {
        hostile_timeout_seconds: 3,
        hostile_keys: "max_concurrent_calls = 2".into(),
        ..Options::default()
    })
    .await;
    let spins = async {
        tokio::join!(
            harness.call("hostile_spin", json!({})),
            harness.call("hostile_spin", json!({}))
        )
    };
    let extra = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        harness.call("hostile_spin", json!({})).await
    };
    let ((first, second), extra) = tokio::join!(spins, extra);
    assert!(text_of(&first).contains("ran past its 3 s time limit"));
    assert!(text_of(&second).contains("ran past its 3 s time limit"));
    let text = text_of(&extra);
    assert!(
        text.contains("plugin `hostile` is already running 2 calls"),
        "{text}"
    );
    assert!(
        text.contains("max_concurrent_calls under [plugins.hostile]"),
        "{text}"
    );
    // Once they ended, the plugin takes calls again.
    let again = harness
        .call("hostile_big_result", json!({"bytes": 10}))
        .await;
    assert!(!is_error(&again), "{}", text_of(&again));
}

/// Gap 9: with a single runtime worker thread, a plugin spinning on all its calls does not
/// slow another plugin's call (before: over a second).
#[tokio::test(flavor = "multi_thread")]
async fn a_saturated_plugin_does_not_slow_another_with_one_worker_thread() {
    let harness = Harness::start_with(Options {
        hostile_timeout_seconds: 5,
        server_env: vec![("TOKIO_WORKER_THREADS".into(), "1".into())],
        ..Options::default()
    })
    .await;
    let spins = async {
        tokio::join!(
            harness.call("hostile_spin", json!({})),
            harness.call("hostile_spin", json!({})),
            harness.call("hostile_spin", json!({})),
            harness.call("hostile_spin", json!({}))
        )
    };
    let other = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut slowest = Duration::ZERO;
        for _ in 0..3 {
            let started = Instant::now();
            let result = harness.call("tessie_tesla_state", json!({})).await;
            assert!(!is_error(&result), "{}", text_of(&result));
            slowest = slowest.max(started.elapsed());
        }
        slowest
    };
    let (spun, slowest) = tokio::join!(spins, other);
    assert!(is_error(&spun.0) && is_error(&spun.3));
    assert!(
        slowest < Duration::from_millis(700),
        "a tessie call took {slowest:?} beside a saturated plugin"
    );
}

/// Gap 7: waiting for an OAuth token (a silent token endpoint, or another call's refresh)
/// ends by the call's deadline, not the token endpoint's own 30 s timeout.
#[tokio::test(flavor = "multi_thread")]
async fn waiting_for_a_token_ends_by_the_call_deadline() {
    let silent = silent_server().await;
    let harness = Harness::start_with(Options {
        hostile_keys: format!(
            "[plugins.hostile.oauth.slow]\ntoken_url = \"{silent}/token\"\nclient_id = \"c\"\n\
             client_secret = \"token\"\norigins = [\"http://127.0.0.1:1\"]\n"
        ),
        ..Options::default()
    })
    .await;
    let target = harness.simulator.url(carport::simulator::Vendor::Tessie);
    let started = Instant::now();
    let (first, second) = tokio::join!(
        fetch(
            &harness,
            json!({"url": format!("{target}/x"), "oauth": "slow"})
        ),
        fetch(
            &harness,
            json!({"url": format!("{target}/x"), "oauth": "slow"})
        )
    );
    let took = started.elapsed();
    // The origins do not include the target: refused before any wait.
    assert!(text_of(&first).contains("may not send the access token of `slow`"));
    assert!(text_of(&second).contains("may not send the access token of `slow`"));
    assert!(took < Duration::from_secs(2), "{took:?}");
    drop(harness);

    let harness = Harness::start_with(Options {
        hostile_keys: "[plugins.hostile.oauth.slow]\n".to_string()
            + &format!(
                "token_url = \"{silent}/token\"\nclient_id = \"c\"\nclient_secret = \"token\"\n"
            ),
        ..Options::default()
    })
    .await;
    let target = harness.simulator.url(carport::simulator::Vendor::Tessie);
    let started = Instant::now();
    let (first, second) = tokio::join!(
        fetch(
            &harness,
            json!({"url": format!("{target}/x"), "oauth": "slow"})
        ),
        fetch(
            &harness,
            json!({"url": format!("{target}/x"), "oauth": "slow"})
        )
    );
    let took = started.elapsed();
    for result in [&first, &second] {
        // The host gives up at the deadline, or the guest is stopped there right after.
        let text = text_of(result);
        assert!(is_error(result), "{text}");
        assert!(
            text.contains("Timeout") || text.contains("ran past its 2 s time limit"),
            "{text}"
        );
    }
    assert!(
        took < Duration::from_secs(10),
        "the calls waited {took:?} for a token, past their 2 s deadline"
    );
    tessie_still_works(&harness).await;
}

/// Gap 6: state has quotas of bytes and keys, is private to carport's user, and concurrent
/// writes to one key never mix.
#[tokio::test(flavor = "multi_thread")]
async fn state_has_quotas_private_files_and_atomic_concurrent_writes() {
    use std::os::unix::fs::PermissionsExt;

    let harness = Harness::start_with(Options {
        hostile_timeout_seconds: 30,
        hostile_keys: "state_max_keys = 5\nstate_max_bytes = 1000000".into(),
        ..Options::default()
    })
    .await;
    let text = attack_with(&harness, "state_fill", json!({"size": 1000})).await;
    assert!(text.contains("stored 5 keys, then"), "{text}");
    assert!(
        text.contains("state_max_keys under [plugins.hostile]"),
        "{text}"
    );
    for key in 0..5 {
        harness
            .call(
                "hostile_state_write",
                json!({"key": format!("key-{key}"), "size": 1}),
            )
            .await;
    }
    let text = attack_with(&harness, "state_fill", json!({"size": 300000})).await;
    assert!(text.contains("stored 3 keys, then"), "{text}");
    assert!(
        text.contains("over its 1000000-byte limit (state_max_bytes"),
        "{text}"
    );

    let folder = harness.dir.path().join("data/state/hostile");
    let (one, two) = tokio::join!(
        harness.call(
            "hostile_state_write",
            json!({"key": "key-0", "byte": 1, "size": 200000, "times": 20})
        ),
        harness.call(
            "hostile_state_write",
            json!({"key": "key-0", "byte": 2, "size": 200000, "times": 20})
        )
    );
    assert!(!is_error(&one), "{}", text_of(&one));
    assert!(!is_error(&two), "{}", text_of(&two));
    let value = std::fs::read(folder.join("key-0")).unwrap();
    assert_eq!(value.len(), 200000);
    assert!(
        value.iter().all(|byte| *byte == value[0]),
        "two writes mixed"
    );
    let mode = |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode();
    assert_eq!(mode(&folder) & 0o777, 0o700);
    for entry in std::fs::read_dir(&folder).unwrap() {
        let path = entry.unwrap().path();
        assert!(
            !path.file_name().unwrap().to_string_lossy().starts_with('.'),
            "temporary file left: {}",
            path.display()
        );
        assert_eq!(mode(&path) & 0o777, 0o600, "{}", path.display());
    }
}

/// Gap 11: structured output must match the tool's own output schema.
#[tokio::test(flavor = "multi_thread")]
async fn structured_output_is_validated_against_the_output_schema() {
    let harness = Harness::start().await;
    let good = harness
        .call("hostile_bad_output", json!({"shape": "good"}))
        .await;
    assert!(!is_error(&good), "{}", text_of(&good));
    assert_eq!(structured(&good), json!({"count": 1}));
    for shape in ["array", "string", "wrong_type", "missing"] {
        let result = harness
            .call("hostile_bad_output", json!({"shape": shape}))
            .await;
        let text = text_of(&result);
        assert!(is_error(&result), "{shape}: {text}");
        assert!(result.structured_content.is_none(), "{shape}");
        assert!(
            text.contains(
                "hostile_bad_output returned structured output that does not match the \
                 tool's own output schema"
            ),
            "{text}"
        );
    }
}

/// Gap 10: what a plugin says about itself reaches the instructions bounded, on one line, and
/// marked as the plugin's own words.
#[tokio::test(flavor = "multi_thread")]
async fn plugin_text_in_the_instructions_is_bounded_and_attributed() {
    let harness = Harness::start().await;
    let instructions = harness
        .client
        .peer_info()
        .and_then(|info| info.instructions.clone())
        .unwrap_or_default();
    assert!(
        instructions.contains(
            "- hostile (\"0.0.0\"), in the plugin's own words: \"Sandbox attacks, for tests."
        ),
        "{instructions}"
    );
    assert!(
        !instructions.lines().any(|line| line.starts_with("SYSTEM:")),
        "a plugin wrote its own line into the instructions: {instructions}"
    );
    assert!(
        instructions.len() < 3000,
        "{} bytes of instructions",
        instructions.len()
    );
}

/// Cases that held before this round, kept under test: header injection, URL tricks, other
/// schemes, numeric and IPv6-mapped addresses, deep recursion, sleeping past the deadline and a
/// silent upstream.
#[tokio::test(flavor = "multi_thread")]
async fn older_tricks_stay_refused() {
    let silent = silent_server().await;
    let harness = Harness::start_with(Options {
        hostile_allow: vec![silent.clone()],
        ..Options::default()
    })
    .await;
    let tessie = harness.simulator.url(carport::simulator::Vendor::Tessie);
    let port = tessie.rsplit(':').next().unwrap().to_string();
    let injected = fetch(
        &harness,
        json!({"url": format!("{tessie}/x"), "headers": [["x-a", "b\r\nx-injected: 1"]]}),
    )
    .await;
    assert!(text_of(&injected).contains("invalid value for header"));
    let injected = fetch(
        &harness,
        json!({"url": format!("{tessie}/x"), "headers": [["x-a\r\nx-b", "c"]]}),
    )
    .await;
    assert!(text_of(&injected).contains("invalid header name"));
    for url in [
        format!("http://127.0.0.1:{port}@203.0.113.7/steal"),
        "http://203.0.113.7/#@127.0.0.1".to_string(),
        "file:///etc/passwd".to_string(),
        "http://0xcb.0.113.7/".to_string(),
        "http://3405803783/".to_string(),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
    ] {
        let refused = fetch(&harness, json!({ "url": url })).await;
        let text = text_of(&refused);
        assert!(is_error(&refused), "{url}: {text}");
        assert!(
            text.contains("is not in its egress allowlist") || text.contains("invalid URL"),
            "{url}: {text}"
        );
    }
    let text = attack(&harness, "recurse").await;
    assert!(text.contains("plugin `hostile` crashed"), "{text}");
    let text = attack(&harness, "sleep").await;
    assert!(text.contains("ran past its 2 s time limit"), "{text}");
    let started = Instant::now();
    let silent_answer = fetch(&harness, json!({"url": format!("{silent}/x")})).await;
    let text = text_of(&silent_answer);
    assert!(
        text.contains("Timeout") || text.contains("ran past its 2 s time limit"),
        "{text}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    tessie_still_works(&harness).await;
}
