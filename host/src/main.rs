use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use carport::config::Config;
use carport::mcp::CarportServer;
use carport::runtime::Registry;
use carport::simulator::{SimOptions, Simulator, Vendor};

mod report;

/// An MCP server for vehicle APIs; each provider runs sandboxed as a Wasm component.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the plugins of a configuration (MCP over stdio unless --http).
    Serve {
        #[arg(long, default_value = "plugins.toml")]
        config: PathBuf,
        /// Serve MCP's streamable HTTP transport at this address instead of stdio.
        #[arg(long)]
        http: Option<SocketAddr>,
    },
    /// Serve the bundled plugins against the built-in simulator: no account needed.
    Demo {
        /// Folder with the built components (default: found next to the binary).
        #[arg(long)]
        components: Option<PathBuf>,
        #[arg(long)]
        http: Option<SocketAddr>,
        /// How long a sleeping simulated car takes to wake.
        #[arg(long, default_value_t = 2000)]
        wake_delay_ms: u64,
        /// Run a short guided tour instead of serving (the default when stdin is a terminal).
        #[arg(long)]
        tour: bool,
    },
    /// Run only the simulator, for pointing a plugins.toml at it.
    Simulator {
        #[arg(long, default_value_t = 8700)]
        port: u16,
        #[arg(long, default_value_t = 2000)]
        wake_delay_ms: u64,
        /// Also write the demo's plugins.toml for this simulator here (its tokens and keys in
        /// a `carport-data` folder beside it), for `carport serve --config`.
        #[arg(long)]
        write_config: Option<PathBuf>,
        /// Folder with the built components the written configuration names.
        #[arg(long)]
        components: Option<PathBuf>,
    },
    /// Sign in to a plugin's vendor in the browser ([plugins.<id>.sign_in]) and store the result.
    Login {
        /// The plugin id, e.g. tesla.
        plugin: String,
        #[arg(long, default_value = "plugins.toml")]
        config: PathBuf,
        /// Read the address the browser ended on from stdin (for a machine the browser cannot
        /// reach) instead of only waiting for the browser to come back.
        #[arg(long)]
        paste: bool,
    },
    /// Create the key pair a plugin signs vehicle commands with (Tesla: the virtual key).
    Keys {
        /// The plugin whose `key_agreement` key to create.
        plugin: String,
        #[arg(long, default_value = "plugins.toml")]
        config: PathBuf,
        /// Replace an existing key (the car must then be paired again).
        #[arg(long)]
        force: bool,
    },
    /// Load a configuration, list its tools and problems, and exit (non-zero on problems).
    Check {
        #[arg(long, default_value = "plugins.toml")]
        config: PathBuf,
    },
    /// List the plugins a configuration loads and the drop-ins awaiting a grant: id, version,
    /// digest, source, grants, tool count and problems.
    Plugins {
        #[arg(long, default_value = "plugins.toml")]
        config: PathBuf,
    },
    /// Show a component's world, imports, tools and requested grants, granting it nothing.
    Inspect {
        /// The component (`.wasm`); its manifest is the `.toml` beside it.
        file: PathBuf,
    },
    /// Show what a drop-in asks for and grant it in plugins.toml, pinned to its digest.
    Grant {
        /// The drop-in's name: `<plugins_dir>/<name>.wasm`.
        name: String,
        #[arg(long, default_value = "plugins.toml")]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    // stdout belongs to MCP in stdio mode: every log line goes to stderr.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CARPORT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rmcp=warn")),
        )
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("carport: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(Cli::parse())) {
        Ok(code) => code,
        Err(error) => {
            tracing::error!("{error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command.unwrap_or(Command::Serve {
        config: PathBuf::from("plugins.toml"),
        http: None,
    }) {
        Command::Serve {
            config: config_path,
            http,
        } => {
            let config = Config::load(&config_path).with_context(
                || "carport needs a plugins.toml (see README.md); `carport demo` runs without one",
            )?;
            serve(&config, Some(&config_path), http).await?;
        }
        Command::Demo {
            components,
            http,
            wake_delay_ms,
            tour,
        } => {
            let components = carport::demo::components_dir(components)?;
            let simulator = Simulator::start(SimOptions {
                wake_delay: Duration::from_millis(wake_delay_ms),
                ..SimOptions::default()
            })
            .await?;
            let data_dir =
                std::env::temp_dir().join(format!("carport-demo-{}", std::process::id()));
            let config = carport::demo::config(&simulator, &components, &data_dir)?;
            tracing::info!(
                "demo: simulated Tessie at {}; cars {}",
                simulator.url(Vendor::Tessie),
                simulator
                    .state
                    .vehicles()
                    .iter()
                    .map(|car| format!("{} {} ({})", car.vin, car.display_name, car.state_word()))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let at_terminal = std::io::IsTerminal::is_terminal(&std::io::stdin());
            let served = if tour || (at_terminal && http.is_none()) {
                let registry = Arc::new(Registry::load(&config).await?);
                carport::demo::tour(CarportServer::new(registry), &simulator).await
            } else {
                serve(&config, None, http).await
            };
            let _ = std::fs::remove_dir_all(&data_dir);
            served?;
        }
        Command::Simulator {
            port,
            wake_delay_ms,
            write_config,
            components,
        } => {
            let simulator = Simulator::start(SimOptions {
                wake_delay: Duration::from_millis(wake_delay_ms),
                base_port: port,
            })
            .await?;
            if let Some(path) = write_config {
                // The configuration is read from elsewhere: its paths must not be relative.
                let components = std::path::absolute(carport::demo::components_dir(components)?)?;
                let data_dir = std::path::absolute(&path)?
                    .parent()
                    .map(|folder| folder.join("carport-data"))
                    .unwrap_or_else(|| PathBuf::from("carport-data"));
                let text = carport::demo::config_text(&simulator, &components, &data_dir)?;
                std::fs::write(&path, text)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                tracing::info!("wrote {} for this simulator", path.display());
            }
            for vendor in Vendor::ALL {
                tracing::info!(
                    "{}: {} (bearer token {:?})",
                    vendor.name(),
                    simulator.url(*vendor),
                    vendor.token()
                );
            }
            tokio::signal::ctrl_c().await?;
        }
        Command::Login {
            plugin,
            config,
            paste,
        } => {
            let config = Config::load(&config)?;
            carport::login::login(&config, &plugin, paste).await?;
        }
        Command::Keys {
            plugin,
            config,
            force,
        } => {
            let config = Config::load(&config)?;
            let created = carport::keys::create(&config, &plugin, force)?;
            let pairing = match &created.pairing_link {
                Some(link) => format!(
                    "Then open {link} on the phone with the Tesla app and approve the key for \
                     each car."
                ),
                None => "Then open https://tesla.com/_ak/<your domain> on the phone with the \
                         Tesla app (set app_domain in the plugin's settings to have it printed)."
                    .to_string(),
            };
            eprintln!(
                "Private key written to {} (owner-only). Publish the public key below at \
                 https://<your domain>/.well-known/appspecific/com.tesla.3p.public-key.pem. \
                 {pairing}",
                created.private_key_path.display()
            );
            // Not MCP: the public key goes to stdout so that it can be redirected to a file.
            std::io::Write::write_all(&mut std::io::stdout(), created.public_key_pem.as_bytes())?;
            if let Some(link) = created.pairing_link {
                std::io::Write::write_all(&mut std::io::stdout(), format!("{link}\n").as_bytes())?;
            }
        }
        Command::Check { config } => {
            let config = Config::load(&config)?;
            let registry = Registry::load(&config).await?;
            for entry in &registry.tools {
                eprintln!("{}\t{}", entry.exposed_name, entry.tool.title);
            }
            for problem in &registry.problems {
                eprintln!("problem: {problem}");
            }
            if !registry.problems.is_empty() {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Plugins { config } => {
            let config = Config::load(&config)?;
            let registry = Registry::load(&config).await?;
            report::plugins(&registry)?;
            if !registry.problems.is_empty() {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Inspect { file } => report::inspect(&file).await?,
        Command::Grant { name, config } => {
            let granted = carport::drop_in::grant(&config, &name)?;
            report::granted(&name, &config, &granted)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Serves `config`; with the path it came from, drop-ins and grants are picked up live.
async fn serve(
    config: &Config,
    config_path: Option<&Path>,
    http: Option<SocketAddr>,
) -> Result<()> {
    let registry = Arc::new(Registry::load(config).await?);
    let server = CarportServer::new(registry);
    let _catalogue_changes = server.live().follow_catalogue_changes();
    let _watch = match (config_path, config.plugins_dir()) {
        (Some(config_path), Some(plugins_dir)) => Some(carport::drop_in::watch::start(
            config_path,
            &plugins_dir,
            server.live(),
        )?),
        _ => None,
    };
    match http {
        Some(address) => server.serve_http(address).await,
        None => server.serve_stdio().await,
    }
}
