//! `carport demo`: the simulator plus a configuration that points every bundled plugin at it,
//! so a new user sees real tool calls without any account.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::config::Config;
use crate::simulator::{Simulator, Vendor, smartcar};

/// The bundled plugins the demo serves, with the simulated vendor each one talks to.
const DEMO_PLUGINS: &[(&str, Vendor)] = &[
    ("tessie", Vendor::Tessie),
    ("tesla", Vendor::Fleet),
    ("teslamate", Vendor::TeslaMate),
];

/// Finds the built components: `--components`, `$CARPORT_COMPONENTS`, next to the binary
/// (`target/<profile>/../components`), or `./target/components`.
pub fn components_dir(explicit: Option<PathBuf>) -> Result<PathBuf> {
    let mut candidates: Vec<PathBuf> = explicit.into_iter().collect();
    candidates.extend(std::env::var_os("CARPORT_COMPONENTS").map(PathBuf::from));
    if let Some(exe_dir) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
    {
        candidates.push(exe_dir.join("../components"));
    }
    candidates.push(PathBuf::from("target/components"));
    for candidate in &candidates {
        if candidate.join("tessie.wasm").is_file() {
            return Ok(candidate.clone());
        }
    }
    bail!(
        "no built plugin components found (looked in {}); build them with `cargo xtask build`, \
         or pass --components DIR",
        candidates
            .iter()
            .map(|path| path.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// A configuration serving each bundled plugin against `simulator`.
pub fn config(simulator: &Simulator, components: &Path, data_dir: &Path) -> Result<Config> {
    Config::parse(&config_text(simulator, components, data_dir)?, data_dir)
}

/// The demo's plugins.toml. Tokens are written to files under `data_dir`, as a real
/// deployment would keep them.
pub fn config_text(simulator: &Simulator, components: &Path, data_dir: &Path) -> Result<String> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let mut text = format!(
        "[carport]\ndata_dir = {:?}\n",
        data_dir.display().to_string()
    );
    for (id, vendor) in DEMO_PLUGINS {
        let token_file = data_dir.join(format!("{id}-token"));
        std::fs::write(&token_file, vendor.token())?;
        let url = simulator.url(*vendor);
        let first_vin = simulator
            .state
            .vehicles()
            .first()
            .map(|vehicle| vehicle.vin.clone())
            .unwrap_or_default();
        text.push_str(&format!(
            "\n[plugins.{id}]\ncomponent = {component:?}\nallow = [{url:?}]\n\
             [plugins.{id}.settings]\nbase_url = {url:?}\nvin = {first_vin:?}\n\
             [plugins.{id}.secrets.token]\nfile = {token:?}\n",
            component = components.join(format!("{id}.wasm")).display().to_string(),
            token = token_file.display().to_string(),
        ));
    }
    text.push_str(&smartcar_table(simulator, components, data_dir)?);
    let owner = format!("owner_address = {:?}", simulator.state.dimo.user.wallet);
    text.push_str(&dimo_table(
        simulator,
        components,
        data_dir,
        &owner,
        crate::simulator::sign_in::DEFAULT_REDIRECT_URI,
    )?);
    Ok(text)
}

/// Smartcar takes the client secret of an application, which the host exchanges for access
/// tokens at the simulated token endpoint (client-credentials grant).
fn smartcar_table(simulator: &Simulator, components: &Path, data_dir: &Path) -> Result<String> {
    let secret_file = data_dir.join("smartcar-client-secret");
    std::fs::write(&secret_file, Vendor::Smartcar.token())?;
    let url = simulator.url(Vendor::Smartcar);
    Ok(format!(
        "\n[plugins.smartcar]\ncomponent = {component:?}\n\
         allow = [\"{url}/v3\", \"{url}/management/v3\", \"{url}/oauth2/token\"]\n\
         [plugins.smartcar.settings]\nbase_url = \"{url}/v3\"\n\
         management_url = \"{url}/management/v3\"\nuser_id = {user:?}\nvehicle_id = {vehicle:?}\n\
         [plugins.smartcar.secrets.client_secret]\nfile = {secret:?}\norigins = []\n\
         [plugins.smartcar.oauth.application]\ntoken_url = \"{url}/oauth2/token\"\n\
         client_id = {client_id:?}\nclient_secret = \"client_secret\"\n\
         origins = [\"{url}/v3\", \"{url}/management/v3\"]\n",
        component = components.join("smartcar.wasm").display().to_string(),
        user = smartcar::DEMO_USER,
        vehicle = smartcar::DEMO_VEHICLE,
        secret = secret_file.display().to_string(),
        client_id = smartcar::CLIENT_ID,
    ))
}

/// A guided tour for a person at a terminal: a real MCP client, in process, calls the demo's
/// tools and prints each call and answer (to stderr, like every other human-facing line).
/// DIMO's services each on their own simulated origin; the license's signer key (a demo
/// value from the simulator) is a secret only the host signs with; `init_oauth` signs the user
/// in on the simulated login page, which sends the browser back to `redirect_uri`.
pub fn dimo_table(
    simulator: &Simulator,
    components: &Path,
    data_dir: &Path,
    extra_settings: &str,
    redirect_uri: &str,
) -> Result<String> {
    let account = &simulator.state.dimo;
    let key_file = data_dir.join("dimo-private-key");
    std::fs::write(&key_file, &account.license.signer_key)?;
    let services = [
        ("auth_url", Vendor::DimoAuth, ""),
        ("identity_url", Vendor::DimoIdentity, "/query"),
        ("telemetry_url", Vendor::DimoTelemetry, "/query"),
        ("token_exchange_url", Vendor::DimoTokenExchange, ""),
        ("devices_url", Vendor::DimoDevices, ""),
        ("attestation_url", Vendor::DimoAttestation, ""),
        ("device_definitions_url", Vendor::DimoDeviceDefinitions, ""),
    ];
    let allow: Vec<String> = services
        .iter()
        .map(|(_, vendor, _)| format!("{:?}", simulator.url(*vendor)))
        .collect();
    let urls: String = services
        .iter()
        .map(|(key, vendor, path)| format!("{key} = \"{}{path}\"\n", simulator.url(*vendor)))
        .collect();
    Ok(format!(
        "\n[plugins.dimo]\ncomponent = {component:?}\nallow = [{allow}]\n\
         ethereum_keys = [\"private_key\"]\n\
         [plugins.dimo.settings]\nclient_id = {client_id:?}\ndomain = {domain:?}\n\
         {urls}{extra_settings}\n\
         [plugins.dimo.secrets.private_key]\nfile = {key:?}\norigins = []\n\
         [plugins.dimo.secrets.user_token]\nfile = {user_token:?}\norigins = []\n\
         [plugins.dimo.sign_in]\nauthorize_url = \"{login}/\"\nredirect_uri = {redirect_uri:?}\n\
         response = \"token\"\nredirect_param = \"redirectUri\"\nstate_param = \"carport_state\"\n\
         token_param = \"token\"\nstore = \"user_token\"\nclaims = [\"walletAddress\", \"email\"]\n\
         [plugins.dimo.sign_in.params]\nclientId = {client_id:?}\nutm = \"carport_state={{state}}\"\n",
        component = components.join("dimo.wasm").display().to_string(),
        allow = allow.join(", "),
        client_id = account.license.client_id,
        domain = account.license.redirect_uri,
        key = key_file.display().to_string(),
        user_token = data_dir.join("dimo-user-token").display().to_string(),
        login = simulator.url(Vendor::DimoLogin),
    ))
}

pub async fn tour(server: crate::mcp::CarportServer, simulator: &Simulator) -> Result<()> {
    use rmcp::ServiceExt;
    use rmcp::model::{CallToolRequestParams, NumberOrString, ProgressToken, RequestMetaObject};
    use serde_json::{Value, json};

    let (client_end, server_end) = tokio::io::duplex(1 << 16);
    let serving = tokio::spawn(async move {
        match server.serve(server_end).await {
            Ok(running) => {
                let _ = running.waiting().await;
            }
            Err(error) => tracing::error!("tour server: {error}"),
        }
    });
    let client = ().serve(client_end).await?;
    let tools = client.list_all_tools().await?;
    eprintln!(
        "\ncarport demo: {} tools, served by sandboxed plugins against the built-in simulator:",
        tools.len()
    );
    for tool in &tools {
        eprintln!(
            "  {:<28} {}",
            tool.name,
            tool.title.as_deref().unwrap_or_default()
        );
    }
    let sleeping_vin = simulator
        .state
        .vehicles()
        .iter()
        .find(|car| car.asleep)
        .map(|car| car.vin.clone())
        .unwrap_or_default();
    let steps: Vec<(&str, &str, Value)> = vec![
        ("What state is my car in?", "tessie_tesla_state", json!({})),
        (
            "Lock it.",
            "tessie_tesla_command",
            json!({"command": "lock"}),
        ),
        ("Is it locked now?", "tessie_tesla_state", json!({})),
        (
            "Set the cabin to 40 °C.",
            "tessie_tesla_command",
            json!({"command": "set_temperature", "temperature": 40}),
        ),
        (
            "Honk the other car (it is asleep).",
            "tessie_tesla_command",
            json!({"command": "honk", "vin": sleeping_vin}),
        ),
        (
            "The first car again, through Tesla's Fleet API.",
            "tesla_vehicle_state",
            json!({}),
        ),
        (
            "Its last two charging sessions, from TeslaMate.",
            "teslamate_get_car_charges",
            json!({"car_id": 1, "show": 2}),
        ),
        (
            "A car of another make, through Smartcar: the combustion Ford (it reports miles).",
            "smartcar_vehicle_state",
            json!({"vehicle_id": smartcar::COMBUSTION_VEHICLE}),
        ),
        (
            "Start charging the electric VW (Smartcar runs it asynchronously).",
            "smartcar_start_charge",
            json!({}),
        ),
    ];
    for (question, tool, arguments) in steps {
        let started = std::time::Instant::now();
        let mut params = CallToolRequestParams::new(tool)
            .with_arguments(arguments.as_object().cloned().unwrap_or_default());
        let mut meta = RequestMetaObject::default();
        meta.set_progress_token(ProgressToken(NumberOrString::String(tool.into())));
        params.meta = Some(meta);
        let result = client.call_tool(params).await?;
        let text: Vec<String> = result
            .content
            .iter()
            .filter_map(|block| block.as_text().map(|text| text.text.clone()))
            .collect();
        let verdict = if result.is_error == Some(true) {
            "error"
        } else {
            "ok"
        };
        eprintln!(
            "\n> {question}\n  {tool} {arguments}\n  {verdict} in {:.1} ms: {}",
            started.elapsed().as_secs_f64() * 1000.0,
            text.join(" ")
        );
    }
    eprintln!(
        "\nThat was MCP over an in-process pipe. To use carport from Claude Desktop or VS Code, \
         point them at `carport demo` (see README.md); `carport demo` then speaks MCP on stdio."
    );
    client.cancel().await?;
    serving.abort();
    Ok(())
}
