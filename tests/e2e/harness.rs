// rmcp deprecates logging, which carport still serves to clients before MCP 2026-07-28.
#![allow(deprecated)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use carport::simulator::{RecordedRequest, SimOptions, Simulator, Vendor};
use rmcp::model::LoggingMessageNotificationParam;
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientInfo, ElicitRequestParams, ElicitResult,
    NumberOrString, ProgressNotificationParam, ProgressToken, RequestMetaObject,
    ResourceUpdatedNotificationParam, Tool,
};
use rmcp::service::{NotificationContext, RequestContext, RunningService};
use rmcp::transport::TokioChildProcess;
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::io::AsyncReadExt;

pub const RED_ARROW: &str = "5YJ3E1EA7KF000001";
pub const BLUE_GHOST: &str = "7SAYGDEE9PF000002";

pub fn components_dir() -> PathBuf {
    let dir = std::env::var_os("CARPORT_COMPONENTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/components"));
    for component in ["tessie.wasm", "teslamate.wasm", "hostile.wasm"] {
        assert!(
            dir.join(component).is_file(),
            "{} is missing: run the tests with `cargo xtask test`, which builds the components",
            dir.join(component).display()
        );
    }
    dir
}

/// Compiled components are shared between tests, as between real starts.
pub fn cache_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-component-cache")
}

/// Records the notifications the server sends, and answers its questions as told.
#[derive(Clone, Default)]
pub struct Recorder {
    pub progress: Arc<Mutex<Vec<ProgressNotificationParam>>>,
    pub logs: Arc<Mutex<Vec<LoggingMessageNotificationParam>>>,
    pub resource_updates: Arc<Mutex<Vec<String>>>,
    /// The answer to every elicitation (an MCP ElicitResult); `None` declares no elicitation
    /// capability at all.
    pub elicitation_answer: Option<Value>,
}

impl ClientHandler for Recorder {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.progress.lock().unwrap().push(params);
    }

    async fn on_logging_message(
        &self,
        params: LoggingMessageNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.logs.lock().unwrap().push(params);
    }

    async fn on_resource_updated(
        &self,
        params: ResourceUpdatedNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.resource_updates.lock().unwrap().push(params.uri);
    }

    async fn create_elicitation(
        &self,
        _request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, rmcp::ErrorData> {
        let answer = self
            .elicitation_answer
            .clone()
            .expect("elicitation is declared");
        Ok(serde_json::from_value(answer).expect("an ElicitResult"))
    }

    fn get_info(&self) -> ClientInfo {
        let mut info = ClientInfo::default();
        if self.elicitation_answer.is_some() {
            info.capabilities =
                serde_json::from_value(json!({"elicitation": {"form": {}}})).unwrap();
        }
        info
    }
}

pub struct Options {
    pub tessie_token: String,
    pub tessie_max_response_bytes: u64,
    /// More keys for the `[plugins.tessie]` table.
    pub tessie_keys: String,
    /// Defaults to the cache shared by all tests.
    pub cache_dir: Option<PathBuf>,
    pub hostile_timeout_seconds: u64,
    /// More `allow` entries for the hostile plugin, after the simulated Tessie.
    pub hostile_allow: Vec<String>,
    /// More keys for the `[plugins.hostile]` table.
    pub hostile_keys: String,
    /// Environment variables for the carport process.
    pub server_env: Vec<(String, String)>,
    pub extra_toml: String,
    pub wake_delay: Duration,
    /// Also serve the `teslamate` plugin against the simulated TeslaMateApi. Off by default, so
    /// the other tests load (and cache) only the components they use.
    pub teslamate: bool,
    pub teslamate_token: String,
    /// More lines for `[plugins.teslamate.settings]`.
    pub teslamate_settings: String,
    /// Also serve the `smartcar` plugin against the simulated Smartcar API, with the host's
    /// client-credentials grant. Off by default, like `teslamate`.
    pub smartcar: bool,
    /// More lines for `[plugins.smartcar.settings]`.
    pub smartcar_settings: String,
    /// Also serve the `dimo` plugin against the simulated DIMO services, as `carport demo` does.
    pub dimo: bool,
    /// More lines for `[plugins.dimo.settings]`.
    pub dimo_settings: String,
    /// Where DIMO's login sends the browser back (registered with the simulated login page).
    pub dimo_redirect: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            tessie_token: Vendor::Tessie.token().to_string(),
            tessie_max_response_bytes: 1024 * 1024,
            tessie_keys: String::new(),
            cache_dir: None,
            hostile_timeout_seconds: 2,
            hostile_allow: Vec::new(),
            hostile_keys: String::new(),
            server_env: Vec::new(),
            extra_toml: String::new(),
            wake_delay: Duration::from_millis(150),
            teslamate: false,
            teslamate_token: Vendor::TeslaMate.token().to_string(),
            teslamate_settings: String::new(),
            smartcar: false,
            smartcar_settings: String::new(),
            dimo: false,
            dimo_settings: String::new(),
            dimo_redirect: carport::simulator::sign_in::DEFAULT_REDIRECT_URI.to_string(),
        }
    }
}

pub struct Harness {
    pub simulator: Simulator,
    pub client: RunningService<RoleClient, Recorder>,
    pub recorder: Recorder,
    pub stderr: Arc<Mutex<String>>,
    pub dir: TempDir,
}

impl Harness {
    pub async fn start() -> Harness {
        Harness::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> Harness {
        let simulator = Simulator::start(SimOptions {
            wake_delay: options.wake_delay,
            base_port: 0,
        })
        .await
        .expect("simulator starts");
        let dir = tempfile::tempdir().unwrap();
        let config = write_config(&dir, &simulator, &options);
        let cache = options.cache_dir.clone().unwrap_or_else(cache_dir);
        let (client, recorder, stderr) =
            connect_with(&config, &cache, Recorder::default(), &options.server_env).await;
        Harness {
            simulator,
            client,
            recorder,
            stderr,
            dir,
        }
    }

    pub async fn call(&self, tool: &str, arguments: Value) -> CallToolResult {
        call_on(&self.client, tool, arguments).await
    }

    /// Calls with a progress token, so the server may report progress.
    pub async fn call_with_progress(&self, tool: &str, arguments: Value) -> CallToolResult {
        let Value::Object(arguments) = arguments else {
            panic!("arguments must be an object")
        };
        let mut meta = RequestMetaObject::default();
        meta.set_progress_token(ProgressToken(NumberOrString::String("progress-1".into())));
        let mut params = CallToolRequestParams::new(tool.to_string()).with_arguments(arguments);
        params.meta = Some(meta);
        self.client
            .call_tool(params)
            .await
            .expect("protocol-level success")
    }

    pub fn tessie_requests(&self) -> Vec<RecordedRequest> {
        self.vendor_requests(Vendor::Tessie)
    }

    pub fn teslamate_requests(&self) -> Vec<RecordedRequest> {
        self.vendor_requests(Vendor::TeslaMate)
    }

    pub fn smartcar_requests(&self) -> Vec<RecordedRequest> {
        self.vendor_requests(Vendor::Smartcar)
    }

    pub fn vendor_requests(&self, vendor: Vendor) -> Vec<RecordedRequest> {
        self.simulator
            .requests()
            .into_iter()
            .filter(|request| request.vendor == vendor)
            .collect()
    }
}

/// Calls `tool` on any client; a protocol-level failure fails the test, a tool error is returned.
pub async fn call_on<H: ClientHandler>(
    client: &RunningService<RoleClient, H>,
    tool: &str,
    arguments: Value,
) -> CallToolResult {
    let Value::Object(arguments) = arguments else {
        panic!("arguments must be an object")
    };
    client
        .call_tool(CallToolRequestParams::new(tool.to_string()).with_arguments(arguments))
        .await
        .unwrap_or_else(|error| panic!("{tool} failed at the protocol level: {error}"))
}

/// `carport serve --http` on a free loopback port with `config`, and its MCP address; the
/// process ends when the returned child is dropped.
pub async fn serve_http(config: &Path) -> (tokio::process::Child, String) {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let mut carport = tokio::process::Command::new(env!("CARGO_BIN_EXE_carport"))
        .args(["serve", "--http", "127.0.0.1:0", "--config"])
        .arg(config)
        .env("CARPORT_CACHE_DIR", cache_dir())
        .env("CARPORT_LOG", "info")
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("carport starts");
    let mut log = BufReader::new(carport.stderr.take().unwrap()).lines();
    let url = loop {
        let line = log
            .next_line()
            .await
            .unwrap()
            .expect("carport announces its HTTP address before exiting");
        if let Some((_, address)) = line.split_once("MCP over streamable HTTP at ") {
            break address.trim().to_string();
        }
    };
    // Keeps the pipe drained so carport never blocks on a full stderr.
    tokio::spawn(async move { while let Ok(Some(_)) = log.next_line().await {} });
    (carport, url)
}

pub fn write_config(dir: &TempDir, simulator: &Simulator, options: &Options) -> PathBuf {
    let components = components_dir();
    let token_file = dir.path().join("tessie-token");
    std::fs::write(&token_file, &options.tessie_token).unwrap();
    let tessie = simulator.url(Vendor::Tessie);
    let hostile_allow = format!(
        "{:?}",
        std::iter::once(tessie.clone())
            .chain(options.hostile_allow.iter().cloned())
            .collect::<Vec<_>>()
    );
    let text = format!(
        r#"
[carport]
data_dir = "data"

[plugins.tessie]
component = {tessie_component:?}
allow = [{tessie:?}]
max_response_bytes = {tessie_max_response_bytes}
{tessie_keys}
[plugins.tessie.settings]
base_url = {tessie:?}
vin = "{RED_ARROW}"
[plugins.tessie.secrets.token]
file = {token_file:?}

[plugins.hostile]
component = {hostile_component:?}
allow = {hostile_allow}
timeout_seconds = {hostile_timeout}
memory_mib = 16
{hostile_keys}
[plugins.hostile.settings]
allowed_url = {tessie:?}
[plugins.hostile.secrets.token]
file = {token_file:?}
origins = [{tessie:?}]
{teslamate_table}
{smartcar_table}
{dimo_table}
{extra}
"#,
        tessie_component = components.join("tessie.wasm").display().to_string(),
        hostile_component = components.join("hostile.wasm").display().to_string(),
        token_file = token_file.display().to_string(),
        hostile_timeout = options.hostile_timeout_seconds,
        hostile_allow = hostile_allow,
        hostile_keys = options.hostile_keys,
        tessie_max_response_bytes = options.tessie_max_response_bytes,
        tessie_keys = options.tessie_keys,
        teslamate_table = teslamate_table(dir, simulator, options),
        smartcar_table = smartcar_table(dir, simulator, options),
        dimo_table = if options.dimo {
            carport::demo::dimo_table(
                simulator,
                &components,
                dir.path(),
                &options.dimo_settings,
                &options.dimo_redirect,
            )
            .unwrap()
        } else {
            String::new()
        },
        extra = options.extra_toml,
    );
    let path = dir.path().join("plugins.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The `[plugins.teslamate]` table, with its own simulated vendor and token file.
fn teslamate_table(dir: &TempDir, simulator: &Simulator, options: &Options) -> String {
    if !options.teslamate {
        return String::new();
    }
    let token_file = dir.path().join("teslamate-token");
    std::fs::write(&token_file, &options.teslamate_token).unwrap();
    let url = simulator.url(Vendor::TeslaMate);
    format!(
        "\n[plugins.teslamate]\ncomponent = {component:?}\nallow = [{url:?}]\n\
         [plugins.teslamate.settings]\nbase_url = {url:?}\n{settings}\n\
         [plugins.teslamate.secrets.token]\nfile = {token:?}\n",
        settings = options.teslamate_settings,
        component = components_dir()
            .join("teslamate.wasm")
            .display()
            .to_string(),
        token = token_file.display().to_string(),
    )
}

/// The `[plugins.smartcar]` table: the client secret in a file, the token endpoint, Vehicle
/// API and Management API of the simulated Smartcar, and the alex user's VW as defaults.
fn smartcar_table(dir: &TempDir, simulator: &Simulator, options: &Options) -> String {
    if !options.smartcar {
        return String::new();
    }
    let secret_file = dir.path().join("smartcar-client-secret");
    std::fs::write(&secret_file, Vendor::Smartcar.token()).unwrap();
    let url = simulator.url(Vendor::Smartcar);
    format!(
        "\n[plugins.smartcar]\ncomponent = {component:?}\n\
         allow = [\"{url}/v3\", \"{url}/management/v3\", \"{url}/oauth2/token\"]\n\
         timeout_seconds = 20\n\
         [plugins.smartcar.settings]\nbase_url = \"{url}/v3\"\n\
         management_url = \"{url}/management/v3\"\nuser_id = \"sc-user-alex\"\n\
         vehicle_id = \"sc-veh-vw-id4\"\ncommand_poll_ms = \"50\"\n{settings}\n\
         [plugins.smartcar.secrets.client_secret]\nfile = {secret:?}\norigins = []\n\
         [plugins.smartcar.oauth.application]\ntoken_url = \"{url}/oauth2/token\"\n\
         client_id = \"{client_id}\"\nclient_secret = \"client_secret\"\n\
         origins = [\"{url}/v3\", \"{url}/management/v3\"]\n",
        component = components_dir().join("smartcar.wasm").display().to_string(),
        settings = options.smartcar_settings,
        secret = secret_file.display().to_string(),
        client_id = carport::simulator::smartcar::CLIENT_ID,
    )
}

pub async fn connect(
    config: &Path,
    cache: &Path,
) -> (
    RunningService<RoleClient, Recorder>,
    Recorder,
    Arc<Mutex<String>>,
) {
    connect_with(config, cache, Recorder::default(), &[]).await
}

/// Connects with a client that answers questions as `recorder` says, carport running with the
/// extra environment `env`.
pub async fn connect_with(
    config: &Path,
    cache: &Path,
    recorder: Recorder,
    env: &[(String, String)],
) -> (
    RunningService<RoleClient, Recorder>,
    Recorder,
    Arc<Mutex<String>>,
) {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_carport"));
    command
        .arg("serve")
        .arg("--config")
        .arg(config)
        .env("CARPORT_CACHE_DIR", cache)
        .env("CARPORT_LOG", "info")
        .envs(env.iter().map(|(name, value)| (name, value)));
    let (transport, stderr) = TokioChildProcess::builder(command)
        .stderr(Stdio::piped())
        .spawn()
        .expect("carport starts");
    let log = Arc::new(Mutex::new(String::new()));
    if let Some(mut stderr) = stderr {
        let log = log.clone();
        tokio::spawn(async move {
            let mut buffer = [0u8; 4096];
            while let Ok(read) = stderr.read(&mut buffer).await {
                if read == 0 {
                    break;
                }
                log.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buffer[..read]));
            }
        });
    }
    let client = recorder
        .clone()
        .serve(transport)
        .await
        .expect("MCP handshake");
    (client, recorder, log)
}

pub fn text_of(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|block| block.as_text().map(|text| text.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn is_error(result: &CallToolResult) -> bool {
    result.is_error == Some(true)
}

pub fn structured(result: &CallToolResult) -> Value {
    result
        .structured_content
        .clone()
        .unwrap_or_else(|| panic!("no structuredContent in {}", text_of(result)))
}

pub fn command(name: &str) -> Value {
    json!({ "command": name })
}

/// A structured result must match its tool's output schema; a read must have both.
pub fn assert_structured_matches(tool: &Tool, result: &CallToolResult) {
    let read_only = tool
        .annotations
        .as_ref()
        .and_then(|hints| hints.read_only_hint)
        == Some(true);
    match (&tool.output_schema, &result.structured_content) {
        (Some(schema), Some(value)) => {
            let validator = jsonschema::validator_for(&Value::Object((**schema).clone()))
                .unwrap_or_else(|error| panic!("{}: output schema: {error}", tool.name));
            if let Some(error) = validator.iter_errors(value).next() {
                panic!(
                    "{}: {value} does not match its output schema: {error}",
                    tool.name
                );
            }
        }
        (None, _) if !read_only => {}
        (schema, value) => panic!(
            "{}: a read needs an output schema and structured content (schema {}, content {})",
            tool.name,
            schema.is_some(),
            value.is_some()
        ),
    }
}
