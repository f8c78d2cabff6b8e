//! Configuration of every service, layered as the contract says:
//! built-in defaults < an optional TOML file < `INSTANTCHAT_<KEY>` environment
//! variables (nested keys joined by `__`, values parsed like TOML: numbers,
//! booleans, `["a", "b"]` lists, `{ id = "b1" }` tables).
//!
//! Unknown keys and bad values are errors that name the key. The caller reads
//! the file and the environment (this crate does no I/O) and hands them in.

mod aux;
mod backend;
mod defences;
mod files;
mod limits;

use std::fmt;

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use aux::{AuxConfig, BackendEntry, PlacementBudgets};
pub use backend::BackendConfig;
pub use defences::{Defences, PasswordAttempts, PowMode};
pub use files::FileSrvConfig;
pub use limits::{HttpLimits, PasswordChecks};

/// Prefix of the environment variables every service reads.
pub const ENV_PREFIX: &str = "INSTANTCHAT_";

/// `INSTANTCHAT_*` variables that set up the process rather than the
/// service (read before the config is), and so are not config keys:
/// `INSTANTCHAT_LOG_FORMAT=json` switches logs to JSON lines.
pub const PROCESS_ENV_KEYS: &[&str] = &["LOG_FORMAT"];

/// A configuration error, naming the key at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The dotted key (`backends.0.id`), or empty when the whole file is bad.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "bad configuration: {}", self.message)
        } else {
            write!(f, "bad configuration key `{}`: {}", self.key, self.message)
        }
    }
}

impl ConfigError {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self { key: key.into(), message: message.into() }
    }
}

/// Parses a `trusted_proxies` list, naming the bad entry's key.
pub(crate) fn parse_trusted_proxies(
    list: &[String],
) -> Result<crate::net::TrustedProxies, ConfigError> {
    for (i, entry) in list.iter().enumerate() {
        crate::net::Cidr::parse(entry)
            .map_err(|m| ConfigError::new(format!("trusted_proxies.{i}"), m))?;
    }
    crate::net::TrustedProxies::parse(list).map_err(|m| ConfigError::new("trusted_proxies", m))
}

/// Checks that go beyond types: ranges, non-empty secrets, URL shapes.
pub trait Validate {
    fn validate(&self) -> Result<(), ConfigError>;
}

/// The TOML file a service was started with.
#[derive(Debug, Clone, Copy)]
pub struct ConfigFile<'a> {
    pub path: &'a str,
    pub contents: &'a str,
}

/// Layers defaults, the file and the environment, then validates.
pub fn load<T>(
    file: Option<ConfigFile<'_>>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<T, ConfigError>
where
    T: Default + Serialize + DeserializeOwned + Validate,
{
    let mut figment = Figment::from(Serialized::defaults(T::default()));
    if let Some(file) = file {
        figment = figment.merge(Toml::string(file.contents));
    }
    for (name, value) in env {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        if rest.is_empty() || PROCESS_ENV_KEYS.contains(&rest) {
            continue;
        }
        let key = rest.to_ascii_lowercase().replace("__", ".");
        let value: figment::value::Value =
            value.parse().unwrap_or_else(|e: std::convert::Infallible| match e {});
        figment = figment.merge(Serialized::global(&key, value));
    }
    let config: T = figment.extract().map_err(|e| {
        let mut error = from_figment(e);
        if error.key.is_empty() {
            if let Some(file) = file {
                error.message = format!("{}: {}", file.path, error.message);
            }
        }
        error
    })?;
    config.validate()?;
    Ok(config)
}

fn from_figment(error: figment::Error) -> ConfigError {
    use figment::error::Kind;
    let mut key = error.path.join(".");
    let message = match &error.kind {
        Kind::UnknownField(field, _) => {
            if error.path.last() != Some(field) {
                if !key.is_empty() {
                    key.push('.');
                }
                key.push_str(field);
            }
            "unknown key".to_owned()
        }
        Kind::MissingField(field) => {
            if !key.is_empty() {
                key.push('.');
            }
            key.push_str(field);
            "missing".to_owned()
        }
        other => other.to_string(),
    };
    ConfigError { key, message }
}

#[cfg(test)]
mod tests;
