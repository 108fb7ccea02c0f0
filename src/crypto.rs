//! Signatures, all through ring: verifying an organisation's signature with
//! a registered public key, signing (the command line signs for its user;
//! the service signs receipts), key ids, and the exact bytes that are signed.
//!
//! # Security decisions
//!
//! - The algorithm is a property of the registered key (read from its
//!   SubjectPublicKeyInfo), never of the request: a caller cannot choose a
//!   weaker algorithm, or have a key used with one it was not made for.
//! - Every signed message starts with a fixed context string naming what it
//!   is and the key id, so a signature over a document can never pass for a
//!   receipt, or for the same bytes under another key.
//! - RSA is accepted for verification only, PKCS#1 v1.5 with SHA-256 and
//!   2048 to 8192 bits, because government signing certificates are RSA.

use std::fmt;

use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair, UnparsedPublicKey};
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_PKCS1_RSAENCRYPTION, OID_SIG_ED25519,
};
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

/// What a document signature signs: this, the key id, a NUL, the bytes.
pub const DOCUMENT_CONTEXT: &[u8] = b"lienthong document signature v1\0";
/// What a status signature signs (a recipient's status change, a sender's
/// revocation): this, the key id, a NUL, the status bytes. Its own context,
/// so that no signed document can pass for a status or the other way round.
pub const STATUS_CONTEXT: &[u8] = b"lienthong status v1\0";
/// What a paper record's signature signs: this, the key id, a NUL, the record.
pub const PAPER_CONTEXT: &[u8] = b"lienthong paper record v1\0";
/// What a receipt signature signs: this, the key id, a NUL, the receipt.
pub const RECEIPT_CONTEXT: &[u8] = b"lienthong receipt v1\0";
/// What a checkpoint signature signs: this, the key id, a NUL, the checkpoint.
pub const CHECKPOINT_CONTEXT: &[u8] = b"lienthong checkpoint v1\0";

fn message(context: &[u8], key_id: &str, bytes: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(context.len() + key_id.len() + 1 + bytes.len());
    m.extend_from_slice(context);
    m.extend_from_slice(key_id.as_bytes());
    m.push(0);
    m.extend_from_slice(bytes);
    m
}

/// The message a sender signs for a document.
pub fn document_message(key_id: &str, document_bytes: &[u8]) -> Vec<u8> {
    message(DOCUMENT_CONTEXT, key_id, document_bytes)
}

/// The message an organisation signs for a status change or revocation.
pub fn status_message(key_id: &str, status_bytes: &[u8]) -> Vec<u8> {
    message(STATUS_CONTEXT, key_id, status_bytes)
}

/// The message an organisation signs for a paper record.
pub fn paper_message(key_id: &str, record_bytes: &[u8]) -> Vec<u8> {
    message(PAPER_CONTEXT, key_id, record_bytes)
}

/// The message the service signs for an archive checkpoint.
pub fn checkpoint_message(key_id: &str, checkpoint_bytes: &[u8]) -> Vec<u8> {
    message(CHECKPOINT_CONTEXT, key_id, checkpoint_bytes)
}

/// The message the service signs for a receipt.
pub fn receipt_message(key_id: &str, receipt_bytes: &[u8]) -> Vec<u8> {
    message(RECEIPT_CONTEXT, key_id, receipt_bytes)
}

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref());
    out
}

/// A key's id: the first 16 bytes of the SHA-256 of its SubjectPublicKeyInfo
/// (DER), in hex. Derived, so an id can never be attached to the wrong key.
pub fn key_id(spki_der: &[u8]) -> String {
    hex::encode(&sha256(spki_der)[..16])
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Ed25519,
    /// ECDSA on P-256 with SHA-256; signatures ASN.1 DER encoded.
    EcdsaP256Sha256,
    /// RSA PKCS#1 v1.5 with SHA-256, 2048 to 8192 bits.
    RsaPkcs1Sha256,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Ed25519 => "ed25519",
            Algorithm::EcdsaP256Sha256 => "ecdsa-p256-sha256",
            Algorithm::RsaPkcs1Sha256 => "rsa-pkcs1-sha256",
        }
    }

    fn verification(self) -> &'static dyn signature::VerificationAlgorithm {
        match self {
            Algorithm::Ed25519 => &signature::ED25519,
            Algorithm::EcdsaP256Sha256 => &signature::ECDSA_P256_SHA256_ASN1,
            Algorithm::RsaPkcs1Sha256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CryptoError {
    NotSpki(String),
    UnsupportedKey(String),
    WeakRsa(usize),
    NotPkcs8,
    Random,
}

impl fmt::Display for CryptoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CryptoError::NotSpki(e) => write!(f, "not a DER SubjectPublicKeyInfo: {e}"),
            CryptoError::UnsupportedKey(what) => write!(
                f,
                "unsupported key ({what}); accepted: Ed25519, ECDSA P-256, RSA 2048 to 8192 bits"
            ),
            CryptoError::WeakRsa(bits) => {
                write!(f, "RSA key of {bits} bits; at least 2048 are required")
            }
            CryptoError::NotPkcs8 => f.write_str(
                "not a PKCS#8 private key of a supported kind (Ed25519, ECDSA P-256, RSA)",
            ),
            CryptoError::Random => f.write_str("the system random generator failed"),
        }
    }
}

impl std::error::Error for CryptoError {}

/// A public key that signatures can be checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub algorithm: Algorithm,
    /// The SubjectPublicKeyInfo, DER: what is registered and exchanged.
    pub spki_der: Vec<u8>,
    /// The key in the form ring takes (the SPKI's BIT STRING).
    raw: Vec<u8>,
}

impl PublicKey {
    /// From a PEM file's text holding a `PUBLIC KEY` (SubjectPublicKeyInfo),
    /// as `service-key.pub.pem`.
    pub fn from_pem(text: &str) -> Result<PublicKey, CryptoError> {
        let block = pem::parse(text).map_err(|e| CryptoError::NotSpki(format!("not PEM: {e}")))?;
        PublicKey::from_spki_der(block.contents())
    }

    pub fn from_spki_der(der: &[u8]) -> Result<PublicKey, CryptoError> {
        let (rest, spki) =
            SubjectPublicKeyInfo::from_der(der).map_err(|e| CryptoError::NotSpki(e.to_string()))?;
        if !rest.is_empty() {
            return Err(CryptoError::NotSpki("trailing bytes".into()));
        }
        let oid = &spki.algorithm.algorithm;
        let algorithm = if *oid == OID_SIG_ED25519 {
            Algorithm::Ed25519
        } else if *oid == OID_KEY_TYPE_EC_PUBLIC_KEY {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok());
            if curve != Some(OID_EC_P256) {
                return Err(CryptoError::UnsupportedKey(
                    "an elliptic curve other than P-256".into(),
                ));
            }
            Algorithm::EcdsaP256Sha256
        } else if *oid == OID_PKCS1_RSAENCRYPTION {
            let bits = spki.parsed().map(|k| k.key_size()).unwrap_or(0);
            if bits < 2048 {
                return Err(CryptoError::WeakRsa(bits));
            }
            Algorithm::RsaPkcs1Sha256
        } else {
            return Err(CryptoError::UnsupportedKey(format!("algorithm {oid}")));
        };
        Ok(PublicKey {
            algorithm,
            spki_der: der.to_vec(),
            raw: spki.subject_public_key.data.to_vec(),
        })
    }

    pub fn key_id(&self) -> String {
        key_id(&self.spki_der)
    }

    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(self.algorithm.verification(), &self.raw)
            .verify(message, signature)
            .is_ok()
    }
}

/// A private key that signs: an organisation's (on the client side) or the
/// service's (for receipts).
pub struct SigningKey {
    pair: Pair,
    /// The public half as a SubjectPublicKeyInfo, DER.
    spki_der: Vec<u8>,
}

enum Pair {
    Ed25519(Ed25519KeyPair),
    EcdsaP256(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({}, {})", self.algorithm(), self.key_id())
    }
}

impl SigningKey {
    /// From a PKCS#8 private key, DER.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<SigningKey, CryptoError> {
        let rng = SystemRandom::new();
        let pair = if let Ok(k) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der) {
            Pair::Ed25519(k)
        } else if let Ok(k) =
            EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, der, &rng)
        {
            Pair::EcdsaP256(k)
        } else {
            Pair::Rsa(RsaKeyPair::from_pkcs8(der).map_err(|_| CryptoError::NotPkcs8)?)
        };
        // rcgen (on ring) writes the SubjectPublicKeyInfo for any of the three.
        let spki_der = rcgen::KeyPair::try_from(der)
            .map(|k| rcgen::PublicKeyData::subject_public_key_info(&k))
            .map_err(|_| CryptoError::NotPkcs8)?;
        Ok(SigningKey { pair, spki_der })
    }

    /// From a PEM file's text holding a `PRIVATE KEY` (PKCS#8).
    pub fn from_pem(text: &str) -> Result<SigningKey, CryptoError> {
        let block = pem::parse(text).map_err(|_| CryptoError::NotPkcs8)?;
        if block.tag() != "PRIVATE KEY" {
            return Err(CryptoError::NotPkcs8);
        }
        SigningKey::from_pkcs8_der(block.contents())
    }

    /// A new Ed25519 key, as PKCS#8 PEM text.
    pub fn generate_ed25519_pem() -> Result<String, CryptoError> {
        let der = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map_err(|_| CryptoError::Random)?;
        Ok(pem::encode(&pem::Pem::new(
            "PRIVATE KEY",
            der.as_ref().to_vec(),
        )))
    }

    pub fn algorithm(&self) -> Algorithm {
        match self.pair {
            Pair::Ed25519(_) => Algorithm::Ed25519,
            Pair::EcdsaP256(_) => Algorithm::EcdsaP256Sha256,
            Pair::Rsa(_) => Algorithm::RsaPkcs1Sha256,
        }
    }

    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    pub fn key_id(&self) -> String {
        key_id(&self.spki_der)
    }

    pub fn public_key(&self) -> PublicKey {
        let raw = match &self.pair {
            Pair::Ed25519(k) => k.public_key().as_ref().to_vec(),
            Pair::EcdsaP256(k) => k.public_key().as_ref().to_vec(),
            Pair::Rsa(k) => k.public_key().as_ref().to_vec(),
        };
        PublicKey {
            algorithm: self.algorithm(),
            spki_der: self.spki_der.clone(),
            raw,
        }
    }

    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let rng = SystemRandom::new();
        match &self.pair {
            Pair::Ed25519(k) => Ok(k.sign(message).as_ref().to_vec()),
            Pair::EcdsaP256(k) => k
                .sign(&rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| CryptoError::Random),
            Pair::Rsa(k) => {
                let mut out = vec![0u8; k.public().modulus_len()];
                k.sign(&signature::RSA_PKCS1_SHA256, &rng, message, &mut out)
                    .map_err(|_| CryptoError::Random)?;
                Ok(out)
            }
        }
    }

    /// Signs a document's bytes under this key's id.
    pub fn sign_document(&self, document_bytes: &[u8]) -> Result<(String, Vec<u8>), CryptoError> {
        let key_id = self.key_id();
        let signature = self.sign(&document_message(&key_id, document_bytes))?;
        Ok((key_id, signature))
    }

    /// Signs a paper record's bytes; returns (key id, signature).
    pub fn sign_paper(&self, record_bytes: &[u8]) -> Result<(String, Vec<u8>), CryptoError> {
        let key_id = self.key_id();
        let signature = self.sign(&paper_message(&key_id, record_bytes))?;
        Ok((key_id, signature))
    }

    /// Signs status bytes as their signer does; returns (key id, signature).
    pub fn sign_status(&self, status_bytes: &[u8]) -> Result<(String, Vec<u8>), CryptoError> {
        let key_id = self.key_id();
        let signature = self.sign(&status_message(&key_id, status_bytes))?;
        Ok((key_id, signature))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ed25519_round_trip_and_context_separation() {
        let pem = SigningKey::generate_ed25519_pem().unwrap_or_default();
        let key = SigningKey::from_pem(&pem).unwrap_or_else(|e| panic!("{e}"));
        let public = PublicKey::from_spki_der(key.spki_der()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(public, key.public_key());
        let (id, sig) = key.sign_document(b"doc").unwrap_or_default();
        assert_eq!(id, public.key_id());
        assert!(public.verify(&document_message(&id, b"doc"), &sig));
        assert!(!public.verify(&document_message(&id, b"dod"), &sig));
        assert!(
            !public.verify(&receipt_message(&id, b"doc"), &sig),
            "a document signature is no receipt"
        );
        assert!(!public.verify(&document_message("other", b"doc"), &sig));
    }

    #[test]
    fn a_bad_key_is_refused_with_a_reason() {
        assert!(matches!(
            PublicKey::from_spki_der(b"\x30\x00"),
            Err(CryptoError::NotSpki(_))
        ));
        assert_eq!(
            SigningKey::from_pkcs8_der(b"nope").err(),
            Some(CryptoError::NotPkcs8)
        );
    }
}
