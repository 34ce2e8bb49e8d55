//! [`Store`]: every role at once.

use async_trait::async_trait;

use crate::backend::Backend;
use crate::{Accounts, Callbacks, EvidenceStore, LookupLog, TaskQueue};

/// The durable state behind numcheck: every role at once, as the server and the CLI hold it
/// (`Arc<dyn Store>`). Call its methods with [`prelude`] in scope.
#[async_trait]
pub trait Store:
    Accounts + TaskQueue + Callbacks + EvidenceStore + LookupLog + std::fmt::Debug + Send + Sync
{
    /// Closes connections (a no-op where there is nothing to close).
    async fn close(&self) {}
}

#[async_trait]
impl<B: Backend> Store for B {
    async fn close(&self) {
        Backend::close(self).await;
    }
}
