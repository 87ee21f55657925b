//! The `auth.v1.AuthService` handlers: each parses its request into domain types (collecting
//! every field error at once), authenticates the caller from the `authorization` metadata where
//! the RPC needs one, calls [`Accounts`], and translates the answer back. The admin writes
//! (CreateUser, UpdateUser, DeleteUser) run through [`Accounts::writes`], which applies one
//! carrying an `idempotency-key` once.

use std::net::IpAddr;

use proto::{
    auth::v1::{self as pb, auth_service_server},
    credentials,
};
use service_kit::{
    idempotency::Keyed,
    validation::{FieldErrors, REQUIRED},
};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::{
    domain::{Email, Password, PersonName, Principal, Profile, ProfileChanges, Role, Username},
    error::AuthError,
    service::{AccountChanges, Accounts, LoginRequest},
    store::UserLookup,
};

mod convert;
mod frontends;
mod parse;

pub use frontends::TrustedFrontends;

pub(crate) use convert::user_to_proto;
use convert::{issued_to_proto, kind_from_proto, kind_to_proto};
use parse::{AccountFields, AccountParts, clearable, parse_account, parsed, present, role_of};

const ROLE_NOT_SELF_ASSIGNABLE: &str = "This role cannot be self-assigned.";

pub struct AuthApi {
    accounts: Accounts,
    /// `TRUSTED_FRONTENDS`: whose `x-client-address` is believed.
    frontends: TrustedFrontends,
}

impl AuthApi {
    pub fn new(accounts: Accounts, frontends: TrustedFrontends) -> Self {
        Self {
            accounts,
            frontends,
        }
    }

    /// The caller, from `authorization: Token|Bearer|Session <key>`. Any other scheme is no
    /// credential at all, as in DRF.
    async fn principal<T>(&self, request: &Request<T>) -> Result<Principal, AuthError> {
        let (kind, key) = credentials::of_metadata(request.metadata())?;
        self.accounts.validate(key, kind_from_proto(kind)).await
    }
}

type Reply<T> = Result<Response<T>, Status>;

impl AuthApi {
    /// The client an attempt comes from: the address a trusted front end (the gateway) names,
    /// else the caller's own peer.
    fn client_address<T>(&self, request: &Request<T>) -> Option<IpAddr> {
        let peer = request.remote_addr().map(|addr| addr.ip());
        if !peer.is_some_and(|peer| self.frontends.contains(peer)) {
            return peer;
        }
        request
            .metadata()
            .get(credentials::CLIENT_ADDRESS_KEY)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse().ok())
            .or(peer)
    }
}

impl AuthApi {
    /// Register's dry run: every field error, duplicates included, or OK with nothing created.
    async fn check_registration(
        &self,
        mut errors: FieldErrors,
        account: &AccountParts,
    ) -> Reply<pb::RegisterResponse> {
        let duplicates = self
            .accounts
            .duplicates(account.username.as_ref(), account.email.as_ref())
            .await?;
        for (field, message) in duplicates.iter() {
            errors.add(field, message);
        }
        errors.into_result().map_err(AuthError::from)?;
        Ok(Response::new(pb::RegisterResponse::default()))
    }
}

#[tonic::async_trait]
impl auth_service_server::AuthService for AuthApi {
    type WatchRevocationsStream = ReceiverStream<Result<pb::RevocationEvent, Status>>;

    /// A verdict cache's stream of revocations; [`crate::revocations`] serves it.
    #[tracing::instrument(skip_all)]
    async fn watch_revocations(
        &self,
        request: Request<Streaming<pb::WatchRequest>>,
    ) -> Reply<Self::WatchRevocationsStream> {
        // Small: a holder that does not read its events should not have many queued for it.
        let (out, events) = tokio::sync::mpsc::channel(16);
        let hub = self.accounts.revocations().clone();
        tokio::spawn(hub.serve_holder(request.into_inner(), out));
        Ok(Response::new(ReceiverStream::new(events)))
    }

    #[tracing::instrument(skip_all)]
    async fn register(&self, request: Request<pb::RegisterRequest>) -> Reply<pb::RegisterResponse> {
        let request = request.into_inner();
        let mut errors = FieldErrors::new();
        if !matches!(role_of(request.role), Ok(Role::Clerk)) {
            errors.add("role", ROLE_NOT_SELF_ASSIGNABLE);
        }
        let account = parse_account(
            &mut errors,
            AccountFields {
                username: request.username,
                email: request.email,
                password: request.password,
                first_name: request.first_name,
                last_name: request.last_name,
            },
        );
        if request.validate_only {
            return self.check_registration(errors, &account).await;
        }
        let account = parsed(errors, account.complete())?;
        let outcome = self.accounts.register(account, request.issue_token).await?;
        Ok(Response::new(pb::RegisterResponse {
            user: Some(user_to_proto(outcome.user)),
            token: outcome.token.map(issued_to_proto),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn login(&self, request: Request<pb::LoginRequest>) -> Reply<pb::LoginResponse> {
        let client = self.client_address(&request);
        let request = request.into_inner();
        let mut errors = FieldErrors::new();
        let lookup = match (request.username, request.email) {
            (Some(username), _) => errors
                .check("username", Username::parse(&username))
                .map(UserLookup::Username),
            (None, Some(email)) => errors
                .check("email", Email::parse(&email))
                .map(UserLookup::Email),
            (None, None) => {
                errors.add("username", REQUIRED);
                None
            }
        };
        let password = errors.check(
            "password",
            present(request.password).and_then(|p| Password::unchecked(&p)),
        );
        let (lookup, password) = parsed(errors, lookup.zip(password))?;
        let outcome = self
            .accounts
            .login(LoginRequest {
                lookup,
                password,
                open_session: request.open_session,
                client,
            })
            .await?;
        Ok(Response::new(pb::LoginResponse {
            token: Some(issued_to_proto(outcome.token)),
            session: outcome.session.map(issued_to_proto),
            user: Some(user_to_proto(outcome.user)),
        }))
    }

    // The hot path: its span is for debugging, the request's own span says it happened.
    #[tracing::instrument(level = "debug", skip_all)]
    async fn validate_token(
        &self,
        request: Request<pb::ValidateTokenRequest>,
    ) -> Reply<pb::ValidateTokenResponse> {
        let request = request.into_inner();
        let kind = kind_from_proto(request.kind());
        let principal = self.accounts.validate(&request.key, kind).await?;
        Ok(Response::new(pb::ValidateTokenResponse {
            kind: kind_to_proto(principal.kind).into(),
            expires_at: Some(principal.expires_at.to_proto()),
            user: Some(user_to_proto(principal.user)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn refresh_token(
        &self,
        request: Request<pb::RefreshTokenRequest>,
    ) -> Reply<pb::RefreshTokenResponse> {
        let principal = self.principal(&request).await?;
        let issued = self.accounts.refresh(&principal).await?;
        Ok(Response::new(pb::RefreshTokenResponse {
            token: Some(issued_to_proto(issued)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn revoke_token(
        &self,
        request: Request<pb::RevokeTokenRequest>,
    ) -> Reply<pb::RevokeTokenResponse> {
        let principal = self.principal(&request).await?;
        self.accounts.revoke(&principal).await?;
        Ok(Response::new(pb::RevokeTokenResponse {}))
    }

    #[tracing::instrument(skip_all)]
    async fn revoke_all_tokens(
        &self,
        request: Request<pb::RevokeAllTokensRequest>,
    ) -> Reply<pb::RevokeAllTokensResponse> {
        let principal = self.principal(&request).await?;
        let revoked = self.accounts.revoke_all(&principal).await?;
        Ok(Response::new(pb::RevokeAllTokensResponse { revoked }))
    }

    #[tracing::instrument(skip_all)]
    async fn change_password(
        &self,
        request: Request<pb::ChangePasswordRequest>,
    ) -> Reply<pb::ChangePasswordResponse> {
        let principal = self.principal(&request).await?;
        let client = self.client_address(&request);
        let request = request.into_inner();
        let mut errors = FieldErrors::new();
        let old = errors.check(
            "old_password",
            present(request.old_password).and_then(|p| Password::unchecked(&p)),
        );
        let new = errors.check(
            "new_password",
            present(request.new_password).and_then(|p| Password::parse(&p)),
        );
        let (old, new) = parsed(errors, old.zip(new))?;
        self.accounts
            .change_password(&principal, client, old, new)
            .await?;
        Ok(Response::new(pb::ChangePasswordResponse {}))
    }

    #[tracing::instrument(skip_all)]
    async fn get_current_user(
        &self,
        request: Request<pb::GetCurrentUserRequest>,
    ) -> Reply<pb::User> {
        let principal = self.principal(&request).await?;
        Ok(Response::new(user_to_proto(principal.user)))
    }

    #[tracing::instrument(skip_all)]
    async fn create_user(&self, request: Request<pb::CreateUserRequest>) -> Reply<pb::User> {
        let principal = self.principal(&request).await?;
        let keyed = Keyed::of(&request, principal.user.id, "CreateUser")?;
        let request = request.into_inner();
        let mut errors = FieldErrors::new();
        let role = errors.check("role", role_of(request.role));
        let account = parse_account(
            &mut errors,
            AccountFields {
                username: request.username,
                email: request.email,
                password: request.password,
                first_name: request.first_name,
                last_name: request.last_name,
            },
        );
        let (mut account, role) = parsed(errors, account.complete().zip(role))?;
        account.profile = Profile {
            role,
            is_staff: request.is_staff.unwrap_or(false),
            is_superuser: request.is_superuser.unwrap_or(false),
            is_active: request.is_active.unwrap_or(true),
            ..account.profile
        };
        let (user, now) = self
            .accounts
            .prepare_user_creation(&principal, account)
            .await?;
        let created = self.accounts.writes().run(keyed, move |connection| {
            Box::pin(async move {
                Accounts::create_user_on(connection, user, now)
                    .await
                    .map(user_to_proto)
            })
        });
        created.await
    }

    #[tracing::instrument(skip_all, fields(user_id = request.get_ref().id))]
    async fn get_user(&self, request: Request<pb::GetUserRequest>) -> Reply<pb::User> {
        let principal = self.principal(&request).await?;
        let user = self.accounts.user(&principal, request.get_ref().id).await?;
        Ok(Response::new(user_to_proto(user)))
    }

    #[tracing::instrument(skip_all)]
    async fn list_users(
        &self,
        request: Request<pb::ListUsersRequest>,
    ) -> Reply<pb::ListUsersResponse> {
        let principal = self.principal(&request).await?;
        let page = request.get_ref();
        let (users, total_count) = self
            .accounts
            .list_users(
                &principal,
                page.limit.map_or(proto::MAX_PAGE_SIZE, |limit| {
                    limit.min(proto::MAX_PAGE_SIZE)
                }),
                page.offset,
            )
            .await?;
        Ok(Response::new(pb::ListUsersResponse {
            users: users.into_iter().map(user_to_proto).collect(),
            total_count,
        }))
    }

    #[tracing::instrument(skip_all, fields(user_id = request.get_ref().id))]
    async fn update_user(&self, request: Request<pb::UpdateUserRequest>) -> Reply<pb::User> {
        let principal = self.principal(&request).await?;
        let keyed = Keyed::of(&request, principal.user.id, "UpdateUser")?;
        let request = request.into_inner();
        let mut errors = FieldErrors::new();
        // Parsed in the fields' order, as DRF lists their errors.
        let username = clearable(
            &mut errors,
            "username",
            request.username,
            request.clear_username,
            Username::parse,
        );
        let email = clearable(
            &mut errors,
            "email",
            request.email,
            request.clear_email,
            Email::parse,
        );
        let password = request
            .password
            .and_then(|p| errors.check("password", Password::parse(&p)));
        let profile = ProfileChanges {
            username,
            email,
            first_name: request
                .first_name
                .and_then(|n| errors.check("first_name", PersonName::parse(&n))),
            last_name: request
                .last_name
                .and_then(|n| errors.check("last_name", PersonName::parse(&n))),
            role: match request.role {
                0 => None,
                role => errors.check("role", role_of(role)),
            },
            is_staff: request.is_staff,
            is_superuser: request.is_superuser,
            is_active: request.is_active,
        };
        let changes = AccountChanges { profile, password };
        let changes = parsed(errors, Some(changes))?;
        let update = self
            .accounts
            .prepare_user_update(&principal, request.id, changes)
            .await?;
        let updated = self.accounts.writes().run(keyed, move |connection| {
            Box::pin(async move {
                Accounts::update_user_on(connection, update)
                    .await
                    .map(user_to_proto)
            })
        });
        let updated = updated.await?;
        self.accounts.user_changed(request.id).await;
        Ok(updated)
    }

    #[tracing::instrument(skip_all, fields(user_id = request.get_ref().id))]
    async fn delete_user(
        &self,
        request: Request<pb::DeleteUserRequest>,
    ) -> Reply<pb::DeleteUserResponse> {
        let principal = self.principal(&request).await?;
        let keyed = Keyed::of(&request, principal.user.id, "DeleteUser")?;
        let id = request.get_ref().id;
        let may_delete_superuser = Accounts::may_delete_users(&principal)?;
        let deleted = self.accounts.writes().run(keyed, move |connection| {
            Box::pin(async move {
                Accounts::delete_user_on(connection, id, may_delete_superuser).await?;
                Ok::<_, AuthError>(pb::DeleteUserResponse {})
            })
        });
        let deleted = deleted.await?;
        self.accounts.user_changed(id).await;
        Ok(deleted)
    }
}
