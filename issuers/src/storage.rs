//! The storage adapters keep their state in (ACME accounts, the internal CA's records). The
//! responder implements it on its store; each adapter sees only its own namespace.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::IssuerError;

/// A small durable key-value space. `put` must be durable when it returns.
pub trait IssuerStorage: Send + Sync {
    /// The value at `key`.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, IssuerError>;
    /// Stores `value` at `key`, durably.
    fn put(&self, key: &str, value: &[u8]) -> Result<(), IssuerError>;
    /// Every (key, value) whose key starts with `prefix`, in key order.
    fn scan(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, IssuerError>;
}

/// Storage in memory, for tests and one-shot tools.
#[derive(Debug, Default)]
pub struct MemoryStorage {
    map: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl MemoryStorage {
    /// Empty storage.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, BTreeMap<String, Vec<u8>>>, IssuerError> {
        self.map
            .lock()
            .map_err(|_| IssuerError::Storage("memory storage lock poisoned".into()))
    }
}

impl IssuerStorage for MemoryStorage {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, IssuerError> {
        Ok(self.lock()?.get(key).cloned())
    }

    fn put(&self, key: &str, value: &[u8]) -> Result<(), IssuerError> {
        self.lock()?.insert(key.to_string(), value.to_vec());
        Ok(())
    }

    fn scan(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, IssuerError> {
        Ok(self
            .lock()?
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
}
