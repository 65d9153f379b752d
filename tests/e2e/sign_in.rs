//! Browser sign-in (`sign-in` capability) end to end: Tesla's authorization-code flow started
//! from a tool call and clicked through in a real headless Chromium, refused states, codes and
//! redirect addresses, `carport login --paste`, a restart on the stored refresh token, and
//! DIMO's token flow through `carport login`, all against the simulated sign-in pages.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use carport::simulator::sign_in::{
    DIMO_CLIENT_ID, DIMO_USER_TOKEN, DIMO_WALLET_ADDRESS, TESLA_CLIENT_ID,
};
use carport::simulator::{Simulator, Vendor};
use chromiumoxide::{Browser, BrowserConfig};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

use crate::harness::*;

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A loopback address the simulated vendors accept as registered redirect address.
fn free_redirect(simulator: &Simulator) -> String {
    let redirect = format!("http://127.0.0.1:{}/callback", free_port());
    simulator.state.sign_in.register_redirect(&redirect);
    redirect
}

/// Tesla directly with sign-in: starts in the other region, so the account's region
/// (`/api/1/users/region`: the home Fleet API) is chosen after sign-in.
fn tesla_table(simulator: &Simulator, dir: &Path, redirect: &str) -> String {
    tesla_table_allowing(simulator, dir, redirect, true)
}

/// As [`tesla_table`]; without `allow_home` the account's own region is not allowed.
fn tesla_table_allowing(
    simulator: &Simulator,
    dir: &Path,
    redirect: &str,
    allow_home: bool,
) -> String {
    let home = simulator.url(Vendor::Fleet);
    let other = simulator.url(Vendor::FleetOtherRegion);
    let allowed = if allow_home {
        format!("[{home:?}, {other:?}]")
    } else {
        format!("[{other:?}]")
    };
    let auth = simulator.url(Vendor::TeslaAuth);
    let component = components_dir().join("tesla.wasm").display().to_string();
    let refresh = dir.join("tesla-refresh-token").display().to_string();
    format!(
        "\n[plugins.tesla]\ncomponent = {component:?}\nallow = {allowed}\n\
         timeout_seconds = 20\n\
         [plugins.tesla.settings]\nbase_url = {other:?}\nvin = \"{RED_ARROW}\"\nauth = \"oauth\"\n\
         [plugins.tesla.secrets.refresh]\nfile = {refresh:?}\norigins = []\n\
         [plugins.tesla.oauth.fleet]\ntoken_url = \"{auth}/oauth2/v3/token\"\n\
         client_id = \"{TESLA_CLIENT_ID}\"\nrefresh_token = \"refresh\"\naudience = {home:?}\n\
         origins = {allowed}\n\
         [plugins.tesla.sign_in]\nauthorize_url = \"{auth}/oauth2/v3/authorize\"\n\
         redirect_uri = {redirect:?}\nresponse = \"code\"\ngrant = \"fleet\"\n\
         scopes = [\"openid\", \"offline_access\", \"vehicle_device_data\", \"vehicle_cmds\", \
         \"vehicle_charging_cmds\"]\ntimeout_seconds = 60\n\
         [plugins.tesla.sign_in.params]\nprompt_missing_scopes = \"true\"\n"
    )
}

/// A harness whose carport serves the tesla plugin with sign-in, not signed in yet.
async fn tesla_harness() -> (Harness, String) {
    let mut harness = Harness::start().await;
    let redirect = free_redirect(&harness.simulator);
    let table = tesla_table(&harness.simulator, harness.dir.path(), &redirect);
    let config = harness.dir.path().join("plugins.toml");
    let base = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{base}{table}")).unwrap();
    restart(&mut harness).await;
    (harness, redirect)
}

async fn restart(harness: &mut Harness) {
    let config = harness.dir.path().join("plugins.toml");
    let (client, recorder, stderr) = connect(&config, &cache_dir()).await;
    harness.client = client;
    harness.recorder = recorder;
    harness.stderr = stderr;
}

/// The link from `tesla_sign_in`'s answer.
async fn start_sign_in(harness: &Harness) -> String {
    let started = harness
        .call("tesla_sign_in", json!({"locale": "en-US"}))
        .await;
    assert!(!is_error(&started), "{}", text_of(&started));
    structured(&started)["link"]
        .as_str()
        .expect("a link")
        .to_string()
}

fn query_of(url: &str) -> Vec<(String, String)> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

fn param(url: &str, name: &str) -> Option<String> {
    query_of(url)
        .into_iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value)
}

fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("CARPORT_CHROMIUM") {
        return PathBuf::from(path);
    }
    // Debian's /usr/bin/chromium is a wrapper script; the binary itself starts faster.
    let binary = Path::new("/usr/lib/chromium/chromium");
    if binary.is_file() {
        return binary.to_path_buf();
    }
    PathBuf::from("chromium")
}

/// Opens `link` in a headless Chromium, clicks the button `button` as a person would, and
/// returns the heading and message of the page the browser ends on.
pub async fn click_through(link: &str, button: &str) -> (String, String) {
    let profile = tempfile::tempdir().unwrap();
    let config = BrowserConfig::builder()
        .chrome_executable(chromium())
        // Chromium's first start on a busy 2-core machine takes longer than the default 20 s.
        .launch_timeout(std::time::Duration::from_secs(90))
        .no_sandbox()
        .user_data_dir(profile.path())
        // Only loopback: no name resolves, and Chromium's own services stay off.
        .arg("host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1")
        .arg("disable-component-update")
        .arg("disable-domain-reliability")
        .arg("no-pings")
        .build()
        .expect("a browser configuration");
    let (mut browser, mut handler) = Browser::launch(config)
        .await
        .unwrap_or_else(|error| panic!("Chromium starts ({}): {error}", chromium().display()));
    let events = tokio::spawn(async move { while handler.next().await.is_some() {} });
    let page = browser
        .new_page(link)
        .await
        .expect("the sign-in page opens");
    let mut found = None;
    for _ in 0..200 {
        if let Ok(element) = page.find_element(format!("#{button}")).await {
            found = Some(element);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let Some(found) = found else {
        let shown = page.content().await.unwrap_or_default();
        panic!("the sign-in page at {link} has no #{button} button; it shows: {shown}");
    };
    found.click().await.expect("the button is clicked");
    // The click posts the form; the vendor redirects to carport's loopback page.
    let mut outcome = None;
    for _ in 0..200 {
        let heading = page
            .evaluate("document.querySelector('#outcome') && document.querySelector('#outcome').textContent")
            .await
            .ok()
            .and_then(|result| result.into_value::<Option<String>>().ok())
            .flatten();
        if let Some(heading) = heading {
            let message: String = page
                .evaluate("document.querySelector('#message').textContent")
                .await
                .unwrap()
                .into_value()
                .unwrap();
            outcome = Some((heading, message));
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let _ = browser.close().await;
    let _ = browser.wait().await;
    events.abort();
    outcome.unwrap_or_else(|| panic!("the browser never reached carport's page from {link}"))
}

/// A browser without JavaScript or clicks: submits the vendor's form (allow or deny) and
/// returns where the vendor sends the browser back to.
async fn submit_consent(link: &str, decision: &str) -> String {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap();
    let page = client.get(link).send().await.unwrap();
    assert!(
        page.status().is_success(),
        "the vendor's page refused: {}",
        page.text().await.unwrap()
    );
    let mut form = query_of(link);
    form.push(("decision".into(), decision.into()));
    let url = url::Url::parse(link).unwrap();
    let action = format!(
        "{}://{}{}",
        url.scheme(),
        url.host_str().unwrap(),
        url.port()
            .map(|port| format!(":{port}"))
            .unwrap_or_default()
    ) + url.path();
    let answer = client.post(action).form(&form).send().await.unwrap();
    assert!(answer.status().is_redirection(), "{}", answer.status());
    answer.headers()["location"].to_str().unwrap().to_string()
}

async fn browser_get(url: &str) -> (u16, String) {
    let answer = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(url)
        .send()
        .await
        .unwrap();
    (answer.status().as_u16(), answer.text().await.unwrap())
}

fn token_requests(harness: &Harness) -> Vec<carport::simulator::RecordedRequest> {
    harness
        .simulator
        .requests()
        .into_iter()
        .filter(|request| request.vendor == Vendor::TeslaAuth && request.path == "/oauth2/v3/token")
        .collect()
}

#[tokio::test]
async fn tesla_sign_in_from_a_tool_call_in_a_real_browser_then_reads_and_survives_a_restart() {
    let (mut harness, redirect) = tesla_harness().await;
    let before = harness
        .call("tesla_sign_in", json!({"action": "check"}))
        .await;
    assert_eq!(
        structured(&before)["signed_in"],
        false,
        "{}",
        text_of(&before)
    );
    let unsigned = harness.call("tesla_vehicle_state", json!({})).await;
    assert!(
        is_error(&unsigned),
        "a read before sign-in cannot have a token"
    );

    let started_at = Instant::now();
    let link = start_sign_in(&harness).await;
    assert!(
        link.starts_with(&harness.simulator.url(Vendor::TeslaAuth)),
        "{link}"
    );
    assert_eq!(param(&link, "response_type").as_deref(), Some("code"));
    assert_eq!(param(&link, "client_id").as_deref(), Some(TESLA_CLIENT_ID));
    assert_eq!(
        param(&link, "redirect_uri").as_deref(),
        Some(redirect.as_str())
    );
    assert_eq!(
        param(&link, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert_eq!(
        param(&link, "code_challenge").map(|challenge| challenge.len()),
        Some(43)
    );
    assert_eq!(param(&link, "state").map(|state| state.len()), Some(43));
    assert_eq!(
        param(&link, "prompt_missing_scopes").as_deref(),
        Some("true")
    );
    assert_eq!(param(&link, "locale").as_deref(), Some("en-US"));
    assert_eq!(
        param(&link, "scope").as_deref(),
        Some("openid offline_access vehicle_device_data vehicle_cmds vehicle_charging_cmds")
    );

    let (heading, message) = click_through(&link, "allow").await;
    let round_trip = started_at.elapsed();
    assert_eq!(heading, "Signed in", "{message}");
    assert!(message.contains("close this window"), "{message}");
    eprintln!("sign-in round trip (tool call, Chromium click, code exchange): {round_trip:?}");

    // The host exchanged the code once, with the PKCE verifier, and stored the refresh token.
    let exchanges = token_requests(&harness);
    assert_eq!(exchanges.len(), 1);
    let form: Vec<(String, String)> = form_urlencoded::parse(exchanges[0].body.as_bytes())
        .into_owned()
        .collect();
    let field = |name: &str| {
        form.iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    assert_eq!(field("grant_type"), Some("authorization_code"));
    assert_eq!(field("redirect_uri"), Some(redirect.as_str()));
    assert_eq!(field("code_verifier").map(str::len), Some(43));
    assert_eq!(
        field("audience"),
        Some(harness.simulator.url(Vendor::Fleet).as_str())
    );
    let refresh_file = harness.dir.path().join("tesla-refresh-token");
    assert_eq!(
        std::fs::read_to_string(&refresh_file).unwrap(),
        "sim-fleet-refresh-signin-1"
    );
    let mode = std::fs::metadata(&refresh_file)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "the refresh token is readable by others");

    // The region of the account is chosen; the plugin learns nothing of the tokens.
    let checked = harness
        .call("tesla_sign_in", json!({"action": "check"}))
        .await;
    let answer = structured(&checked);
    assert_eq!(answer["signed_in"], true, "{}", text_of(&checked));
    assert_eq!(answer["base_url"], harness.simulator.url(Vendor::Fleet));
    let everything = format!("{answer} {}", text_of(&checked));
    assert!(
        !everything.contains("sim-fleet-"),
        "a token reached the plugin: {everything}"
    );

    harness.simulator.clear_requests();
    let state = harness.call("tesla_vehicle_state", json!({})).await;
    assert!(!is_error(&state), "{}", text_of(&state));
    let reads: Vec<_> = harness
        .simulator
        .requests()
        .into_iter()
        .filter(|request| request.vendor == Vendor::Fleet)
        .collect();
    assert!(!reads.is_empty(), "the read went to the account's region");
    assert!(reads.iter().all(|request| {
        request.authorization.as_deref() == Some("Bearer sim-fleet-access-signin-1")
    }));

    // A new process starts from the stored refresh token (the access token died meanwhile).
    harness.simulator.expire_fleet_tokens();
    restart(&mut harness).await;
    harness.simulator.clear_requests();
    let after_restart = harness.call("tesla_vehicle_state", json!({})).await;
    assert!(!is_error(&after_restart), "{}", text_of(&after_restart));
    let refreshed = token_requests(&harness);
    assert_eq!(refreshed.len(), 1);
    assert!(refreshed[0].body.contains("grant_type=refresh_token"));
    assert!(
        refreshed[0]
            .body
            .contains("refresh_token=sim-fleet-refresh-signin-1")
    );
    assert_ne!(
        std::fs::read_to_string(&refresh_file).unwrap(),
        "sim-fleet-refresh-signin-1",
        "the rotated refresh token is stored"
    );
    assert!(
        harness
            .simulator
            .requests()
            .iter()
            .all(|request| request.vendor != Vendor::FleetOtherRegion),
        "the chosen region is remembered across the restart"
    );
}

#[tokio::test]
async fn a_redirect_with_another_state_is_refused_and_the_sign_in_keeps_waiting() {
    let (harness, redirect) = tesla_harness().await;
    let link = start_sign_in(&harness).await;
    let back = submit_consent(&link, "allow").await;
    assert!(back.starts_with(&redirect), "{back}");

    let forged = back.replace(&param(&back, "state").unwrap(), "forged-state");
    let (status, page) = browser_get(&forged).await;
    assert_eq!(status, 400);
    assert!(page.contains("Sign-in failed"), "{page}");
    assert!(page.contains("does not belong to the sign-in"), "{page}");
    assert!(page.contains("close this window"), "{page}");
    assert!(
        token_requests(&harness).is_empty(),
        "a forged redirect spent the code"
    );

    let (status, page) = browser_get(&back).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Signed in"), "{page}");
    // Single use: the same redirect again finds no sign-in waiting, or nobody listening.
    let again = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(&back)
        .send()
        .await;
    if let Ok(answer) = again {
        assert_eq!(answer.status().as_u16(), 400, "a second use was accepted");
    }
    assert_eq!(token_requests(&harness).len(), 1);
}

#[tokio::test]
async fn a_denied_sign_in_says_so_and_a_spent_code_is_refused() {
    let (harness, redirect) = tesla_harness().await;
    // The user presses Cancel on Tesla's page.
    let link = start_sign_in(&harness).await;
    let back = submit_consent(&link, "deny").await;
    let (status, page) = browser_get(&back).await;
    assert_eq!(status, 400);
    assert!(page.contains("access_denied"), "{page}");
    assert!(page.contains("start the sign-in again"), "{page}");
    let checked = harness
        .call("tesla_sign_in", json!({"action": "check"}))
        .await;
    assert_eq!(structured(&checked)["signed_in"], false);

    // A code that was spent already: Tesla's token endpoint refuses it, and the tool says so.
    let link = start_sign_in(&harness).await;
    let first = submit_consent(&link, "allow").await;
    assert!(browser_get(&first).await.1.contains("Signed in"));
    let link = start_sign_in(&harness).await;
    let replayed = format!(
        "{redirect}?code={}&state={}",
        param(&first, "code").unwrap(),
        param(&link, "state").unwrap()
    );
    let finished = harness
        .call(
            "tesla_sign_in",
            json!({"action": "finish", "redirected_url": replayed}),
        )
        .await;
    assert!(is_error(&finished));
    let message = text_of(&finished);
    assert!(message.contains("invalid_grant"), "{message}");
    assert!(message.contains("already used"), "{message}");
}

#[tokio::test]
async fn wrong_redirect_addresses_are_refused() {
    let (harness, _redirect) = tesla_harness().await;
    // Pasted: an address that is not the sign-in's redirect address.
    start_sign_in(&harness).await;
    let finished = harness
        .call(
            "tesla_sign_in",
            json!({"action": "finish", "redirected_url": "http://127.0.0.1:9/elsewhere?code=x&state=y"}),
        )
        .await;
    assert!(is_error(&finished));
    assert!(
        text_of(&finished).contains("does not start with the sign-in's redirect address"),
        "{}",
        text_of(&finished)
    );
    // A redirect address the developer did not register: Tesla's page refuses the link.
    let unregistered = tesla_table(
        &harness.simulator,
        harness.dir.path(),
        &format!("http://127.0.0.1:{}/unregistered", free_port()),
    );
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("plugins.toml");
    std::fs::write(
        &config,
        format!("[carport]\ndata_dir = \"data\"\n{unregistered}"),
    )
    .unwrap();
    let (client, _recorder, _stderr) = connect(&config, &cache_dir()).await;
    let started = client
        .call_tool(
            rmcp::model::CallToolRequestParams::new("tesla_sign_in".to_string())
                .with_arguments(serde_json::Map::new()),
        )
        .await
        .unwrap();
    let link = started.structured_content.unwrap()["link"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, page) = browser_get(&link).await;
    assert_eq!(status, 400);
    assert!(page.contains("is not registered"), "{page}");
    // And plugins.toml refuses a redirect address off this machine.
    let remote = tesla_table(
        &harness.simulator,
        harness.dir.path(),
        "http://example.com/callback",
    );
    let refused = carport::config::Config::parse(&remote, dir.path()).unwrap_err();
    assert!(
        format!("{refused:#}").contains("not a loopback address"),
        "{refused:#}"
    );
}

/// `carport login <plugin>`, its stderr read line by line until `until` shows up.
struct Login {
    child: tokio::process::Child,
    stderr: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStderr>>,
    seen: String,
}

impl Login {
    fn start(config: &Path, plugin: &str, paste: bool) -> Login {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_carport"));
        command
            .args(["login", plugin, "--config"])
            .arg(config)
            .env("CARPORT_CACHE_DIR", cache_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if paste {
            command.arg("--paste");
        }
        let mut child = command.spawn().expect("carport login starts");
        let stderr = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
        Login {
            child,
            stderr,
            seen: String::new(),
        }
    }

    async fn link(&mut self) -> String {
        while let Some(line) = self.stderr.next_line().await.unwrap() {
            self.seen.push_str(&line);
            self.seen.push('\n');
            if let Some(link) = line.trim().strip_prefix("http") {
                return format!("http{link}");
            }
        }
        panic!("carport login printed no link: {}", self.seen);
    }

    async fn end(mut self) -> (bool, String) {
        while let Some(line) = self.stderr.next_line().await.unwrap() {
            self.seen.push_str(&line);
            self.seen.push('\n');
        }
        let status = self.child.wait().await.unwrap();
        (status.success(), self.seen)
    }
}

#[tokio::test]
async fn carport_login_tesla_with_a_pasted_address() {
    let (harness, redirect) = tesla_harness().await;
    let config = harness.dir.path().join("plugins.toml");
    let mut login = Login::start(&config, "tesla", true);
    let link = login.link().await;
    let back = submit_consent(&link, "allow").await;
    assert!(back.starts_with(&redirect), "{back}");
    let mut stdin = login.child.stdin.take().unwrap();
    stdin
        .write_all(format!("{back}\n").as_bytes())
        .await
        .unwrap();
    let (success, output) = login.end().await;
    assert!(success, "{output}");
    assert!(output.contains("Signed in: tesla is ready"), "{output}");
    assert_eq!(
        std::fs::read_to_string(harness.dir.path().join("tesla-refresh-token")).unwrap(),
        "sim-fleet-refresh-signin-1"
    );
    // The running server picks the stored refresh token up at its next call.
    let read = harness.call("tesla_vehicle_state", json!({})).await;
    assert!(!is_error(&read), "{}", text_of(&read));
}

#[tokio::test]
async fn carport_login_dimo_in_a_real_browser_stores_the_token_and_keeps_the_claims() {
    let simulator = Simulator::start(Default::default()).await.unwrap();
    let redirect = free_redirect(&simulator);
    let dir = tempfile::tempdir().unwrap();
    let login_page = simulator.url(Vendor::DimoLogin);
    let token_file = dir.path().join("dimo-user-token");
    let table = format!(
        "[carport]\ndata_dir = \"data\"\n\
         [plugins.dimo]\ncomponent = \"dimo.wasm\"\nallow = [{login_page:?}]\n\
         [plugins.dimo.secrets.user_token]\nfile = {token:?}\norigins = []\n\
         [plugins.dimo.sign_in]\nauthorize_url = \"{login_page}/\"\nredirect_uri = {redirect:?}\n\
         response = \"token\"\nredirect_param = \"redirectUri\"\nstate_param = \"carport_state\"\n\
         token_param = \"token\"\nstore = \"user_token\"\nclaims = [\"walletAddress\", \"email\"]\n\
         [plugins.dimo.sign_in.params]\nclientId = \"{DIMO_CLIENT_ID}\"\n\
         utm = \"carport_state={{state}}\"\n",
        token = token_file.display().to_string(),
    );
    let config = dir.path().join("plugins.toml");
    std::fs::write(&config, table).unwrap();
    let mut login = Login::start(&config, "dimo", false);
    let link = login.link().await;
    assert_eq!(param(&link, "clientId").as_deref(), Some(DIMO_CLIENT_ID));
    assert_eq!(
        param(&link, "redirectUri").as_deref(),
        Some(redirect.as_str())
    );
    assert_eq!(
        param(&link, "state"),
        None,
        "DIMO's login reads `state` as its own JSON"
    );
    assert!(param(&link, "utm").unwrap().starts_with("carport_state="));

    let (heading, message) = click_through(&link, "allow").await;
    assert_eq!(heading, "Signed in", "{message}");
    let (success, output) = login.end().await;
    assert!(success, "{output}");
    assert!(
        output.contains(&format!("walletAddress {DIMO_WALLET_ADDRESS}")),
        "{output}"
    );
    assert_eq!(
        std::fs::read_to_string(&token_file).unwrap(),
        DIMO_USER_TOKEN
    );
    let mode = std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // What the plugin may learn: signed in, the claims, the expiry; never the token.
    let loaded = carport::config::Config::load(&config).unwrap();
    let grants = carport::runtime::grants::grants(
        &loaded,
        "dimo",
        &loaded.plugins["dimo"],
        &Default::default(),
    )
    .unwrap();
    let account = carport::capabilities::sign_in::SignIn::status(&grants).unwrap();
    assert!(account.signed_in);
    assert_eq!(
        account.claims,
        vec![
            ("walletAddress".to_string(), DIMO_WALLET_ADDRESS.to_string()),
            ("email".to_string(), "driver@example.com".to_string())
        ]
    );
    assert_eq!(account.expires_at, Some(4_102_444_800_000));
    assert!(!format!("{account:?}").contains(DIMO_USER_TOKEN));
    let revealed = grants.secrets.reveal("user_token");
    assert!(revealed.is_err(), "the plugin could read the token");
}

#[tokio::test]
async fn tools_list_stays_under_the_seeds_size_with_sign_in() {
    let (harness, _redirect) = tesla_harness().await;
    let tools = harness.client.list_all_tools().await.unwrap();
    let tesla: Vec<Value> = tools
        .iter()
        .filter(|tool| tool.name.starts_with("tesla_"))
        .map(|tool| serde_json::to_value(tool).unwrap())
        .collect();
    assert!(tesla.iter().any(|tool| tool["name"] == "tesla_sign_in"));
    let bytes = serde_json::to_string(&tesla).unwrap().len();
    eprintln!("tesla tools/list with sign_in: {bytes} bytes");
    assert!(bytes < 66_000, "{bytes} bytes");
}

#[tokio::test]
async fn the_simulated_tesla_token_endpoint_checks_the_verifier_the_redirect_and_single_use() {
    let simulator = Simulator::start(Default::default()).await.unwrap();
    let redirect = free_redirect(&simulator);
    let auth = simulator.url(Vendor::TeslaAuth);
    // RFC 7636 appendix B's verifier and challenge.
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let mut link = url::Url::parse(&format!("{auth}/oauth2/v3/authorize")).unwrap();
    link.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", TESLA_CLIENT_ID)
        .append_pair("redirect_uri", &redirect)
        .append_pair("scope", "openid offline_access")
        .append_pair("state", "s1")
        .append_pair(
            "code_challenge",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        )
        .append_pair("code_challenge_method", "S256");
    let exchange = |code: String, verifier: &'static str, redirect: String| {
        let token_url = format!("{auth}/oauth2/v3/token");
        async move {
            let answer = reqwest::Client::builder()
                .no_proxy()
                .build()
                .unwrap()
                .post(token_url)
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("client_id", TESLA_CLIENT_ID),
                    ("code", &code),
                    ("redirect_uri", &redirect),
                    ("code_verifier", verifier),
                ])
                .send()
                .await
                .unwrap();
            (answer.status().as_u16(), answer.text().await.unwrap())
        }
    };
    let code = || async { param(&submit_consent(link.as_str(), "allow").await, "code").unwrap() };

    let (status, body) = exchange(code().await, "wrong-verifier", redirect.clone()).await;
    assert_eq!(status, 400);
    assert!(body.contains("code_verifier does not match"), "{body}");
    let (status, body) = exchange(code().await, verifier, format!("{redirect}x")).await;
    assert_eq!(status, 400);
    assert!(body.contains("redirect_uri does not match"), "{body}");
    let good = code().await;
    let (status, body) = exchange(good.clone(), verifier, redirect.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("sim-fleet-refresh-signin-1"), "{body}");
    let (status, body) = exchange(good, verifier, redirect.clone()).await;
    assert_eq!(status, 400);
    assert!(body.contains("already used"), "{body}");
}

#[tokio::test]
async fn a_plugin_without_a_sign_in_table_is_refused_with_the_fix() {
    let harness = crate::tesla::start(crate::tesla::Auth::OAuth, false).await;
    let refused = harness.call("tesla_sign_in", json!({})).await;
    assert!(is_error(&refused));
    let message = text_of(&refused);
    assert!(
        message.contains("plugin `tesla` may not sign users in"),
        "{message}"
    );
    assert!(message.contains("[plugins.tesla.sign_in]"), "{message}");
}

#[tokio::test]
async fn an_account_region_outside_the_allowlist_is_reported_not_followed() {
    let mut harness = Harness::start().await;
    let redirect = free_redirect(&harness.simulator);
    let table = tesla_table_allowing(&harness.simulator, harness.dir.path(), &redirect, false);
    let config = harness.dir.path().join("plugins.toml");
    let base = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{base}{table}")).unwrap();
    restart(&mut harness).await;
    let link = start_sign_in(&harness).await;
    let back = submit_consent(&link, "allow").await;
    assert!(browser_get(&back).await.1.contains("Signed in"));
    let checked = harness
        .call("tesla_sign_in", json!({"action": "check"}))
        .await;
    assert!(!is_error(&checked), "{}", text_of(&checked));
    let other = harness.simulator.url(Vendor::FleetOtherRegion);
    assert_eq!(structured(&checked)["base_url"], other.as_str());
    let message = text_of(&checked);
    assert!(
        message.contains(&format!(
            "lives at {}",
            harness.simulator.url(Vendor::Fleet)
        )),
        "{message}"
    );
    assert!(message.contains("may not reach"), "{message}");
    let read = harness.call("tesla_vehicle_state", json!({})).await;
    assert!(
        !is_error(&read),
        "the allowed region still serves: {}",
        text_of(&read)
    );
}
