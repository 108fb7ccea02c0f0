//! The registry of organisations' signing keys (separate from TLS keys): who
//! owns each key, and when it may sign.
//!
//! A TOML file of `[[key]]` rows:
//!
//! ```toml
//! [[key]]
//! org = "000.02.09.H37"                      # owner, as in the directory
//! public_key = "MCowBQYDK2VwAyEA..."          # base64 of the DER SubjectPublicKeyInfo
//! not_before = "2026-01-01T00:00:00+07:00"   # RFC 3339, optional
//! not_after = "2028-01-01T00:00:00+07:00"    # optional
//! revoked_at = "2027-03-01T08:00:00+07:00"   # optional
//! id = "3f2a…"                               # optional; if given, must be the derived id
//! ```
//!
//! A key is usable at an instant when it is within its validity period and
//! not revoked before that instant. The service judges this when it accepts
//! a document; a verifier later judges it at the receipt's accepted-at time,
//! so a document signed before a key was rotated out still verifies.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, RwLock};

use base64::Engine;
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::crypto::PublicKey;
use crate::directory::{Directory, OrgCode};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredKey {
    pub key_id: String,
    pub org: OrgCode,
    pub public: PublicKey,
    pub not_before_ms: Option<i64>,
    pub not_after_ms: Option<i64>,
    pub revoked_at_ms: Option<i64>,
}

/// Why a key may not sign for an organisation at an instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyProblem {
    Unknown(String),
    OtherOrganization { key_id: String, owner: OrgCode },
    NotYetValid { key_id: String, from_ms: i64 },
    Expired { key_id: String, at_ms: i64 },
    Revoked { key_id: String, at_ms: i64 },
}

impl fmt::Display for KeyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyProblem::Unknown(id) => {
                write!(f, "key {} is not registered", crate::error::quote(id))
            }
            KeyProblem::OtherOrganization { key_id, owner } => {
                write!(f, "key {key_id} belongs to {owner}, not to the sender")
            }
            KeyProblem::NotYetValid { key_id, from_ms } => {
                write!(
                    f,
                    "key {key_id} is not valid before {}",
                    format_ms(*from_ms)
                )
            }
            KeyProblem::Expired { key_id, at_ms } => {
                write!(f, "key {key_id} expired at {}", format_ms(*at_ms))
            }
            KeyProblem::Revoked { key_id, at_ms } => {
                write!(f, "key {key_id} was revoked at {}", format_ms(*at_ms))
            }
        }
    }
}

impl RegisteredKey {
    /// Whether this key may sign at `at_ms`.
    pub fn usable_at(&self, at_ms: i64) -> Result<(), KeyProblem> {
        let key_id = self.key_id.clone();
        if let Some(from_ms) = self.not_before_ms.filter(|t| at_ms < *t) {
            return Err(KeyProblem::NotYetValid { key_id, from_ms });
        }
        if let Some(at) = self.not_after_ms.filter(|t| at_ms >= *t) {
            return Err(KeyProblem::Expired { key_id, at_ms: at });
        }
        if let Some(at) = self.revoked_at_ms.filter(|t| at_ms >= *t) {
            return Err(KeyProblem::Revoked { key_id, at_ms: at });
        }
        Ok(())
    }

    /// The end of the period in which this key may sign, if any.
    pub fn usable_until_ms(&self) -> Option<i64> {
        match (self.not_after_ms, self.revoked_at_ms) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[derive(Debug)]
pub struct KeyRegistryError(pub String);

impl fmt::Display for KeyRegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "signing keys: {}", self.0)
    }
}

impl std::error::Error for KeyRegistryError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileFormat {
    #[serde(default)]
    key: Vec<KeyRow>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyRow {
    org: String,
    public_key: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    algorithm: Option<String>,
    #[serde(default)]
    not_before: Option<String>,
    #[serde(default)]
    not_after: Option<String>,
    #[serde(default)]
    revoked_at: Option<String>,
}

fn parse_time(
    field: &str,
    row: usize,
    text: &Option<String>,
) -> Result<Option<i64>, KeyRegistryError> {
    text.as_deref()
        .map(|t| {
            OffsetDateTime::parse(t, &Rfc3339)
                .map(|at| (at.unix_timestamp_nanos() / 1_000_000) as i64)
                .map_err(|e| {
                    KeyRegistryError(format!(
                        "key {row}: {field} {t:?} is not an RFC 3339 time: {e}"
                    ))
                })
        })
        .transpose()
}

/// An instant as RFC 3339, in Vietnam time with its offset.
pub fn format_ms(ms: i64) -> String {
    crate::clock::rfc3339(ms)
}

#[derive(Debug, Clone, Default)]
pub struct KeyRegistry {
    keys: BTreeMap<String, RegisteredKey>,
}

impl KeyRegistry {
    pub fn load(path: &Path) -> Result<KeyRegistry, KeyRegistryError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| KeyRegistryError(format!("cannot read {}: {e}", path.display())))?;
        KeyRegistry::from_toml(&text)
    }

    pub fn from_toml(text: &str) -> Result<KeyRegistry, KeyRegistryError> {
        let file: FileFormat =
            toml::from_str(text).map_err(|e| KeyRegistryError(format!("not valid TOML: {e}")))?;
        let mut registry = KeyRegistry::default();
        for (i, row) in file.key.into_iter().enumerate() {
            let n = i + 1;
            let org = OrgCode::parse(&row.org).ok_or_else(|| {
                KeyRegistryError(format!(
                    "key {n}: org {:?} is not a code NNN.NN.NN.Xnn",
                    row.org
                ))
            })?;
            let der = base64::engine::general_purpose::STANDARD
                .decode(row.public_key.trim())
                .map_err(|e| KeyRegistryError(format!("key {n}: public_key is not base64: {e}")))?;
            let public = PublicKey::from_spki_der(&der)
                .map_err(|e| KeyRegistryError(format!("key {n}: {e}")))?;
            let key_id = public.key_id();
            if row.id.as_ref().is_some_and(|id| *id != key_id) {
                return Err(KeyRegistryError(format!(
                    "key {n}: id {:?} is not this key's id {key_id}",
                    row.id.unwrap_or_default()
                )));
            }
            if row
                .algorithm
                .as_ref()
                .is_some_and(|a| a != public.algorithm.name())
            {
                return Err(KeyRegistryError(format!(
                    "key {n}: algorithm {:?} does not match the key, which is {}",
                    row.algorithm.unwrap_or_default(),
                    public.algorithm
                )));
            }
            let key = RegisteredKey {
                key_id: key_id.clone(),
                org,
                public,
                not_before_ms: parse_time("not_before", n, &row.not_before)?,
                not_after_ms: parse_time("not_after", n, &row.not_after)?,
                revoked_at_ms: parse_time("revoked_at", n, &row.revoked_at)?,
            };
            if registry.keys.insert(key_id.clone(), key).is_some() {
                return Err(KeyRegistryError(format!(
                    "key {n}: key {key_id} is listed twice"
                )));
            }
        }
        Ok(registry)
    }

    /// Keys whose owner is not in the directory. They are kept: such an
    /// organisation cannot connect, so cannot sign anything new, but the
    /// documents it signed earlier still need its key to be checked.
    pub fn orphans<'a>(
        &'a self,
        directory: &'a Directory,
    ) -> impl Iterator<Item = &'a RegisteredKey> {
        self.keys
            .values()
            .filter(|k| directory.org_by_code(&k.org).is_none())
    }

    pub fn get(&self, key_id: &str) -> Option<&RegisteredKey> {
        self.keys.get(key_id)
    }

    pub fn keys(&self) -> impl Iterator<Item = &RegisteredKey> {
        self.keys.values()
    }

    /// The key `key_id`, if it belongs to `org` and may sign at `at_ms`.
    pub fn check(
        &self,
        key_id: &str,
        org: &OrgCode,
        at_ms: i64,
    ) -> Result<&RegisteredKey, KeyProblem> {
        let key = self
            .get(key_id)
            .ok_or_else(|| KeyProblem::Unknown(key_id.to_owned()))?;
        if key.org != *org {
            return Err(KeyProblem::OtherOrganization {
                key_id: key_id.to_owned(),
                owner: key.org,
            });
        }
        key.usable_at(at_ms)?;
        Ok(key)
    }
}

/// The registry a running server judges signatures by, replaced whole when
/// it reloads its files (SIGHUP, `lienthong reload`): a check sees the old
/// registry or the new one, never a mix.
#[derive(Debug)]
pub struct SharedKeys(RwLock<Arc<KeyRegistry>>);

impl SharedKeys {
    pub fn new(registry: Arc<KeyRegistry>) -> SharedKeys {
        SharedKeys(RwLock::new(registry))
    }

    /// The registry as it stands. A panic cannot leave the lock's content
    /// half changed (it is one `Arc`), so a poisoned lock is taken over.
    pub fn current(&self) -> Arc<KeyRegistry> {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub fn replace(&self, registry: KeyRegistry) {
        *self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(registry);
    }
}

/// One `[[key]]` row, for writing a registry file.
pub fn key_row(org: &OrgCode, spki_der: &[u8], not_before_ms: i64, not_after_ms: i64) -> String {
    format!(
        "[[key]]\n# id {}\norg = \"{org}\"\npublic_key = \"{}\"\nnot_before = \"{}\"\nnot_after = \"{}\"\n\n",
        crate::crypto::key_id(spki_der),
        base64::engine::general_purpose::STANDARD.encode(spki_der),
        format_ms(not_before_ms),
        format_ms(not_after_ms),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::SigningKey;

    fn key() -> SigningKey {
        SigningKey::from_pem(&SigningKey::generate_ed25519_pem().unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn rows_round_trip_and_validity_is_judged_at_an_instant() {
        let k = key();
        let org = OrgCode::parse("000.02.09.H37").unwrap_or_else(|| panic!("code"));
        let text = key_row(&org, k.spki_der(), 1_000, 2_000);
        let registry = KeyRegistry::from_toml(&text).unwrap_or_else(|e| panic!("{e}"));
        let id = k.key_id();
        assert!(registry.check(&id, &org, 1_500).is_ok());
        assert!(matches!(
            registry.check(&id, &org, 999),
            Err(KeyProblem::NotYetValid { .. })
        ));
        assert!(matches!(
            registry.check(&id, &org, 2_000),
            Err(KeyProblem::Expired { .. })
        ));
        let other = OrgCode::parse("000.03.09.H37").unwrap_or_else(|| panic!("code"));
        assert!(matches!(
            registry.check(&id, &other, 1_500),
            Err(KeyProblem::OtherOrganization { .. })
        ));
        assert!(matches!(
            registry.check("nope", &org, 1_500),
            Err(KeyProblem::Unknown(_))
        ));
    }

    #[test]
    fn a_wrong_id_or_algorithm_is_refused() {
        let k = key();
        let org = OrgCode::parse("000.02.09.H37").unwrap_or_else(|| panic!("code"));
        let row = key_row(&org, k.spki_der(), 0, 1);
        let with_id = row.replace("org =", "id = \"0000\"\norg =");
        assert!(KeyRegistry::from_toml(&with_id).is_err());
        let with_alg = row.replace("org =", "algorithm = \"rsa-pkcs1-sha256\"\norg =");
        assert!(KeyRegistry::from_toml(&with_alg).is_err());
    }
}
