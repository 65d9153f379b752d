//! Turning a plugin's table in plugins.toml into the capabilities it is granted.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::capabilities::Grants;
use crate::capabilities::catalogue::{CatalogueChanges, CatalogueGrant};
use crate::capabilities::ethereum_signer::SigningKeys;
use crate::capabilities::http::{CredentialScope, Egress};
use crate::capabilities::key_agreement::KeyAgreementGrant;
use crate::capabilities::log::LogBudget;
use crate::capabilities::oauth::OAuthGrant;
use crate::capabilities::secrets::{SecretGrant, SecretGrants, SecretSource};
use crate::capabilities::sign_in::SignIn;
use crate::capabilities::state::{PluginState, StateQuota};
use crate::config::{Config, PluginConfig};

/// `catalogue_changes` is where the plugin's `catalogue.changed` goes, if it is granted.
pub fn grants(
    config: &Config,
    id: &str,
    plugin: &PluginConfig,
    catalogue_changes: &Arc<CatalogueChanges>,
) -> Result<Grants> {
    let http = Egress::new(
        id,
        &plugin.allow,
        Duration::from_secs(plugin.request_timeout_seconds),
        plugin.max_response_bytes,
    )
    .with_context(|| format!("[plugins.{id}] allow"))?;
    let secrets: BTreeMap<String, SecretGrant> = plugin
        .secrets
        .iter()
        .map(|(name, secret)| {
            let source = match (&secret.env, &secret.file) {
                (Some(variable), _) => SecretSource::Env(variable.clone()),
                (None, Some(file)) => SecretSource::File(config.resolve(file)),
                (None, None) => unreachable!("Config::validate requires one source"),
            };
            let is_private_key = plugin
                .key_agreement
                .as_ref()
                .is_some_and(|agreement| &agreement.key == name);
            // A private key for key agreements is never attached anywhere.
            let origins = match is_private_key {
                true => Vec::new(),
                false => plugin
                    .credential_origins(&secret.origins)
                    .unwrap_or_default(),
            };
            let scope = CredentialScope::new(
                &origins,
                is_private_key || secret.origins.is_some(),
                secret.header.as_deref(),
            )
            .with_context(|| format!("[plugins.{id}.secrets.{name}] origins"))?;
            let grant = SecretGrant {
                source,
                readable: secret.readable,
                scope,
            };
            Ok((name.clone(), grant))
        })
        .collect::<Result<_>>()?;
    let oauth = plugin
        .oauth
        .iter()
        .map(|(name, grant)| {
            let origins = plugin
                .credential_origins(&grant.origins)
                .unwrap_or_default();
            let scope = CredentialScope::new(&origins, grant.origins.is_some(), None)
                .with_context(|| format!("[plugins.{id}.oauth.{name}] origins"))?;
            let loaded = OAuthGrant::new(id, name, grant, scope)
                .with_context(|| format!("[plugins.{id}.oauth.{name}]"))?;
            Ok((name.clone(), loaded))
        })
        .collect::<Result<_>>()?;
    let state_dir = config.data_dir().join("state").join(id);
    let quota = StateQuota {
        max_bytes: plugin.state_max_bytes,
        max_keys: plugin.state_max_keys,
    };
    let state = PluginState::open(id, &state_dir, quota)
        .with_context(|| format!("cannot open its state directory {}", state_dir.display()))?;
    let sign_in = plugin
        .sign_in
        .as_ref()
        .map(|sign_in| SignIn::new(id, sign_in, &config.data_dir()));
    Ok(Grants {
        plugin_id: id.to_string(),
        sign_in,
        http,
        secrets: SecretGrants::new(id, secrets),
        oauth,
        key_agreement: plugin
            .key_agreement
            .as_ref()
            .map(|agreement| KeyAgreementGrant {
                secret: agreement.key.clone(),
            }),
        state,
        log_budget: std::sync::Mutex::new(LogBudget::new()),
        elicitation: plugin.elicitation,
        sampling: plugin.sampling,
        roots: plugin.roots,
        catalogue: plugin.dynamic_catalogue.then(|| CatalogueGrant {
            changes: catalogue_changes.clone(),
        }),
        ethereum_keys: SigningKeys::new(plugin.ethereum_keys.iter().cloned()),
    })
}

/// What plugins.toml grants a plugin, one capability a line, for `carport plugins`.
pub fn summary(plugin: &PluginConfig) -> Vec<String> {
    let mut lines: Vec<String> = plugin
        .allow
        .iter()
        .map(|entry| format!("network {entry}"))
        .collect();
    lines.extend(plugin.secrets.iter().map(|(name, secret)| {
        let how = match secret.readable {
            true => "readable",
            false => "attached by the host",
        };
        format!("secret {name} ({how})")
    }));
    lines.extend(plugin.oauth.keys().map(|name| format!("oauth {name}")));
    for (granted, name) in [
        (plugin.elicitation, "elicitation"),
        (plugin.sampling, "sampling"),
        (plugin.roots, "roots"),
    ] {
        if granted {
            lines.push(format!("client {name}"));
        }
    }
    if plugin.dynamic_catalogue {
        lines.push("dynamic catalogue (described again when it says so)".to_string());
    }
    lines
}
