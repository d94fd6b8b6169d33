//! The [`Federation`] handle: the homeserver, the key ring and the outbound client, cheap to clone
//! and passed as axum state to federation handlers.

use std::sync::{Arc, Weak};

use hearth_core::Homeserver;

use crate::{FedClient, KeyRing};

/// Everything federation shares: the [`Homeserver`], other servers' keys, the outbound client.
#[derive(Clone)]
pub struct Federation(Arc<Inner>);

struct Inner {
    hs: Homeserver,
    keys: KeyRing,
    client: FedClient,
}

impl Federation {
    /// Builds the federation side of `hs` from its `[federation]` configuration.
    pub fn new(hs: Homeserver) -> anyhow::Result<Federation> {
        let client = FedClient::new(&hs)?;
        let keys = KeyRing::new(hs.clone(), client.clone());
        Ok(Federation(Arc::new(Inner { hs, keys, client })))
    }

    /// The homeserver.
    pub fn hs(&self) -> &Homeserver {
        &self.0.hs
    }

    /// Other servers' signing keys.
    pub fn keys(&self) -> &KeyRing {
        &self.0.keys
    }

    /// The outbound client.
    pub fn client(&self) -> &FedClient {
        &self.0.client
    }

    /// A handle that does not keep federation alive (for what the homeserver itself holds).
    pub fn downgrade(&self) -> WeakFederation {
        WeakFederation(Arc::downgrade(&self.0))
    }
}

/// A [`Federation`] held weakly.
pub struct WeakFederation(Weak<Inner>);

impl WeakFederation {
    /// The federation handle, unless it was dropped.
    pub fn upgrade(&self) -> Option<Federation> {
        self.0.upgrade().map(Federation)
    }
}
