//! Reading the audit trail: superusers only, since it tells who did what to whom from where.

use super::Accounts;
use crate::{
    domain::Principal,
    error::AuthError,
    store::{AuditFilter, StoredEvent},
};

impl Accounts {
    /// A page of the events `filter` selects, newest first, and how many it selects in all.
    pub async fn audit_events(
        &self,
        principal: &Principal,
        filter: &AuditFilter,
        limit: u64,
        offset: u64,
    ) -> Result<(Vec<StoredEvent>, u64), AuthError> {
        if !(principal.user.is_superuser && principal.user.is_active) {
            return Err(AuthError::PermissionDenied);
        }
        self.store.audit_events(filter, limit, offset).await
    }
}
