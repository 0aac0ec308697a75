//! OpenPGP verification of a suite's `InRelease` (a clear-signed Release
//! file) against a keyring, the only thing that ties everything downloaded
//! to the archive's owners: the signed text lists the SHA-256 of every
//! index, and every index the SHA-256 of every `.deb`.
use std::path::Path;

use pgp::composed::{CleartextSignedMessage, Deserializable, SignedPublicKey};
use pgp::packet::Signature;
use pgp::types::KeyDetails;

#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    #[error("cannot read the keyring {path}")]
    ReadKeyring {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the keyring {path} holds no usable OpenPGP public key ({reason})")]
    EmptyKeyring { path: String, reason: String },
    #[error("InRelease is not a clear-signed OpenPGP message ({reason})")]
    NotSigned { reason: String },
    #[error("InRelease is signed by {issuers}, which is not in the keyring {keyring}")]
    UnknownKey { issuers: String, keyring: String },
    #[error("InRelease has a bad signature by {issuer}, a key in {keyring}: it was altered or corrupted")]
    BadSignature { issuer: String, keyring: String },
}

/// A set of trusted public keys (primary keys and their subkeys).
pub struct Keyring {
    name: String,
    keys: Vec<SignedPublicKey>,
}

impl Keyring {
    /// Reads a keyring, binary (`.gpg`) or ASCII-armored (`.asc`), holding
    /// any number of keys.
    pub fn load(path: &Path) -> Result<Keyring, SignatureError> {
        let bytes = std::fs::read(path).map_err(|source| SignatureError::ReadKeyring {
            path: path.display().to_string(),
            source,
        })?;
        Keyring::from_bytes(&path.display().to_string(), &bytes)
    }

    pub fn from_bytes(name: &str, bytes: &[u8]) -> Result<Keyring, SignatureError> {
        let empty = |reason: String| SignatureError::EmptyKeyring {
            path: name.to_owned(),
            reason,
        };
        let keys: Vec<SignedPublicKey> = if bytes.starts_with(b"-----BEGIN") {
            let (keys, _) =
                SignedPublicKey::from_armor_many(bytes).map_err(|e| empty(e.to_string()))?;
            keys.filter_map(Result::ok).collect()
        } else {
            SignedPublicKey::from_bytes_many(bytes)
                .map_err(|e| empty(e.to_string()))?
                .filter_map(Result::ok)
                .collect()
        };
        if keys.is_empty() {
            return Err(empty("no public key packets".to_owned()));
        }
        Ok(Keyring {
            name: name.to_owned(),
            keys,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Verifies `signature` over `data` with whichever key (primary or
    /// subkey) issued it. `None` when no key in the ring matches the issuer.
    fn check(&self, signature: &Signature, data: &[u8]) -> Option<bool> {
        let fingerprints = signature.issuer_fingerprint();
        let key_ids = signature.issuer_key_id();
        let issued_by = |fingerprint: pgp::types::Fingerprint, key_id: pgp::types::KeyId| {
            fingerprints.iter().any(|f| **f == fingerprint) || key_ids.iter().any(|k| **k == key_id)
        };
        let mut matched = None;
        for key in &self.keys {
            if issued_by(
                key.primary_key.fingerprint(),
                key.primary_key.legacy_key_id(),
            ) {
                let ok = signature.verify(&key.primary_key, data).is_ok();
                matched = Some(matched.unwrap_or(false) || ok);
            }
            for subkey in &key.public_subkeys {
                if issued_by(subkey.key.fingerprint(), subkey.key.legacy_key_id()) {
                    let ok = signature.verify(&subkey.key, data).is_ok();
                    matched = Some(matched.unwrap_or(false) || ok);
                }
            }
        }
        matched
    }
}

/// Checks `inrelease` and returns the signed text (with `\n` line ends).
/// At least one signature must verify with a key of `keyring`; a signature
/// by a known key that fails is refused even when another one verifies,
/// since it means the text was altered.
pub fn verify_inrelease(inrelease: &str, keyring: &Keyring) -> Result<String, SignatureError> {
    let (message, _) =
        CleartextSignedMessage::from_string(inrelease).map_err(|e| SignatureError::NotSigned {
            reason: e.to_string(),
        })?;
    if message.signatures().is_empty() {
        return Err(SignatureError::NotSigned {
            reason: "no signature".to_owned(),
        });
    }
    let signed = message.signed_text();
    let mut good = false;
    let mut unknown = Vec::new();
    for signature in message.signatures() {
        let issuer = describe_issuer(signature);
        match keyring.check(signature, signed.as_bytes()) {
            Some(true) => good = true,
            Some(false) => {
                return Err(SignatureError::BadSignature {
                    issuer,
                    keyring: keyring.name.clone(),
                })
            }
            None => unknown.push(issuer),
        }
    }
    if !good {
        return Err(SignatureError::UnknownKey {
            issuers: unknown.join(", "),
            keyring: keyring.name.clone(),
        });
    }
    Ok(signed.replace("\r\n", "\n"))
}

fn describe_issuer(signature: &Signature) -> String {
    if let Some(fingerprint) = signature.issuer_fingerprint().first() {
        return format!("key {}", hex::encode_upper(fingerprint.as_bytes()));
    }
    if let Some(key_id) = signature.issuer_key_id().first() {
        return format!("key {}", hex::encode_upper(key_id.as_ref()));
    }
    "an unnamed key".to_owned()
}
