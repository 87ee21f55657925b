//! Domain types into their proto messages, and the two enums both ways.

use proto::auth::v1 as pb;

use crate::{
    clock::UnixMicros,
    domain::{CredentialKind, Role, User},
    service::Issued,
    store::StoredEvent,
};

pub(super) fn audit_event_to_proto(event: StoredEvent) -> pb::AuditEvent {
    let StoredEvent {
        id,
        at,
        kind,
        actor_id,
        target_id,
        client_address,
        request_id,
        outcome,
        detail,
    } = event;
    pb::AuditEvent {
        id,
        time: Some(UnixMicros::to_proto(at)),
        r#type: kind,
        actor_id,
        target_id,
        client_address,
        request_id,
        outcome,
        detail,
    }
}

/// The one pairing of domain roles and proto roles; [`super::parse`] reads it backwards.
pub(super) fn role_to_proto(role: Role) -> pb::Role {
    match role {
        Role::Clerk => pb::Role::Clerk,
        Role::Manager => pb::Role::Manager,
        Role::Admin => pb::Role::Admin,
    }
}

pub(super) fn kind_from_proto(kind: pb::CredentialKind) -> CredentialKind {
    match kind {
        pb::CredentialKind::Session => CredentialKind::Session,
        pb::CredentialKind::Token | pb::CredentialKind::Unspecified => CredentialKind::Token,
    }
}

pub(super) fn kind_to_proto(kind: CredentialKind) -> pb::CredentialKind {
    match kind {
        CredentialKind::Token => pb::CredentialKind::Token,
        CredentialKind::Session => pb::CredentialKind::Session,
    }
}

pub(crate) fn user_to_proto(user: User) -> pb::User {
    pb::User {
        id: user.id,
        username: user.username,
        email: user.email,
        first_name: user.first_name,
        last_name: user.last_name,
        role: role_to_proto(user.role).into(),
        is_staff: user.is_staff,
        is_superuser: user.is_superuser,
        is_active: user.is_active,
        date_joined: Some(user.date_joined.to_proto()),
        last_login: user.last_login.map(|t| t.to_proto()),
    }
}

pub(super) fn issued_to_proto(issued: Issued) -> pb::IssuedCredential {
    pb::IssuedCredential {
        key: issued.key.expose().to_owned(),
        kind: kind_to_proto(issued.kind).into(),
        expires_at: Some(issued.expires_at.to_proto()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Auth's roles are the contract's: the same names and the same power over users, so the
    /// gateway and inventory, which read the contract's table, agree with auth.
    #[test]
    fn each_domain_role_is_its_proto_role() {
        for role in Role::ALL {
            let proto = role_to_proto(role);
            assert_eq!(role.as_db(), proto.name(), "{role:?}");
            assert_eq!(role.manages_users(), proto.manages_users(), "{role:?}");
        }
        assert_eq!(Role::ALL.map(role_to_proto), pb::Role::ASSIGNABLE);
    }
}
