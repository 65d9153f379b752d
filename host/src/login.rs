//! `carport login <plugin>`: the plugin's browser sign-in from a terminal, through the same
//! `sign-in` capability a plugin's tool uses.

use std::io::IsTerminal;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use tokio::io::AsyncBufReadExt;

use crate::capabilities::sign_in::SignIn;
use crate::config::Config;
use crate::runtime::grants::grants;

/// Prints the link, waits for the browser to come back to the loopback redirect address or, with
/// `paste`, for the redirected address on stdin, and says how it went.
pub async fn login(config: &Config, plugin_id: &str, paste: bool) -> Result<()> {
    let plugin = config
        .plugins
        .get(plugin_id)
        .with_context(|| format!("the configuration has no [plugins.{plugin_id}] table"))?;
    if plugin.sign_in.is_none() {
        bail!(
            "[plugins.{plugin_id}] has no sign_in table: add [plugins.{plugin_id}.sign_in] \
             (see README, plugins.toml reference)"
        );
    }
    // No plugin code runs here, so nothing would follow its catalogue changes.
    let unfollowed = Arc::default();
    let grants = Arc::new(grants(config, plugin_id, plugin, &unfollowed)?);
    let started = SignIn::start(&grants, Vec::new())
        .await
        .map_err(anyhow::Error::msg)?;
    eprintln!(
        "Open this link in your browser to sign in ({plugin_id}):\n\n  {}\n",
        started.link
    );
    let at_terminal = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    if !paste && at_terminal && open_browser(&started.link) {
        eprintln!("(a browser window was asked to open it)");
    }
    let mut outcome = started.outcome;
    let finished = if paste {
        eprintln!(
            "After signing in, paste the whole address your browser ended on (an error page is \
             fine) and press Enter:"
        );
        let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        tokio::select! {
            line = lines.next_line() => match line? {
                Some(line) => SignIn::finish(&grants, &line).await,
                None => Err("stdin ended before an address was pasted".to_string()),
            },
            done = outcome.wait_for(Option::is_some) => done
                .ok()
                .and_then(|done| done.clone())
                .unwrap_or_else(|| Err("the sign-in ended".to_string())),
        }
    } else {
        eprintln!("Waiting for the browser to come back…");
        outcome
            .wait_for(Option::is_some)
            .await
            .ok()
            .and_then(|done| done.clone())
            .unwrap_or_else(|| Err("the sign-in ended".to_string()))
    };
    if let Some(sign_in) = &grants.sign_in {
        sign_in.listeners_stopped().await;
    }
    let account = finished.map_err(anyhow::Error::msg)?;
    let claims: Vec<String> = account
        .claims
        .iter()
        .map(|(name, value)| format!("{name} {value}"))
        .collect();
    if claims.is_empty() {
        eprintln!("Signed in: {plugin_id} is ready.");
    } else {
        eprintln!("Signed in: {plugin_id} is ready ({}).", claims.join(", "));
    }
    Ok(())
}

/// Asks the desktop to open the link, only where that is the desktop's own opener on a
/// graphical session; anything else leaves the user to open the printed link.
fn open_browser(link: &str) -> bool {
    let graphical =
        std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some();
    graphical
        && std::process::Command::new("xdg-open")
            .arg(link)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .is_ok()
}
